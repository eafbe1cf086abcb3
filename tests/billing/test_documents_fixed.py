"""Issued documents never change, and none stays without its PDF (issue 10):

- an issued invoice's or credit note's lines are fixed at issue (`line_count`): no line is added
  later, by the model or by SQL;
- the PDF is rendered once, at issue, its SHA-256 recorded; a render that would differ is refused,
  and regeneration only writes back the identical bytes (after a storage loss);
- "already emailed" is a column, set in the transaction that queues the email;
- the payer gets a payment receipt, once per payment;
- a sweeper re-queues documents without a PDF, and staff are told once when one fails for good;
- the admin's billing health counts what needs staff."""

import hashlib
import importlib
import logging
import re
from datetime import timedelta
from decimal import Decimal
from typing import cast

import pytest
import time_machine
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.apps import apps
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import formats, timezone, translation
from lxml import etree
from weasyprint.pdf import fonts as weasyprint_fonts

from billing import immutability, notifications, pdf, rendering_tasks, selectors, services
from billing.facturx import NS, FacturXInvalid, invoice_facturx_xml
from billing.models import (
    BillingHold,
    Invoice,
    InvoiceLine,
    IssuedInvoiceChanged,
    Payment,
    PaymentCard,
    Refund,
)
from billing.payments import services as payment_services
from billing.rendering_tasks import invoice_render_pdf
from core.models import OutboundEmail, User
from core.tasks import work_sweep
from subscriptions.models import Charge, Payer
from tests.factories import UserFactory
from tests.support.pdf import ISSUED_AT, issue

# The real ones, before no_side_effects stubs them.
INVOICE_CHARGE_ENQUEUE = payment_services.invoice_charge_enqueue
SUSPENSIONS_LIFT = payment_services.suspensions_lift_after_payment
MIGRATION = importlib.import_module("billing.migrations.0008_issued_documents_fixed")


@pytest.fixture(autouse=True)
def no_side_effects(monkeypatch: pytest.MonkeyPatch) -> None:
    # Issuing here renders no PDF, charges no card and lifts no suspension after commit; each
    # test calls what it checks.
    monkeypatch.setattr(services, "invoice_pdf_enqueue", lambda document: None)
    monkeypatch.setattr(payment_services, "invoice_charge_enqueue", lambda invoice: None)
    monkeypatch.setattr(payment_services, "suspensions_lift_after_payment", lambda invoice: None)


def _sql(statement: str, params: list[int]) -> int:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


def _line(invoice: Invoice, position: int) -> InvoiceLine:
    return InvoiceLine(
        invoice=invoice,
        position=position,
        description="Added after issue",
        unit_price="100.00",
        amount="100.00",
    )


# 1. The lines are fixed at issue


@pytest.mark.django_db
def test_issued_documents_know_their_line_count(tenant):
    invoice = issue(tenant.customer)
    note = issue(
        tenant.customer,
        number="CN-2026-000001",
        kind=Invoice.Kind.CREDIT_NOTE,
        corrects=invoice,
        lines=[("Credit", None, "10.00", "10.00", None, None)],
    )
    assert (invoice.line_count, note.line_count) == (2, 1)
    assert invoice.lines.count() == 2 and note.lines.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("kind", [Invoice.Kind.INVOICE, Invoice.Kind.CREDIT_NOTE])
def test_the_model_refuses_a_line_added_to_an_issued_document(tenant, kind):
    invoice = issue(tenant.customer)
    document = (
        invoice
        if kind == Invoice.Kind.INVOICE
        else issue(tenant.customer, number="CN-2026-000001", kind=kind, corrects=invoice)
    )

    with pytest.raises(IssuedInvoiceChanged, match="lines"):
        _line(document, document.line_count + 1).save()
    with pytest.raises(IssuedInvoiceChanged, match="lines"):
        _line(document, 0).save()
    line = document.lines.get(position=1)
    line.amount = line.amount + 1
    with pytest.raises(IssuedInvoiceChanged, match="lines"):
        line.save()
    with pytest.raises(IssuedInvoiceChanged, match="lines"):
        line.delete()
    assert document.lines.count() == 2


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize("kind", [Invoice.Kind.INVOICE, Invoice.Kind.CREDIT_NOTE])
def test_the_database_refuses_a_line_added_to_an_issued_document(tenant, kind):
    invoice = issue(tenant.customer)
    document = (
        invoice
        if kind == Invoice.Kind.INVOICE
        else issue(tenant.customer, number="CN-2026-000001", kind=kind, corrects=invoice)
    )
    total = document.total

    # The issue's example: a line of 100.00 inserted into an issued document.
    with pytest.raises(IntegrityError, match="lines of an issued document"):
        _sql(
            "INSERT INTO billing_invoiceline (invoice_id, position, description, unit_price,"
            " amount) VALUES (%s, %s, 'Added after issue', 100, 100)",
            [document.pk, document.line_count + 1],
        )
    # bulk_create bypasses save(): the trigger is the guard.
    with pytest.raises(IntegrityError, match="lines of an issued document"), transaction.atomic():
        InvoiceLine.objects.bulk_create([_line(document, 3)])
    with pytest.raises(IntegrityError, match="lines of an issued document"), transaction.atomic():
        InvoiceLine.objects.bulk_create([_line(document, 0)])
    # A position inside the range is taken already: the unique constraint refuses it.
    with pytest.raises(IntegrityError), transaction.atomic():
        InvoiceLine.objects.bulk_create([_line(document, 1)])
    # Nor can the line count itself be raised to make room.
    with pytest.raises(IntegrityError, match="cannot change"):
        _sql("UPDATE billing_invoice SET line_count = 3 WHERE id = %s", [document.pk])

    assert document.lines.count() == 2
    assert sum(line.amount for line in document.lines.all()) == document.subtotal
    assert Invoice.objects.get(pk=document.pk).total == total


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_billing_run_still_issues_its_lines(tenant):
    from tests.factories import ChargeFactory, SubscriptionFactory

    charges = [
        cast(Charge, ChargeFactory(subscription=SubscriptionFactory(customer=tenant.customer)))
        for _ in range(3)
    ]

    first = charges[0]
    invoice = services.invoice_issue_for_customer(
        customer=tenant.customer, payer=first.payer, day=timezone.localdate(first.created_at)
    )

    assert invoice is not None
    assert invoice.line_count == 3
    assert list(invoice.lines.values_list("position", flat=True)) == [1, 2, 3]


def _email_queued(filename: str) -> OutboundEmail:
    return OutboundEmail.objects.create(
        to="billing@reseller.example",
        template="invoice_issued",
        language="en",
        subject="Invoice",
        body_text="",
        body_html="",
        attachments=[{"path": "x", "filename": filename, "mimetype": "application/pdf"}],
    )


def _migration_fill_and_install() -> None:
    with connection.schema_editor() as editor:
        MIGRATION.line_counts_fill(apps, editor)
        MIGRATION.emailed_fill(apps, editor)
        MIGRATION.triggers_install(apps, editor)


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_migration_fixes_the_documents_issued_before_it(tenant):
    # As before 0008: documents without a line count, the triggers 0003 installed (rolled back
    # with the test's transaction, DDL included).
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")  # no triggers
    emailed = issue(tenant.customer)
    waiting = issue(tenant.customer, number="INV-2026-000002", lines=[])
    issue(
        tenant.customer,
        number="CN-2026-000001",
        kind=Invoice.Kind.CREDIT_NOTE,
        corrects=emailed,
        lines=[("Credit", None, "10.00", "10.00", None, None)],
    )
    Invoice.objects.update(line_count=0)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = DEFAULT")
    previous = importlib.import_module("billing.migrations.0003_invoice_immutable")
    immutability.immutability_install(connection, previous.IMMUTABLE_COLUMNS)
    first = _email_queued("INV-2026-000001.pdf")
    _email_queued("CN-2026-000001.pdf")
    _email_queued("INV-2026-000002.txt")  # not a document's PDF

    _migration_fill_and_install()

    rows = {
        number: (line_count, emailed_at)
        for number, line_count, emailed_at in Invoice.objects.values_list(
            "number", "line_count", "pdf_emailed_at"
        )
    }
    assert rows["INV-2026-000001"] == (2, first.created_at)
    assert rows["INV-2026-000002"] == (0, None)
    assert rows["CN-2026-000001"][0] == 1 and rows["CN-2026-000001"][1] is not None
    # From now on the lines are fixed, and so is the count.
    with pytest.raises(IntegrityError, match="lines of an issued document"):
        _sql(
            "INSERT INTO billing_invoiceline (invoice_id, position, description, unit_price,"
            " amount) VALUES (%s, 1, 'Added after issue', 100, 100)",
            [waiting.pk],
        )
    with pytest.raises(IntegrityError, match="cannot change"):
        _sql("UPDATE billing_invoice SET line_count = 5 WHERE id = %s", [waiting.pk])


# 2. The PDF is rendered once, at issue, and never changes


@pytest.fixture
def clean_storage():
    """The in-memory storage lives as long as the process: start and end each test empty."""

    def empty() -> None:
        for folder in ("invoices/2026",):
            if default_storage.exists(folder):
                for name in default_storage.listdir(folder)[1]:
                    default_storage.delete(f"{folder}/{name}")

    empty()
    yield
    empty()


def _stored(invoice: Invoice) -> bytes:
    with default_storage.open(str(invoice.pdf.name), "rb") as stored:
        return stored.read()


def _rendered(invoice: Invoice) -> tuple[bytes, str]:
    """The invoice rendered and stored by the task, as issued: its bytes and recorded hash."""
    assert invoice_render_pdf.delay(invoice.pk).get() == "stored"
    invoice.refresh_from_db()
    content = _stored(invoice)
    assert invoice.pdf_sha256 == hashlib.sha256(content).hexdigest()
    return content, invoice.pdf_sha256


@pytest.mark.django_db
@pytest.mark.parametrize("subsetter", ["harfbuzz", "fonttools"])
def test_rendering_depends_on_the_document_alone_not_on_the_clock(tenant, subsetter, monkeypatch):
    # Without HarfBuzz-Subset (the Dockerfile installs it; a development machine may not have
    # it) WeasyPrint subsets fonts with fontTools, which stamps each subset with the time of the
    # render: two renders a second apart differed, so no render could match a stored hash.
    if subsetter == "fonttools":
        monkeypatch.setattr(weasyprint_fonts, "harfbuzz_subset", None)
    invoice = issue(tenant.customer)

    with time_machine.travel(ISSUED_AT + timedelta(minutes=1), tick=False):
        first = pdf.invoice_pdf_render(invoice)
    with time_machine.travel(ISSUED_AT + timedelta(days=400, seconds=7), tick=False):
        later = pdf.invoice_pdf_render(invoice)

    assert first == later


@pytest.fixture
def real_side_effects(monkeypatch: pytest.MonkeyPatch) -> None:
    """What issuing and paying set off, for real (no_side_effects stubbed it)."""
    monkeypatch.setattr(services, "invoice_pdf_enqueue", rendering_tasks.invoice_pdf_enqueue)
    monkeypatch.setattr(payment_services, "invoice_charge_enqueue", INVOICE_CHARGE_ENQUEUE)
    monkeypatch.setattr(payment_services, "suspensions_lift_after_payment", SUSPENSIONS_LIFT)


@pytest.mark.django_db
def test_paying_does_not_render_the_pdf_again(
    tenant, monkeypatch, django_capture_on_commit_callbacks
):
    invoice = issue(tenant.customer)
    rendered: list[Invoice] = []
    monkeypatch.setattr(services, "invoice_pdf_enqueue", rendered.append)
    monkeypatch.setattr(services, "invoice_pdf_regenerate", rendered.append)
    with django_capture_on_commit_callbacks(execute=True):
        services.invoice_mark_paid(invoice=invoice, by=None)
    assert rendered == []
    # Staff may still ask for it again (the admin action): only identical bytes are written.
    with django_capture_on_commit_callbacks(execute=True):
        services.invoice_pdf_request(invoice=invoice)
    assert rendered == [invoice]


@pytest.mark.django_db
def test_paying_an_invoice_leaves_its_pdf_as_issued(
    tenant, clean_storage, real_side_effects, django_capture_on_commit_callbacks
):
    invoice = issue(tenant.customer)
    content, digest = _rendered(invoice)

    with django_capture_on_commit_callbacks(execute=True):
        services.invoice_mark_paid(invoice=invoice, by=None)

    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    assert (invoice.pdf_sha256, _stored(invoice)) == (digest, content)
    # And rendered now, as paid, it is the same document byte for byte.
    assert pdf.invoice_pdf_render(invoice) == content


@pytest.mark.django_db
def test_the_xml_states_what_was_due_at_issue_whatever_the_payment(tenant):
    invoice = issue(tenant.customer)
    open_xml = invoice_facturx_xml(invoice, pays_by_transfer=True)

    Invoice.objects.filter(pk=invoice.pk).update(
        status=Invoice.Status.PAID, paid_at=ISSUED_AT + timedelta(days=2)
    )
    invoice.refresh_from_db()
    paid_xml = invoice_facturx_xml(invoice, pays_by_transfer=True)

    assert paid_xml == open_xml
    tree = etree.fromstring(paid_xml)
    assert tree.xpath("string(//ram:DuePayableAmount)", namespaces=NS) == str(invoice.total)
    assert not tree.xpath("//ram:TotalPrepaidAmount", namespaces=NS)


@pytest.mark.django_db
def test_a_render_that_would_differ_is_refused_and_logged(tenant, clean_storage, settings, caplog):
    invoice = issue(tenant.customer)
    content, digest = _rendered(invoice)

    settings.PORTAL_NAME = "Renamed Portal"  # printed in the PDF's metadata: the bytes differ
    with caplog.at_level(logging.ERROR, logger="billing.pdf"):
        result = invoice_render_pdf.delay(invoice.pk, regenerate=True).get()

    assert result == "refused"
    invoice.refresh_from_db()
    assert (invoice.pdf_sha256, _stored(invoice)) == (digest, content)
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    message = record.getMessage()
    assert invoice.number in message and digest in message
    other = re.search(r"\b[0-9a-f]{64}\b", message.replace(digest, ""))
    assert other is not None and other.group() != digest


@pytest.mark.django_db
def test_regenerating_after_storage_loss_writes_back_the_same_bytes(
    tenant, clean_storage, django_capture_on_commit_callbacks
):
    invoice = issue(tenant.customer)
    content, digest = _rendered(invoice)
    emails = OutboundEmail.objects.count()

    default_storage.delete(str(invoice.pdf.name))
    # Later, after the clock moved on: staff use the admin action "Render or restore the PDF".
    with (
        time_machine.travel(ISSUED_AT + timedelta(days=30), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        services.invoice_pdf_request(invoice=invoice)

    invoice.refresh_from_db()
    restored = _stored(invoice)
    assert restored == content
    assert hashlib.sha256(restored).hexdigest() == invoice.pdf_sha256 == digest
    assert OutboundEmail.objects.count() == emails  # emailed once, at issue


@pytest.mark.django_db
def test_an_altered_file_is_written_back_as_issued(tenant, clean_storage):
    invoice = issue(tenant.customer)
    content, digest = _rendered(invoice)

    default_storage.delete(str(invoice.pdf.name))
    default_storage.save(str(invoice.pdf.name), ContentFile(b"%PDF- tampered"))
    assert invoice_render_pdf.delay(invoice.pk, regenerate=True).get() == "restored"

    invoice.refresh_from_db()
    assert (invoice.pdf_sha256, _stored(invoice)) == (digest, content)
    assert default_storage.listdir("invoices/2026")[1] == ["INV-2026-000001.pdf"]


@pytest.mark.django_db
def test_after_storage_loss_a_render_that_differs_is_refused(
    tenant, clean_storage, settings, caplog
):
    invoice = issue(tenant.customer)
    _content, digest = _rendered(invoice)
    default_storage.delete(str(invoice.pdf.name))

    settings.PORTAL_NAME = "Renamed Portal"
    with caplog.at_level(logging.ERROR, logger="billing.pdf"), pytest.raises(pdf.PdfRenderDiffers):
        invoice_render_pdf.apply(args=(invoice.pk,), kwargs={"regenerate": True}, throw=True)

    invoice.refresh_from_db()
    assert invoice.pdf_sha256 == digest
    assert not default_storage.exists(str(invoice.pdf.name))  # nothing that differs is written
    assert "differs" in invoice.pdf_error
    assert any(digest in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)


# 3. "Already emailed" is a column


@pytest.mark.django_db
def test_the_invoice_email_is_queued_once_and_recorded(tenant, clean_storage):
    invoice = issue(tenant.customer)
    _rendered(invoice)  # stores the PDF and queues the email
    invoice.refresh_from_db()
    assert invoice.pdf_emailed_at is not None
    queued = OutboundEmail.objects.filter(template="invoice_issued").count()
    assert queued >= 1

    assert notifications.invoice_email_send(invoice=invoice) == []
    assert OutboundEmail.objects.filter(template="invoice_issued").count() == queued


@pytest.mark.django_db
def test_the_record_not_the_outbox_decides_whether_it_was_emailed(tenant, clean_storage):
    invoice = issue(tenant.customer)
    _rendered(invoice)
    # The outbox is purged (old emails are not kept for ever): the record still says sent.
    OutboundEmail.objects.all().delete()

    assert notifications.invoice_email_send(invoice=invoice) == []

    # And a document not recorded as emailed is emailed, whatever the outbox holds.
    Invoice.objects.filter(pk=invoice.pk).update(pdf_emailed_at=None)
    _email_queued("INV-2026-000001.pdf")
    sent = notifications.invoice_email_send(invoice=invoice)
    assert sent and all(email.attachments for email in sent)
    invoice.refresh_from_db()
    assert invoice.pdf_emailed_at is not None


# 4. The payment receipt


def _payment(invoice: Invoice, amount: str, *, gateway: str = "stripe", **fields) -> Payment:
    attempt = invoice.payments.count() + 1
    return Payment.objects.create(
        invoice=invoice,
        attempt=attempt,
        gateway=gateway,
        idempotency_key=f"{invoice.number}:{attempt}",
        amount=Decimal(amount),
        currency=invoice.currency,
        status=fields.pop("status", Payment.Status.SUCCEEDED),
        **fields,
    )


@pytest.mark.django_db
def test_a_card_payment_gets_one_receipt_with_what_is_left_to_pay(tenant, other_tenant):
    tenant.reseller.billing_email = "accounts@reseller-a.example"
    tenant.reseller.save(update_fields=["billing_email"])
    PaymentCard.objects.create(
        reseller=tenant.reseller,
        gateway_customer_id="cus_a",
        gateway_payment_method_id="pm_a",
        brand="visa",
        last4="4242",
        exp_month=12,
        exp_year=2030,
    )
    invoice = issue(tenant.customer)  # 62.12 EUR, the reseller's card pays
    payment = _payment(invoice, "50.00", card_label="Visa \u2022\u2022\u2022\u2022 4242")
    # The card on file changed since: the receipt names the card that was charged.
    PaymentCard.objects.filter(reseller=tenant.reseller).update(last4="1111", brand="amex")

    [email] = notifications.payment_receipt_send(payment=payment)

    assert email.to == "accounts@reseller-a.example"
    assert email.template == "payment_receipt"
    assert invoice.number in email.subject
    body = email.body_text
    assert "€50.00" in body  # received
    assert "€12.12" in body  # still to pay: invoice_balance, after this payment
    assert "Visa •••• 4242" in body
    assert formats.date_format(timezone.localdate(payment.updated_at), "DATE_FORMAT") in body
    assert "Visa •••• 4242" in email.body_html and "€12.12" in email.body_html
    assert not email.attachments  # the issued invoice PDF is not sent again, nor changed
    payment.refresh_from_db()
    assert payment.receipt_emailed_at is not None
    # Once per payment.
    assert notifications.payment_receipt_send(payment=payment) == []
    assert OutboundEmail.objects.filter(template="payment_receipt").count() == 1


@pytest.mark.django_db
def test_a_transfer_settling_the_invoice_says_so_in_the_payers_language(tenant):
    tenant.customer.language = "es"
    tenant.customer.contact_email = "pagos@cliente.example"
    tenant.customer.save(update_fields=["language", "contact_email"])
    invoice = issue(tenant.customer, payer=Payer.CUSTOMER_CARD)
    payment = _payment(invoice, "62.12", gateway="manual")

    [email] = notifications.payment_receipt_send(payment=payment)

    assert (email.to, email.language) == ("pagos@cliente.example", "es")
    with translation.override("es"):
        assert translation.gettext("bank transfer") in email.body_text
        assert translation.gettext("Nothing: the invoice is settled.") in email.body_text


@pytest.mark.django_db
def test_a_failed_payment_gets_no_receipt(tenant):
    invoice = issue(tenant.customer)
    payment = _payment(invoice, "62.12", status=Payment.Status.FAILED)

    assert notifications.payment_receipt_send(payment=payment) == []
    payment.refresh_from_db()
    assert payment.receipt_emailed_at is None


# 5. The sweeper: no invoice stays without its PDF


def _sweep() -> int:
    return work_sweep.delay().get().get("pdfs", 0)


@pytest.mark.django_db
def test_the_sweeper_renders_what_was_left_without_a_pdf_once(tenant, clean_storage):
    with time_machine.travel(ISSUED_AT, tick=False):
        lost = issue(tenant.customer)  # its render task was lost
        recent = issue(tenant.customer, number="INV-2026-000002")
    emails = OutboundEmail.objects.filter(template="invoice_issued")

    with time_machine.travel(ISSUED_AT + timedelta(minutes=1), tick=False):
        assert _sweep() == 0  # within 2 minutes: its render may still be on its way
    with time_machine.travel(ISSUED_AT + timedelta(minutes=3), tick=False):
        assert _sweep() == 2

    lost.refresh_from_db()
    recent.refresh_from_db()
    assert lost.pdf_sha256 and recent.pdf_sha256
    assert (lost.pdf_attempts, lost.pdf_error) == (1, "")
    sent = emails.count()
    assert sent == 2 * len(notifications.invoice_recipients(invoice=lost))
    content = _stored(lost)

    # Again: nothing is missing, nothing is rendered or emailed twice.
    with time_machine.travel(ISSUED_AT + timedelta(minutes=31), tick=False):
        assert _sweep() == 0
    assert emails.count() == sent and _stored(lost) == content


@pytest.mark.django_db
def test_two_renders_of_one_document_store_and_email_it_once(tenant, clean_storage):
    invoice = issue(tenant.customer)

    assert invoice_render_pdf.delay(invoice.pk).get() == "stored"
    assert invoice_render_pdf.delay(invoice.pk).get() == "skipped"

    invoice.refresh_from_db()
    assert invoice.pdf_attempts == 1
    assert OutboundEmail.objects.filter(template="invoice_issued").count() == len(
        notifications.invoice_recipients(invoice=invoice)
    )


@pytest.fixture
def staff(db: None) -> User:
    UserFactory(email="former@vendor.example", is_staff=True, is_active=False)
    UserFactory(email="someone@reseller.example")  # not staff
    return cast(User, UserFactory(email="ops@vendor.example", is_staff=True, language="fr"))


@pytest.mark.django_db
def test_a_render_that_fails_for_good_is_reported_to_staff_once(
    tenant, clean_storage, staff, monkeypatch
):
    with time_machine.travel(ISSUED_AT, tick=False):
        invoice = issue(tenant.customer)

    def invalid(document: Invoice) -> bytes:
        raise FacturXInvalid("Customer 0 has no country (Factur-X BT-55)", code="buyer_country")

    monkeypatch.setattr(pdf, "invoice_pdf_render", invalid)
    with time_machine.travel(ISSUED_AT + timedelta(minutes=20), tick=False):
        assert _sweep() == 0  # queued, and failed at once: not transient

    invoice.refresh_from_db()
    assert invoice.pdf_attempts == 1
    assert "BT-55" in invoice.pdf_error
    assert invoice.pdf_failure_reported_at is not None
    [email] = OutboundEmail.objects.filter(template="invoice_pdf_failed")
    assert (email.to, email.language) == ("ops@vendor.example", "fr")
    assert invoice.number in email.subject
    assert tenant.customer.organisation in email.body_text
    assert "BT-55" in email.body_text
    assert f"/admin/billing/invoice/{invoice.pk}/change/" in email.body_html

    # Reported: the sweeper leaves it to staff, and nobody is emailed again.
    with time_machine.travel(ISSUED_AT + timedelta(minutes=40), tick=False):
        assert _sweep() == 0
    assert pdf.invoice_pdf_failure_record(invoice_id=invoice.pk, error=invalid_error())
    assert OutboundEmail.objects.filter(template="invoice_pdf_failed").count() == 1
    invoice.refresh_from_db()
    assert invoice.pdf_attempts == 2


def invalid_error() -> Exception:
    return FacturXInvalid("still no country", code="buyer_country")


@pytest.mark.django_db
def test_transient_failures_are_retried_until_the_limit_then_reported(
    tenant, clean_storage, staff, monkeypatch
):
    invoice = issue(tenant.customer)
    gone = OperationalError("server closed the connection unexpectedly")

    for _ in range(pdf.PDF_ATTEMPTS_MAX - 1):
        assert not pdf.invoice_pdf_failure_record(invoice_id=invoice.pk, error=gone)
    assert not OutboundEmail.objects.filter(template="invoice_pdf_failed").exists()
    assert pdf.invoice_pdf_failure_record(invoice_id=invoice.pk, error=gone)

    invoice.refresh_from_db()
    assert invoice.pdf_attempts == pdf.PDF_ATTEMPTS_MAX
    assert "OperationalError" in invoice.pdf_error
    assert OutboundEmail.objects.filter(template="invoice_pdf_failed").count() == 1


@pytest.mark.django_db
def test_without_staff_the_vendor_billing_address_hears(tenant, settings):
    settings.VENDOR_EMAIL = "billing@vendor.example"
    invoice = issue(tenant.customer)

    assert pdf.invoice_pdf_failure_record(invoice_id=invoice.pk, error=invalid_error())

    [email] = OutboundEmail.objects.filter(template="invoice_pdf_failed")
    assert email.to == "billing@vendor.example"


def test_the_sweeper_is_scheduled(settings):
    [entry] = [
        entry
        for entry in settings.CELERY_BEAT_SCHEDULE.values()
        if entry["task"] == "core.tasks.work_sweep"
    ]
    # Often enough that a document waits at most a few minutes: every minute.
    assert entry["schedule"] <= 60


# 6. Staff see what needs them: the admin's filter and the billing health box


@pytest.fixture
def needs_staff(tenant, other_tenant) -> dict[str, list[str]]:
    """Of each kind, rows that need staff and rows that do not; returns what should be listed."""
    now = timezone.now()
    missing = issue(tenant.customer, number="INV-2026-000101", issued_at=now - timedelta(hours=1))
    issue(tenant.customer, number="INV-2026-000102", issued_at=now - timedelta(minutes=1))
    failed = issue(
        other_tenant.customer, number="INV-2026-000103", issued_at=now - timedelta(days=1)
    )
    Invoice.objects.filter(pk=failed.pk).update(
        pdf_attempts=1, pdf_error="FacturXInvalid: no country", pdf_failure_reported_at=now
    )
    # Failed once, then made after staff fixed it: neither missing nor failed any more.
    fixed = issue(tenant.customer, number="INV-2026-000104", issued_at=now - timedelta(days=2))
    Invoice.objects.filter(pk=fixed.pk).update(
        pdf="invoices/2026/INV-2026-000104.pdf",
        pdf_sha256="a" * 64,
        pdf_attempts=2,
        pdf_failure_reported_at=now,
    )
    today = timezone.localdate()
    held = BillingHold.objects.create(
        customer=tenant.customer, reason="No country", first_seen_on=today, last_seen_on=today
    )
    BillingHold.objects.create(
        customer=other_tenant.customer,
        reason="No country",
        first_seen_on=today,
        last_seen_on=today,
        resolved_on=today,
    )
    refunds = []
    for n, status in enumerate(Refund.Status.values):
        refunds.append(
            Refund.objects.create(
                invoice=fixed,
                method=Refund.Method.CARD,
                gateway="stripe",
                amount=Decimal("10.00"),
                currency="EUR",
                status=status,
                idempotency_key=f"refund-{n}",
            )
        )
    return {
        "pdf-missing": [missing.number, failed.number],
        "pdf-failed": [failed.number],
        "holds-open": [str(held)],
        "refunds-to-make": [
            str(r) for r in refunds if r.status in (Refund.Status.PENDING, Refund.Status.FAILED)
        ],
    }


@pytest.mark.django_db
def test_billing_health_counts_what_needs_staff(needs_staff):
    health = selectors.billing_health()

    assert health == selectors.BillingHealth(
        pdf_missing=2, pdf_failed=1, holds_open=1, refunds_to_make=2, customers_to_invoice=0
    )


@pytest.mark.django_db
def test_the_admin_index_links_each_count_to_its_rows(staff_client, needs_staff):
    page = staff_client.get("/admin/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "Billing health" in html
    box = html[html.index('id="billing-health"') : html.index("</table>")]
    rows = re.findall(
        r'<a href="([^"]+)">[^<]*</a></th>\s*<td data-count="([\w-]+)">(\d+)</td>', box
    )
    assert {name for _href, name, _count in rows} == set(needs_staff)
    for href, name, count in rows:
        assert int(count) == len(needs_staff[name]), name
        changelist = staff_client.get(href)
        assert changelist.status_code == 200, href
        listed = [str(row) for row in changelist.context["cl"].result_list]
        assert sorted(listed) == sorted(needs_staff[name]), (name, href)


@pytest.mark.django_db
def test_the_box_is_for_staff_who_may_see_invoices(client_for, needs_staff):
    user = UserFactory(is_staff=True)  # staff without billing permissions
    TOTP.activate(user, generate_totp_secret())

    page = client_for(user).get("/admin/")

    assert page.status_code == 200
    assert "billing-health" not in page.content.decode()
