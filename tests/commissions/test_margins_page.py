"""The reseller's Margin page and its CSV (commissions.views): who sees it, the month picker,
earned apart from expected, the CSV's rows (formulas neutralised), another reseller's figures
never shown, and a number of queries that does not grow with the customers."""

from datetime import UTC, date, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import Invoice
from resellers.roles import Action, Role, role_can
from tests.factories import (
    CustomerFactory,
    SubscriptionFactory,
    Tenant,
    charge_priced,
    credit_note_of,
    invoice_of_charges,
    member_of,
)

PAID = Invoice.Status.PAID
NOW = datetime(2026, 3, 15, 10, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _march(time_machine):
    time_machine.move_to(NOW, tick=False)


def paid_invoice(customer, amount: str, cost: str, *, paid_at: datetime = NOW, **fields) -> Invoice:
    subscription = SubscriptionFactory(customer=customer, **fields)
    return invoice_of_charges(
        [charge_priced(subscription, amount=amount, cost=cost)], status=PAID, paid_at=paid_at
    )


def unpaid_invoice(customer, amount: str, cost: str) -> Invoice:
    subscription = SubscriptionFactory(customer=customer)
    return invoice_of_charges([charge_priced(subscription, amount=amount, cost=cost)])


def test_the_page_shows_this_months_earned_apart_from_expected(owner_client, tenant, other_tenant):
    paid_invoice(tenant.customer, "80.00", "60.00")
    unpaid_invoice(tenant.customer, "30.00", "27.00")
    paid_invoice(other_tenant.customer, "777.00", "1.00")
    response = owner_client.get("/margin/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "March 2026" in body
    earned = body[body.index('id="earned"') : body.index('id="expected"')]
    expected = body[body.index('id="expected"') :]
    assert "€20.00" in earned and "€80.00" in earned and "€60.00" in earned
    assert "€3.00" in expected and "€30.00" in expected
    assert "€20.00" not in expected
    assert "777" not in body  # another reseller's
    assert tenant.customer.organisation in earned
    # This month: a link to the month before, none to the month after.
    assert 'href="/margin/?month=2026-02"' in body
    assert "month=2026-04" not in body
    assert 'type="month" name="month" value="2026-03"' in body  # the picker shows the month


def test_the_month_picker_shows_an_earlier_month_with_links_both_ways(owner_client, tenant):
    paid_invoice(tenant.customer, "50.00", "45.00", paid_at=datetime(2026, 1, 31, 23, tzinfo=UTC))
    paid_invoice(tenant.customer, "10.00", "1.00")  # March: not January's
    body = owner_client.get("/margin/?month=2026-01").content.decode()
    assert "January 2026" in body and "€5.00" in body and "€9.00" not in body
    assert 'href="/margin/?month=2025-12"' in body and 'href="/margin/?month=2026-02"' in body
    assert owner_client.get("/margin/?month=2026-02").content.decode().count("€5.00") == 0


@pytest.mark.parametrize("month", ["2026-13", "March", "26-03", "2026-3"])
def test_a_month_not_as_yyyy_mm_is_refused(owner_client, month):
    response = owner_client.get("/margin/", {"month": month})
    assert response.status_code == 400
    assert "Choose a month, as YYYY-MM." in response.content.decode()
    assert owner_client.get("/margin/export.csv", {"month": month}).status_code == 400


def test_only_roles_that_see_margins_reach_the_page_and_the_csv(tenant, other_tenant, client_for):
    for role in Role:
        client = client_for(member_of(tenant.reseller, role).user)
        allowed = role_can(role, Action.MARGIN_VIEW)
        for url in ("/margin/", "/margin/export.csv"):
            assert client.get(url).status_code == (200 if allowed else 403), (role, url)
        menu = client.get("/dashboard/").content.decode()
        assert ('href="/margin/"' in menu) is allowed, role
    assert not role_can(Role.SALES, Action.MARGIN_VIEW)


def test_the_csv_has_the_pages_figures_with_formulas_neutralised(owner_client, tenant):
    tenant.customer.organisation = '=HYPERLINK("http://x")'
    tenant.customer.save(update_fields=["organisation"])
    invoice = paid_invoice(tenant.customer, "100.00", "80.00", plan__product__name="Mail")
    credit_note_of(invoice, "50.00", issue_date=date(2026, 3, 20))
    unpaid_invoice(tenant.customer, "10.00", "9.00")
    response = owner_client.get("/margin/export.csv?month=2026-03")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="margin-2026-03.csv"' in response["Content-Disposition"]
    lines = b"".join(response.streaming_content).decode().split("\r\n")
    assert lines[0] == "month,status,currency,by,id,name,revenue,cost,margin"
    public_id = tenant.customer.public_id
    sku = invoice.lines.values_list("charge__subscription__product__sku", flat=True).get()
    assert lines[1:4] == [
        f'2026-03,earned,EUR,customer,{public_id},"\'=HYPERLINK(""http://x"")",50.00,40.00,10.00',
        f"2026-03,earned,EUR,product,{sku},Mail,50.00,40.00,10.00",
        "2026-03,earned,EUR,total,,Total,50.00,40.00,10.00",
    ]
    assert lines[4].startswith(f"2026-03,expected,EUR,customer,{public_id},")
    assert lines[4].endswith(",10.00,9.00,1.00")
    assert lines[-2] == "2026-03,expected,EUR,total,,Total,10.00,9.00,1.00" and lines[-1] == ""


def add_customers(tenant: Tenant, count: int) -> None:
    for n in range(count):
        customer = CustomerFactory(reseller=tenant.reseller)
        invoice = paid_invoice(customer, f"{10 + n}.00", "5.00")
        credit_note_of(invoice, "1.00")
        unpaid_invoice(customer, "20.00", "15.00")


def test_the_page_costs_the_same_queries_however_many_customers(owner_client, tenant):
    add_customers(tenant, 2)
    with CaptureQueriesContext(connection) as few:
        assert owner_client.get("/margin/").status_code == 200
    add_customers(tenant, 25)
    with CaptureQueriesContext(connection) as many:
        response = owner_client.get("/margin/")
    assert response.content.decode().count("/customers/") >= 27
    assert len(many) == len(few), [query["sql"] for query in many.captured_queries]
    assert len(many) <= 20
