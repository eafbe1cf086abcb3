"""The reseller's prices (issue 16): its price book (`price_rule_set`) and its customers' special
prices (`customer_price_set`, `customer_price_end`). Owner, admin and billing members only
(Action.PRICES_MANAGE); every change is audited.

A price takes effect from a day that is not in the past, so what a customer was quoted for an
earlier day never changes, and is never below the reseller's cost: neither on that day nor on
any later day a discount already entered by staff takes effect (subscriptions.pricing.
highest_cost). Rows are appended, never rewritten; only a special price's end is set later.

A price set here reaches each subscription from its next billing period: a purchase or a plan
change is charged the customer's price of its day, a renewal the price of its period's first
day, and an increase only once the customer was told 30 days before
(subscriptions.services.jobs: the notice job and the renewal). The page is
subscriptions/views/prices.py (the Price book).
"""

from datetime import date
from decimal import Decimal

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import formats
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.money import money_format
from customers.models import Customer
from customers.selectors import FORMER_STATUSES
from resellers.models import Membership
from resellers.roles import Action, require
from resellers.services import audit_record, snapshot

# The module, not its names: subscriptions.pricing imports this package's prices module, so
# either may be imported first.
from subscriptions import pricing
from subscriptions.models import CustomerPrice, Plan, PriceRule
from subscriptions.services.prices import catalogue_price
from subscriptions.services.records import _invalid, _today

PRICE_RULE_FIELDS = ["plan_id", "currency", "kind", "markup_percent", "price", "valid_from"]
CUSTOMER_PRICE_FIELDS = ["plan_id", "currency", "price", "valid_from", "ends_on"]
# Prices and discounts change from today at the earliest (also staff's, in the admin).
PAST_DAY_MESSAGE = gettext_lazy(
    "Choose today or a later day: what applied on past days stays as it was."
)


def _check_not_in_past(field: str, day: date, today: date) -> None:
    if day < today:
        raise _invalid(field, str(PAST_DAY_MESSAGE), code="past")


def _check_priceable(plan: Plan, currency: str) -> None:
    """A plan the price book can price: not a trial (always free), offered in `currency`."""
    if plan.is_trial:
        raise _invalid("plan", _("A trial is free: it has no price to set."), code="trial")
    # Raises on "plan" when the catalogue has no price in that currency.
    catalogue_price(plan=plan, currency=currency)


def _check_not_below_cost(
    *,
    field: str,
    price: Decimal,
    membership: Membership,
    plan: Plan,
    currency: str,
    start: date,
    end: date | None = None,
) -> None:
    cost, day = pricing.highest_cost(
        reseller=membership.reseller, plan=plan, currency=currency, start=start, end=end
    )
    if price < cost:
        raise _invalid(
            field,
            _(
                "This price is below your cost of %(cost)s per licence per month from "
                "%(date)s. Set at least your cost."
            )
            % {"cost": money_format(cost, currency), "date": formats.date_format(day)},
            code="below_cost",
        )


def _check_customer(membership: Membership, customer: Customer) -> None:
    # The view finds the customer through the member's reseller; the write checks again. A
    # customer that left the reseller is no longer its to price.
    if customer.reseller_id != membership.reseller_id or customer.status in FORMER_STATUSES:
        raise PermissionDenied(_("This customer belongs to another reseller."))


@transaction.atomic
def price_rule_set(
    *,
    membership: Membership,
    plan: Plan,
    currency: str,
    kind: str,
    markup_percent: Decimal | None = None,
    price: Decimal | None = None,
    valid_from: date,
) -> PriceRule:
    """Set what the reseller's customers pay for `plan` in `currency` from `valid_from` on: the
    list price, the reseller's cost plus `markup_percent` %, or a fixed `price` per licence per
    month (not below cost). The value a kind does not use is ignored. Customers with a special
    price keep it."""
    require(membership.role, Action.PRICES_MANAGE)
    if kind not in PriceRule.Kind.values:
        raise _invalid("kind", _("Choose how the customer price is set."), code="invalid")
    rule = PriceRule(
        reseller=membership.reseller,
        plan=plan,
        currency=currency,
        kind=kind,
        markup_percent=markup_percent if kind == PriceRule.Kind.MARKUP else None,
        price=price if kind == PriceRule.Kind.FIXED else None,
        valid_from=valid_from,
        created_by=membership.user,
    )
    if kind == PriceRule.Kind.MARKUP and markup_percent is None:
        raise _invalid(
            "markup_percent", _("Enter the markup on your cost, as a percentage."), code="required"
        )
    if kind == PriceRule.Kind.FIXED and price is None:
        raise _invalid("price", _("Enter the price per licence per month."), code="required")
    rule.full_clean(exclude=["reseller", "plan", "created_by"])
    _check_priceable(plan, rule.currency)
    _check_not_in_past("valid_from", rule.valid_from, _today())
    if rule.kind == PriceRule.Kind.FIXED:
        assert rule.price is not None
        _check_not_below_cost(
            field="price",
            price=rule.price,
            membership=membership,
            plan=plan,
            currency=rule.currency,
            start=rule.valid_from,
        )
    rule.save()
    audit_record(
        actor=membership.user,
        reseller=membership.reseller,
        action="price_rule.set",
        obj=rule,
        after=snapshot(rule, PRICE_RULE_FIELDS),
    )
    return rule


@transaction.atomic
def customer_price_set(
    *,
    membership: Membership,
    customer: Customer,
    plan: Plan,
    currency: str,
    price: Decimal,
    valid_from: date,
    ends_on: date | None = None,
) -> CustomerPrice:
    """Give `customer` a special price per licence per month for `plan` in `currency`, from
    `valid_from` until the day before `ends_on` (none: until replaced or ended). It comes
    before the price book, and is never below the reseller's cost while it applies."""
    require(membership.role, Action.PRICES_MANAGE)
    _check_customer(membership, customer)
    special = CustomerPrice(
        reseller=membership.reseller,
        customer=customer,
        plan=plan,
        currency=currency,
        price=price,
        valid_from=valid_from,
        ends_on=ends_on,
        created_by=membership.user,
    )
    special.full_clean(exclude=["reseller", "customer", "plan", "created_by"])
    _check_priceable(plan, special.currency)
    _check_not_in_past("valid_from", special.valid_from, _today())
    if special.ends_on is not None and special.ends_on <= special.valid_from:
        raise _invalid(
            "ends_on", _("The special price must end after the day it starts."), code="order"
        )
    _check_not_below_cost(
        field="price",
        price=special.price,
        membership=membership,
        plan=plan,
        currency=special.currency,
        start=special.valid_from,
        end=special.ends_on,
    )
    special.save()
    audit_record(
        actor=membership.user,
        reseller=membership.reseller,
        action="customer_price.set",
        obj=special,
        after=snapshot(special, CUSTOMER_PRICE_FIELDS),
        customer_public_id=customer.public_id,
    )
    return special


@transaction.atomic
def customer_price_end(
    *, membership: Membership, customer_price: CustomerPrice, ends_on: date | None = None
) -> CustomerPrice:
    """End a special price: from `ends_on` (default today) the customer pays the price book's
    price. Ending one before its first day withdraws it (it ends on its first day and never
    applies). An end may be brought forward, never put off or set in the past."""
    require(membership.role, Action.PRICES_MANAGE)
    # Lock the row: two ends at once keep the earlier one, each checked against the other.
    special = (
        CustomerPrice.objects.select_for_update()
        .select_related("customer")
        .get(pk=customer_price.pk)
    )
    if special.reseller_id != membership.reseller_id:
        raise PermissionDenied(_("This customer belongs to another reseller."))
    today = _today()
    ends_on = ends_on or today
    _check_not_in_past("ends_on", ends_on, today)
    # Ended before its first day: withdrawn, it never applies.
    ends_on = max(ends_on, special.valid_from)
    if special.ends_on is not None and special.ends_on <= ends_on:
        raise _invalid(
            "ends_on",
            _("This special price already ends on %(date)s.")
            % {"date": formats.date_format(special.ends_on)},
            code="already_ends",
        )
    before = snapshot(special, ["ends_on"])
    special.ends_on = ends_on
    special.full_clean(exclude=["reseller", "customer", "plan", "created_by"])
    special.save(update_fields=["ends_on"])
    audit_record(
        actor=membership.user,
        reseller=membership.reseller,
        action="customer_price.ended",
        obj=special,
        before=before,
        after=snapshot(special, ["ends_on"]),
        customer_public_id=special.customer.public_id,
    )
    return special
