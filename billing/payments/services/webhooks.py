"""Stripe webhooks: each event stored once, processed once, in any order."""

from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from billing.models import (
    Payment,
    PaymentCard,
    Refund,
    StripeEvent,
)
from billing.payments.gateways import (
    gateway,
)
from billing.payments.selectors import CardOwner
from billing.payments.services.cards import _card_save, _owner_audit, _owner_by_key
from billing.payments.services.charging import payment_record
from billing.payments.services.refunds import refund_outcome_record
from resellers.services import audit_record


def stripe_event_store(*, event: dict[str, Any]) -> tuple[StripeEvent, bool]:
    """Store a verified event unless its id is stored already; (row, whether it is new).
    An event that does not fit the columns (an id or type over 80 characters) raises
    ValidationError and nothing is stored."""
    stripe_event = StripeEvent(
        event_id=event["id"],
        type=event["type"],
        payload=event,
        created=datetime.fromtimestamp(event["created"], tz=UTC),
    )
    stripe_event.full_clean(validate_unique=False)  # a repeat delivery is found below
    return StripeEvent.objects.get_or_create(
        event_id=stripe_event.event_id,
        defaults={
            "type": stripe_event.type,
            "payload": stripe_event.payload,
            "created": stripe_event.created,
        },
    )


@transaction.atomic
def stripe_event_process(*, stripe_event_id: int) -> str:
    """Act on one stored event, once. Handlers read the object's current state from Stripe
    rather than the event's copy, so events handled late or out of order never undo a newer
    state; each change they make is itself idempotent."""
    # Locked: deliveries of the same event processed at once queue up, the first one acts.
    event = StripeEvent.objects.select_for_update().get(pk=stripe_event_id)
    if event.processed_at is not None:
        return "done"
    if not gateway().uses_cards:
        return "manual"  # kept for when Stripe is configured again
    handler = _EVENT_HANDLERS.get(event.type)
    result = "ignored"
    if handler is not None:
        obj = (event.payload.get("data") or {}).get("object") or {}
        result = handler(obj)
    event.processed_at = timezone.now()
    event.error = ""
    event.save(update_fields=["processed_at", "error"])
    return result


def stripe_event_failed(*, stripe_event_id: int, error: str) -> None:
    StripeEvent.objects.filter(pk=stripe_event_id).update(error=error[:2000])


def _on_payment_intent(obj: dict[str, Any]) -> str:
    payment_intent_id = str(obj.get("id", ""))
    key = str((obj.get("metadata") or {}).get("payment_key", ""))
    payment = (
        Payment.objects.filter(gateway_reference=payment_intent_id).first()
        or Payment.objects.filter(idempotency_key=key).exclude(idempotency_key="").first()
    )
    if payment is None or not payment_intent_id:
        return "not_ours"
    outcome = gateway().charge_status(reference=payment_intent_id)
    return payment_record(payment_id=payment.pk, outcome=outcome)


def _on_refund(obj: dict[str, Any]) -> str:
    refund_id = str(obj.get("id", ""))
    key = str((obj.get("metadata") or {}).get("refund_key", ""))
    refund = (
        Refund.objects.filter(gateway_reference=refund_id).exclude(gateway_reference="").first()
        or Refund.objects.filter(idempotency_key=key).exclude(idempotency_key="").first()
    )
    if refund is None or not refund_id:
        return "not_ours"
    outcome = gateway().refund_status(reference=refund_id)
    return refund_outcome_record(refund_id=refund.pk, outcome=outcome)


def _on_setup_intent_succeeded(obj: dict[str, Any]) -> str:
    owner = _owner_by_key(str((obj.get("metadata") or {}).get("portal_owner", "")))
    if owner is None:
        return "not_ours"
    card = _card_save(owner, setup_id=str(obj.get("id", "")), actor=None, from_webhook=True)
    return "saved" if card is not None else "stale"


def _on_payment_method_detached(obj: dict[str, Any]) -> str:
    payment_method_id = str(obj.get("id", ""))
    card = PaymentCard.objects.filter(gateway_payment_method_id=payment_method_id).first()
    if card is None:
        return "not_ours"
    if gateway().card_get(payment_method_id=payment_method_id).customer_id:
        return "attached"  # attached again since: keep it
    owner: CardOwner = card.reseller or card.customer  # type: ignore[assignment]
    card.delete()
    audit_record(
        actor=None,
        action="payment_card.removed",
        obj=card,
        before={"card": str(card)},
        **_owner_audit(owner),
    )
    return "removed"


def _on_payment_method_updated(obj: dict[str, Any]) -> str:
    """The bank renewed the card (new expiry, sometimes new digits): keep what is shown true."""
    payment_method_id = str(obj.get("id", ""))
    card = PaymentCard.objects.filter(gateway_payment_method_id=payment_method_id).first()
    if card is None:
        return "not_ours"
    current = gateway().card_get(payment_method_id=payment_method_id)
    if not current.customer_id:
        return "detached"
    card.brand, card.last4 = current.brand, current.last4
    card.exp_month, card.exp_year = current.exp_month, current.exp_year
    card.save(update_fields=["brand", "last4", "exp_month", "exp_year"])
    return "updated"


# Disputes are settled with credit notes, by staff: their events are kept only.
_EVENT_HANDLERS = {
    "refund.created": _on_refund,
    "refund.updated": _on_refund,
    "refund.failed": _on_refund,
    "payment_intent.succeeded": _on_payment_intent,
    "payment_intent.payment_failed": _on_payment_intent,
    "payment_intent.canceled": _on_payment_intent,
    "payment_intent.processing": _on_payment_intent,
    "setup_intent.succeeded": _on_setup_intent_succeeded,
    "payment_method.detached": _on_payment_method_detached,
    "payment_method.updated": _on_payment_method_updated,
    "payment_method.automatically_updated": _on_payment_method_updated,
}
