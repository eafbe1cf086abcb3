"""Reseller economics, the reads (issue 16): one function per money concept.

- `discount_percent`: the reseller's discount on the list price for a product on a day;
- `reseller_cost`: what one licence for one month costs the reseller on a day;
- `customer_price`: what its customer pays, with the list price, the cost and the margin and
  the rows they came from (`PriceQuote`, which a Charge can snapshot);
- `highest_cost`: the highest cost known from a day on (the "never below cost" check);
- `customer_price_for_member`: the quote as a member of the reseller may see it (sales sees
  prices, not cost or margin).

Every amount is per licence per month, like PlanPrice, and rounded with the project's one rule
(subscriptions.periods.money_round: half-up to the cent). These functions only read.

The list price is the catalogue's price of today (catalogue_price: PlanPrice keeps no history),
whatever the day asked; the day picks the discounts, the price book entry and the special
price. Nothing charges these prices yet: orders, renewals and charges will read the quote when
each subscription's next billing period starts (the current one keeps its price), in the next
stage of issue 16.
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from django.db.models import F, Q, QuerySet
from django.http import Http404
from django.utils.translation import gettext as _

from customers.models import Customer
from customers.selectors import FORMER_STATUSES
from resellers.models import Membership, Reseller
from resellers.roles import Action, role_can
from subscriptions.models import (
    CustomerPrice,
    Plan,
    PriceRule,
    Product,
    ResellerDiscount,
    ResellerTier,
    TierDiscount,
)
from subscriptions.periods import money_round
from subscriptions.services.prices import catalogue_price

HUNDRED = Decimal(100)
ZERO = Decimal("0.00")


@dataclass(frozen=True)
class Discount:
    """The discount that applies, and the rows it came from (none: no discount)."""

    percent: Decimal
    tier_id: int | None = None
    tier_discount_id: int | None = None
    reseller_discount_id: int | None = None


class PriceSource(StrEnum):
    SPECIAL_PRICE = "special_price"  # CustomerPrice
    PRICE_RULE = "price_rule"  # PriceRule
    LIST_PRICE = "list_price"  # no entry: the catalogue's price


@dataclass(frozen=True)
class PriceQuote:
    """What one licence for one month costs the customer and the reseller on a day."""

    currency: str
    list_price: Decimal
    customer_price: Decimal
    cost: Decimal
    # customer_price - cost: what the reseller earns.
    margin: Decimal
    discount_percent: Decimal
    source: PriceSource
    customer_price_id: int | None
    price_rule_id: int | None
    tier_id: int | None
    tier_discount_id: int | None
    reseller_discount_id: int | None


def _latest_for_product[DiscountRow: (TierDiscount, ResellerDiscount)](
    rows: QuerySet[DiscountRow], *, product_id: int, on: date
) -> DiscountRow | None:
    """The row for the product if one applies on `on`, else the one for every product: each
    the latest `valid_from` on or before `on`."""
    return (
        rows.filter(Q(product_id=product_id) | Q(product__isnull=True), valid_from__lte=on)
        .order_by(F("product_id").asc(nulls_last=True), "-valid_from", "-id")
        .first()
    )


def _discount(*, reseller_id: int, product_id: int, on: date) -> Discount:
    tier_id = (
        ResellerTier.objects.filter(reseller_id=reseller_id)
        .values_list("tier_id", flat=True)
        .first()
    )
    override = _latest_for_product(
        ResellerDiscount.objects.filter(reseller_id=reseller_id), product_id=product_id, on=on
    )
    if override is not None:
        return Discount(override.percent, tier_id=tier_id, reseller_discount_id=override.pk)
    if tier_id is None:
        return Discount(ZERO)
    tier_row = _latest_for_product(
        TierDiscount.objects.filter(tier_id=tier_id), product_id=product_id, on=on
    )
    if tier_row is None:
        return Discount(ZERO, tier_id=tier_id)
    return Discount(tier_row.percent, tier_id=tier_id, tier_discount_id=tier_row.pk)


def discount_percent(*, reseller: Reseller, product: Product, on: date) -> Decimal:
    """The reseller's discount in % of the list price of `product` on `on`: staff's override
    for the reseller and that product, else its override for every product, else its tier's
    discount for that product, else its tier's for every product, else 0. Each is the row with
    the latest `valid_from` on or before `on`; a 0 % row counts (it stops the next level)."""
    return _discount(reseller_id=reseller.pk, product_id=product.pk, on=on).percent


def _cost(list_price: Decimal, percent: Decimal) -> Decimal:
    return money_round(list_price * (1 - percent / HUNDRED))


def reseller_cost(*, reseller: Reseller, plan: Plan, currency: str, on: date) -> Decimal:
    """What one licence of `plan` for one month costs the reseller on `on`: the list price less
    its discount, rounded half-up to the cent. Raises ValidationError (on "plan") if the plan
    has no price in `currency`."""
    percent = _discount(reseller_id=reseller.pk, product_id=plan.product_id, on=on).percent
    return _cost(catalogue_price(plan=plan, currency=currency), percent)


def highest_cost(
    *, reseller: Reseller, plan: Plan, currency: str, start: date, end: date | None = None
) -> tuple[Decimal, date]:
    """The reseller's highest cost for `plan` known from `start` until `end` (exclusive; none:
    for good), and the first day it applies: its cost on `start` and on each later day a
    discount row already entered takes effect. A price at least this high is never below cost
    while the catalogue price and the reseller's tier stay as they are."""
    tier_id = (
        ResellerTier.objects.filter(reseller_id=reseller.pk)
        .values_list("tier_id", flat=True)
        .first()
    )
    changes = ResellerDiscount.objects.filter(reseller_id=reseller.pk)
    tier_changes = (
        TierDiscount.objects.filter(tier_id=tier_id)
        if tier_id is not None
        else TierDiscount.objects.none()
    )
    days = {start}
    for rows in (changes, tier_changes):
        later = rows.filter(
            Q(product_id=plan.product_id) | Q(product__isnull=True), valid_from__gt=start
        )
        if end is not None:
            later = later.filter(valid_from__lt=end)
        days.update(later.values_list("valid_from", flat=True))
    list_price = catalogue_price(plan=plan, currency=currency)
    costs = []
    for day in sorted(days):
        found = _discount(reseller_id=reseller.pk, product_id=plan.product_id, on=day)
        costs.append((_cost(list_price, found.percent), day))
    # max() keeps the first of equal costs: the earliest day.
    return max(costs, key=lambda cost_and_day: cost_and_day[0])


def _special_price(*, customer: Customer, plan: Plan, currency: str, on: date) -> CustomerPrice:
    """The customer's special price valid on `on` (from `valid_from` until the day before
    `ends_on`), the latest `valid_from` first; CustomerPrice.DoesNotExist if none."""
    return (
        CustomerPrice.objects.filter(
            customer_id=customer.pk,
            reseller_id=customer.reseller_id,
            plan_id=plan.pk,
            currency=currency,
            valid_from__lte=on,
        )
        .filter(Q(ends_on__isnull=True) | Q(ends_on__gt=on))
        .latest("valid_from", "id")
    )


def _price_rule_on(*, reseller_id: int, plan: Plan, currency: str, on: date) -> PriceRule | None:
    return (
        PriceRule.objects.filter(
            reseller_id=reseller_id, plan_id=plan.pk, currency=currency, valid_from__lte=on
        )
        .order_by("-valid_from", "-id")
        .first()
    )


def price_rule_on(*, reseller: Reseller, plan: Plan, currency: str, on: date) -> PriceRule | None:
    """The reseller's price book entry for `plan` in `currency` on `on`: the latest
    `valid_from` on or before it (the latest entered, on the same day); None: the list price."""
    return _price_rule_on(reseller_id=reseller.pk, plan=plan, currency=currency, on=on)


def customer_price(*, customer: Customer, plan: Plan, currency: str, on: date) -> PriceQuote:
    """What one licence of `plan` for one month costs `customer` on `on`, in `currency`: its
    special price valid that day, else its reseller's price book entry for the plan and
    currency (the list price; the cost plus a markup in %, rounded half-up to the cent; or a
    fixed price), else the list price. With the list price, the reseller's cost and discount,
    the margin (customer price - cost) and the rows each came from.

    Raises ValidationError (on "plan") if the plan has no price in `currency`."""
    list_price = catalogue_price(plan=plan, currency=currency)
    discount = _discount(reseller_id=customer.reseller_id, product_id=plan.product_id, on=on)
    cost = _cost(list_price, discount.percent)
    special_id = rule_id = None
    try:
        special = _special_price(customer=customer, plan=plan, currency=currency, on=on)
    except CustomerPrice.DoesNotExist:
        rule = _price_rule_on(reseller_id=customer.reseller_id, plan=plan, currency=currency, on=on)
        if rule is None or rule.kind == PriceRule.Kind.LIST:
            price = list_price
        elif rule.kind == PriceRule.Kind.MARKUP:
            price = money_round(cost * (1 + (rule.markup_percent or ZERO) / HUNDRED))
        else:
            price = rule.price if rule.price is not None else list_price
        source = PriceSource.LIST_PRICE if rule is None else PriceSource.PRICE_RULE
        rule_id = rule.pk if rule is not None else None
    else:
        price, source, special_id = special.price, PriceSource.SPECIAL_PRICE, special.pk
    return PriceQuote(
        currency=currency,
        list_price=list_price,
        customer_price=price,
        cost=cost,
        margin=price - cost,
        discount_percent=discount.percent,
        source=source,
        customer_price_id=special_id,
        price_rule_id=rule_id,
        tier_id=discount.tier_id,
        tier_discount_id=discount.tier_discount_id,
        reseller_discount_id=discount.reseller_discount_id,
    )


@dataclass(frozen=True)
class MemberPrice:
    """A customer's price as a member of its reseller may see it: cost, discount and margin
    are None for a role that does not see them (sales)."""

    currency: str
    list_price: Decimal
    customer_price: Decimal
    source: PriceSource
    cost: Decimal | None
    discount_percent: Decimal | None
    margin: Decimal | None


def customer_price_for_member(
    *, membership: Membership, customer: Customer, plan: Plan, currency: str, on: date
) -> MemberPrice:
    """customer_price for a member of the customer's reseller: every role sees the customer's
    price; only those allowed MARGIN_VIEW see cost, discount and margin. Another reseller's
    customer (or one that left) is the same 404 as a missing one."""
    if customer.reseller_id != membership.reseller_id or customer.status in FORMER_STATUSES:
        raise Http404(_("No such customer."))
    quote = customer_price(customer=customer, plan=plan, currency=currency, on=on)
    sees_margin = role_can(membership.role, Action.MARGIN_VIEW)
    return MemberPrice(
        currency=quote.currency,
        list_price=quote.list_price,
        customer_price=quote.customer_price,
        source=quote.source,
        cost=quote.cost if sees_margin else None,
        discount_percent=quote.discount_percent if sees_margin else None,
        margin=quote.margin if sees_margin else None,
    )
