""" "Invoice issued" emails: to whoever pays, in their language, with the PDF attached; and the
attachment support of core.emails / core.tasks (the file is read from storage when sending)."""

from datetime import date

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import translation

from billing.models import Invoice
from billing.notifications import invoice_email_send
from core.emails import EmailAttachment, email_queue
from core.models import OutboundEmail
from core.tasks import send_email
from resellers.roles import Role
from tests.factories import (
    FAKE_PDF,
    CustomerFactory,
    InvoiceFactory,
    MembershipFactory,
    ResellerFactory,
    UserFactory,
)


def _send(invoice: Invoice, capture) -> list[OutboundEmail]:
    with capture(execute=True):
        return invoice_email_send(invoice=invoice)


def test_reseller_card_invoice_goes_to_the_resellers_billing_email_with_the_pdf(
    tenant, other_tenant, mailoutbox, django_capture_on_commit_callbacks
):
    reseller = tenant.reseller
    reseller.language = "es"
    reseller.save()
    invoice = InvoiceFactory(customer=tenant.customer, payer="reseller_card", pdf=FAKE_PDF)

    (email,) = _send(invoice, django_capture_on_commit_callbacks)

    assert (email.to, email.language, email.template) == (
        reseller.billing_email,
        "es",
        "invoice_issued",
    )
    assert email.attachments == [
        {
            "path": invoice.pdf.name,
            "filename": f"{invoice.number}.pdf",
            "mimetype": "application/pdf",
        }
    ]
    assert OutboundEmail.objects.get(pk=email.pk).status == OutboundEmail.Status.SENT
    (message,) = mailoutbox
    assert message.to == [reseller.billing_email]
    assert invoice.number in message.subject and tenant.customer.organisation in message.subject
    assert message.attachments == [(f"{invoice.number}.pdf", FAKE_PDF, "application/pdf")]
    # The reseller opens it on its Invoices page.
    assert f"/invoices/{invoice.public_id}/" in message.body
    assert "/my/" not in message.body


def test_customer_card_invoice_goes_to_the_customers_contact_in_its_language(
    tenant, mailoutbox, django_capture_on_commit_callbacks, settings
):
    # Cards are in use (Stripe configured): the invoice is charged to the customer's card.
    settings.STRIPE_SECRET_KEY = "sk_test_x"
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_x"
    settings.STRIPE_WEBHOOK_SECRET = "whsec_x"
    customer = CustomerFactory(reseller=tenant.reseller, language="de")
    invoice = InvoiceFactory(customer=customer, payer="customer_card", pdf=FAKE_PDF)

    (email,) = _send(invoice, django_capture_on_commit_callbacks)

    assert (email.to, email.language) == (customer.contact_email, "de")
    (message,) = mailoutbox
    assert message.to == [customer.contact_email]
    assert message.attachments[0][1] == FAKE_PDF
    assert f"/my/{customer.public_id}/invoices/{invoice.public_id}/" in message.body
    with translation.override("de"):
        assert translation.gettext("It will be charged to your organisation's card.") in (
            message.body
        )
    assert "It will be charged" not in message.body  # German, not English
    html = message.alternatives[0][0]
    assert invoice.number in html
    assert "121,00\xa0€" in message.body  # the amount as German readers write it


def test_without_a_billing_email_the_owners_get_it(
    db, mailoutbox, django_capture_on_commit_callbacks
):
    reseller = ResellerFactory(billing_email="")
    owners = [
        MembershipFactory(reseller=reseller, role=Role.OWNER, user=UserFactory(language=language))
        for language in ("fr", "nl")
    ]
    MembershipFactory(reseller=reseller, role=Role.SALES)
    invoice = InvoiceFactory(customer=CustomerFactory(reseller=reseller), pdf=FAKE_PDF)

    emails = _send(invoice, django_capture_on_commit_callbacks)

    assert sorted((email.to, email.language) for email in emails) == sorted(
        (owner.user.email, owner.user.language) for owner in owners
    )
    assert len(mailoutbox) == 2


def test_sent_once_per_document(tenant, mailoutbox, django_capture_on_commit_callbacks):
    invoice = InvoiceFactory(customer=tenant.customer, pdf=FAKE_PDF)
    other = InvoiceFactory(customer=tenant.customer, pdf=FAKE_PDF)
    assert len(_send(invoice, django_capture_on_commit_callbacks)) == 1
    assert _send(invoice, django_capture_on_commit_callbacks) == []
    assert len(_send(other, django_capture_on_commit_callbacks)) == 1
    assert [message.attachments[0][0] for message in mailoutbox] == [
        f"{invoice.number}.pdf",
        f"{other.number}.pdf",
    ]


def test_credit_note_email(tenant, mailoutbox, django_capture_on_commit_callbacks):
    invoice = InvoiceFactory(customer=tenant.customer, pdf=FAKE_PDF)
    note = InvoiceFactory(
        customer=tenant.customer,
        kind=Invoice.Kind.CREDIT_NOTE,
        corrects=invoice,
        status=Invoice.Status.CREDITED,
        pdf=FAKE_PDF,
    )
    _send(note, django_capture_on_commit_callbacks)
    (message,) = mailoutbox
    assert message.subject.startswith(f"Credit note {note.number}")
    assert f"correcting invoice {invoice.number}" in message.body


def test_refused_before_the_pdf_is_stored(tenant, mailoutbox):
    invoice = InvoiceFactory(customer=tenant.customer)
    with pytest.raises(ValueError, match="PDF is not stored yet"):
        invoice_email_send(invoice=invoice)
    assert not OutboundEmail.objects.exists()


def test_rolled_back_with_the_transaction_that_stored_the_pdf(tenant, mailoutbox):
    from django.db import transaction

    invoice = InvoiceFactory(customer=tenant.customer, issue_date=date(2026, 11, 2), pdf=FAKE_PDF)
    with pytest.raises(RuntimeError), transaction.atomic():
        invoice_email_send(invoice=invoice)
        raise RuntimeError("the PDF task failed after queuing")
    assert not OutboundEmail.objects.exists() and mailoutbox == []


# core: attachments on OutboundEmail, read from storage by the send task


def _queue_with_attachment(path: str) -> OutboundEmail:
    return email_queue(
        to="someone@example.com",
        template="reseller_approved",
        context={"reseller_name": "Acme", "portal_url": "http://portal.example"},
        language="en",
        attachments=[EmailAttachment(path=path, filename="report.pdf", mimetype="application/pdf")],
    )


def test_send_task_attaches_the_stored_file_and_runs_once(db, mailoutbox):
    path = default_storage.save("tests/report.pdf", ContentFile(FAKE_PDF))
    email = _queue_with_attachment(path)
    assert send_email.run(email.pk) == "sent"
    assert send_email.run(email.pk) == "skipped"
    (message,) = mailoutbox
    assert message.attachments == [("report.pdf", FAKE_PDF, "application/pdf")]
    email.refresh_from_db()
    assert (email.status, email.attempts) == (OutboundEmail.Status.SENT, 1)


def test_send_task_fails_for_good_when_the_file_is_gone(db, mailoutbox):
    email = _queue_with_attachment("tests/deleted.pdf")
    assert send_email.run(email.pk) == "failed"
    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.FAILED and "deleted.pdf" in email.last_error
    assert mailoutbox == []


def test_emails_without_attachments_are_unchanged(db, mailoutbox):
    email = email_queue(
        to="someone@example.com",
        template="reseller_approved",
        context={"reseller_name": "Acme", "portal_url": "http://portal.example"},
        language="en",
    )
    assert email.attachments == []
    assert send_email.run(email.pk) == "sent"
    assert mailoutbox[0].attachments == []
