"""Reseller economics over random histories (issue 16, stage 1): staff's tier rates and
overrides for random products and days, then a reseller setting list, markup and fixed price
book entries and special prices (with and without an end, ended later) on random days while
time passes. Whatever happens:

- the discount and cost on any day are what a plain reading of the rules gives (a reference
  model in this file: override for the product, override for all, tier's for the product,
  tier's for all, each the latest row on or before the day);
- a price the services accepted is never below cost on any day it applies, and a price they
  refused as below cost is below cost on some day it would have applied;
- every quote's margin is its customer price less its cost;
- a change never alters the quote of a day before the one it takes effect from.
"""

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, event, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from subscriptions import pricing, services
from subscriptions.models import (
    CustomerPrice,
    Plan,
    Product,
    ResellerDiscount,
    ResellerTier,
    Tier,
    TierDiscount,
)
from subscriptions.periods import money_round
from tests.factories import Tenant, catalogue, owner_of

pytestmark = pytest.mark.django_db

START = date(2026, 3, 10)
DAY = timedelta(days=1)
CENT = Decimal("0.01")
# The days every quote is read on, around and after the start.
PROBES = [START + offset * DAY for offset in (-5, 0, 4, 15, 35, 60, 100)]
# Beyond every row's first day: from here on nothing changes any more.
HORIZON = START + 200 * DAY


@dataclass(frozen=True)
class Rate:
    target: str  # "this" product, "all" products, or an "other" product
    percent: Decimal
    valid_from: date


def rates(max_size: int, min_size: int = 0) -> st.SearchStrategy[list[Rate]]:
    rate = st.builds(
        Rate,
        target=st.sampled_from(["this", "all", "other"]),
        # Round rates, and odd ones for the rounding.
        percent=st.one_of(
            st.sampled_from([0, 5, 10, 20, 50]).map(Decimal),
            st.integers(min_value=0, max_value=9999).map(lambda cents: cents * CENT),
        ),
        valid_from=st.integers(min_value=-20, max_value=60).map(lambda n: START + n * DAY),
    )
    # The database keeps one row per product (or for all) and day.
    return st.lists(
        rate, min_size=min_size, max_size=max_size, unique_by=lambda r: (r.target, r.valid_from)
    )


def expected_percent(overrides: list[Rate], tier: list[Rate], day: date) -> Decimal:
    """The reference reading of the discount rules."""
    for rows in (overrides, tier):
        for target in ("this", "all"):
            found = [r for r in rows if r.target == target and r.valid_from <= day]
            if found:
                return max(found, key=lambda r: r.valid_from).percent
    return Decimal("0")


OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("wait"), st.integers(min_value=1, max_value=20)),
        st.tuples(
            st.just("rule"),
            st.sampled_from(["list", "markup", "fixed"]),
            st.integers(min_value=0, max_value=5000),  # markup: 0 to 50.00 %
            # fixed price: cents above (or below) the cost on its first day
            st.integers(min_value=-30, max_value=80),
            st.integers(min_value=-2, max_value=40),  # first day, from today
        ),
        st.tuples(
            st.just("special"),
            st.integers(min_value=-30, max_value=80),  # price: cents above the first day's cost
            st.integers(min_value=-2, max_value=60),  # first day, from today
            st.one_of(st.none(), st.integers(min_value=1, max_value=60)),  # days it lasts
        ),
        st.tuples(
            st.just("end"),
            st.integers(min_value=0, max_value=5),  # which special price
            st.integers(min_value=-1, max_value=30),  # its end, from today
        ),
    ),
    min_size=2,
    max_size=8,
)


@hypothesis_settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    list_cents=st.integers(min_value=1, max_value=1000),
    in_tier=st.booleans(),
    tier_rates=rates(5, min_size=1),
    override_rates=rates(4),
    operations=OPERATIONS,
)
# The cost rises after the first day (the tier's discount for the product falls from 20 % to
# 5 % on the 30th): prices above the first day's cost but below the later one are refused.
@example(
    list_cents=400,
    in_tier=True,
    tier_rates=[
        Rate("all", Decimal("20"), START - 10 * DAY),
        Rate("this", Decimal("5"), START + 20 * DAY),
    ],
    override_rates=[],
    operations=[("rule", "fixed", 0, 10, 0), ("special", 10, 1, None), ("special", 10, 1, 19)],
)
def test_prices_follow_the_rules_and_never_fall_below_cost(
    tenant: Tenant,
    other_tenant: Tenant,
    list_cents: int,
    in_tier: bool,
    tier_rates: list[Rate],
    override_rates: list[Rate],
    operations: list[tuple],
) -> None:
    # Each example in its own transaction, rolled back: the next starts from the fixtures.
    with transaction.atomic(), time_machine.travel(START, tick=False) as traveller:
        _run(
            tenant,
            traveller,
            list_price=list_cents * CENT,
            tier_rates=tier_rates if in_tier else [],
            in_tier=in_tier,
            override_rates=override_rates,
            operations=operations,
        )
        transaction.set_rollback(True)


def _run(
    tenant: Tenant,
    traveller: time_machine.Traveller,
    *,
    list_price: Decimal,
    tier_rates: list[Rate],
    in_tier: bool,
    override_rates: list[Rate],
    operations: list[tuple],
) -> None:
    plan = catalogue(
        name="Priced", sku="priced", prices={Plan.Kind.FLEXIBLE: list_price}, currencies=("EUR",)
    )[Plan.Kind.FLEXIBLE]
    other = Product.objects.create(name="Other", sku="other")
    products = {"this": plan.product, "all": None, "other": other}
    reseller, customer = tenant.reseller, tenant.customer
    # Staff's terms first: the services check prices against what staff entered.
    tier = Tier.objects.create(name="Tier")
    for rate in tier_rates:
        TierDiscount.objects.create(
            tier=tier,
            product=products[rate.target],
            percent=rate.percent,
            valid_from=rate.valid_from,
        )
    if in_tier:
        ResellerTier.objects.create(reseller=reseller, tier=tier)
    for rate in override_rates:
        ResellerDiscount.objects.create(
            reseller=reseller,
            product=products[rate.target],
            percent=rate.percent,
            valid_from=rate.valid_from,
        )
    owner = owner_of(tenant)

    def cost_on(day: date) -> Decimal:
        percent = expected_percent(override_rates, tier_rates, day)
        return money_round(list_price * (1 - percent / 100))

    def below_cost_somewhere(price: Decimal, start: date, end: date | None) -> bool:
        day = start
        while day < (end or HORIZON):
            if cost_on(day) > price:
                return True
            day += DAY
        return False

    def rises_after(start: date, end: date | None) -> bool:
        """Whether the cost on some later day of [start, end) is above the cost on start."""
        first = cost_on(start)
        day = start
        while day < (end or HORIZON):
            if cost_on(day) > first:
                return True
            day += DAY
        return False

    def quotes() -> dict[date, pricing.PriceQuote]:
        return {
            day: pricing.customer_price(customer=customer, plan=plan, currency="EUR", on=day)
            for day in PROBES
        }

    specials: list[CustomerPrice] = []
    # The quotes are for fixed days, so they do not move with the clock: those after one
    # operation are those before the next.
    before = quotes()
    for operation in operations:
        today = timezone.localdate()
        takes_effect: date | None = None
        if operation[0] == "wait":
            traveller.shift(timedelta(days=operation[1]))
            continue
        if operation[0] == "rule":
            _, kind, markup_cents, above, offset = operation
            takes_effect = valid_from = today + offset * DAY
            price = max(cost_on(valid_from) + above * CENT, Decimal("0.00"))
            if kind == "fixed" and rises_after(valid_from, None):
                event("fixed price, the cost rises later")
            try:
                services.price_rule_set(
                    membership=owner,
                    plan=plan,
                    currency="EUR",
                    kind=kind,
                    markup_percent=markup_cents * CENT,
                    price=price,
                    valid_from=valid_from,
                )
            except ValidationError as error:
                code = _code(error)
                event(f"rule refused: {code}")
                assert code == ("past" if valid_from < today else "below_cost"), code
                if code == "below_cost":
                    assert kind == "fixed"
                    assert below_cost_somewhere(price, valid_from, None)
            else:
                event(f"rule accepted: {kind}")
                assert valid_from >= today
                if kind == "fixed":
                    assert not below_cost_somewhere(price, valid_from, None)
        elif operation[0] == "special":
            _, above, offset, lasts = operation
            takes_effect = valid_from = today + offset * DAY
            ends_on = valid_from + lasts * DAY if lasts else None
            price = max(cost_on(valid_from) + above * CENT, Decimal("0.00"))
            if rises_after(valid_from, ends_on):
                event("special price, the cost rises while it applies")
            try:
                special = services.customer_price_set(
                    membership=owner,
                    customer=customer,
                    plan=plan,
                    currency="EUR",
                    price=price,
                    valid_from=valid_from,
                    ends_on=ends_on,
                )
            except ValidationError as error:
                code = _code(error)
                event(f"special price refused: {code}")
                assert code == ("past" if valid_from < today else "below_cost"), code
                if code == "below_cost":
                    assert below_cost_somewhere(price, valid_from, ends_on)
            else:
                event("special price accepted")
                assert valid_from >= today
                assert not below_cost_somewhere(price, valid_from, ends_on)
                specials.append(special)
        elif operation[0] == "end" and specials:
            _, which, offset = operation
            special = specials[which % len(specials)]
            special.refresh_from_db()
            ends_on = today + offset * DAY
            try:
                ended = services.customer_price_end(
                    membership=owner, customer_price=special, ends_on=ends_on
                )
            except ValidationError as error:
                code = _code(error)
                event(f"end refused: {code}")
                if ends_on < today:
                    assert code == "past"
                else:
                    assert code == "already_ends"
                    assert special.ends_on is not None
                    assert special.ends_on <= max(ends_on, special.valid_from)
            else:
                event("special price ended")
                takes_effect = ended.ends_on
                assert takes_effect is not None and takes_effect >= today
        after = quotes()
        # Nothing changes before the day the change takes effect (nor, so, before today).
        for day in PROBES:
            if takes_effect is None or day < takes_effect:
                assert after[day] == before[day], (operation, day)
        before = after

    for day, quote in quotes().items():
        event(f"quoted from: {quote.source}")
        assert quote.margin == quote.customer_price - quote.cost
        assert quote.cost <= quote.customer_price, (day, quote)
        assert quote.cost == cost_on(day)
        assert quote.discount_percent == expected_percent(override_rates, tier_rates, day)
        assert quote.list_price == list_price
        if quote.source is pricing.PriceSource.LIST_PRICE:
            assert quote.customer_price == list_price


def _code(error: ValidationError) -> str:
    (errors,) = error.error_dict.values()
    return str(errors[0].code)
