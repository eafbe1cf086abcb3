"""Refunds to the card: billing.services.invoice_settle records them; these send them to the
gateway and record its answer."""

from django.db import transaction
from django.utils import timezone

from billing import services as billing_services
from billing.models import (
    Refund,
)
from billing.payments.gateways import (
    CardsNotUsed,
    RefundOutcome,
    gateway,
)
from billing.payments.services.charging import KEY_REMEMBERED


def refund_process(*, refund_id: int) -> str:
    """Send a card refund to the gateway, or ask where it stands. Safe to run twice: the
    refund's idempotency key (INV-2026-000001:refund:1) never refunds twice, and a settled
    refund is not sent again. Returns its status ("manual" when cards are not used any more:
    staff send it by transfer)."""
    payment_gateway = gateway()
    with transaction.atomic():
        refund = (
            Refund.objects.select_for_update(of=("self",))
            .select_related("payment", "invoice")
            .get(pk=refund_id)
        )
        if refund.status != Refund.Status.PENDING or refund.method != Refund.Method.CARD:
            return str(refund.status)
    if not payment_gateway.uses_cards:
        return "manual"
    assert refund.payment is not None  # a card refund always pays back a card payment
    found = None
    if not refund.gateway_reference and timezone.now() - refund.created_at > KEY_REMEMBERED:
        # Asked long ago without an answer: Stripe may have forgotten the key.
        found = payment_gateway.refund_find(
            charge_reference=refund.payment.gateway_reference,
            idempotency_key=refund.idempotency_key,
        )
    try:
        if refund.gateway_reference:
            outcome = payment_gateway.refund_status(reference=refund.gateway_reference)
        elif found is not None:
            outcome = found
        else:
            outcome = payment_gateway.refund(
                charge_reference=refund.payment.gateway_reference,
                amount=refund.amount,
                currency=refund.currency,
                idempotency_key=refund.idempotency_key,
                metadata={"invoice": refund.invoice.number, "refund_key": refund.idempotency_key},
            )
    except CardsNotUsed:
        return "manual"
    return refund_outcome_record(refund_id=refund.pk, outcome=outcome)


@transaction.atomic
def refund_outcome_record(*, refund_id: int, outcome: RefundOutcome) -> str:
    """Record the gateway's answer about a refund (its reply, or a webhook)."""
    invoice_id = Refund.objects.values_list("invoice_id", flat=True).get(pk=refund_id)
    # Locked in the order every money change takes them: the invoice, then the refund.
    invoice = billing_services.invoice_lock(invoice_id=invoice_id)
    refund = Refund.objects.select_for_update().get(pk=refund_id)
    if refund.status != Refund.Status.PENDING:
        return str(refund.status)
    refund.invoice = invoice
    billing_services.refund_record(
        refund=refund, status=outcome.status, reference=outcome.reference, error=outcome.error
    )
    return str(refund.status)
