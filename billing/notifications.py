"""Invoice emails: "invoice issued", with the PDF attached, and the payment receipt, to whoever
pays it; and "invoice PDF failed" to the vendor's staff.

Who pays is printed on the invoice (`Invoice.payer`): with the reseller's card, the reseller's
billing address (its owners if it has none), in the reseller's language; with the customer's
card, the customer's contact, in the customer's language.

Each is queued once, recorded on its row in the transaction that queues it, with the row
locked: Invoice.pdf_emailed_at, Payment.receipt_emailed_at, Invoice.pdf_failure_reported_at.
"""

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext

from billing.models import Invoice, Payment
from billing.payments.gateways import ManualGateway
from billing.selectors import invoice_balance, invoice_pays_by_transfer
from core.emails import EmailAttachment, email_queue
from core.models import OutboundEmail, User
from resellers import selectors as reseller_selectors
from resellers.roles import Role
from subscriptions.models import Payer

INVOICE_ISSUED_TEMPLATE = "invoice_issued"
PAYMENT_RECEIPT_TEMPLATE = "payment_receipt"
PDF_FAILED_TEMPLATE = "invoice_pdf_failed"


@dataclass(frozen=True)
class Recipient:
    email: str
    language: str
    # The invoice's page for this recipient: the reseller's Invoices page or the customer side.
    url: str


def invoice_recipients(*, invoice: Invoice) -> list[Recipient]:
    """Whoever pays the invoice, each in their language."""
    if invoice.payer == Payer.CUSTOMER_CARD:
        customer = invoice.customer
        url = reverse(
            "my_invoices:detail",
            kwargs={"customer_id": customer.public_id, "invoice_id": invoice.public_id},
        )
        return [Recipient(customer.contact_email, customer.language, url)]
    reseller = invoice.reseller
    # The reseller's card pays: the invoice is the reseller's (billing.services._invoice_reseller).
    assert reseller is not None
    url = reverse("billing:invoice_detail", kwargs={"invoice_id": invoice.public_id})
    if reseller.billing_email:
        return [Recipient(reseller.billing_email, reseller.language, url)]
    owners = reseller_selectors.membership_list(reseller=reseller).filter(role=Role.OWNER)
    return [
        Recipient(membership.user.email, membership.user.language, url)
        for membership in owners.select_related("user")
    ]


def invoice_reseller_name(invoice: Invoice) -> str:
    """The name of the reseller the invoice went through, for its emails; a dash where none
    did (issued after its customer revoked the reseller's access)."""
    return invoice.reseller.name if invoice.reseller else "—"


def _pdf_filename(invoice: Invoice) -> str:
    return f"{invoice.number}.pdf"


@transaction.atomic
def invoice_email_send(*, invoice: Invoice) -> list[OutboundEmail]:
    """Queue "invoice issued" (or "credit note issued") with the stored PDF attached to whoever
    pays. Call it once the PDF is stored, in the transaction that stores it: the emails go out
    after that commits. Once per document, recorded in pdf_emailed_at: a second call (a task run
    again, a PDF written back after a storage loss) queues nothing and returns []."""
    # Lock the row: two calls at once queue one set of emails.
    invoice = (
        Invoice.objects.select_for_update(of=("self",))
        .select_related("customer", "reseller", "corrects")
        .get(pk=invoice.pk)
    )
    if not invoice.pdf:
        raise ValueError(f"{invoice.number}: the PDF is not stored yet")
    if invoice.pdf_emailed_at is not None:
        return []
    invoice.pdf_emailed_at = timezone.now()
    invoice.save(update_fields=["pdf_emailed_at"])
    attachment = EmailAttachment(
        path=str(invoice.pdf.name), filename=_pdf_filename(invoice), mimetype="application/pdf"
    )
    context = {
        "number": invoice.number,
        "is_credit_note": invoice.kind == Invoice.Kind.CREDIT_NOTE,
        "corrects": invoice.corrects.number if invoice.corrects else "",
        "organisation": invoice.customer.organisation,
        "reseller_name": invoice_reseller_name(invoice),
        "issue_date": invoice.issue_date,
        "due_date": invoice.due_date,
        "total": invoice.total,
        # What is still to pay when the email goes (a credit note may already correct it).
        "amount_due": invoice_balance(invoice) if invoice.kind == Invoice.Kind.INVOICE else None,
        "currency": invoice.currency,
        "by_transfer": invoice_pays_by_transfer(invoice),
        "iban": invoice.seller.get("iban", ""),
        "paid_by_customer_card": invoice.payer == Payer.CUSTOMER_CARD,
    }
    return [
        email_queue(
            to=recipient.email,
            template=INVOICE_ISSUED_TEMPLATE,
            context={**context, "invoice_url": settings.PORTAL_URL + recipient.url},
            language=recipient.language,
            attachments=[attachment],
        )
        for recipient in invoice_recipients(invoice=invoice)
    ]


# The payment receipt


def _payment_method(payment: Payment) -> str:
    """How the money came, in the active language: "Visa •••• 4242", "bank transfer"."""
    if payment.gateway == ManualGateway.name:
        return gettext("bank transfer")
    # The card the attempt charged (kept on the payment), never the card on file now.
    return payment.card_label or gettext("card")


@transaction.atomic
def payment_receipt_send(*, payment: Payment) -> list[OutboundEmail]:
    """Queue the payment receipt to whoever pays the invoice, each in their language: the
    amount received, the invoice, the date, how it was paid and what the invoice still owes.
    The invoice's PDF stays as issued; the receipt is where a payment is told. Once per
    payment (receipt_emailed_at); a payment that did not succeed gets none. Returns the
    emails queued ([] if none)."""
    # Locked: two calls at once (a webhook and the charge's own answer) queue one receipt.
    payment = (
        Payment.objects.select_for_update(of=("self",))
        .select_related("invoice__customer", "invoice__reseller")
        .get(pk=payment.pk)
    )
    if payment.status != Payment.Status.SUCCEEDED or payment.receipt_emailed_at is not None:
        return []
    payment.receipt_emailed_at = timezone.now()
    payment.save(update_fields=["receipt_emailed_at"])
    invoice = payment.invoice
    context = {
        "number": invoice.number,
        "organisation": invoice.customer.organisation,
        "amount": payment.amount,
        "currency": payment.currency,
        "received_on": timezone.localdate(payment.updated_at),
        "balance": invoice_balance(invoice),
        "invoice_currency": invoice.currency,
    }
    emails = []
    for recipient in invoice_recipients(invoice=invoice):
        with translation.override(recipient.language):
            method = _payment_method(payment)
        emails.append(
            email_queue(
                to=recipient.email,
                template=PAYMENT_RECEIPT_TEMPLATE,
                context={
                    **context,
                    "method": method,
                    "invoice_url": settings.PORTAL_URL + recipient.url,
                },
                language=recipient.language,
            )
        )
    return emails


# Staff: a PDF that fails for good


def _staff_recipients() -> list[tuple[str, str]]:
    """(email, language) of the vendor's active staff users, who can act in the admin; the
    vendor's billing address (settings.VENDOR_EMAIL) if there are none, so that someone hears."""
    staff = list(
        User.objects.filter(is_staff=True, is_active=True)
        .exclude(email="")
        .order_by("email")
        .values_list("email", "language")
    )
    return staff or [(settings.VENDOR_EMAIL, settings.LANGUAGE_CODE)]


@transaction.atomic
def invoice_pdf_failure_report(*, invoice: Invoice) -> list[OutboundEmail]:
    """Email the vendor's staff that the document's PDF could not be made (its number, customer
    and last error, with a link to it in the admin). Once per document
    (pdf_failure_reported_at). Returns the emails queued ([] if told before)."""
    # Locked: the sweeper and a render task may report at once; staff hear once.
    invoice = (
        Invoice.objects.select_for_update(of=("self",))
        .select_related("customer", "reseller")
        .get(pk=invoice.pk)
    )
    if invoice.pdf_failure_reported_at is not None:
        return []
    invoice.pdf_failure_reported_at = timezone.now()
    invoice.save(update_fields=["pdf_failure_reported_at"])
    context = {
        "number": invoice.number,
        "is_credit_note": invoice.kind == Invoice.Kind.CREDIT_NOTE,
        "organisation": invoice.customer.organisation,
        "reseller_name": invoice_reseller_name(invoice),
        "issued_at": invoice.issued_at,
        "attempts": invoice.pdf_attempts,
        "error": invoice.pdf_error,
        "admin_url": settings.PORTAL_URL
        + reverse("admin:billing_invoice_change", args=[invoice.pk]),
    }
    return [
        email_queue(to=email, template=PDF_FAILED_TEMPLATE, context=context, language=language)
        for email, language in _staff_recipients()
    ]
