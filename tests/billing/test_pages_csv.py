"""The Invoices page's CSV export: documented columns, one row per line, streamed from one query
(the number of queries and the memory do not grow with the number of invoices)."""

import csv
import io
import tracemalloc
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing import selectors
from billing.models import Invoice, Payment
from tests.factories import CustomerFactory, InvoiceFactory

EXPORT_URL = "/invoices/export.csv"

# The documented header, spelled out: changing it breaks the readers of the file.
HEADER = (
    "invoice_number,kind,corrects,issue_date,due_date,customer_id,organisation,buyer_vat_id,"
    "buyer_country,payer,currency,line_position,description,period_start,period_end,licences,"
    "unit_price,line_amount,vat_treatment,vat_rate,invoice_subtotal,vat_amount,total,status,"
    "paid_at,balance,refunded"
)


@pytest.fixture(autouse=True)
def _today():
    with time_machine.travel(date(2026, 11, 20), tick=False):
        yield


def export(client, **query: str) -> tuple[object, list[dict[str, str]]]:
    response = client.get(EXPORT_URL, query)
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode("utf-8")
    return response, list(csv.DictReader(io.StringIO(body)))


def test_url():
    assert reverse("billing:invoice_export") == EXPORT_URL


def test_header_and_rows(owner_client, tenant, other_tenant):
    customer = CustomerFactory(
        reseller=tenant.reseller,
        organisation="Café Ñandú",
        country="ES",
        vat_id="ESB12345678",
        # Not a random id: one starting with "-" is exported with a leading "'" (no formula).
        public_id="CafeNanduCust001",
    )
    invoice = InvoiceFactory(
        customer=customer, lines=2, subtotal=Decimal("80.00"), issue_date=date(2026, 11, 3)
    )
    Invoice.objects.filter(pk=invoice.pk).update(
        status=Invoice.Status.PAID, paid_at=datetime(2026, 11, 5, 9, 30, tzinfo=UTC)
    )
    Payment.objects.create(
        invoice=invoice,
        attempt=1,
        gateway="manual",
        idempotency_key=f"{invoice.number}:1",
        amount=Decimal("96.80"),
        currency="EUR",
        status=Payment.Status.SUCCEEDED,
    )
    note = InvoiceFactory(
        customer=customer,
        kind=Invoice.Kind.CREDIT_NOTE,
        corrects=invoice,
        lines=0,
        subtotal=Decimal("10.00"),
        issue_date=date(2026, 11, 4),
        status=Invoice.Status.CREDITED,
    )
    InvoiceFactory(customer=other_tenant.customer)

    response = owner_client.get(EXPORT_URL)
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="invoices-2026-11-20.csv"'
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.split("\r\n")[0] == HEADER
    assert HEADER.split(",") == list(selectors.INVOICE_CSV_COLUMNS)

    rows = list(csv.DictReader(io.StringIO(body)))
    assert len(rows) == 3  # two lines, and one row for the credit note without lines
    first, second, credit = rows
    assert first == {
        "invoice_number": invoice.number,
        "kind": "invoice",
        "corrects": "",
        "issue_date": "2026-11-03",
        "due_date": "2026-11-17",
        "customer_id": customer.public_id,
        "organisation": "Café Ñandú",
        "buyer_vat_id": "ESB12345678",
        "buyer_country": "ES",
        "payer": "reseller_card",
        "currency": "EUR",
        "line_position": "1",
        "description": "Workspace Business, line 1",
        "period_start": "2026-11-03",
        "period_end": "2026-12-03",
        "licences": "5",
        "unit_price": "8.00",
        "line_amount": "40.00",
        "vat_treatment": "domestic",
        "vat_rate": "21.00",
        "invoice_subtotal": "80.00",
        "vat_amount": "16.80",
        "total": "96.80",
        "status": "paid",
        "paid_at": "2026-11-05T09:30:00+00:00",
        # Paid in full, then 12.10 credited: that much is owed back, not refunded yet.
        "balance": "-12.10",
        "refunded": "0.00",
    }
    assert (second["invoice_number"], second["line_position"]) == (invoice.number, "2")
    assert credit["invoice_number"] == note.number
    assert (credit["kind"], credit["corrects"], credit["line_position"]) == (
        "credit_note",
        invoice.number,
        "",
    )
    assert credit["total"] == "12.10"
    assert (credit["balance"], credit["refunded"]) == ("", "")


def test_export_takes_the_pages_filters(owner_client, tenant):
    paid = InvoiceFactory(customer=tenant.customer, status=Invoice.Status.PAID)
    InvoiceFactory(customer=tenant.customer)
    _response, rows = export(owner_client, status="paid")
    assert {row["invoice_number"] for row in rows} == {paid.number}
    _response, rows = export(owner_client, customer="no such organisation")
    assert rows == []


def test_the_page_links_to_the_export_with_its_filters(owner_client, tenant):
    InvoiceFactory(customer=tenant.customer)
    page = owner_client.get("/invoices/", {"status": "open", "month": "2026-11"}).text
    assert f'href="{EXPORT_URL}?status=open&amp;month=2026-11"' in page


def _documents(customer, count: int, lines: int) -> None:
    for n in range(count):
        InvoiceFactory(customer=customer, lines=lines, issue_date=date(2026, 1, 1 + n % 28))


def test_queries_do_not_grow_with_the_number_of_invoices(owner_client, tenant):
    def queries_for_export() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as queries:
            _response, rows = export(owner_client)
        return len(queries), len(rows)

    _documents(tenant.customer, 3, lines=2)
    few = queries_for_export()
    _documents(tenant.customer, 30, lines=2)
    many = queries_for_export()
    assert (few[1], many[1]) == (6, 66)
    assert few[0] == many[0], (few, many)


def test_memory_stays_flat_however_many_lines(owner_client, tenant, monkeypatch):
    """Read the stream chunk by chunk, as a client does: the peak memory of an export ten times
    longer stays about the same (a list of all rows would grow with them)."""
    monkeypatch.setattr(selectors, "INVOICE_CSV_CHUNK_SIZE", 50)

    def peak_while_streaming() -> tuple[int, int]:
        response = owner_client.get(EXPORT_URL)
        tracemalloc.start()
        try:
            lines = sum(chunk.count(b"\n") for chunk in response.streaming_content)
            _current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        return peak, lines

    _documents(tenant.customer, 2, lines=50)
    peak_while_streaming()  # warm up: templates, translations, compiled queries
    small, small_lines = peak_while_streaming()
    _documents(tenant.customer, 18, lines=50)
    large, large_lines = peak_while_streaming()
    assert (small_lines, large_lines) == (101, 1001)
    assert large < small * 2, (small, large)
