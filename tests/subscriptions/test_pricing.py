"""Reseller economics, stage 1 (issue 16): the discount, the reseller's cost and the customer's
price, each in its resolution order and with the project's rounding; the price book and special
price services' refusals (next to the field, in words a person can read), roles, audit entries
and tenant isolation; the models' database checks; staff's admin pages."""

from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.http import Http404

from customers.models import Customer
from resellers.models import AuditEvent, Membership, Reseller
from resellers.roles import Role
from subscriptions import pricing, services
from subscriptions.models import (
    CustomerPrice,
    Plan,
    PriceRule,
    Product,
    ResellerDiscount,
    ResellerTier,
    Tier,
    TierDiscount,
)
from subscriptions.pricing import PriceSource
from tests.factories import CustomerFactory, Tenant, catalogue, member_of, owner_of

TODAY = date(2026, 3, 10)
DAY = timedelta(days=1)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _today() -> Iterator[None]:
    with time_machine.travel(TODAY, tick=False):
        yield


# Local builders (not in tests/factories.py yet): a tier with its rates, staff's overrides.


def tier_of(reseller: Reseller, name: str = "Gold", **rates: Decimal) -> Tier:
    """`reseller` in a tier whose discount for every product is `rates["every"]` from the start
    of the year (when given)."""
    tier = Tier.objects.create(name=name)
    if "every" in rates:
        TierDiscount.objects.create(
            tier=tier, product=None, percent=rates["every"], valid_from=date(2026, 1, 1)
        )
    ResellerTier.objects.update_or_create(reseller=reseller, defaults={"tier": tier})
    return tier


def field_error(error: pytest.ExceptionInfo[ValidationError], field: str) -> tuple[str, str]:
    """(code, message) of the one error next to `field`."""
    (found,) = error.value.error_dict[field]
    return str(found.code), " ".join(found.messages)


@pytest.fixture
def flexible(plans: dict[str, Plan]) -> Plan:
    """4.00 EUR / 5.00 USD per licence per month (the `plans` fixture's catalogue)."""
    return plans[Plan.Kind.FLEXIBLE]


@pytest.fixture
def owner(tenant: Tenant) -> Membership:
    return owner_of(tenant)


# --- discount_percent: override for the product, override for all, tier's, tier's for all ----


def test_discount_resolution_order_and_dates(tenant, other_tenant, flexible):
    product = flexible.product
    elsewhere = Product.objects.create(name="Other product", sku="other-product")
    tier = tier_of(tenant.reseller)
    # The same tier for the other reseller, which has no overrides.
    ResellerTier.objects.create(reseller=other_tenant.reseller, tier=tier)
    d0, d1, d2, d3 = (date(2026, 2, 1), date(2026, 2, 10), date(2026, 2, 20), date(2026, 3, 1))
    TierDiscount.objects.create(tier=tier, product=None, percent=Decimal("10"), valid_from=d0)
    TierDiscount.objects.create(tier=tier, product=product, percent=Decimal("15"), valid_from=d1)
    ResellerDiscount.objects.create(
        reseller=tenant.reseller, product=None, percent=Decimal("5"), valid_from=d2
    )
    # A 0 % override counts: it stops the next level.
    ResellerDiscount.objects.create(
        reseller=tenant.reseller, product=product, percent=Decimal("0"), valid_from=d3
    )

    def percent(reseller: Reseller, on: date, of: Product = product) -> Decimal:
        return pricing.discount_percent(reseller=reseller, product=of, on=on)

    assert percent(tenant.reseller, d0 - DAY) == 0  # nothing yet
    assert percent(tenant.reseller, d0) == Decimal("10")  # the tier's, for every product
    assert percent(tenant.reseller, d1) == Decimal("15")  # the tier's for the product
    assert percent(tenant.reseller, d2) == Decimal("5")  # the override, for every product
    assert percent(tenant.reseller, d3) == Decimal("0")  # the override for the product
    assert percent(tenant.reseller, d3, elsewhere) == Decimal("5")
    # The other reseller has the tier's rates only.
    assert percent(other_tenant.reseller, d3) == Decimal("15")
    assert percent(other_tenant.reseller, d3, elsewhere) == Decimal("10")


def test_no_tier_and_no_override_is_no_discount(tenant, flexible):
    assert pricing.discount_percent(
        reseller=tenant.reseller, product=flexible.product, on=TODAY
    ) == Decimal("0")
    tier_of(tenant.reseller)  # a tier without rates
    assert pricing.discount_percent(
        reseller=tenant.reseller, product=flexible.product, on=TODAY
    ) == Decimal("0")


def test_the_latest_rate_of_a_level_wins(tenant, flexible):
    tier = tier_of(tenant.reseller, every=Decimal("10"))
    TierDiscount.objects.create(
        tier=tier, product=None, percent=Decimal("20"), valid_from=TODAY + 5 * DAY
    )
    on = TODAY + 4 * DAY
    assert pricing.discount_percent(reseller=tenant.reseller, product=flexible.product, on=on) == 10
    on = TODAY + 5 * DAY
    assert pricing.discount_percent(reseller=tenant.reseller, product=flexible.product, on=on) == 20


# --- reseller_cost: list x (1 - discount), half-up to the cent --------------------------------


@pytest.mark.parametrize(
    ("list_price", "percent", "cost"),
    [
        ("4.00", "12.5", "3.50"),
        ("0.35", "30", "0.25"),  # 0.245: half-up (half-even would give 0.24)
        ("3.33", "15", "2.83"),  # 2.8305
        ("4.10", "12.5", "3.59"),  # 3.5875
        ("9.99", "0", "9.99"),
        ("9.99", "99.99", "0.00"),  # 0.000999
    ],
)
def test_reseller_cost_rounds_half_up(tenant, list_price, percent, cost):
    plans = catalogue(name="Priced", sku="priced", prices={Plan.Kind.FLEXIBLE: Decimal(list_price)})
    tier_of(tenant.reseller, every=Decimal(percent))
    found = pricing.reseller_cost(
        reseller=tenant.reseller, plan=plans[Plan.Kind.FLEXIBLE], currency="EUR", on=TODAY
    )
    assert found == Decimal(cost)


def test_cost_is_per_currency_and_refuses_a_currency_without_price(tenant, flexible):
    tier_of(tenant.reseller, every=Decimal("20"))
    assert pricing.reseller_cost(
        reseller=tenant.reseller, plan=flexible, currency="USD", on=TODAY
    ) == Decimal("4.00")
    with pytest.raises(ValidationError) as error:
        pricing.reseller_cost(reseller=tenant.reseller, plan=flexible, currency="GBP", on=TODAY)
    assert field_error(error, "plan")[0] == "no_price"


# --- customer_price: special price, price book, list price ------------------------------------


def test_without_entries_the_customer_pays_the_list_price(tenant, flexible):
    tier = tier_of(tenant.reseller, every=Decimal("10"))
    quote = pricing.customer_price(
        customer=tenant.customer, plan=flexible, currency="EUR", on=TODAY
    )
    assert (quote.list_price, quote.customer_price, quote.cost, quote.margin) == (
        Decimal("4.00"),
        Decimal("4.00"),
        Decimal("3.60"),
        Decimal("0.40"),
    )
    assert quote.discount_percent == Decimal("10")
    assert quote.source is PriceSource.LIST_PRICE
    assert (quote.price_rule_id, quote.customer_price_id, quote.reseller_discount_id) == (
        None,
        None,
        None,
    )
    assert quote.tier_id == tier.pk
    assert quote.tier_discount_id == TierDiscount.objects.get(tier=tier).pk


@pytest.mark.parametrize(
    ("kind", "markup", "price", "expected"),
    [
        (PriceRule.Kind.LIST, None, None, "4.00"),
        (PriceRule.Kind.MARKUP, "17.5", None, "4.11"),  # 3.50 x 1.175 = 4.1125
        (PriceRule.Kind.MARKUP, "3", None, "3.61"),  # 3.605: half-up
        (PriceRule.Kind.MARKUP, "0", None, "3.50"),
        (PriceRule.Kind.FIXED, None, "3.75", "3.75"),  # below list, above cost
        (PriceRule.Kind.FIXED, None, "6.00", "6.00"),
    ],
)
def test_the_price_book_entry_sets_the_price(
    tenant, owner, flexible, kind, markup, price, expected
):
    tier_of(tenant.reseller, every=Decimal("12.5"))  # cost 3.50
    rule = services.price_rule_set(
        membership=owner,
        plan=flexible,
        currency="EUR",
        kind=kind,
        markup_percent=Decimal(markup) if markup else None,
        price=Decimal(price) if price else None,
        valid_from=TODAY,
    )
    quote = pricing.customer_price(
        customer=tenant.customer, plan=flexible, currency="EUR", on=TODAY
    )
    assert quote.customer_price == Decimal(expected)
    assert quote.cost == Decimal("3.50")
    assert quote.margin == Decimal(expected) - Decimal("3.50")
    assert (quote.source, quote.price_rule_id) == (PriceSource.PRICE_RULE, rule.pk)


def test_a_rule_applies_from_its_day_and_the_latest_entered_wins(tenant, owner, flexible):
    def price_on(day: date) -> Decimal:
        quote = pricing.customer_price(
            customer=tenant.customer, plan=flexible, currency="EUR", on=day
        )
        return quote.customer_price

    services.price_rule_set(
        membership=owner,
        plan=flexible,
        currency="EUR",
        kind="fixed",
        price=Decimal("5.00"),
        valid_from=TODAY + 10 * DAY,
    )
    services.price_rule_set(
        membership=owner,
        plan=flexible,
        currency="EUR",
        kind="fixed",
        price=Decimal("6.00"),
        valid_from=TODAY + 20 * DAY,
    )
    services.price_rule_set(
        membership=owner,
        plan=flexible,
        currency="EUR",
        kind="fixed",
        price=Decimal("5.50"),
        valid_from=TODAY + 10 * DAY,
    )
    assert price_on(TODAY + 9 * DAY) == Decimal("4.00")  # the list price
    assert price_on(TODAY + 10 * DAY) == Decimal("5.50")  # entered later, same day
    assert price_on(TODAY + 19 * DAY) == Decimal("5.50")
    assert price_on(TODAY + 20 * DAY) == Decimal("6.00")
    entry = pricing.price_rule_on(
        reseller=tenant.reseller, plan=flexible, currency="EUR", on=TODAY + 19 * DAY
    )
    assert entry is not None and entry.price == Decimal("5.50")
    # The other currency is not priced by these entries.
    usd = pricing.customer_price(customer=tenant.customer, plan=flexible, currency="USD", on=TODAY)
    assert usd.customer_price == Decimal("5.00")


def test_a_special_price_comes_first_until_the_day_it_ends(tenant, owner, flexible):
    tier_of(tenant.reseller, every=Decimal("10"))  # cost 3.60
    services.price_rule_set(
        membership=owner,
        plan=flexible,
        currency="EUR",
        kind="markup",
        markup_percent=Decimal("10"),
        valid_from=TODAY,
    )
    special = services.customer_price_set(
        membership=owner,
        customer=tenant.customer,
        plan=flexible,
        currency="EUR",
        price=Decimal("3.90"),
        valid_from=TODAY + DAY,
        ends_on=TODAY + 5 * DAY,  # exclusive: the first day at the price book's price
    )

    def quote_on(day: date) -> pricing.PriceQuote:
        return pricing.customer_price(
            customer=tenant.customer, plan=flexible, currency="EUR", on=day
        )

    assert quote_on(TODAY).customer_price == Decimal("3.96")
    assert quote_on(TODAY + DAY).customer_price == Decimal("3.90")
    assert quote_on(TODAY + DAY).source is PriceSource.SPECIAL_PRICE
    assert quote_on(TODAY + DAY).customer_price_id == special.pk
    assert quote_on(TODAY + DAY).margin == Decimal("0.30")
    assert quote_on(TODAY + 4 * DAY).customer_price == Decimal("3.90")
    assert quote_on(TODAY + 5 * DAY).customer_price == Decimal("3.96")
    assert quote_on(TODAY + 5 * DAY).source is PriceSource.PRICE_RULE


def test_a_short_offer_over_a_standing_special_price_ends_back_at_it(tenant, owner, flexible):
    standing = special_price(owner, tenant.customer, flexible)  # 4.50 from today, no end
    offer = services.customer_price_set(
        membership=owner,
        customer=tenant.customer,
        plan=flexible,
        currency="EUR",
        price=Decimal("4.20"),
        valid_from=TODAY + 10 * DAY,
        ends_on=TODAY + 20 * DAY,
    )

    def special_on(day: date) -> int | None:
        return pricing.customer_price(
            customer=tenant.customer, plan=flexible, currency="EUR", on=day
        ).customer_price_id

    assert special_on(TODAY + 9 * DAY) == standing.pk
    assert special_on(TODAY + 10 * DAY) == offer.pk
    assert special_on(TODAY + 19 * DAY) == offer.pk
    assert special_on(TODAY + 20 * DAY) == standing.pk


# --- The services' refusals, next to the field -----------------------------------------------


def test_a_fixed_price_below_cost_is_refused_with_the_cost(tenant, owner, flexible):
    tier_of(tenant.reseller, every=Decimal("10"))  # cost 3.60
    with pytest.raises(ValidationError) as error:
        services.price_rule_set(
            membership=owner,
            plan=flexible,
            currency="EUR",
            kind="fixed",
            price=Decimal("3.59"),
            valid_from=TODAY,
        )
    code, message = field_error(error, "price")
    assert code == "below_cost"
    assert message == (
        "This price is below your cost of €3.60 per licence per month from March 10, 2026. "
        "Set at least your cost."
    )
    # At cost is allowed: a margin of 0.
    services.price_rule_set(
        membership=owner,
        plan=flexible,
        currency="EUR",
        kind="fixed",
        price=Decimal("3.60"),
        valid_from=TODAY,
    )
    assert PriceRule.objects.count() == 1


def test_never_below_a_cost_staff_already_set_for_a_later_day(tenant, owner, flexible):
    tier = tier_of(tenant.reseller, every=Decimal("20"))  # cost 3.20
    # From the 20th the tier's discount for this product falls to 5 %: cost 3.80.
    TierDiscount.objects.create(
        tier=tier, product=flexible.product, percent=Decimal("5"), valid_from=date(2026, 3, 20)
    )
    with pytest.raises(ValidationError) as error:
        services.price_rule_set(
            membership=owner,
            plan=flexible,
            currency="EUR",
            kind="fixed",
            price=Decimal("3.50"),
            valid_from=TODAY,
        )
    assert "€3.80 per licence per month from March 20, 2026" in field_error(error, "price")[1]
    # A special price that ends before that day only needs the cost until then.
    services.customer_price_set(
        membership=owner,
        customer=tenant.customer,
        plan=flexible,
        currency="EUR",
        price=Decimal("3.50"),
        valid_from=TODAY,
        ends_on=date(2026, 3, 20),
    )
    with pytest.raises(ValidationError) as error:
        services.customer_price_set(
            membership=owner,
            customer=tenant.customer,
            plan=flexible,
            currency="EUR",
            price=Decimal("3.50"),
            valid_from=TODAY,
            ends_on=date(2026, 3, 21),
        )
    assert field_error(error, "price")[0] == "below_cost"


def test_a_day_in_the_past_is_refused(tenant, owner, flexible):
    message = "Choose today or a later day: what applied on past days stays as it was."
    with pytest.raises(ValidationError) as error:
        services.price_rule_set(
            membership=owner, plan=flexible, currency="EUR", kind="list", valid_from=TODAY - DAY
        )
    assert field_error(error, "valid_from") == ("past", message)
    with pytest.raises(ValidationError) as error:
        services.customer_price_set(
            membership=owner,
            customer=tenant.customer,
            plan=flexible,
            currency="EUR",
            price=Decimal("4.00"),
            valid_from=TODAY - DAY,
        )
    assert field_error(error, "valid_from") == ("past", message)
    assert not PriceRule.objects.exists()
    assert not CustomerPrice.objects.exists()


@pytest.mark.parametrize(
    ("fields", "field", "code", "message"),
    [
        (
            {"kind": "markup"},
            "markup_percent",
            "required",
            "Enter the markup on your cost, as a percentage.",
        ),
        ({"kind": "fixed"}, "price", "required", "Enter the price per licence per month."),
        ({"kind": "cheap"}, "kind", "invalid", "Choose how the customer price is set."),
        (
            {"kind": "markup", "markup_percent": Decimal("-1")},
            "markup_percent",
            "min_value",
            "Ensure this value is greater than or equal to 0.",
        ),
        (
            {"kind": "fixed", "price": Decimal("12345678901")},
            "price",
            "max_digits",
            "Ensure that there are no more than 10 digits in total.",
        ),
        (
            {"currency": "GBP"},
            "plan",
            "no_price",
            "Shared Contacts for Gmail — Flexible is not offered in GBP.",
        ),
        (
            {"currency": "XYZ"},
            "currency",
            "invalid_choice",
            "Value 'XYZ' is not a valid choice.",
        ),
    ],
)
def test_price_book_refusals(owner, flexible, fields, field, code, message):
    arguments = {"kind": "list", "currency": "EUR", **fields}
    with pytest.raises(ValidationError) as error:
        services.price_rule_set(membership=owner, plan=flexible, valid_from=TODAY, **arguments)
    assert field_error(error, field) == (code, message)
    assert not PriceRule.objects.exists()


def test_a_trial_has_no_price_to_set(tenant, owner, plans):
    trial = plans[Plan.Kind.TRIAL]
    with pytest.raises(ValidationError) as error:
        services.price_rule_set(
            membership=owner,
            plan=trial,
            currency="EUR",
            kind="fixed",
            price=Decimal("1"),
            valid_from=TODAY,
        )
    assert field_error(error, "plan") == ("trial", "A trial is free: it has no price to set.")
    with pytest.raises(ValidationError) as error:
        services.customer_price_set(
            membership=owner,
            customer=tenant.customer,
            plan=trial,
            currency="EUR",
            price=Decimal("1"),
            valid_from=TODAY,
        )
    assert field_error(error, "plan")[0] == "trial"


def test_the_value_a_kind_does_not_use_is_not_kept(owner, flexible):
    rule = services.price_rule_set(
        membership=owner,
        plan=flexible,
        currency="EUR",
        kind="markup",
        markup_percent=Decimal("10"),
        price=Decimal("9.00"),
        valid_from=TODAY,
    )
    rule.refresh_from_db()
    assert (rule.markup_percent, rule.price) == (Decimal("10.00"), None)


def test_a_special_price_must_end_after_it_starts(tenant, owner, flexible):
    with pytest.raises(ValidationError) as error:
        services.customer_price_set(
            membership=owner,
            customer=tenant.customer,
            plan=flexible,
            currency="EUR",
            price=Decimal("4.00"),
            valid_from=TODAY + DAY,
            ends_on=TODAY + DAY,
        )
    assert field_error(error, "ends_on") == (
        "order",
        "The special price must end after the day it starts.",
    )


def test_another_resellers_customer_is_refused(tenant, other_tenant, owner, flexible):
    with pytest.raises(PermissionDenied, match="belongs to another reseller"):
        services.customer_price_set(
            membership=owner,
            customer=other_tenant.customer,
            plan=flexible,
            currency="EUR",
            price=Decimal("4.00"),
            valid_from=TODAY,
        )
    # A customer that left the reseller is no longer its to price either.
    Customer.objects.filter(pk=tenant.customer.pk).update(status=Customer.Status.TRANSFERRED_OUT)
    tenant.customer.refresh_from_db()
    with pytest.raises(PermissionDenied):
        services.customer_price_set(
            membership=owner,
            customer=tenant.customer,
            plan=flexible,
            currency="EUR",
            price=Decimal("4.00"),
            valid_from=TODAY,
        )
    assert not CustomerPrice.objects.exists()


# --- Ending a special price ------------------------------------------------------------------


def special_price(owner: Membership, customer: Customer, plan: Plan, **fields) -> CustomerPrice:
    fields.setdefault("valid_from", TODAY)
    return services.customer_price_set(
        membership=owner,
        customer=customer,
        plan=plan,
        currency="EUR",
        price=Decimal("4.50"),
        **fields,
    )


def test_ending_a_special_price_today(tenant, owner, flexible):
    special = special_price(owner, tenant.customer, flexible, valid_from=TODAY - 0 * DAY)
    with time_machine.travel(TODAY + 3 * DAY, tick=False):
        ended = services.customer_price_end(membership=owner, customer_price=special)
        assert ended.ends_on == TODAY + 3 * DAY
        quote = pricing.customer_price(
            customer=tenant.customer, plan=flexible, currency="EUR", on=TODAY + 3 * DAY
        )
    assert quote.source is PriceSource.LIST_PRICE
    earlier = pricing.customer_price(
        customer=tenant.customer, plan=flexible, currency="EUR", on=TODAY + 2 * DAY
    )
    assert earlier.customer_price == Decimal("4.50")


def test_ending_a_special_price_that_has_not_started_withdraws_it(tenant, owner, flexible):
    special = special_price(owner, tenant.customer, flexible, valid_from=TODAY + 5 * DAY)
    ended = services.customer_price_end(membership=owner, customer_price=special)
    assert ended.ends_on == TODAY + 5 * DAY
    for day in (TODAY + 5 * DAY, TODAY + 30 * DAY):
        quote = pricing.customer_price(
            customer=tenant.customer, plan=flexible, currency="EUR", on=day
        )
        assert quote.source is PriceSource.LIST_PRICE


def test_an_end_is_brought_forward_never_put_off_or_in_the_past(tenant, owner, flexible):
    special = special_price(owner, tenant.customer, flexible, ends_on=TODAY + 10 * DAY)
    with pytest.raises(ValidationError) as error:
        services.customer_price_end(
            membership=owner, customer_price=special, ends_on=TODAY + 10 * DAY
        )
    assert field_error(error, "ends_on") == (
        "already_ends",
        "This special price already ends on March 20, 2026.",
    )
    with pytest.raises(ValidationError) as error:
        services.customer_price_end(membership=owner, customer_price=special, ends_on=TODAY - DAY)
    assert field_error(error, "ends_on")[0] == "past"
    services.customer_price_end(membership=owner, customer_price=special, ends_on=TODAY + 4 * DAY)
    special.refresh_from_db()
    assert special.ends_on == TODAY + 4 * DAY


def test_another_reseller_cannot_end_a_special_price(tenant, other_tenant, owner, flexible):
    special = special_price(owner, tenant.customer, flexible)
    with pytest.raises(PermissionDenied):
        services.customer_price_end(membership=owner_of(other_tenant), customer_price=special)
    special.refresh_from_db()
    assert special.ends_on is None


# --- Roles -----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN, Role.BILLING])
def test_owner_admin_and_billing_manage_prices(tenant, flexible, role):
    member = member_of(tenant.reseller, role)
    services.price_rule_set(
        membership=member, plan=flexible, currency="EUR", kind="list", valid_from=TODAY
    )
    special = special_price(member, tenant.customer, flexible)
    services.customer_price_end(membership=member, customer_price=special)


def test_sales_manages_no_prices(tenant, owner, flexible):
    sales = member_of(tenant.reseller, Role.SALES)
    with pytest.raises(PermissionDenied):
        services.price_rule_set(
            membership=sales, plan=flexible, currency="EUR", kind="list", valid_from=TODAY
        )
    with pytest.raises(PermissionDenied):
        special_price(sales, tenant.customer, flexible)
    special = special_price(owner, tenant.customer, flexible, ends_on=TODAY + 9 * DAY)
    with pytest.raises(PermissionDenied):
        services.customer_price_end(membership=sales, customer_price=special)
    assert PriceRule.objects.count() == 0
    assert CustomerPrice.objects.get().ends_on == TODAY + 9 * DAY


@pytest.mark.parametrize(
    ("role", "sees_margin"),
    [(Role.OWNER, True), (Role.ADMIN, True), (Role.BILLING, True), (Role.SALES, False)],
)
def test_sales_sees_the_customer_price_but_not_cost_or_margin(
    tenant, owner, flexible, role, sees_margin
):
    tier_of(tenant.reseller, every=Decimal("10"))
    special_price(owner, tenant.customer, flexible)
    seen = pricing.customer_price_for_member(
        membership=member_of(tenant.reseller, role),
        customer=tenant.customer,
        plan=flexible,
        currency="EUR",
        on=TODAY,
    )
    assert (seen.list_price, seen.customer_price) == (Decimal("4.00"), Decimal("4.50"))
    if sees_margin:
        assert (seen.cost, seen.discount_percent, seen.margin) == (
            Decimal("3.60"),
            Decimal("10"),
            Decimal("0.90"),
        )
    else:
        assert (seen.cost, seen.discount_percent, seen.margin) == (None, None, None)


def test_another_resellers_customer_price_is_a_404(tenant, other_tenant, flexible):
    with pytest.raises(Http404):
        pricing.customer_price_for_member(
            membership=owner_of(tenant),
            customer=other_tenant.customer,
            plan=flexible,
            currency="EUR",
            on=TODAY,
        )


# --- Audit -----------------------------------------------------------------------------------


def test_every_price_change_is_audited(tenant, owner, flexible):
    rule = services.price_rule_set(
        membership=owner,
        plan=flexible,
        currency="EUR",
        kind="markup",
        markup_percent=Decimal("15"),
        valid_from=TODAY + DAY,
    )
    special = special_price(owner, tenant.customer, flexible)
    services.customer_price_end(membership=owner, customer_price=special, ends_on=TODAY + DAY)

    set_rule, set_special, ended = AuditEvent.objects.order_by("id")
    assert (set_rule.action, set_rule.actor, set_rule.reseller) == (
        "price_rule.set",
        tenant.owner,
        tenant.reseller,
    )
    assert set_rule.object_id == str(rule.pk)
    assert set_rule.after == {
        "plan_id": flexible.pk,
        "currency": "EUR",
        "kind": "markup",
        "markup_percent": "15",
        "price": None,
        "valid_from": str(TODAY + DAY),
    }
    assert (set_special.action, set_special.customer_public_id) == (
        "customer_price.set",
        tenant.customer.public_id,
    )
    assert set_special.after is not None and set_special.after["price"] == "4.50"
    assert (ended.action, ended.before, ended.after) == (
        "customer_price.ended",
        {"ends_on": None},
        {"ends_on": str(TODAY + DAY)},
    )
    assert ended.actor_email == tenant.owner.email
    assert ended.action_label == "Special customer price ended"


def test_a_refused_change_writes_nothing(tenant, owner, flexible):
    tier_of(tenant.reseller, every=Decimal("10"))
    with pytest.raises(ValidationError):
        services.price_rule_set(
            membership=owner,
            plan=flexible,
            currency="EUR",
            kind="fixed",
            price=Decimal("1.00"),
            valid_from=TODAY,
        )
    assert not AuditEvent.objects.exists()


# --- Tenant isolation ------------------------------------------------------------------------


def test_one_resellers_prices_and_discounts_never_reach_another(
    tenant, other_tenant, owner, flexible
):
    tier_of(tenant.reseller, "Gold", every=Decimal("20"))
    ResellerDiscount.objects.create(
        reseller=tenant.reseller, product=None, percent=Decimal("25"), valid_from=TODAY
    )
    services.price_rule_set(
        membership=owner,
        plan=flexible,
        currency="EUR",
        kind="fixed",
        price=Decimal("3.10"),
        valid_from=TODAY,
    )
    special_price(owner, tenant.customer, flexible)

    theirs = pricing.customer_price(
        customer=other_tenant.customer, plan=flexible, currency="EUR", on=TODAY
    )
    assert (theirs.customer_price, theirs.cost, theirs.source) == (
        Decimal("4.00"),
        Decimal("4.00"),
        PriceSource.LIST_PRICE,
    )
    # A second customer of the same reseller gets the price book, not the special price.
    second = CustomerFactory(reseller=tenant.reseller)
    ours = pricing.customer_price(customer=second, plan=flexible, currency="EUR", on=TODAY)
    assert (ours.customer_price, ours.cost, ours.discount_percent) == (
        Decimal("3.10"),
        Decimal("3.00"),
        Decimal("25"),
    )


# --- highest_cost ------------------------------------------------------------------------------


def test_highest_cost_reads_every_known_change_in_the_window(tenant, flexible):
    tier = tier_of(tenant.reseller, every=Decimal("20"))  # 3.20
    TierDiscount.objects.create(
        tier=tier, product=None, percent=Decimal("10"), valid_from=date(2026, 4, 1)
    )  # 3.60
    ResellerDiscount.objects.create(
        reseller=tenant.reseller, product=None, percent=Decimal("2"), valid_from=date(2026, 5, 1)
    )  # 3.92
    ResellerDiscount.objects.create(
        reseller=tenant.reseller,
        product=flexible.product,
        percent=Decimal("30"),
        valid_from=date(2026, 6, 1),
    )  # 2.80

    def highest(start: date, end: date | None = None) -> tuple[Decimal, date]:
        return pricing.highest_cost(
            reseller=tenant.reseller, plan=flexible, currency="EUR", start=start, end=end
        )

    assert highest(TODAY) == (Decimal("3.92"), date(2026, 5, 1))
    assert highest(TODAY, date(2026, 5, 1)) == (Decimal("3.60"), date(2026, 4, 1))
    assert highest(TODAY, date(2026, 4, 1)) == (Decimal("3.20"), TODAY)
    assert highest(date(2026, 6, 1)) == (Decimal("2.80"), date(2026, 6, 1))


# --- The database's own checks ----------------------------------------------------------------


@pytest.mark.parametrize("percent", [Decimal("100"), Decimal("-0.01")])
def test_the_database_refuses_a_discount_out_of_range(tenant, percent):
    tier = Tier.objects.create(name="Broken")
    with transaction.atomic(), pytest.raises(IntegrityError):
        TierDiscount.objects.create(tier=tier, percent=percent, valid_from=TODAY)
    with transaction.atomic(), pytest.raises(IntegrityError):
        ResellerDiscount.objects.create(reseller=tenant.reseller, percent=percent, valid_from=TODAY)


def test_the_database_keeps_one_rate_per_day_also_for_every_product(tenant, flexible):
    tier = Tier.objects.create(name="Silver")
    TierDiscount.objects.create(tier=tier, percent=Decimal("5"), valid_from=TODAY)
    with transaction.atomic(), pytest.raises(IntegrityError):
        TierDiscount.objects.create(tier=tier, percent=Decimal("6"), valid_from=TODAY)
    TierDiscount.objects.create(
        tier=tier, product=flexible.product, percent=Decimal("6"), valid_from=TODAY
    )
    with transaction.atomic(), pytest.raises(IntegrityError):
        TierDiscount.objects.create(
            tier=tier, product=flexible.product, percent=Decimal("7"), valid_from=TODAY
        )


@pytest.mark.parametrize(
    ("kind", "markup", "price"),
    [
        ("list", Decimal("5"), None),
        ("markup", None, None),
        ("markup", Decimal("5"), Decimal("4")),
        ("markup", Decimal("-5"), None),
        ("fixed", None, None),
        ("fixed", None, Decimal("-1")),
        ("fixed", Decimal("5"), Decimal("4")),
    ],
)
def test_the_database_refuses_an_inconsistent_price_book_entry(
    tenant, flexible, kind, markup, price
):
    with transaction.atomic(), pytest.raises(IntegrityError):
        PriceRule.objects.create(
            reseller=tenant.reseller,
            plan=flexible,
            currency="EUR",
            kind=kind,
            markup_percent=markup,
            price=price,
            valid_from=TODAY,
        )


def test_the_database_refuses_a_special_price_ending_before_it_starts(tenant, flexible):
    with transaction.atomic(), pytest.raises(IntegrityError):
        CustomerPrice.objects.create(
            reseller=tenant.reseller,
            customer=tenant.customer,
            plan=flexible,
            currency="EUR",
            price=Decimal("4"),
            valid_from=TODAY,
            ends_on=TODAY - DAY,
        )


# --- Staff's admin pages ---------------------------------------------------------------------


def test_staff_add_a_tier_with_its_rates_from_today_on(staff_client, flexible):
    url = "/admin/subscriptions/tier/add/"
    assert staff_client.get(url).status_code == 200
    data = {
        "name": "Gold",
        "discounts-TOTAL_FORMS": "1",
        "discounts-INITIAL_FORMS": "0",
        "discounts-0-product": "",
        "discounts-0-percent": "20",
        "discounts-0-valid_from": str(TODAY - DAY),
    }
    refused = staff_client.post(url, data)
    assert refused.status_code == 200
    assert "what applied on past days stays as it was" in refused.content.decode()
    assert not Tier.objects.exists()

    added = staff_client.post(url, {**data, "discounts-0-valid_from": str(TODAY)})
    assert added.status_code == 302
    (rate,) = TierDiscount.objects.all()
    assert (rate.tier.name, rate.product, rate.percent) == ("Gold", None, Decimal("20.00"))


def test_staff_set_a_resellers_tier_and_override(staff_client, tenant, flexible):
    tier = Tier.objects.create(name="Silver")
    added = staff_client.post(
        "/admin/subscriptions/resellertier/add/",
        {"reseller": tenant.reseller.pk, "tier": tier.pk},
    )
    assert added.status_code == 302
    assert ResellerTier.objects.get(reseller=tenant.reseller).tier == tier
    url = "/admin/subscriptions/resellerdiscount/add/"
    override = {
        "reseller": tenant.reseller.pk,
        "product": flexible.product.pk,
        "percent": "12.5",
        "valid_from": str(TODAY - DAY),
    }
    assert staff_client.post(url, override).status_code == 200  # a day in the past
    assert staff_client.post(url, {**override, "valid_from": str(TODAY)}).status_code == 302
    assert pricing.discount_percent(
        reseller=tenant.reseller, product=flexible.product, on=TODAY
    ) == Decimal("12.5")
    # Added, then kept: no change or deletion.
    discount = ResellerDiscount.objects.get()
    change = f"/admin/subscriptions/resellerdiscount/{discount.pk}/change/"
    assert staff_client.post(change, {**override, "percent": "50"}).status_code == 403
    delete = f"/admin/subscriptions/resellerdiscount/{discount.pk}/delete/"
    assert staff_client.post(delete, {"post": "yes"}).status_code == 403
    assert ResellerDiscount.objects.get().percent == Decimal("12.50")


def test_staff_read_the_price_books_and_special_prices(staff_client, tenant, owner, flexible):
    rule = services.price_rule_set(
        membership=owner, plan=flexible, currency="EUR", kind="list", valid_from=TODAY
    )
    special = special_price(owner, tenant.customer, flexible)
    for model, obj in (("pricerule", rule), ("customerprice", special)):
        assert staff_client.get(f"/admin/subscriptions/{model}/").status_code == 200
        page = staff_client.get(f"/admin/subscriptions/{model}/{obj.pk}/change/")
        assert page.status_code == 200
        assert staff_client.get(f"/admin/subscriptions/{model}/add/").status_code == 403


# --- Cost of a quote ---------------------------------------------------------------------------


def test_a_quote_reads_a_fixed_number_of_rows(
    tenant, owner, flexible, django_assert_max_num_queries
):
    """Catalogue price, tier, override, tier rate, special price, price book entry: however
    many rows each table holds (a charge will quote every subscription's next period)."""
    tier = tier_of(tenant.reseller, every=Decimal("10"))
    for n in range(5):
        TierDiscount.objects.create(
            tier=tier, product=flexible.product, percent=n, valid_from=TODAY + n * DAY
        )
        services.price_rule_set(
            membership=owner,
            plan=flexible,
            currency="EUR",
            kind="markup",
            markup_percent=Decimal(n),
            valid_from=TODAY + n * DAY,
        )
    customer = Customer.objects.get(pk=tenant.customer.pk)
    with django_assert_max_num_queries(6):
        quote = pricing.customer_price(
            customer=customer, plan=flexible, currency="EUR", on=TODAY + 3 * DAY
        )
    # Cost 4.00 x 0.97 = 3.88; 3.88 x 1.03 = 3.9964.
    assert (quote.cost, quote.customer_price) == (Decimal("3.88"), Decimal("4.00"))
