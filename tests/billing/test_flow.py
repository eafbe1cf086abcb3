"""The billing parts handing over to each other: a bought subscription → the daily run issues
the invoice → the PDF is rendered and stored → whoever pays is emailed the PDF → with the
manual gateway the invoice waits for staff, who mark it paid."""

from datetime import date

import time_machine

from billing import services as billing_services
from billing.models import Invoice
from core.models import OutboundEmail
from resellers.models import Membership
from subscriptions import services as subscription_services
from tests.factories import catalogue


def test_bought_licences_are_invoiced_rendered_emailed_and_paid(
    tenant, other_tenant, django_capture_on_commit_callbacks, settings
):
    settings.STRIPE_SECRET_KEY = ""  # the manual gateway
    tenant.reseller.currency = "EUR"
    tenant.reseller.save()
    plans = catalogue()
    owner = Membership.objects.get(user=tenant.owner, reseller=tenant.reseller)
    with time_machine.travel(date(2026, 11, 2), tick=False):
        subscription_services.subscription_buy(
            membership=owner,
            customer=tenant.customer,
            plan=plans["flexible"],
            licences=4,
            payer="reseller_card",
            order_key=subscription_services.order_key_new(),
        )
    with (
        time_machine.travel(date(2026, 11, 3), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        issued = billing_services.billing_run(day=date(2026, 11, 3))
    assert len(issued) == 1
    invoice = Invoice.objects.get(pk=issued[0].pk)
    assert invoice.number == "INV-2026-000001"
    assert invoice.customer == tenant.customer and invoice.payer == "reseller_card"
    assert invoice.lines.count() == 1 and invoice.total == invoice.subtotal + invoice.vat_amount
    assert invoice.pdf and len(invoice.pdf_sha256) == 64
    with invoice.pdf.open("rb") as pdf:
        assert pdf.read(5) == b"%PDF-"
    email = OutboundEmail.objects.get(template="invoice_issued")
    assert invoice.number in email.subject
    assert [a["filename"] for a in email.attachments] == [f"{invoice.number}.pdf"]
    assert invoice.status == Invoice.Status.OPEN  # manual gateway: waits for staff

    # Running the day again issues and sends nothing more.
    with django_capture_on_commit_callbacks(execute=True):
        assert billing_services.billing_run(day=date(2026, 11, 3)) == []
    assert OutboundEmail.objects.filter(template="invoice_issued").count() == 1

    # Staff see the bank transfer and mark it paid.
    with django_capture_on_commit_callbacks(execute=True):
        billing_services.invoice_mark_paid(invoice=invoice, by=None)
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID and invoice.paid_at is not None
