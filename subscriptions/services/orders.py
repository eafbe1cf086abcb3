"""Orders (the reseller's Buy and Add licences, subscriptions.views.orders): buy a subscription,
change its licence count. An order form's one-time key makes a double submit one order."""

import secrets
from datetime import date

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from core.events import event_announce
from customers.models import Customer
from resellers.models import Membership
from resellers.roles import Action, require
from subscriptions.models import (
    Charge,
    LicenceChange,
    Order,
    Payer,
    Plan,
    Subscription,
)
from subscriptions.services.charges import _amount, _charge
from subscriptions.services.jobs import _catch_up
from subscriptions.services.prices import _check_change, _check_count, _quote, _start_service
from subscriptions.services.records import (
    Status,
    _audit,
    _check_tenant,
    _invalid,
    _ledger,
    _lock,
    _save,
    _state,
    _today,
)

ORDER_KEY_MAX_LENGTH = 64


_REFERENCE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I


def order_key_new() -> str:
    """The one-time key an order form carries: the same key submitted twice is one order."""
    return secrets.token_urlsafe(24)


def _order_reference() -> str:
    return "ORD-" + "".join(secrets.choice(_REFERENCE_ALPHABET) for _ in range(8))


def _order_for_key(
    order_key: str,
    *,
    customer_id: int,
    kind: str | None = None,
    subscription_id: int | None = None,
) -> Order | None:
    """The order this form's key already made (a double submit), if any; a key used for
    another customer, kind or subscription is refused."""
    if not order_key or len(order_key) > ORDER_KEY_MAX_LENGTH:
        raise ValidationError(_("This form has expired. Open the page again."), code="key")
    order = Order.objects.filter(key=order_key).select_related("subscription").first()
    if order is None:
        return None
    if (
        order.customer_id != customer_id
        or (kind is not None and order.kind != kind)
        or (subscription_id is not None and order.subscription_id != subscription_id)
    ):
        raise ValidationError(
            _("This form was already used for another order. Open the page again."), code="key"
        )
    return order


@transaction.atomic
def subscription_buy(
    *,
    membership: Membership,
    customer: Customer,
    plan: Plan,
    licences: int,
    payer: str,
    order_key: str,
) -> Order:
    """Buy a subscription for an Active customer: the first period is charged in full (a trial
    is free), the purchase is the ledger's first row. Submitting the same form twice returns
    the first order."""
    require(membership.role, Action.SUBSCRIPTION_BUY)
    if customer.reseller_id != membership.reseller_id:
        raise PermissionDenied(_("This customer belongs to another reseller."))
    # Lock the customer row: two purchases for one customer queue here, so the "one live
    # subscription per product" check and the order key check each see the other's result.
    customer = Customer.objects.select_for_update().select_related("reseller").get(pk=customer.pk)
    existing = _order_for_key(order_key, customer_id=customer.pk, kind=Order.Kind.PURCHASE)
    if existing is not None:
        return existing
    if customer.status == Customer.Status.INVITED:
        raise ValidationError(
            _(
                "%(organisation)s has not accepted the invitation yet. Licences can be bought "
                "for it once it has."
            )
            % {"organisation": customer.organisation},
            code="customer_invited",
        )
    if customer.status != Customer.Status.ACTIVE:
        raise ValidationError(
            _("Licences cannot be bought for a customer whose status is %(status)s.")
            % {"status": customer.get_status_display()},
            code="customer_inactive",
        )
    if not (plan.is_active and plan.product.is_active):
        raise _invalid("plan", _("This plan is no longer on sale."), code="plan")
    if payer not in Payer.values:
        raise _invalid("payer", _("Choose who pays."), code="payer")
    _check_count(plan, licences)
    held = Subscription.objects.filter(customer=customer, product_id=plan.product_id)
    if held.exclude(status=Status.CANCELLED).exists():
        raise _invalid(
            "plan",
            _(
                "%(organisation)s already has a subscription to %(product)s: add licences "
                "to it instead."
            )
            % {"organisation": customer.organisation, "product": plan.product.name},
            code="held",
        )
    if plan.is_trial and held.filter(plan__kind=Plan.Kind.TRIAL).exists():
        raise _invalid(
            "plan",
            _("%(organisation)s has already had a trial of %(product)s.")
            % {"organisation": customer.organisation, "product": plan.product.name},
            code="trial_used",
        )
    today = _today()
    subscription = Subscription(
        customer=customer,
        currency=customer.reseller.currency,
        licences=licences,
        payer=payer,
        created_by=membership.user,
    )
    # The customer's price of the day: its special price, its reseller's price book, or the
    # list price; the first period starts today, so its cost is today's too.
    period, quote = _start_service(subscription, plan=plan, today=today)
    _save(subscription)
    months = plan.months_per_period
    amount = _amount(
        licences=licences, monthly_price=quote.customer_price, months=months, period=period
    )[1]
    order = Order.objects.create(
        reference=_order_reference(),
        key=order_key,
        customer=customer,
        subscription=subscription,
        kind=Order.Kind.PURCHASE,
        licences_before=0,
        licences_after=licences,
        amount=amount,
        currency=subscription.currency,
        created_by=membership.user,
    )
    _ledger(
        subscription,
        kind=LicenceChange.Kind.PURCHASE,
        actor=membership.user,
        before=0,
        amount=amount,
        period=period,
        order=order,
    )
    _charge(
        subscription,
        kind=Charge.Kind.PURCHASE,
        period=period,
        licences=licences,
        quote=quote,
        months=months,
        order=order,
    )
    _audit(
        subscription,
        actor=membership.user,
        action="subscription.bought",
        before=None,
        after={**_state(subscription), "payer": payer, "order": order.reference},
    )
    event_announce("subscription.created", subscription)
    return order


def _order_licences(
    subscription: Subscription,
    *,
    membership: Membership,
    new_count: object,
    order_key: str,
    today: date,
) -> Order:
    count = _check_change(subscription, new_count)
    if count < subscription.licences:
        require(membership.role, Action.LICENCES_REMOVE)
    quote = _quote(subscription, count, today)
    before = _state(subscription)
    licences_before = subscription.licences
    adding = count > licences_before
    order = Order.objects.create(
        reference=_order_reference(),
        key=order_key,
        customer_id=subscription.customer_id,
        subscription=subscription,
        kind=Order.Kind.ADD if adding else Order.Kind.REMOVE,
        licences_before=licences_before,
        licences_after=count,
        amount=quote.due_now,
        currency=subscription.currency,
        created_by=membership.user,
    )
    subscription.licences = count
    subscription.save(update_fields=["licences"])
    _ledger(
        subscription,
        kind=LicenceChange.Kind.ADD if adding else LicenceChange.Kind.REMOVE,
        actor=membership.user,
        before=licences_before,
        amount=quote.due_now,
        period=quote.period,
        order=order,
    )
    # The current period's price, at the cost of its first day (quote.priced).
    _charge(
        subscription,
        kind=Charge.Kind.PRORATION,
        period=quote.period,
        licences=quote.change,
        quote=quote.priced,
        months=subscription.plan.months_per_period,
        prorated_on=today,
        order=order,
    )
    _audit(
        subscription,
        actor=membership.user,
        action="subscription.licences_added" if adding else "subscription.licences_removed",
        before={**before, "order": None},
        after={**_state(subscription), "order": order.reference, "amount": str(quote.due_now)},
    )
    event_announce("subscription.licences_changed", subscription)
    return order


@transaction.atomic
def subscription_change_licences(
    *,
    membership: Membership,
    subscription: Subscription,
    new_count: int,
    expected_count: int,
    order_key: str,
) -> Order:
    """Order now on the Add licences page: set the count to `new_count`.

    `expected_count` is the count the page showed; if someone changed it since, nothing is
    ordered and the message gives the new count. Adding charges the rest of the current period
    (prorated); removing (flexible and trial only) takes effect at once with no credit. The
    same `order_key` twice returns the first order."""
    require(membership.role, Action.LICENCES_ADD)
    _check_tenant(membership, subscription)
    subscription = _lock(subscription)
    existing = _order_for_key(
        order_key, customer_id=subscription.customer_id, subscription_id=subscription.pk
    )
    if existing is not None:
        return existing
    today = _today()
    _catch_up(subscription, today)
    if subscription.licences != expected_count:
        raise ValidationError(
            {
                "licences": ValidationError(
                    _(
                        "Someone changed the number of licences to %(count)d while this page "
                        "was open. Check the new count and order again."
                    ),
                    code="stale",
                    params={"count": subscription.licences},
                )
            }
        )
    return _order_licences(
        subscription, membership=membership, new_count=new_count, order_key=order_key, today=today
    )


@transaction.atomic
def subscription_add_licences(
    *, membership: Membership, subscription: Subscription, quantity: int, order_key: str
) -> Order:
    """Add `quantity` licences to whatever the count is when the order is processed (an order
    of "+N" rather than a new total): parallel orders each add their own."""
    require(membership.role, Action.LICENCES_ADD)
    _check_tenant(membership, subscription)
    subscription = _lock(subscription)
    existing = _order_for_key(
        order_key, customer_id=subscription.customer_id, subscription_id=subscription.pk
    )
    if existing is not None:
        return existing
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
        raise _invalid("licences", _("Add at least 1 licence."), code="min")
    today = _today()
    _catch_up(subscription, today)
    return _order_licences(
        subscription,
        membership=membership,
        new_count=subscription.licences + quantity,
        order_key=order_key,
        today=today,
    )
