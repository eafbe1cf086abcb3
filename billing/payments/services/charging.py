"""Charging issued invoices: the first attempt after issue (billing.services calls
invoice_charge_enqueue), the retries on days 1, 3 and 5, suspension after the last failure,
the payer's email, and lifting the suspensions once paid (billing.services calls
suspensions_lift_after_payment inside the paying transaction)."""

from datetime import date, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy

from billing import services as billing_services
from billing.models import (
    Invoice,
    InvoiceLine,
    Payment,
    PaymentCard,
)
from billing.notifications import invoice_recipients, invoice_reseller_name
from billing.payments import selectors
from billing.payments.gateways import (
    ChargeOutcome,
    gateway,
)
from billing.payments.selectors import CardOwner
from billing.selectors import invoice_balance
from core.emails import email_queue
from core.events import event_announce
from core.queue import task_enqueue_on_commit
from resellers.services import audit_record
from subscriptions import services as subscription_services
from subscriptions.models import Payer

# A failed charge is tried again this many days after the first failure; when the last try
# fails too, the invoice's subscriptions are suspended until it is paid.
RETRY_DAYS = (1, 3, 5)


# Payment.error of an attempt made while the payer had no card (for staff, in the admin).
NO_CARD_ERROR = "No card saved"


# Stripe keeps an idempotency key at least 24 hours; an attempt older than this is looked up
# before its key is sent again.
KEY_REMEMBERED = timedelta(hours=23)


def _charge_later(invoice_id: int, attempt: int) -> None:
    from billing.payments.tasks import invoice_charge

    task_enqueue_on_commit(invoice_charge, invoice_id, attempt)


def invoice_charge_enqueue(invoice: Invoice) -> None:
    """Charge the invoice's card, unless invoices are paid by bank transfer (called by
    billing.services.invoice_issue_for_customer after the issuing transaction commits)."""
    if invoice.kind != Invoice.Kind.INVOICE or not gateway().uses_cards:
        return
    _charge_later(invoice.pk, 1)


def card_label(card: PaymentCard) -> str:
    """A card as its owner knows it: "Visa •••• 4242"."""
    return f"{card.brand.title()} \u2022\u2022\u2022\u2022 {card.last4}"


def _payer_card(invoice: Invoice) -> PaymentCard | None:
    owner: CardOwner | None = (
        invoice.customer if invoice.payer == Payer.CUSTOMER_CARD else invoice.reseller
    )
    # The reseller's card pays: the invoice is the reseller's (billing.services._invoice_reseller).
    assert owner is not None
    return selectors.card_default(owner=owner)


def invoice_charge(*, invoice_id: int, attempt: int) -> str:
    """Make payment attempt number `attempt` (1 at issue, then the retries) of an invoice.
    Safe to run twice: a second run of the same attempt asks the gateway again with the same
    idempotency key (INV-2026-000001:1), which never charges twice, and records nothing new
    once the attempt is settled. An attempt still pending is asked about even if the invoice
    was paid or credited since: money it took is then refunded. Returns what happened."""
    payment_gateway = gateway()
    if not payment_gateway.uses_cards:
        return "manual"
    with transaction.atomic():
        # Locked: one attempt at a time per invoice, numbered in order.
        invoice = billing_services.invoice_lock(invoice_id=invoice_id)
        payment = invoice.payments.filter(attempt=attempt).first()
        if payment is None:
            if invoice.kind != Invoice.Kind.INVOICE or invoice.status not in (
                Invoice.Status.OPEN,
                Invoice.Status.PAYMENT_FAILED,
            ):
                return "not_due"
            if invoice.payment_attempts != attempt - 1:
                return "stale"  # that attempt number was made or skipped already
            if invoice.payments.filter(status=Payment.Status.PENDING).exists():
                # The previous attempt may still succeed: never charge twice.
                return "pending"
            balance = invoice_balance(invoice)
            if balance <= 0:
                # Settled already (credit notes, an earlier payment): never charge it.
                billing_services.invoice_settle(invoice=invoice, by=None)
                return "nothing_to_pay"
            if balance < payment_gateway.minimum_charge.get(invoice.currency, 0):
                # A card cannot be charged so little: no attempt, so no failure and no
                # suspension; the invoice stays open for staff to settle (bank transfer, or
                # mark paid with the next one).
                return "below_card_minimum"
            payment = Payment.objects.create(
                invoice=invoice,
                attempt=attempt,
                gateway=payment_gateway.name,
                idempotency_key=f"{invoice.number}:{attempt}",
                amount=balance,
                currency=invoice.currency,
            )
            invoice.payment_attempts = attempt
            invoice.next_payment_attempt = None
            invoice.save(update_fields=["payment_attempts", "next_payment_attempt"])
        elif payment.status != Payment.Status.PENDING:
            return str(payment.status)
        card = _payer_card(invoice)
        if card is not None and not payment.card_label and not payment.gateway_reference:
            # The card this attempt charges, kept for its receipt.
            payment.card_label = card_label(card)
            payment.save(update_fields=["card_label", "updated_at"])
    found = None
    if not payment.gateway_reference and timezone.now() - payment.created_at > KEY_REMEMBERED:
        # Asked long ago without an answer: Stripe may have forgotten the idempotency key, so
        # sending it again could charge twice. Look for the charge by the key in its metadata.
        found = payment_gateway.charge_find(idempotency_key=payment.idempotency_key)
    if payment.gateway_reference:
        # Asked before and the gateway answered with its charge: ask where it stands.
        outcome = payment_gateway.charge_status(reference=payment.gateway_reference)
    elif found is not None:
        outcome = found
    elif card is None:
        outcome = ChargeOutcome("failed", error=NO_CARD_ERROR)
    else:
        outcome = payment_gateway.charge(
            customer_id=card.gateway_customer_id,
            payment_method_id=card.gateway_payment_method_id,
            amount=payment.amount,
            currency=payment.currency,
            idempotency_key=payment.idempotency_key,
            description=invoice.number,
            metadata={"invoice": invoice.number, "payment_key": payment.idempotency_key},
        )
    return payment_record(payment_id=payment.pk, outcome=outcome)


@transaction.atomic
def payment_record(*, payment_id: int, outcome: ChargeOutcome) -> str:
    """Record where a payment attempt stands. A settled attempt never changes again, so a late
    or repeated report (the charge's answer, a webhook) changes nothing."""
    invoice_id = Payment.objects.values_list("invoice_id", flat=True).get(pk=payment_id)
    # Locked in the order invoice_charge takes them: the invoice, then its payment.
    invoice = billing_services.invoice_lock(invoice_id=invoice_id)
    payment = Payment.objects.select_for_update().get(pk=payment_id)
    if payment.status != Payment.Status.PENDING:
        return str(payment.status)
    if outcome.reference:
        payment.gateway_reference = outcome.reference
    if outcome.status == "pending":
        payment.save(update_fields=["gateway_reference", "updated_at"])
        return "pending"
    payment.status = outcome.status
    payment.error = outcome.error[:500]
    payment.save(update_fields=["status", "error", "gateway_reference", "updated_at"])
    if payment.status == Payment.Status.SUCCEEDED:
        # Also when the invoice was paid or credited meanwhile: the money arrived, and what
        # it overpays is refunded.
        billing_services.payment_received(invoice=invoice, payment=payment, by=None)
    elif invoice.status not in (Invoice.Status.OPEN, Invoice.Status.PAYMENT_FAILED):
        pass  # paid or credited meanwhile: a failure changes nothing
    elif payment.attempt == invoice.payment_attempts:
        _invoice_payment_failed(invoice, payment)
    return str(payment.status)


def _first_failure_day(invoice: Invoice, payment: Payment) -> date:
    first = invoice.payments.filter(attempt=1).first() or payment
    return timezone.localdate(first.updated_at)


def _invoice_payment_failed(invoice: Invoice, payment: Payment) -> None:
    """The latest attempt failed: schedule the next retry (days 1, 3 and 5 after the first
    failure), or after the last one suspend the invoice's subscriptions. Tell whoever pays."""
    before = {"status": invoice.status, "next_payment_attempt": invoice.next_payment_attempt}
    retry = payment.attempt - 1  # how many retries were made so far
    next_day = None
    if retry < len(RETRY_DAYS):
        next_day = _first_failure_day(invoice, payment) + timedelta(days=RETRY_DAYS[retry])
    invoice.status = Invoice.Status.PAYMENT_FAILED
    invoice.next_payment_attempt = next_day
    invoice.save(update_fields=["status", "next_payment_attempt"])
    suspended = []
    if next_day is None:
        for subscription_id in _invoice_subscription_ids(invoice):
            if subscription_services.subscription_suspend_for_payment(
                subscription_id=subscription_id
            ):
                suspended.append(subscription_id)
    audit_record(
        actor=None,
        reseller=invoice.reseller,
        action="invoice.payment_failed",
        obj=invoice,
        before={key: str(value) if value else value for key, value in before.items()},
        after={
            "status": invoice.status,
            "attempt": payment.attempt,
            "error": payment.error,
            "next_payment_attempt": next_day.isoformat() if next_day else None,
            "subscriptions_suspended": len(suspended),
        },
        customer_public_id=invoice.customer.public_id,
    )
    event_announce("payment.failed", invoice)
    _payment_failed_email(invoice, payment, next_day=next_day, suspended=bool(suspended))


def _invoice_subscription_ids(invoice: Invoice) -> list[int]:
    ids: set[int] = set()
    for subscription_id, charge_subscription_id in InvoiceLine.objects.filter(
        invoice=invoice
    ).values_list("subscription_id", "charge__subscription_id"):
        ids.update(i for i in (subscription_id, charge_subscription_id) if i is not None)
    return sorted(ids)


def _card_url(invoice: Invoice) -> str:
    if invoice.payer == Payer.CUSTOMER_CARD:
        path = reverse("my_payments:card", kwargs={"customer_id": invoice.customer.public_id})
    else:
        path = reverse("payments:card")
    return settings.PORTAL_URL + path


def _payment_failed_email(
    invoice: Invoice, payment: Payment, *, next_day: date | None, suspended: bool
) -> None:
    for recipient in invoice_recipients(invoice=invoice):
        email_queue(
            to=recipient.email,
            template="payment_failed",
            context={
                "number": invoice.number,
                # What the card was asked for: the invoice's balance at that attempt.
                "total": payment.amount,
                "currency": invoice.currency,
                "organisation": invoice.customer.organisation,
                "reseller_name": invoice_reseller_name(invoice),
                "customer_card": invoice.payer == Payer.CUSTOMER_CARD,
                # The gateway's answer in the recipient's language where it is known (the
                # demo gateway's are Stripe's own messages, marked for translation).
                "reason": gettext_lazy(
                    "No card is saved." if payment.error == NO_CARD_ERROR else payment.error
                )
                if payment.error
                else "",
                "next_attempt": next_day,
                "final": next_day is None,
                "suspended": suspended,
                "invoice_url": settings.PORTAL_URL + recipient.url,
                "card_url": _card_url(invoice),
            },
            language=recipient.language,
        )


def suspensions_lift_after_payment(invoice: Invoice) -> None:
    """The invoice was paid (by card or by staff): lift the suspensions it caused, unless
    another invoice of the same subscription is still unpaid after its last retry. Called by
    billing.services.invoice_settle inside the transaction that marks the invoice paid."""
    for subscription_id in _invoice_subscription_ids(invoice):
        if _still_unpaid(subscription_id, other_than=invoice):
            continue
        subscription_services.subscription_reactivate_after_payment(subscription_id=subscription_id)


def _still_unpaid(subscription_id: int, *, other_than: Invoice) -> bool:
    return (
        Invoice.objects.filter(
            Q(lines__subscription_id=subscription_id)
            | Q(lines__charge__subscription_id=subscription_id),
            kind=Invoice.Kind.INVOICE,
            status=Invoice.Status.PAYMENT_FAILED,
            payment_attempts__gt=len(RETRY_DAYS),
        )
        .exclude(pk=other_than.pk)
        .exists()
    )
