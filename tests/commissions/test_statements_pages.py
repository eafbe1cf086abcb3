"""The Statements page (owner, admin and billing; not sales): the list with paid or open, one
statement, its PDF and its CSV; and staff's admin, where payouts are recorded and corrections
issued, the statement itself never edited."""

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from django.urls import reverse

from commissions import statements
from commissions.models import Payout, Statement
from resellers.roles import Role
from tests.factories import UserFactory, statement_for

D = Decimal
MAY = date(2026, 5, 1)


@pytest.fixture
def statement(tenant, other_tenant) -> Statement:
    statement_for(other_tenant.customer, ("99.00",), month=MAY)  # another reseller's
    return statement_for(tenant.customer, ("10.00", "5.50"), month=MAY)


def urls(statement: Statement) -> list[str]:
    ids = {"statement_id": statement.public_id}
    return [
        reverse("statements:list"),
        reverse("statements:detail", kwargs=ids),
        reverse("statements:pdf", kwargs=ids),
        reverse("statements:csv", kwargs=ids),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "allowed"),
    [(Role.OWNER, True), (Role.ADMIN, True), (Role.BILLING, True), (Role.SALES, False)],
)
def test_roles_that_see_margins_see_statements(tenant, statement, client_for, role, allowed):
    client = client_for(tenant.member(role))
    for url in urls(statement):
        assert client.get(url).status_code == (200 if allowed else 403), url
    menu = client.get(reverse("dashboard")).content.decode()
    assert (reverse("statements:list") in menu) is allowed


@pytest.mark.django_db
def test_the_list_shows_own_statements_open_then_paid(tenant, statement, owner_client):
    body = owner_client.get(reverse("statements:list")).content.decode()
    assert statement.number in body
    assert Statement.objects.filter(reseller__isnull=False).count() == 2
    assert "99,00" not in body and "99.00" not in body  # the other reseller's
    assert "status-open" in body and "status-paid" not in body

    statements.payout_record(
        statement=statement,
        amount=statement.total,
        paid_on=date(2026, 6, 3),
        method=Payout.Method.BANK_TRANSFER,
        reference="TRF-9",
        actor=UserFactory(is_staff=True),
    )

    body = owner_client.get(reverse("statements:list")).content.decode()
    assert "status-paid" in body and "status-open" not in body
    detail = owner_client.get(
        reverse("statements:detail", kwargs={"statement_id": statement.public_id})
    ).content.decode()
    assert "TRF-9" in detail and "status-paid" in detail


@pytest.mark.django_db
def test_the_detail_shows_the_lines_and_totals(tenant, statement, owner_client):
    body = owner_client.get(
        reverse("statements:detail", kwargs={"statement_id": statement.public_id})
    ).content.decode()
    for line in statement.lines.all():
        assert line.invoice_number in body
    assert tenant.customer.organisation in body
    assert "15.50" in body or "15,50" in body
    assert "Nothing paid out yet." in body


@pytest.mark.django_db
def test_the_pdf_download_is_the_stored_document(statement, owner_client):
    response = owner_client.get(
        reverse("statements:pdf", kwargs={"statement_id": statement.public_id})
    )
    assert response["Content-Type"] == "application/pdf"
    assert f'filename="{statement.number}.pdf"' in response["Content-Disposition"]
    content = b"".join(response.streaming_content)
    statement.refresh_from_db()
    with statement.pdf.open("rb") as stored:
        assert stored.read() == content


@pytest.mark.django_db
def test_the_csv_has_a_row_per_line(tenant, statement, owner_client):
    response = owner_client.get(
        reverse("statements:csv", kwargs={"statement_id": statement.public_id})
    )
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = b"".join(response.streaming_content).decode().splitlines()
    assert rows[0] == (
        "Statement,Position,Invoice,Invoice date,Customer,Currency,Net paid,Commission"
    )
    lines = list(statement.lines.all())
    assert rows[1:] == [
        f"{statement.number},{line.position},{line.invoice_number},"
        f"{line.invoice_date.isoformat()},{line.customer_name},EUR,{line.net},{line.margin}"
        for line in lines
    ]
    assert [row.rsplit(",", 1)[1] for row in rows[1:]] == ["10.00", "5.50"]


@pytest.mark.django_db
def test_another_resellers_statement_is_a_404(tenant, other_tenant, client_for):
    theirs = statement_for(other_tenant.customer, ("1.00",), month=MAY)
    client = client_for(tenant.owner)
    for url in urls(theirs)[1:]:
        assert client.get(url).status_code == 404, url


# The admin


@pytest.mark.django_db
def test_staff_record_a_payout_on_the_statements_page(staff_client, statement):
    url = reverse("admin:commissions_statement_change", args=[statement.pk])
    page = staff_client.get(url)
    assert page.status_code == 200
    assert statement.number in page.content.decode()

    def post(amount: str) -> Any:
        return staff_client.post(
            url,
            {
                "lines-TOTAL_FORMS": "0",
                "lines-INITIAL_FORMS": "0",
                "payouts-TOTAL_FORMS": "1",
                "payouts-INITIAL_FORMS": "0",
                "payouts-0-amount": amount,
                "payouts-0-paid_on": "2026-06-04",
                "payouts-0-method": "bank_transfer",
                "payouts-0-reference": "TRF-42",
            },
        )

    refused = post("1000.00")
    assert refused.status_code == 200  # the form again, with the error
    assert "left to pay" in refused.content.decode()
    assert not Payout.objects.exists()

    assert post("15.50").status_code == 302
    payout = Payout.objects.get()
    assert (payout.amount, payout.reference, payout.recorded_by) == (
        D("15.50"),
        "TRF-42",
        staff_client.staff,
    )
    stored = Statement.objects.get(pk=statement.pk)
    assert (stored.total, stored.number) == (statement.total, statement.number)


@pytest.mark.django_db
def test_staff_issue_a_correction_by_action(staff_client, statement):
    response = staff_client.post(
        reverse("admin:commissions_statement_changelist"),
        {"action": "issue_correction", "_selected_action": [statement.pk]},
    )
    assert response.status_code == 302
    correction = Statement.objects.get(corrects=statement)
    assert correction.total == -statement.total
    assert staff_client.get(reverse("admin:commissions_payout_changelist")).status_code == 200


def test_staff_issue_a_corrected_month_again_by_action(
    staff_client, owner_client, statement, monkeypatch
):
    from commissions import margins
    from tests.factories import margin_lines

    changelist = reverse("admin:commissions_statement_changelist")
    staff_client.post(
        changelist, {"action": "issue_correction", "_selected_action": [statement.pk]}
    )
    lines = margin_lines(statement.reseller.customers.first(), [statement.subtotal])
    monkeypatch.setattr(margins, "paid_invoice_margins", lambda **kwargs: lines)
    response = staff_client.post(
        changelist, {"action": "issue_again", "_selected_action": [statement.pk]}, follow=True
    )
    assert "1 statement issued again." in response.content.decode()
    again = Statement.objects.get(replaces=statement)
    assert again.total == statement.total
    page = owner_client.get(
        reverse("statements:detail", kwargs={"statement_id": again.public_id})
    ).content.decode()
    assert f"This statement replaces statement {statement.number}, which was taken back." in page
    # Once: the second time says why not.
    response = staff_client.post(
        changelist, {"action": "issue_again", "_selected_action": [statement.pk]}, follow=True
    )
    assert "has already been issued again" in response.content.decode()
