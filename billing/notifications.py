"""Invoice emails: "invoice issued", with the PDF attached, to whoever pays it.

Who pays is printed on the invoice (`Invoice.payer`): with the reseller's card, the reseller's
billing address (its owners if it has none), in the reseller's language; with the customer's
card, the customer's contact, in the customer's language.
"""

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import TextField
from django.db.models.functions import Cast
from django.urls import reverse

from billing.models import Invoice
from core.emails import EmailAttachment, email_queue
from core.models import OutboundEmail
from resellers import selectors as reseller_selectors
from resellers.roles import Role
from subscriptions.models import Payer

INVOICE_ISSUED_TEMPLATE = "invoice_issued"


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
    url = reverse("billing:invoice_detail", kwargs={"invoice_id": invoice.public_id})
    if reseller.billing_email:
        return [Recipient(reseller.billing_email, reseller.language, url)]
    owners = reseller_selectors.membership_list(reseller=reseller).filter(role=Role.OWNER)
    return [
        Recipient(membership.user.email, membership.user.language, url)
        for membership in owners.select_related("user")
    ]


def _pdf_filename(invoice: Invoice) -> str:
    return f"{invoice.number}.pdf"


def _already_sent(invoice: Invoice) -> bool:
    """Whether this document's email was queued before. Looked up among the emails queued
    since it was issued (the index on created_at keeps that short), by its attachment's name,
    which is unique: `"INV-2026-000001.pdf"` with its quotes only matches the filename."""
    return (
        OutboundEmail.objects.filter(
            template=INVOICE_ISSUED_TEMPLATE, created_at__gte=invoice.issued_at
        )
        .annotate(_attachments=Cast("attachments", TextField()))
        .filter(_attachments__contains=f'"{_pdf_filename(invoice)}"')
        .exists()
    )


@transaction.atomic
def invoice_email_send(*, invoice: Invoice) -> list[OutboundEmail]:
    """Queue "invoice issued" (or "credit note issued") with the stored PDF attached to whoever
    pays. Call it once the PDF is stored, in the transaction that stores it: the emails go out
    after that commits. Once per document: a second call (a task run again, a regenerated PDF)
    queues nothing and returns []."""
    # Lock the row: two calls at once queue one set of emails.
    invoice = (
        Invoice.objects.select_for_update(of=("self",))
        .select_related("customer", "reseller", "corrects")
        .get(pk=invoice.pk)
    )
    if not invoice.pdf:
        raise ValueError(f"{invoice.number}: the PDF is not stored yet")
    if _already_sent(invoice):
        return []
    attachment = EmailAttachment(
        path=str(invoice.pdf.name), filename=_pdf_filename(invoice), mimetype="application/pdf"
    )
    context = {
        "number": invoice.number,
        "is_credit_note": invoice.kind == Invoice.Kind.CREDIT_NOTE,
        "corrects": invoice.corrects.number if invoice.corrects else "",
        "organisation": invoice.customer.organisation,
        "reseller_name": invoice.reseller.name,
        "issue_date": invoice.issue_date,
        "due_date": invoice.due_date,
        "total": invoice.total,
        "currency": invoice.currency,
        "status": invoice.status,
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
