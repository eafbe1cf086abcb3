"""Saved cards: set up (SetupIntent + Stripe Elements), then saved as the owner's default card
(a reseller, or a customer on its own side), detached; a new card retries the owner's invoices
whose payment failed. Card owners are keyed "reseller:<id>" / "customer:<id>" at the gateway."""

from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.models import (
    GatewayCustomer,
    Invoice,
    PaymentCard,
)
from billing.payments import selectors
from billing.payments.gateways import (
    CardSetup,
    CardSetupFailed,
    PaymentGateway,
    gateway,
)
from billing.payments.services.charging import _charge_later
from core.models import User
from core.queue import task_enqueue_on_commit
from customers.models import Customer
from customers.selectors import customer_admin_check
from resellers.models import Membership, Reseller
from resellers.roles import Action, require
from resellers.services import audit_record

CardOwner = selectors.CardOwner


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
