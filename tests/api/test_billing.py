"""The API's invoices and credit notes (issue 17): what the Invoices page lists, shows, exports
and serves, through the same form, selectors and CSV writer; scopes, roles and tenancy."""

import hashlib
from datetime import date, timedelta
from decimal import Decimal
from typing import get_args

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from api.models import ApiKey, Scope
from api.routes.billing import PayerFilter, StatusFilter
from billing import services as billing_services
from billing.forms import InvoiceFilterForm
from billing.models import Invoice
from resellers.roles import Role
from tests.factories import (
    FAKE_PDF,
    CustomerFactory,
    InvoiceFactory,
    Tenant,
    buy,
    catalogue,
    member_of,
    owner_of,
)
from tests.support.api import ApiClient, api_key

LIST = "/api/v1/invoices/"
EXPORT = "/api/v1/invoices/export.csv"
TODAY = date(2026, 11, 20)


@pytest.fixture(autouse=True)
def _today():
    with time_machine.travel(TODAY, tick=False):
        yield


@pytest.fixture
def key(tenant: Tenant, other_tenant: Tenant) -> str:
    return api_key(owner_of(tenant), Scope.BILLING_READ)[1]


def body_of(response) -> bytes:
    """A response's bytes, streamed (a file or the CSV) or not."""
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content


def test_an_invoice_the_billing_run_issued_and_its_credit_note(
    tenant, other_tenant, key, client_for, django_capture_on_commit_callbacks, settings
):
    """Issued through the services, rendered by the worker's task: the list, each document
    with its lines and money, and the PDF byte for byte as the page serves it."""
    settings.STRIPE_SECRET_KEY = ""  # the manual gateway: the invoice stays open
    tenant.reseller.currency = "EUR"
    tenant.reseller.save()
    owner = owner_of(tenant)
    with time_machine.travel(date(2026, 11, 2), tick=False):
        buy(owner, catalogue()["flexible"], licences=4, customer=tenant.customer)
    with (
        time_machine.travel(date(2026, 11, 3), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        [issued] = billing_services.billing_run(day=date(2026, 11, 3))
    with (
        time_machine.travel(date(2026, 11, 4), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        note = billing_services.credit_note_issue(
            invoice=issued, reason="Goodwill", by=None, amount=Decimal("1.00")
        )
    InvoiceFactory(customer=other_tenant.customer, pdf=FAKE_PDF)  # not listed
    invoice = Invoice.objects.get(pk=issued.pk)
    note.refresh_from_db()
    assert invoice.pdf and note.pdf

    client = ApiClient(key)
    listed = client.get(LIST).json()
    assert listed["count"] == 2
    assert [item["id"] for item in listed["items"]] == [note.public_id, invoice.public_id]
    row = listed["items"][1]
    assert row["status"] == "open" and row["kind"] == "invoice" and row["corrects"] is None
    assert row["total"] == {"amount": f"{invoice.total:f}", "currency": "EUR"}
    owed = invoice.total - note.total
    assert row["balance"] == {"amount": f"{owed:f}", "currency": "EUR"}
    assert row["pdf_available"] is True
    assert listed["items"][0]["corrects"] == {"id": invoice.public_id, "number": invoice.number}
    assert listed["items"][0]["balance"] is None

    detail = client.get(f"{LIST}{invoice.public_id}").json()
    assert detail["number"] == invoice.number == "INV-2026-000001"
    assert detail["due_date"] == invoice.due_date.isoformat() and detail["paid_at"] is None
    assert detail["customer"] == {
        "id": tenant.customer.public_id,
        "organisation": tenant.customer.organisation,
    }
    assert detail["payer"] == "reseller_card" and detail["payer_name"]
    assert detail["vat_treatment"] == invoice.vat_treatment
    assert detail["vat_rate"] == f"{invoice.vat_rate:f}"
    assert detail["subtotal"]["amount"] == f"{invoice.subtotal:f}"
    assert detail["vat_amount"]["amount"] == f"{invoice.vat_amount:f}"
    [line] = invoice.lines.all()
    assert line.period_start and line.period_end
    assert detail["lines"] == [
        {
            "position": 1,
            "description": line.description,
            "period_start": line.period_start.isoformat(),
            "period_end": line.period_end.isoformat(),
            "licences": 4,
            "unit_price": {"amount": f"{line.unit_price:f}", "currency": "EUR"},
            "amount": {"amount": f"{line.amount:f}", "currency": "EUR"},
        }
    ]
    assert detail["credit_notes"] == [{"id": note.public_id, "number": note.number}]
    assert detail["buyer"]["name"] == tenant.customer.organisation

    assert invoice.pdf.name
    with invoice.pdf.storage.open(invoice.pdf.name, "rb") as stored:
        stored_pdf = stored.read()
    assert stored_pdf.startswith(b"%PDF-")
    assert hashlib.sha256(stored_pdf).hexdigest() == invoice.pdf_sha256
    pdf = client.get(f"{LIST}{invoice.public_id}/pdf")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert body_of(pdf) == stored_pdf
    page = client_for(tenant.owner).get(f"/invoices/{invoice.public_id}/pdf/")
    assert body_of(page) == body_of(client.get(f"{LIST}{invoice.public_id}/pdf"))
    assert pdf["Content-Disposition"] == page["Content-Disposition"]


def test_paid_invoice_shows_when_it_was_paid(tenant, other_tenant, key):
    invoice = InvoiceFactory(customer=tenant.customer, issue_date=date(2026, 11, 2))
    billing_services.invoice_mark_paid(invoice=invoice, by=None)
    invoice.refresh_from_db()
    detail = ApiClient(key).get(f"{LIST}{invoice.public_id}").json()
    assert detail["status"] == "paid"
    assert detail["paid_at"] is not None
    assert detail["balance"] == {"amount": "0.00", "currency": "EUR"}
    assert [payment["amount"] for payment in detail["payments"]] == [
        {"amount": f"{invoice.total:f}", "currency": "EUR"}
    ]


def test_the_pages_filters_and_kind(tenant, other_tenant, key):
    mine = CustomerFactory(reseller=tenant.reseller, organisation="Zebra Works")
    overdue = InvoiceFactory(customer=mine, issue_date=date(2026, 10, 1))
    assert overdue.due_date < TODAY
    paid = InvoiceFactory(customer=tenant.customer, issue_date=date(2026, 11, 2))
    Invoice.objects.filter(pk=paid.pk).update(status=Invoice.Status.PAID)
    note = InvoiceFactory(
        customer=tenant.customer,
        kind=Invoice.Kind.CREDIT_NOTE,
        corrects=paid,
        status=Invoice.Status.CREDITED,
        issue_date=date(2026, 11, 3),
    )
    InvoiceFactory(customer=other_tenant.customer, issue_date=date(2026, 10, 1))
    client = ApiClient(key)

    def ids(**query: str) -> set[str]:
        response = client.get(LIST, query)
        assert response.status_code == 200, response.content
        return {item["id"] for item in response.json()["items"]}

    assert ids() == {overdue.public_id, paid.public_id, note.public_id}
    assert ids(status="overdue") == {overdue.public_id}
    assert ids(status="paid") == {paid.public_id}
    assert ids(customer="zebra") == {overdue.public_id}
    assert ids(customer=mine.public_id) == {overdue.public_id}
    assert ids(customer=other_tenant.customer.public_id) == set()
    assert ids(month="2026-10") == {overdue.public_id}
    assert ids(date_from="2026-11-02", date_to="2026-11-02") == {paid.public_id}
    assert ids(kind="credit_note") == {note.public_id}
    assert ids(kind="invoice") == {overdue.public_id, paid.public_id}
    assert client.get(LIST, {"status": "overdue"}).json()["items"][0]["overdue"] is True


def test_keyset_cursors_walk_every_document_once(tenant, other_tenant, key):
    for days in range(55):
        InvoiceFactory(customer=tenant.customer, issue_date=TODAY - timedelta(days=days % 7))
    client, seen, cursor = ApiClient(key), [], ""
    while True:
        body = client.get(LIST, {"cursor": cursor}).json()
        seen += [item["id"] for item in body["items"]]
        if not body["next_cursor"]:
            break
        cursor = body["next_cursor"]
    assert len(seen) == len(set(seen)) == 55
    dates = [Invoice.objects.get(public_id=pid).issue_date for pid in seen]
    assert dates == sorted(dates, reverse=True)


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"status": "paid"},
        {"month": "2026-11", "customer": "Café"},
        {"date_from": "2026-11-01", "date_to": "2026-11-03", "payer": "reseller_card"},
    ],
)
def test_the_csv_is_the_pages_csv_for_the_same_filters(
    query, tenant, other_tenant, key, client_for
):
    cafe = CustomerFactory(reseller=tenant.reseller, organisation="Café =Ñandú", vat_id="ESB1")
    invoice = InvoiceFactory(customer=cafe, lines=2, issue_date=date(2026, 11, 3))
    Invoice.objects.filter(pk=invoice.pk).update(status=Invoice.Status.PAID)
    InvoiceFactory(
        customer=cafe,
        kind=Invoice.Kind.CREDIT_NOTE,
        corrects=invoice,
        status=Invoice.Status.CREDITED,
        lines=0,
        subtotal=Decimal("10.00"),
        issue_date=date(2026, 11, 4),
    )
    InvoiceFactory(customer=tenant.customer, issue_date=date(2026, 10, 7))
    InvoiceFactory(customer=other_tenant.customer, issue_date=date(2026, 11, 3))

    response = ApiClient(key).get(EXPORT, query)
    page = client_for(tenant.owner).get("/invoices/export.csv", query)
    assert response.status_code == page.status_code == 200
    assert response["Content-Type"] == page["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == page["Content-Disposition"]
    exported = body_of(response)
    assert exported == body_of(page)
    assert exported.count(b"\r\n") > 1  # the header and at least one row
    assert other_tenant.customer.public_id.encode() not in exported


def test_the_csv_narrowed_to_credit_notes(tenant, other_tenant, key):
    invoice = InvoiceFactory(customer=tenant.customer)
    note = InvoiceFactory(
        customer=tenant.customer,
        kind=Invoice.Kind.CREDIT_NOTE,
        corrects=invoice,
        status=Invoice.Status.CREDITED,
    )
    lines = body_of(ApiClient(key).get(EXPORT, {"kind": "credit_note"})).decode().splitlines()
    assert len(lines) == 2 and lines[1].startswith(f"{note.number},credit_note,{invoice.number}")


@pytest.mark.parametrize("url", [LIST, EXPORT])
def test_bad_filters_are_a_422_naming_each_field(url, tenant, other_tenant, key):
    response = ApiClient(key).get(
        url,
        {
            "status": "lost",
            "payer": "cash",
            "date_from": "someday",
            "month": "2026-13",
            "kind": "receipt",
            "customer": "x" * 101,
        },
    )
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    fields = {error["field"] for error in response.json()["errors"]}
    assert fields == {"status", "payer", "date_from", "month", "kind", "customer"}
    # What only the page's form can tell: a month and dates at once, a range backwards.
    both = ApiClient(key).get(url, {"month": "2026-11", "date_from": "2026-11-01"})
    assert both.status_code == 422
    assert [error["field"] for error in both.json()["errors"]] == [""]
    reversed_range = ApiClient(key).get(url, {"date_from": "2026-11-05", "date_to": "2026-11-01"})
    assert reversed_range.status_code == 422
    assert [error["field"] for error in reversed_range.json()["errors"]] == ["date_to"]


def test_the_published_filters_are_the_pages_choices():
    """The schema lists the statuses and payers the page's form offers, no more, no fewer."""
    form = InvoiceFilterForm()
    for name, schema_type in (("status", StatusFilter), ("payer", PayerFilter)):
        offered = [str(value) for value, _label in form.fields[name].choices]  # type: ignore[attr-defined]
        assert list(get_args(schema_type)) == offered, name


def test_another_resellers_document_is_a_404_exactly_like_a_missing_one(tenant, other_tenant, key):
    theirs = InvoiceFactory(customer=other_tenant.customer, pdf=FAKE_PDF)
    mine = InvoiceFactory(customer=tenant.customer, pdf=FAKE_PDF)
    client = ApiClient(key)
    for suffix in ("", "/pdf"):
        foreign = client.get(f"{LIST}{theirs.public_id}{suffix}")
        missing = client.get(f"{LIST}AAAAAAAAAAAAAAAA{suffix}")
        assert foreign.status_code == missing.status_code == 404
        assert foreign.content == missing.content
        assert foreign["Content-Type"] == "application/problem+json"
        assert client.get(f"{LIST}{mine.public_id}{suffix}").status_code == 200
        # Not even the shape of an id (a NUL would fail in PostgreSQL): the same 404.
        for malformed in ("%00", "short", "A" * 40):
            assert client.get(f"{LIST}{malformed}{suffix}").content == missing.content


def test_a_pdf_not_rendered_yet_is_a_202_with_retry_after_as_on_the_page(
    tenant, other_tenant, key, client_for
):
    invoice = InvoiceFactory(customer=tenant.customer)
    response = ApiClient(key).get(f"{LIST}{invoice.public_id}/pdf")
    page = client_for(tenant.owner).get(f"/invoices/{invoice.public_id}/pdf/")
    assert response.status_code == page.status_code == 202
    assert response["Retry-After"] == page["Retry-After"] == "10"
    assert invoice.number in response.json()["title"]
    assert ApiClient(key).get(f"{LIST}{invoice.public_id}").json()["pdf_available"] is False
    # Named but gone from storage: the same.
    stored = InvoiceFactory(customer=tenant.customer, pdf=FAKE_PDF)
    assert stored.pdf.name
    stored.pdf.storage.delete(stored.pdf.name)
    assert ApiClient(key).get(f"{LIST}{stored.public_id}/pdf").status_code == 202


def test_a_key_without_billing_read_is_refused_with_403(tenant, other_tenant):
    invoice = InvoiceFactory(customer=tenant.customer, pdf=FAKE_PDF)
    _, key = api_key(owner_of(tenant), Scope.READ, Scope.CUSTOMERS_WRITE)
    client = ApiClient(key)
    for url in (LIST, EXPORT, f"{LIST}{invoice.public_id}", f"{LIST}{invoice.public_id}/pdf"):
        response = client.get(url)
        assert response.status_code == 403, url
        assert "billing:read" in response.json()["detail"]


def test_a_role_without_invoice_view_is_refused_with_403(tenant, other_tenant):
    """Only owners and admins make keys today, and both see invoices; were a sales member's key
    to exist, the role would still be checked on every route."""
    invoice = InvoiceFactory(customer=tenant.customer, pdf=FAKE_PDF)
    admin = member_of(tenant.reseller, Role.ADMIN)
    made, key = api_key(admin, Scope.BILLING_READ)
    client = ApiClient(key)
    assert client.get(LIST).status_code == 200
    admin.role = Role.SALES
    admin.save()
    ApiKey.objects.filter(pk=made.pk).update(role=Role.SALES)
    for url in (LIST, EXPORT, f"{LIST}{invoice.public_id}", f"{LIST}{invoice.public_id}/pdf"):
        response = client.get(url)
        assert response.status_code == 403, url
        assert response["Content-Type"] == "application/problem+json"


def test_a_page_costs_the_same_queries_however_many_documents(tenant, other_tenant, key):
    client = ApiClient(key)
    invoice = InvoiceFactory(customer=tenant.customer)
    InvoiceFactory(
        customer=tenant.customer,
        kind=Invoice.Kind.CREDIT_NOTE,
        corrects=invoice,
        status=Invoice.Status.CREDITED,
    )
    client.get(LIST)  # the key's last use is written at most once a minute
    with CaptureQueriesContext(connection) as few:
        assert client.get(LIST).json()["count"] == 2
    for _ in range(20):
        other = InvoiceFactory(customer=CustomerFactory(reseller=tenant.reseller))
        InvoiceFactory(
            customer=other.customer,
            kind=Invoice.Kind.CREDIT_NOTE,
            corrects=other,
            status=Invoice.Status.CREDITED,
        )
    with CaptureQueriesContext(connection) as many:
        assert client.get(LIST).json()["count"] == 42
    assert len(many) == len(few)
