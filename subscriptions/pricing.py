"""Reseller economics, the reads (issue 16): one function per money concept.

- `catalogue_price`: the vendor's list price of one licence for one month (a trial is free);
- `discount_percent`: the reseller's discount on the list price for a product on a day, by
  the one rule `DiscountRows.discount` over the rows `discount_rows` reads (a single quote
  reads one product's, the Price book's bulk reads in subscriptions.selectors all at once);
- `reseller_cost`: what one licence for one month costs the reseller on a day;
- `customer_price`: what its customer pays, with the list price, the cost and the margin and
  the rows they came from (`PriceQuote`, which every Charge snapshots); `price_from_rule`:
  what a price book entry makes the customer pay (the Price book uses it too);
- `highest_cost`: the highest cost known from a day on (the "never below cost" check);
- `customer_price_for_member`: the quote as a member of the reseller may see it (sales sees
  prices, not cost or margin);
- `subscription_quote`, `current_period_quote`: the quote for a subscription on a day, and
  the one licences added during its current period are charged with;
- `period_quote`: the quote a charge is priced with, when the period keeps a price set before
  (licences added mid-period, an increase held back) or is priced on another day than its cost;
- `renewal_price`: what a subscription's next period is charged: the quote on its first day,
  except that an increase applies only as far as a `PriceNotice` announced it 30 days ahead;
- `upcoming_price`: the price a subscription will be charged next and from when (the pages);
- `increase_to_announce`: whether a period start would be priced higher than today, not yet
  announced (the notice job, `subscription_ids_for_price_notice` its candidates).

Every amount is per licence per month, like PlanPrice, and rounded with the project's one rule
(subscriptions.periods.money_round: half-up to the cent). These functions only read.

The list price is the catalogue's price of today (catalogue_price: PlanPrice keeps no history),
whatever the day asked; the day picks the discounts, the price book entry and the special
price. Orders, plan changes, proration and renewals charge the customer's price
(subscriptions.services): a period is priced as of its first day, price and cost alike, and
keeps its price; a purchase or plan change is priced on its day; each charge keeps the quote
it was made with (Charge's snapshot fields), so nothing is recomputed from later prices.
"""

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db.models import FilteredRelation, Q
from django.http import Http404
from django.utils.translation import gettext as _

from customers.models import Customer
from customers.selectors import FORMER_STATUSES
from resellers.models import Membership, Reseller
from resellers.roles import Action, role_can
from subscriptions.models import (
    CustomerPrice,
    Plan,
    PlanPrice,
    PriceNotice,
    PriceRule,
    PriceSource,
    Product,
    ResellerDiscount,
    Subscription,
    Tier,
)
from subscriptions.periods import money_round

HUNDRED = Decimal(100)
ZERO = Decimal("0.00")


@dataclass(frozen=True)
class Discount:
    """The discount that applies, and the rows it came from (none: no discount)."""

    percent: Decimal
    tier_id: int | None = None
    tier_discount_id: int | None = None
    reseller_discount_id: int | None = None


def catalogue_price(*, plan: Plan, currency: str) -> Decimal:
    """Today's catalogue price of one licence for one month; a trial is free. Raises
    ValidationError (on "plan") if the plan has no price in `currency`."""
    price = (
        PlanPrice.objects.filter(plan=plan, currency=currency)
        .values_list("monthly_price", flat=True)
        .first()
    )
    if price is not None:
        return price
    if plan.is_trial:
        return ZERO
    message = _("%(plan)s is not offered in %(currency)s.") % {"plan": plan, "currency": currency}
    raise ValidationError({"plan": ValidationError(message, code="no_price")})


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

    @property
    def source_label(self) -> str:
        """Where the price came from, in the active language."""
        return str(PriceSource(self.source).label)


@dataclass(frozen=True)
class DiscountRow:
    """A discount row as the rule reads it: one of staff's overrides for the reseller
    (ResellerDiscount) or one of its tier's rates (TierDiscount); no product: every product."""

    id: int
    product_id: int | None
    valid_from: date
    percent: Decimal


# The fields of a DiscountRow, as read from either table.
_ROW_FIELDS = ("id", "product_id", "valid_from", "percent")


def _latest_for_product(
    rows: Sequence[DiscountRow], *, product_id: int, on: date
) -> DiscountRow | None:
    """The row for the product if one applies on `on`, else the one for every product: each
    the latest `valid_from` on or before `on` (the latest entered, on the same day)."""
    for wanted in (product_id, None):
        applying = [row for row in rows if row.product_id == wanted and row.valid_from <= on]
        if applying:
            return max(applying, key=lambda row: (row.valid_from, row.id))
    return None


@dataclass(frozen=True)
class DiscountRows:
    """A reseller's tier and discount rows, read at once (`discount_rows`), and the one rule
    that picks its discount from them (`discount`), with no further query: a single quote
    reads the rows of one product up to its day, the Price book (subscriptions.selectors)
    every row of the reseller once, and both apply this rule."""

    tier_id: int | None
    overrides: tuple[DiscountRow, ...] = ()
    # The tier's rates: none without a tier.
    tier_rates: tuple[DiscountRow, ...] = ()

    def discount(self, *, product_id: int, on: date) -> Discount:
        """The discount on the list price of `product_id` on `on`, as `discount_percent`
        describes it, from the rows read (rows of another product or a later day that were
        not read do not apply anyway)."""
        override = _latest_for_product(self.overrides, product_id=product_id, on=on)
        if override is not None:
            return Discount(
                override.percent, tier_id=self.tier_id, reseller_discount_id=override.id
            )
        if self.tier_id is None:
            return Discount(ZERO)
        rate = _latest_for_product(self.tier_rates, product_id=product_id, on=on)
        if rate is None:
            return Discount(ZERO, tier_id=self.tier_id)
        return Discount(rate.percent, tier_id=self.tier_id, tier_discount_id=rate.id)

    def cost(self, *, product_id: int, list_price: Decimal, on: date) -> Decimal:
        """The reseller's cost of one licence for one month of `list_price` on `on`
        (`reseller_cost`): the list price less the discount, rounded half-up to the cent."""
        return _cost(list_price, self.discount(product_id=product_id, on=on).percent)

    def change_days(self, *, after: date, before: date | None = None) -> set[date]:
        """The days after `after` and before `before` (none: ever) on which a row read takes
        effect: the only days the discount may change."""
        return {
            row.valid_from
            for row in (*self.overrides, *self.tier_rates)
            if row.valid_from > after and (before is None or row.valid_from < before)
        }


def discount_rows(
    *, reseller_id: int, product_id: int | None = None, on: date | None = None
) -> DiscountRows:
    """The reseller's tier and the rows of its overrides and its tier's rates, in two queries:
    those for `product_id` and for every product (without one: every product's), taking
    effect on or before `on` (without one: on any day)."""
    overrides = ResellerDiscount.objects.filter(reseller_id=reseller_id)
    rates = Q()
    if product_id is not None:
        overrides = overrides.filter(Q(product_id=product_id) | Q(product__isnull=True))
        rates &= Q(discounts__product_id=product_id) | Q(discounts__product__isnull=True)
    if on is not None:
        overrides = overrides.filter(valid_from__lte=on)
        rates &= Q(discounts__valid_from__lte=on)
    # The reseller's tier, joined to its rates on those conditions: a tier none of whose
    # rates is read still gives its id (one row of nulls).
    tier = list(
        Tier.objects.filter(reseller_tiers__reseller_id=reseller_id)
        .annotate(rate=FilteredRelation("discounts", condition=rates))
        .order_by()
        .values_list("pk", *(f"rate__{name}" for name in _ROW_FIELDS))
    )
    return DiscountRows(
        tier_id=tier[0][0] if tier else None,
        overrides=tuple(
            DiscountRow(*row) for row in overrides.order_by().values_list(*_ROW_FIELDS)
        ),
        tier_rates=tuple(DiscountRow(*row[1:]) for row in tier if row[1] is not None),
    )


def _discount(*, reseller_id: int, product_id: int, on: date) -> Discount:
    """The reseller's discount for the product on `on`, from the rows that may apply (two
    queries)."""
    rows = discount_rows(reseller_id=reseller_id, product_id=product_id, on=on)
    return rows.discount(product_id=product_id, on=on)


def discount_percent(*, reseller: Reseller, product: Product, on: date) -> Decimal:
    """The reseller's discount in % of the list price of `product` on `on`: staff's override
    for the reseller and that product, else its override for every product, else its tier's
    discount for that product, else its tier's for every product, else 0. Each is the row with
    the latest `valid_from` on or before `on` (the latest entered, on the same day); a 0 % row
    counts (it stops the next level). The rule is DiscountRows.discount."""
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
    rows = discount_rows(reseller_id=reseller.pk, product_id=plan.product_id)
    list_price = catalogue_price(plan=plan, currency=currency)
    costs = [
        (rows.cost(product_id=plan.product_id, list_price=list_price, on=day), day)
        for day in sorted({start} | rows.change_days(after=start, before=end))
    ]
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


def price_from_rule(*, rule: PriceRule | None, list_price: Decimal, cost: Decimal) -> Decimal:
    """What a price book entry makes the customer pay per licence per month: the list price
    (no entry, or "list"), the cost plus the markup in %, rounded half-up to the cent, or the
    fixed price (the list price if the entry has none). customer_price and the Price book
    (subscriptions.selectors) both price an entry with this."""
    if rule is None or rule.kind == PriceRule.Kind.LIST:
        return list_price
    if rule.kind == PriceRule.Kind.MARKUP:
        return money_round(cost * (1 + (rule.markup_percent or ZERO) / HUNDRED))
    return rule.price if rule.price is not None else list_price


def customer_price(*, customer: Customer, plan: Plan, currency: str, on: date) -> PriceQuote:
    """What one licence of `plan` for one month costs `customer` on `on`, in `currency`: its
    special price valid that day, else its reseller's price book entry for the plan and
    currency (the list price; the cost plus a markup in %, rounded half-up to the cent; or a
    fixed price), else the list price. With the list price, the reseller's cost and discount,
    the margin (customer price - cost) and the rows each came from.

    A trial is free: nothing from the price book or a special price applies to it.

    Raises ValidationError (on "plan") if the plan has no price in `currency`."""
    if plan.is_trial:
        return _free(currency)
    list_price = catalogue_price(plan=plan, currency=currency)
    discount = _discount(reseller_id=customer.reseller_id, product_id=plan.product_id, on=on)
    cost = _cost(list_price, discount.percent)
    special_id = rule_id = None
    try:
        special = _special_price(customer=customer, plan=plan, currency=currency, on=on)
    except CustomerPrice.DoesNotExist:
        rule = _price_rule_on(reseller_id=customer.reseller_id, plan=plan, currency=currency, on=on)
        price = price_from_rule(rule=rule, list_price=list_price, cost=cost)
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


def _free(currency: str) -> PriceQuote:
    return PriceQuote(
        currency=currency,
        list_price=ZERO,
        customer_price=ZERO,
        cost=ZERO,
        margin=ZERO,
        discount_percent=ZERO,
        source=PriceSource.LIST_PRICE,
        customer_price_id=None,
        price_rule_id=None,
        tier_id=None,
        tier_discount_id=None,
        reseller_discount_id=None,
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


# What subscriptions are charged (subscriptions.services): a period is priced as of its first
# day and keeps that price; an increase waits for its notice.

# An increase applies from a period that starts at least this many days after the notice.
NOTICE_DAYS = 30
# The notice job looks at the periods starting within this many days: an increase is
# announced a little more than 30 days ahead where it can be.
NOTICE_WINDOW_DAYS = 40


def period_quote(*, cost_quote: PriceQuote, price: PriceQuote | Decimal) -> PriceQuote:
    """The quote a charge is priced with: the list price, the reseller's cost and the rows
    they came from as of the first day of the period it bills (`cost_quote`), and the
    customer's price: another day's quote (with its source and price book rows), or a price
    per licence per month the period keeps. A kept price that is not `cost_quote`'s own is
    recorded as PERIOD_PRICE, with no price book row: it was set before. The margin is
    price - cost, which may be negative when a period keeps a price below a new cost."""
    if isinstance(price, PriceQuote):
        source, special_id, rule_id = price.source, price.customer_price_id, price.price_rule_id
        amount = price.customer_price
    elif price == cost_quote.customer_price:
        return cost_quote
    else:
        source, special_id, rule_id, amount = PriceSource.PERIOD_PRICE, None, None, price
    return dataclasses.replace(
        cost_quote,
        customer_price=amount,
        margin=amount - cost_quote.cost,
        source=source,
        customer_price_id=special_id,
        price_rule_id=rule_id,
    )


def _kept(subscription: Subscription) -> PriceQuote:
    """The plan is no longer priced in the subscription's currency: the subscription keeps its
    price; no list price or cost is known, so both are taken as the price (margin 0)."""
    price = subscription.monthly_price
    return dataclasses.replace(
        _free(subscription.currency),
        list_price=price,
        customer_price=price,
        cost=price,
        source=PriceSource.PERIOD_PRICE,
    )


def subscription_quote(*, subscription: Subscription, on: date) -> PriceQuote:
    """customer_price for the subscription's customer, plan and currency on `on`; if the plan
    is no longer priced in its currency, the subscription's current price (`_kept`)."""
    try:
        return customer_price(
            customer=subscription.customer,
            plan=subscription.plan,
            currency=subscription.currency,
            on=on,
        )
    except ValidationError:
        return _kept(subscription)


def current_period_quote(*, subscription: Subscription) -> PriceQuote:
    """What licences added during the current period are charged: the period's price (the
    subscription's monthly_price) at the cost of the period's first day."""
    quote = subscription_quote(subscription=subscription, on=subscription.period_start)
    return period_quote(cost_quote=quote, price=subscription.monthly_price)


def _notice_for(subscription: Subscription, start: date) -> PriceNotice | None:
    """The latest notice that applies from a period starting after the current one and by
    `start`: the increase the customer was told of for that period."""
    if subscription.pk is None:
        return None  # a draft (the Buy preview) has had no notice
    return (
        PriceNotice.objects.filter(
            subscription_id=subscription.pk,
            applies_from__gt=subscription.period_start,
            applies_from__lte=start,
        )
        .order_by("-sent_at", "-id")
        .first()
    )


def renewal_price(
    *,
    subscription: Subscription,
    start: date,
    plan_changed: bool = False,
    confirmed_price: Decimal | None = None,
) -> PriceQuote:
    """What the period starting on `start` (the next one, after the current) is charged per
    licence per month: the quote on `start`, except an increase over the subscription's
    current price, which applies only as far as a notice sent 30 days before `start`
    announced it (min(quote, noticed price)); without one the period keeps the current price.
    A decrease applies at once. A plan chosen for this period (a plan change at the end of the
    term) starts at its quote, at most the price confirmed when the change was scheduled
    (`confirmed_price`, Subscription.scheduled_monthly_price): an increase since then follows
    as any other, announced, from a later period.

    `subscription.plan` is the plan of the new period; its other fields are the current
    period's."""
    quote = subscription_quote(subscription=subscription, on=start)
    if plan_changed:
        if confirmed_price is None or quote.customer_price <= confirmed_price:
            return quote
        return period_quote(cost_quote=quote, price=confirmed_price)
    current = subscription.monthly_price
    if quote.customer_price <= current:
        return quote
    notice = _notice_for(subscription, start)
    allowed = current
    if notice is not None:
        allowed = max(current, min(quote.customer_price, notice.new_monthly_price))
    return period_quote(cost_quote=quote, price=allowed)


@dataclass(frozen=True)
class UpcomingPrice:
    """A price per licence per month a subscription will be charged, different from today's,
    and the first day it applies."""

    monthly_price: Decimal
    currency: str
    applies_from: date
    # An increase announced to the customer (a PriceNotice), not the next period's quote.
    announced: bool


def upcoming_price(*, subscription: Subscription) -> UpcomingPrice | None:
    """The next price change of a live paid subscription, for its pages: the next period's
    price if it differs from the current one (a decrease, or an increase already announced),
    else an increase announced for a later period; None if the price stays. The price book may
    still change before then: this is what is known today."""
    if subscription.plan.is_trial or not subscription.is_live:
        return None
    start = subscription.period_end
    scheduled = subscription.term_end == start and subscription.scheduled_plan is not None
    if not scheduled:
        # A plan change at the end of the term shows as such on the page.
        quote = renewal_price(subscription=subscription, start=start)
        if quote.customer_price != subscription.monthly_price:
            return UpcomingPrice(
                monthly_price=quote.customer_price,
                currency=subscription.currency,
                applies_from=start,
                # An increase at the next period is one announced: renewal_price holds others.
                announced=quote.customer_price > subscription.monthly_price,
            )
    later = (
        PriceNotice.objects.filter(subscription_id=subscription.pk, applies_from__gt=start)
        .order_by("applies_from", "-sent_at", "-id")
        .first()
    )
    if later is None:
        return None
    return UpcomingPrice(
        monthly_price=later.new_monthly_price,
        currency=later.currency,
        applies_from=later.applies_from,
        announced=True,
    )


def increase_to_announce(*, subscription: Subscription, start: date) -> PriceQuote | None:
    """The quote for the period starting on `start` if it is higher than the subscription's
    price and no notice already announces at least that much for a period not yet started;
    None otherwise (nothing to announce)."""
    quote = subscription_quote(subscription=subscription, on=start)
    if quote.customer_price <= subscription.monthly_price:
        return None
    announced = PriceNotice.objects.filter(
        subscription_id=subscription.pk,
        applies_from__gt=subscription.period_start,
        new_monthly_price__gte=quote.customer_price,
    )
    return None if announced.exists() else quote


def subscription_ids_for_price_notice(*, today: date) -> list[int]:
    """The notice job's candidates: active paid subscriptions whose next period starts within
    NOTICE_WINDOW_DAYS (the job's step decides whether an increase is to be announced)."""
    return list(
        Subscription.objects.filter(
            status=Subscription.Status.ACTIVE,
            period_end__lte=today + timedelta(days=NOTICE_WINDOW_DAYS),
        )
        .exclude(plan__kind=Plan.Kind.TRIAL)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
