"""Issued documents stay as issued, and numbers stay gapless: the model guard, the PostgreSQL
triggers (raw SQL), the admin, and 300 invoices issued at once on real PostgreSQL."""

import importlib
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from django.db import IntegrityError, connection, connections, transaction
from django.utils import timezone

from billing import immutability, services, vat
from billing.models import (
    DocumentCounter,
    GatewayCustomer,
    Invoice,
    InvoiceLine,
    IssuedInvoiceChanged,
    VatRate,
)
from billing.payments import services as payment_services
from customers.models import Customer
from resellers.models import AuditEvent
from subscriptions.models import Charge, Plan, Product, Subscription
from tests.factories import (
    ChargeFactory,
    CustomerFactory,
    InvoiceFactory,
    ResellerFactory,
)

D = Decimal


@pytest.fixture(autouse=True)
def no_side_effects(monkeypatch: pytest.MonkeyPatch) -> None:
    # What issuing and paying set off (the PDF, the card charge, lifting suspensions) is
    # tested with those parts; here nothing runs.
    monkeypatch.setattr(services, "invoice_pdf_enqueue", lambda document: None)
    monkeypatch.setattr(services, "invoice_pdf_regenerate", lambda document: None)
    monkeypatch.setattr(payment_services, "invoice_charge_enqueue", lambda invoice: None)
    monkeypatch.setattr(payment_services, "suspensions_lift_after_payment", lambda invoice: None)


@pytest.fixture
def invoice(db: None) -> Invoice:
    return InvoiceFactory()


# The model guard (any database)


def test_model_guard_refuses_changes_and_deletes(invoice):
    invoice.total = D("1.00")
    with pytest.raises(IssuedInvoiceChanged):
        invoice.save()
    invoice.refresh_from_db()
    invoice.buyer = {**invoice.buyer, "organisation": "Someone else"}
    with pytest.raises(IssuedInvoiceChanged):
        invoice.save(update_fields=["buyer"])
    with pytest.raises(IssuedInvoiceChanged):
        invoice.delete()
    invoice.refresh_from_db()
    # What happens after issue may be written.
    invoice.status = Invoice.Status.PAID
    invoice.paid_at = timezone.now()
    invoice.pdf_sha256 = "0" * 64
    invoice.save()
    invoice.refresh_from_db()
    assert invoice.status == "paid"


def test_database_refuses_a_total_that_does_not_reconcile(db):
    with pytest.raises(IntegrityError), transaction.atomic():
        InvoiceFactory(subtotal=D("100.00"), vat_amount=D("21.00"), total=D("121.01"))
    assert InvoiceFactory(subtotal=D("453.00"), vat_amount=D("95.13"), total=D("548.13")).pk


# The triggers (PostgreSQL)


@pytest.mark.postgres
def test_migration_freezes_the_models_immutable_columns():
    # The migration that installed the triggers last (0008 froze line_count too).
    migration = importlib.import_module("billing.migrations.0008_issued_documents_fixed")
    assert immutability.invoice_immutable_columns() == migration.IMMUTABLE_COLUMNS


def sql(statement: str, params: list[Any]) -> int:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


IMMUTABLE_UPDATES = [
    (
        "total",
        "UPDATE billing_invoice SET total = total + 1, subtotal = subtotal + 1 WHERE id = %s",
    ),
    ("number", "UPDATE billing_invoice SET number = 'INV-1999-000001' WHERE id = %s"),
    ("buyer", """UPDATE billing_invoice SET buyer = '{"organisation": "x"}' WHERE id = %s"""),
    ("issue_date", "UPDATE billing_invoice SET issue_date = issue_date - 1 WHERE id = %s"),
]


@pytest.mark.postgres
@pytest.mark.parametrize(("column", "statement"), IMMUTABLE_UPDATES)
def test_trigger_refuses_raw_sql_changes(invoice, column, statement):
    with pytest.raises(IntegrityError, match="cannot change"):
        sql(statement, [invoice.pk])
    stored = Invoice.objects.get(pk=invoice.pk)
    assert getattr(stored, column) == getattr(invoice, column)


@pytest.mark.postgres
def test_trigger_refuses_what_bypasses_the_model(invoice):
    other = CustomerFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Invoice.objects.filter(pk=invoice.pk).update(customer=other)
    with pytest.raises(IntegrityError, match="cannot be deleted"):
        sql("DELETE FROM billing_invoice WHERE id = %s", [invoice.pk])
    with pytest.raises(IntegrityError, match="lines of an issued document"):
        sql("UPDATE billing_invoiceline SET amount = 0 WHERE invoice_id = %s", [invoice.pk])
    with pytest.raises(IntegrityError, match="lines of an issued document"):
        sql("DELETE FROM billing_invoiceline WHERE invoice_id = %s", [invoice.pk])
    assert invoice.lines.get().amount == D("100.00")


@pytest.mark.postgres
def test_trigger_lets_payment_and_pdf_columns_change(invoice):
    changed = sql(
        "UPDATE billing_invoice SET status = 'paid', paid_at = now(), payment_attempts = 2,"
        " next_payment_attempt = NULL, pdf = 'invoices/2026/x.pdf', pdf_sha256 = %s"
        " WHERE id = %s",
        ["a" * 64, invoice.pk],
    )
    assert changed == 1
    invoice.refresh_from_db()
    assert (invoice.status, invoice.payment_attempts, invoice.pdf.name) == (
        "paid",
        2,
        "invoices/2026/x.pdf",
    )


# The admin


ADMIN = "/admin/billing/invoice/"


def test_admin_shows_invoices_read_only(staff_client, invoice):
    page = staff_client.get(f"{ADMIN}{invoice.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert invoice.number in html and invoice.buyer["organisation"] in html
    assert 'name="_save"' not in html and "deletelink" not in html
    response = staff_client.post(
        f"{ADMIN}{invoice.pk}/change/", {"number": "INV-1999-000001", "total": "1.00"}
    )
    assert response.status_code == 403
    assert staff_client.post(f"{ADMIN}{invoice.pk}/delete/", {"post": "yes"}).status_code == 403
    assert staff_client.get(f"{ADMIN}add/").status_code == 403
    stored = Invoice.objects.get(pk=invoice.pk)
    assert (stored.number, stored.total) == (invoice.number, invoice.total)
    changelist = staff_client.get(ADMIN).content.decode()
    assert 'value="delete_selected"' not in changelist


def test_admin_filters(staff_client, invoice):
    other = InvoiceFactory(customer=CustomerFactory(), payer="customer_card")
    overdue = InvoiceFactory(
        customer=invoice.customer, issue_date=date(2026, 1, 1), due_date=date(2026, 1, 15)
    )
    paid = InvoiceFactory(
        customer=invoice.customer,
        issue_date=date(2026, 1, 1),
        due_date=date(2026, 1, 15),
        status="paid",
    )

    def listed(params: dict[str, str]) -> set[str]:
        response = staff_client.get(ADMIN, params)
        assert response.status_code == 200
        html = response.content.decode()
        return {i.number for i in (invoice, other, overdue, paid) if i.number in html}

    assert listed({}) == {invoice.number, other.number, overdue.number, paid.number}
    assert listed({"reseller": invoice.reseller.public_id}) == {
        invoice.number,
        overdue.number,
        paid.number,
    }
    assert listed({"reseller": "nosuchreseller00"}) == set()
    assert listed({"overdue": "yes"}) == {overdue.number}
    assert listed({"status__exact": "paid"}) == {paid.number}
    assert listed({"payer__exact": "customer_card"}) == {other.number}
    assert listed({"kind__exact": "credit_note"}) == set()


@pytest.fixture
def issued(db: None) -> Invoice:
    vat.vat_rates_seed()
    customer = CustomerFactory(country="DE")
    ChargeFactory(subscription__customer=customer, licences=10)
    invoice = services.invoice_issue_for_customer(
        customer=customer, payer="reseller_card", day=timezone.localdate()
    )
    assert invoice is not None
    return invoice


def test_admin_issues_a_credit_note_through_its_page(staff_client, issued):
    action = {"action": "issue_credit_note", "_selected_action": [issued.pk]}
    page = staff_client.post(ADMIN, action)
    assert page.status_code == 200
    assert f"Issue a credit note for {issued.number}" in page.content.decode()
    error = staff_client.post(ADMIN, {**action, "apply": "yes", "reason": "", "amount": ""})
    assert error.status_code == 200 and not Invoice.objects.filter(kind="credit_note").exists()
    too_much = staff_client.post(
        ADMIN, {**action, "apply": "yes", "reason": "Discount", "amount": "1000.00"}
    )
    assert "can still be credited" in too_much.content.decode()
    done = staff_client.post(
        ADMIN, {**action, "apply": "yes", "reason": "Discount", "amount": "5.00"}, follow=True
    )
    note = Invoice.objects.get(kind="credit_note")
    assert note.corrects == issued and note.subtotal == D("5.00")
    assert note.number in done.content.decode()
    assert AuditEvent.objects.get(action="credit_note.issued").actor == staff_client.staff
    assert staff_client.get(f"{ADMIN}{note.pk}/change/").status_code == 200


def test_admin_marks_paid_and_regenerates_pdfs(
    staff_client, issued, monkeypatch, django_capture_on_commit_callbacks
):
    asked: list[Invoice] = []
    monkeypatch.setattr(services, "invoice_pdf_regenerate", asked.append)
    staff_client.post(ADMIN, {"action": "mark_paid", "_selected_action": [issued.pk]})
    issued.refresh_from_db()
    assert issued.status == "paid" and issued.paid_at is not None
    assert AuditEvent.objects.get(action="invoice.paid").actor == staff_client.staff
    again = staff_client.post(
        ADMIN, {"action": "mark_paid", "_selected_action": [issued.pk]}, follow=True
    )
    assert "only an unpaid invoice can be marked paid" in again.content.decode()
    with django_capture_on_commit_callbacks(execute=True):  # rendered after commit
        staff_client.post(ADMIN, {"action": "regenerate_pdf", "_selected_action": [issued.pk]})
    assert asked == [issued]


def test_admin_edits_vat_rates_and_browses_the_rest(staff_client, db):
    response = staff_client.post(
        "/admin/billing/vatrate/add/",
        {"country": "EE", "rate": "24.00", "valid_from": "2025-07-01"},
    )
    assert response.status_code == 302
    assert VatRate.objects.get(country="EE").rate == D("24.00")
    for url in (
        "/admin/billing/stripeevent/",
        "/admin/billing/paymentcard/",
        "/admin/billing/payment/",
        "/admin/billing/documentcounter/",
        "/admin/billing/customercardconsent/",
        "/admin/billing/gatewaycustomer/",
    ):
        assert staff_client.get(url).status_code == 200, url
        assert staff_client.get(f"{url}add/").status_code == 403, url
    customer = CustomerFactory()
    GatewayCustomer.objects.create(customer=customer, gateway_customer_id="cus_Support123")
    found = staff_client.get("/admin/billing/gatewaycustomer/?q=cus_Support").content.decode()
    assert "cus_Support123" in found and customer.organisation in found


# Numbers under concurrency (PostgreSQL, one connection per thread)

INVOICES = 300
THREADS = 12


class Boom(Exception):
    pass


def bulk_charges(count: int) -> list[Customer]:
    """`count` customers with one charge each, written in bulk."""
    reseller = ResellerFactory()
    product = Product.objects.create(name="Concurrency", sku="concurrency")
    plan = Plan.objects.create(product=product, kind=Plan.Kind.FLEXIBLE)
    today = timezone.localdate()
    customers = Customer.objects.bulk_create(
        Customer(
            reseller=reseller,
            organisation=f"Org {n}",
            domain=f"org{n}.example",
            contact_name="Pat",
            contact_email=f"pat@org{n}.example",
            country="IE",
            status=Customer.Status.ACTIVE,
        )
        for n in range(count)
    )
    subscriptions = Subscription.objects.bulk_create(
        Subscription(
            customer=customer,
            product=product,
            plan=plan,
            currency="EUR",
            licences=1,
            status=Subscription.Status.ACTIVE,
            payer="reseller_card",
            anchor_day=1,
            anchor_month=1,
            monthly_price=D("4.00"),
            period_start=today,
            period_end=date(today.year + 1, 1, 1),
        )
        for customer in customers
    )
    Charge.objects.bulk_create(
        Charge(
            subscription=subscription,
            customer=subscription.customer,
            kind=Charge.Kind.PERIOD,
            description="1 licence",
            payer="reseller_card",
            period_start=subscription.period_start,
            period_end=subscription.period_end,
            licences=1,
            unit_price=D("4.00"),
            amount=D("4.00"),
            currency="EUR",
            # At the list price, with no discount: cost 3.20, margin 0.80.
            list_unit_price=D("4.00"),
            unit_cost=D("3.20"),
            unit_margin=D("0.80"),
            cost_amount=D("3.20"),
            margin_amount=D("0.80"),
            monthly_list_price=D("4.00"),
            monthly_price=D("4.00"),
            monthly_cost=D("3.20"),
            price_source="list_price",
        )
        for subscription in subscriptions
    )
    return customers


def in_threads(work, items):
    """Run `work(item)` for every item on THREADS threads, all starting together; each
    thread uses its own database connection, closed when it ends."""
    start = threading.Barrier(THREADS)
    queue = list(items)
    lock = threading.Lock()
    results = []

    def worker() -> None:
        start.wait()
        try:
            while True:
                with lock:
                    if not queue:
                        return
                    item = queue.pop()
                results.append(work(item))
        finally:
            connections.close_all()

    with ThreadPoolExecutor(THREADS) as pool:
        for future in [pool.submit(worker) for _ in range(THREADS)]:
            future.result()
    return results


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_300_invoices_issued_at_once_have_gapless_numbers():
    vat.vat_rates_seed()
    customers = bulk_charges(INVOICES)
    day = timezone.localdate()
    failing = {customer.pk for customer in customers[::7]}  # 43 fail after taking a number

    def issue(customer: Customer) -> str:
        try:
            with transaction.atomic():
                invoice = services.invoice_issue_for_customer(
                    customer=customer, payer="reseller_card", day=day
                )
                assert invoice is not None
                if customer.pk in failing:
                    raise Boom(invoice.number)  # the number was taken: it must come back
                return invoice.number
        except Boom:
            return "failed"

    results = in_threads(issue, customers)

    issued = sorted(r for r in results if r != "failed")
    assert len(issued) == INVOICES - len(failing)
    assert issued == [f"INV-{day.year}-{n:06d}" for n in range(1, len(issued) + 1)]
    assert sorted(Invoice.objects.values_list("number", flat=True)) == issued
    assert DocumentCounter.objects.get(series="INV", year=day.year).last_number == len(issued)
    # The failed ones left their charges to invoice, and nothing half-written.
    assert Charge.objects.filter(invoiced_at__isnull=True).count() == len(failing)
    assert InvoiceLine.objects.count() == len(issued)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_issue_each_invoice_once():
    vat.vat_rates_seed()
    customers = bulk_charges(40)
    day = timezone.localdate()

    def issue(customer: Customer) -> str | None:
        invoice = services.invoice_issue_for_customer(
            customer=customer, payer="reseller_card", day=day
        )
        return invoice.number if invoice else None

    results = in_threads(issue, customers + customers)  # every customer twice
    numbers = [r for r in results if r]
    assert len(numbers) == len(set(numbers)) == 40
    assert Invoice.objects.count() == 40
    assert not Charge.objects.filter(invoiced_at__isnull=True).exists()
