"""Writes for payments: saved cards, the customer's consent to pay with its card, charging
issued invoices (with retries and suspension), and Stripe's webhook events.

Calls to the gateway (HTTP) happen outside database transactions where they can: a row lock is
never held while waiting for Stripe, except while one webhook event is processed (its own row,
so that two deliveries of it are processed once).
"""

import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from billing import services as billing_services
from billing.models import (
    CustomerCardConsent,
    GatewayCustomer,
    Invoice,
    InvoiceLine,
    Payment,
    PaymentCard,
    Refund,
    StripeEvent,
)
from billing.notifications import invoice_recipients
from billing.payments import selectors
from billing.payments.gateways import (
    CardSetup,
    CardSetupFailed,
    CardsNotUsed,
    ChargeOutcome,
    PaymentGateway,
    RefundOutcome,
    gateway,
)
from billing.selectors import invoice_balance
from core.emails import email_queue
from core.models import User
from core.queue import task_enqueue_on_commit
from core.ratelimit import Limit, limits_enforce
from core.tokens import token_consume, token_new
from customers.models import Customer
from customers.selectors import customer_admin_check
from resellers.models import Membership, Reseller
from resellers.roles import Action, require
from resellers.services import audit_record
from subscriptions import services as subscription_services
from subscriptions.models import Payer, Subscription

logger = logging.getLogger(__name__)

# A failed charge is tried again this many days after the first failure; when the last try
# fails too, the invoice's subscriptions are suspended until it is paid.
RETRY_DAYS = (1, 3, 5)
# Payment.error of an attempt made while the payer had no card (for staff, in the admin).
NO_CARD_ERROR = "No card saved"
# Stripe keeps an idempotency key at least 24 hours; an attempt older than this is looked up
# before its key is sent again.
KEY_REMEMBERED = timedelta(hours=23)

CardOwner = selectors.CardOwner


# Card owners


def owner_key(owner: CardOwner) -> str:
    """How a card owner is named at the gateway (in metadata): "reseller:<id>"."""
    kind = "reseller" if isinstance(owner, Reseller) else "customer"
    return f"{kind}:{owner.public_id}"


def _owner_by_key(key: str) -> CardOwner | None:
    kind, _sep, public_id = key.partition(":")
    if not public_id:
        return None
    if kind == "reseller":
        return Reseller.objects.filter(public_id=public_id).first()
    if kind == "customer":
        return Customer.objects.filter(public_id=public_id).first()
    return None


def _owner_audit(owner: CardOwner) -> dict[str, Any]:
    if isinstance(owner, Reseller):
        return {"reseller": owner}
    return {"reseller": owner.reseller, "customer_public_id": owner.public_id}


def _cards_gateway() -> PaymentGateway:
    payment_gateway = gateway()
    if not payment_gateway.uses_cards:
        raise ValidationError(
            _("Cards are not used: invoices are paid by bank transfer."), code="manual"
        )
    return payment_gateway


def _gateway_customer(owner: CardOwner, payment_gateway: PaymentGateway) -> GatewayCustomer:
    """The owner's customer record at the gateway, created the first time a card is set up.
    Two first setups at once get one record: the gateway call is idempotent by owner and the
    database keeps one row per owner."""
    fields = selectors.owner_fields(owner)
    found = GatewayCustomer.objects.filter(gateway=payment_gateway.name, **fields).first()
    if found is not None:
        return found
    if isinstance(owner, Reseller):
        name, email = owner.name, owner.billing_email
    else:
        name, email = owner.organisation, owner.contact_email
    customer_id = payment_gateway.customer_create(
        owner_key=owner_key(owner), name=name, email=email
    )
    record, _created = GatewayCustomer.objects.get_or_create(
        gateway=payment_gateway.name, **fields, defaults={"gateway_customer_id": customer_id}
    )
    return record


# Cards: set up (SetupIntent + Stripe Elements), then saved as the owner's default card


def _card_setup_start(owner: CardOwner) -> CardSetup:
    payment_gateway = _cards_gateway()
    record = _gateway_customer(owner, payment_gateway)
    return payment_gateway.card_setup_start(
        customer_id=record.gateway_customer_id, owner_key=owner_key(owner)
    )


def reseller_card_setup_start(*, membership: Membership) -> CardSetup:
    require(membership.role, Action.PAYMENT_CARD_MANAGE)
    return _card_setup_start(membership.reseller)


def customer_card_setup_start(*, customer: Customer, user: User) -> CardSetup:
    customer_admin_check(customer=customer, user=user)
    return _card_setup_start(customer)


def _card_save(
    owner: CardOwner, *, setup_id: str, actor: User | None, from_webhook: bool
) -> PaymentCard | None:
    """Save the card a confirmed setup produced as the owner's default card, replacing the
    one before (detached at the gateway after commit). None if there is nothing to save: a
    webhook for a setup older than the current card, or for a card detached since."""
    payment_gateway = _cards_gateway()
    try:
        result = payment_gateway.card_setup_result(setup_id=setup_id)
    except CardSetupFailed:
        if from_webhook:
            return None
        raise ValidationError(
            _("The card was not saved. Enter it again."), code="setup_failed"
        ) from None
    with transaction.atomic():
        # Locked: two saves for one owner (the page and the webhook) queue up here, so the
        # owner ends with one default card.
        record = (
            GatewayCustomer.objects.select_for_update()
            .filter(gateway=payment_gateway.name, **selectors.owner_fields(owner))
            .first()
        )
        card = result.card
        if (
            record is None
            or result.owner_key != owner_key(owner)
            or result.setup_customer_id != record.gateway_customer_id
        ):
            if from_webhook:
                return None
            raise ValidationError(_("This card setup belongs to someone else."), code="owner")
        if card.customer_id != record.gateway_customer_id:
            # Detached since it was set up (e.g. replaced already): never bring it back.
            if from_webhook:
                return None
            raise ValidationError(_("The card was not saved. Enter it again."), code="detached")
        existing = PaymentCard.objects.filter(
            gateway_payment_method_id=card.payment_method_id
        ).first()
        if existing is not None:
            return existing  # saved already (the page and the webhook both report it)
        current = selectors.card_default(owner=owner)
        if (
            from_webhook
            and current is not None
            and result.started_at < current.created_at.replace(microsecond=0)
        ):
            # An older setup reported late: the card saved since then stays the default.
            return None
        if current is not None:
            current.delete()
            from billing.payments.tasks import payment_card_detach

            task_enqueue_on_commit(payment_card_detach, current.gateway_payment_method_id)
        saved = PaymentCard(
            gateway=payment_gateway.name,
            gateway_customer_id=record.gateway_customer_id,
            gateway_payment_method_id=card.payment_method_id,
            brand=card.brand,
            last4=card.last4,
            exp_month=card.exp_month,
            exp_year=card.exp_year,
            is_default=True,
            **selectors.owner_fields(owner),
        )
        saved.full_clean()
        saved.save()
        audit_record(
            actor=actor,
            action="payment_card.saved",
            obj=saved,
            before={"card": str(current)} if current else None,
            after={"card": str(saved), "expires": f"{card.exp_month:02d}/{card.exp_year}"},
            **_owner_audit(owner),
        )
        _invoices_retry_for_new_card(owner)
    return saved


def reseller_card_save(*, membership: Membership, setup_id: str) -> PaymentCard | None:
    require(membership.role, Action.PAYMENT_CARD_MANAGE)
    return _card_save(
        membership.reseller, setup_id=setup_id, actor=membership.user, from_webhook=False
    )


def customer_card_save(*, customer: Customer, user: User, setup_id: str) -> PaymentCard | None:
    customer_admin_check(customer=customer, user=user)
    return _card_save(customer, setup_id=setup_id, actor=user, from_webhook=False)


def demo_card_save(*, owner: CardOwner, number: str, actor: User | None) -> PaymentCard | None:
    """A test card saved for the demo data (demo_seed) the way the demo's card page saves one:
    set up, confirmed, saved. Only with the demo gateway (development without Stripe keys)."""
    from billing.payments.demo_gateway import DemoGateway

    payment_gateway = gateway()
    if not isinstance(payment_gateway, DemoGateway):
        raise ValidationError("Test cards are saved only with the demo gateway.", code="demo")
    setup = _card_setup_start(owner)
    expires = timezone.localdate() + timedelta(days=3 * 365)
    confirmed = payment_gateway.card_setup_confirm(
        client_secret=setup.client_secret,
        number=number,
        exp_month=expires.month,
        exp_year=expires.year,
    )
    return _card_save(owner, setup_id=confirmed.setup_id, actor=actor, from_webhook=False)


def payment_card_detach(*, payment_method_id: str) -> None:
    """Detach a replaced card at the gateway (its row is gone already)."""
    payment_gateway = gateway()
    if payment_gateway.uses_cards:
        payment_gateway.card_detach(payment_method_id=payment_method_id)


def _invoices_retry_for_new_card(owner: CardOwner) -> None:
    """A new card: try the owner's failed invoices again at once (after commit) rather than on
    the next retry day; paying them lifts a suspension for a pending payment."""
    failed = Invoice.objects.filter(
        selectors.invoices_paid_with_q(owner),
        kind=Invoice.Kind.INVOICE,
        status=Invoice.Status.PAYMENT_FAILED,
    ).values_list("pk", "payment_attempts")
    for invoice_id, attempts in failed:
        _charge_later(invoice_id, attempts + 1)


def _charge_later(invoice_id: int, attempt: int) -> None:
    from billing.payments.tasks import invoice_charge

    task_enqueue_on_commit(invoice_charge, invoice_id, attempt)


# Who pays a subscription: the reseller's card, or the customer's after it consents


def _check_subscription(membership: Membership, subscription: Subscription) -> None:
    require(membership.role, Action.PAYMENT_CARD_MANAGE)
    if subscription.customer.reseller_id != membership.reseller_id:
        raise PermissionDenied(_("This subscription belongs to another reseller."))
    if subscription.status == Subscription.Status.CANCELLED:
        raise ValidationError(_("This subscription is cancelled."), code="cancelled")


def _consents_withdraw(subscription: Subscription) -> int:
    return CustomerCardConsent.objects.filter(
        subscription=subscription, consumed_at__isnull=True, withdrawn_at__isnull=True
    ).update(withdrawn_at=timezone.now())


def consent_url(raw_token: str) -> str:
    return settings.PORTAL_URL + reverse("payments:card_consent", kwargs={"token": raw_token})


@transaction.atomic
def card_consent_request(
    *, membership: Membership, subscription: Subscription
) -> CustomerCardConsent:
    """Ask the customer's contact, by email, to agree that the customer's card pays this
    subscription. Until it agrees, the reseller's card stays in charge. Asking again sends a
    new link; the earlier one stops working."""
    _check_subscription(membership, subscription)
    _cards_gateway()
    # Locked: two requests at once leave one open link.
    subscription = Subscription.objects.select_for_update(of=("self",)).get(pk=subscription.pk)
    customer = subscription.customer
    if subscription.payer == Payer.CUSTOMER_CARD:
        raise ValidationError(
            _("This subscription is already paid with the customer's card."), code="already"
        )
    if customer.status != Customer.Status.ACTIVE or not customer.members.exists():
        raise ValidationError(
            _(
                "The customer has to accept your invitation before it can agree to pay with "
                "its own card."
            ),
            code="not_active",
        )
    per_reseller = settings.CARD_CONSENTS_PER_HOUR
    per_user = settings.CARD_CONSENTS_PER_HOUR_PER_USER
    limits_enforce(
        Limit(
            scope="card-consents",
            key=membership.reseller.public_id,
            limit=per_reseller,
            message=ngettext(
                "Your company can send at most %(limit)d card consent request an hour, and "
                "that limit has been reached.",
                "Your company can send at most %(limit)d card consent requests an hour, and "
                "that limit has been reached.",
                per_reseller,
            )
            % {"limit": per_reseller},
            # Redis unreachable: refused, a consent link lets a reseller charge a customer's card.
            fail_open=False,
        ),
        Limit(
            scope="card-consents-user",
            key=membership.user.public_id,
            limit=per_user,
            message=ngettext(
                "You can send at most %(limit)d card consent request an hour, and that limit "
                "has been reached.",
                "You can send at most %(limit)d card consent requests an hour, and that limit "
                "has been reached.",
                per_user,
            )
            % {"limit": per_user},
            fail_open=False,  # as above
        ),
    )
    _consents_withdraw(subscription)
    raw, digest = token_new()
    consent = CustomerCardConsent(
        subscription=subscription,
        email=customer.contact_email,
        requested_by=membership.user,
        token_hash=digest,
    )
    consent.full_clean()
    consent.save()
    email_queue(
        to=customer.contact_email,
        template="customer_card_consent",
        context={
            "contact_name": customer.contact_name,
            "organisation": customer.organisation,
            "reseller_name": customer.reseller.name,
            "product": subscription.product.name,
            "has_card": selectors.card_default(owner=customer) is not None,
            "expires_at": consent.expires_at,
        },
        language=customer.language,
        secrets={"consent_url": consent_url(raw)},
    )
    audit_record(
        actor=membership.user,
        reseller=membership.reseller,
        action="card_consent.requested",
        obj=subscription,
        after={"email": consent.email},
        customer_public_id=customer.public_id,
    )
    return consent


@transaction.atomic
def subscription_payer_reseller_card(
    *, membership: Membership, subscription: Subscription
) -> Subscription:
    """Pay with the reseller's card (again): no consent needed. A request to the customer that
    is still open is withdrawn."""
    _check_subscription(membership, subscription)
    if _consents_withdraw(subscription):
        audit_record(
            actor=membership.user,
            reseller=membership.reseller,
            action="card_consent.withdrawn",
            obj=subscription,
            customer_public_id=subscription.customer.public_id,
        )
    return subscription_services.subscription_set_payer(
        subscription=subscription, payer=Payer.RESELLER_CARD, actor=membership.user
    )


@transaction.atomic
def card_consent_accept(*, consent: CustomerCardConsent, user: User) -> Subscription:
    """The customer's administrator agrees: from now on the customer's card pays the
    subscription. It needs a saved card first."""
    subscription = consent.subscription
    customer = subscription.customer
    customer_admin_check(customer=customer, user=user)
    if selectors.card_default(owner=customer) is None:
        raise ValidationError(_("Add your organisation's card first."), code="no_card")
    if not token_consume(CustomerCardConsent.objects.all(), pk=consent.pk):
        raise ValidationError(_("This link was already used or withdrawn."), code="used")
    subscription = subscription_services.subscription_set_payer(
        subscription=subscription, payer=Payer.CUSTOMER_CARD, actor=user
    )
    audit_record(
        actor=user,
        reseller=customer.reseller,
        action="card_consent.given",
        obj=subscription,
        after={"payer": Payer.CUSTOMER_CARD.value},
        customer_public_id=customer.public_id,
    )
    return subscription


# Charging issued invoices


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
    owner: CardOwner = (
        invoice.customer if invoice.payer == Payer.CUSTOMER_CARD else invoice.reseller
    )
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
                "reseller_name": invoice.reseller.name,
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


# Refunds to the card (billing.services.invoice_settle records them; this sends them)


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


# Stripe webhooks: each event stored once, processed once, in any order


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
