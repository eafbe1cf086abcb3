"""Reads for payments: saved cards, consent links, what the daily retry job and the sweeper have
to do."""

from datetime import date, datetime
from typing import TypedDict

from django.db.models import Q, QuerySet
from django.utils import timezone

from billing.models import (
    CustomerCardConsent,
    Invoice,
    Payment,
    PaymentCard,
    Refund,
    StripeEvent,
)
from billing.payments.gateways import gateway
from core.sweeper import overdue_q
from core.tokens import token_digest
from customers.models import Customer
from resellers.models import Reseller
from subscriptions.models import Payer, Subscription

CardOwner = Reseller | Customer


def owner_fields(owner: CardOwner) -> dict[str, Reseller | Customer]:
    return {"reseller": owner} if isinstance(owner, Reseller) else {"customer": owner}


def card_default(*, owner: CardOwner) -> PaymentCard | None:
    """The card that pays for the owner (a reseller: its customers' subscriptions paid with the
    reseller card; a customer: those paid with its own card)."""
    return PaymentCard.objects.filter(is_default=True, **owner_fields(owner)).first()


def invoices_paid_with_q(owner: CardOwner) -> Q:
    """Invoices charged to the owner's card: a reseller's customers' invoices paid with the
    reseller card, or a customer's own paid with its card."""
    if isinstance(owner, Reseller):
        return Q(reseller=owner, payer=Payer.RESELLER_CARD)
    return Q(customer=owner, payer=Payer.CUSTOMER_CARD)


class FailedPayment(TypedDict):
    invoice: Invoice
    error: str  # the gateway's answer to the latest attempt, as recorded (English)


FAILED_SHOWN = 5


def invoices_payment_failed(*, owner: CardOwner) -> list[FailedPayment]:
    """The owner's card invoices whose latest charge failed (at most FAILED_SHOWN, oldest
    first), each with the gateway's answer: what a new card pays at once."""
    invoices = (
        Invoice.objects.filter(
            invoices_paid_with_q(owner),
            kind=Invoice.Kind.INVOICE,
            status=Invoice.Status.PAYMENT_FAILED,
        )
        .select_related("customer")
        .order_by("issue_date", "pk")[:FAILED_SHOWN]
    )
    errors = dict(
        Payment.objects.filter(invoice__in=list(invoices), status=Payment.Status.FAILED)
        .order_by("invoice_id", "attempt")
        .values_list("invoice_id", "error")
    )  # the latest attempt's answer wins
    return [{"invoice": invoice, "error": errors.get(invoice.pk, "")} for invoice in invoices]


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


# Card work whose task may have been lost: what the sweeper queues again (tasks.payments_sweep)
# and what the admin's "Background work" box counts, one definition of each.


class WorkTimes(TypedDict):
    """When a row's work is due, and when its task was last queued (core.sweeper.overdue_q)."""

    due_field: str
    queued_field: str


CHARGE_TIMES = WorkTimes(due_field="issued_at", queued_field="payment_queued_at")
# An unsettled attempt is asked again with the same idempotency key; updated_at is the lease.
ATTEMPT_TIMES = WorkTimes(due_field="created_at", queued_field="updated_at")


def _card_invoices() -> QuerySet[Invoice]:
    """Invoices paid by card that the gateway can charge (none without a card gateway). A card
    cannot be charged less than the gateway's minimum: such invoices wait for staff."""
    payments = gateway()
    if not payments.uses_cards:
        return Invoice.objects.none()
    chargeable = Q(pk__in=[])
    for currency, minimum in payments.minimum_charge.items():
        chargeable |= Q(currency=currency, total__gte=minimum)
    chargeable |= ~Q(currency__in=list(payments.minimum_charge))
    return Invoice.objects.filter(
        chargeable,
        kind=Invoice.Kind.INVOICE,
        payer__in=(Payer.RESELLER_CARD, Payer.CUSTOMER_CARD),
    )


def invoices_charge_first_pending() -> QuerySet[Invoice]:
    """Card invoices open and never charged: their first charge is queued when they are issued."""
    return _card_invoices().filter(status=Invoice.Status.OPEN, payment_attempts=0)


def invoices_charge_retry_pending(*, today: date) -> QuerySet[Invoice]:
    """Card invoices whose payment failed and whose retry day has passed (the daily job makes
    the retry on its day; a day later, its task was lost)."""
    return _card_invoices().filter(
        status=Invoice.Status.PAYMENT_FAILED, next_payment_attempt__lt=today
    )


def invoices_charge_overdue(*, now: datetime) -> QuerySet[Invoice]:
    """The charges (first or retry) WORK_REQUEUE_AFTER overdue: the ones the sweeper queues."""
    today = timezone.localdate(now)
    pending = invoices_charge_first_pending() | invoices_charge_retry_pending(today=today)
    return pending.filter(overdue_q(**CHARGE_TIMES, now=now))


def payments_unsettled() -> QuerySet[Payment]:
    """Card payment attempts still unsettled (none without a card gateway)."""
    if not gateway().uses_cards:
        return Payment.objects.none()
    return Payment.objects.filter(status=Payment.Status.PENDING)


def payments_unsettled_overdue(*, now: datetime) -> QuerySet[Payment]:
    """The unsettled attempts WORK_REQUEUE_AFTER overdue: the ones the sweeper asks again."""
    return payments_unsettled().filter(overdue_q(**ATTEMPT_TIMES, now=now))
