"""Reads for payments: saved cards, consent links, what the daily retry job has to do."""

from datetime import date, datetime

from billing.models import (
    CustomerCardConsent,
    Invoice,
    Payment,
    PaymentCard,
    Refund,
    StripeEvent,
)
from core.tokens import token_digest
from customers.models import Customer
from resellers.models import Reseller
from subscriptions.models import Subscription

CardOwner = Reseller | Customer


def owner_fields(owner: CardOwner) -> dict[str, Reseller | Customer]:
    return {"reseller": owner} if isinstance(owner, Reseller) else {"customer": owner}


def card_default(*, owner: CardOwner) -> PaymentCard | None:
    """The card that pays for the owner (a reseller: its customers' subscriptions paid with the
    reseller card; a customer: those paid with its own card)."""
    return PaymentCard.objects.filter(is_default=True, **owner_fields(owner)).first()


def card_consent_open(*, subscription: Subscription) -> CustomerCardConsent | None:
    """The request waiting for the customer's answer, if any (an expired one too)."""
    return (
        CustomerCardConsent.objects.filter(
            subscription=subscription, consumed_at__isnull=True, withdrawn_at__isnull=True
        )
        .order_by("-created_at")
        .first()
    )


def card_consent_by_token(*, raw_token: str) -> CustomerCardConsent | None:
    return (
        CustomerCardConsent.objects.select_related(
            "subscription__customer__reseller", "subscription__product", "requested_by"
        )
        .filter(token_hash=token_digest(raw_token))
        .first()
    )


def invoice_ids_due_for_retry(*, today: date) -> list[tuple[int, int]]:
    """(invoice id, attempt to make) of the failed invoices whose retry day has come."""
    return [
        (pk, attempts + 1)
        for pk, attempts in Invoice.objects.filter(
            kind=Invoice.Kind.INVOICE,
            status=Invoice.Status.PAYMENT_FAILED,
            next_payment_attempt__lte=today,
        )
        .order_by("next_payment_attempt", "pk")
        .values_list("pk", "payment_attempts")
    ]


def payments_pending_since(*, before: datetime) -> list[tuple[int, int]]:
    """(invoice id, attempt) of attempts still unsettled since `before`: their answer was lost
    (a worker died mid-call) and no webhook settled them."""
    return list(
        # Whatever the invoice's status now: a charge that went through after the invoice
        # was credited is money to give back (billing.services.invoice_settle).
        Payment.objects.filter(status=Payment.Status.PENDING, created_at__lt=before)
        .order_by("created_at")
        .values_list("invoice_id", "attempt")
    )


def refund_ids_pending_since(*, before: datetime) -> list[int]:
    """Card refunds still unsettled since `before`: the task's answer was lost and no webhook
    settled them. Asked again with the same idempotency key."""
    return list(
        Refund.objects.filter(
            status=Refund.Status.PENDING, method=Refund.Method.CARD, created_at__lt=before
        )
        .order_by("created_at")
        .values_list("pk", flat=True)
    )


def stripe_event_ids_unprocessed(*, received_before: datetime) -> list[int]:
    return list(
        StripeEvent.objects.filter(processed_at__isnull=True, received_at__lt=received_before)
        .order_by("received_at")
        .values_list("pk", flat=True)
    )
