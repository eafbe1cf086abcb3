"""Reseller economics, stage 2 (issue 16): orders, proration, plan changes and renewals charge
the customer's price, and every charge keeps what it was priced from (list price, the
reseller's cost and margin, the source and the rows), computed with the same rounding as its
amount, never recomputed later. The previews show the reseller its cost and margin, to the
roles that may see them; the customer side never shows them."""

from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import IntegrityError, transaction
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from core.money import money_format
from resellers.roles import Role
from subscriptions import services
from subscriptions.models import (
    Charge,
    Plan,
    PlanPrice,
    PriceSource,
    ResellerDiscount,
    TierDiscount,
)
from subscriptions.periods import Period, prorate
from tests.factories import (
    Tenant,
    admin_of,
    buy,
    catalogue,
    change,
    member_of,
    owner_of,
    price_rule_for,
    special_price_for,
    tier_for,
)

D = Decimal
TODAY = date(2026, 3, 10)
DAY = timedelta(days=1)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _today() -> Iterator[None]:
    with time_machine.travel(TODAY, tick=False):
        yield


@pytest.fixture
def gold(tenant: Tenant) -> TierDiscount:
    """The tenant's reseller is Gold: 20 % off every list price (flexible 4.00 EUR: cost
    3.20; annual paid yearly 3.00: cost 2.40)."""
    tier = tier_for(tenant.reseller, D("20"))
    return TierDiscount.objects.get(tier=tier)


def snapshot(charge: Charge) -> dict[str, object]:
    return {
        "unit_price": charge.unit_price,
        "amount": charge.amount,
        "list_unit_price": charge.list_unit_price,
        "unit_cost": charge.unit_cost,
        "unit_margin": charge.unit_margin,
        "cost_amount": charge.cost_amount,
        "margin_amount": charge.margin_amount,
        "monthly_list_price": charge.monthly_list_price,
        "monthly_price": charge.monthly_price,
        "monthly_cost": charge.monthly_cost,
        "price_source": charge.price_source,
    }


# --- Purchase: the customer's price of the day ------------------------------------------------


def test_purchase_at_a_special_price(tenant, other_tenant, plans, gold):
    flexible = plans[Plan.Kind.FLEXIBLE]
    special = special_price_for(tenant.customer, flexible, D("3.60"), valid_from=TODAY)
    # The other reseller's customer pays the list price.
    buy(owner_of(other_tenant), flexible, licences=5)
    sub = buy(owner_of(tenant), flexible, licences=5)
    assert sub.monthly_price == D("3.60")
    charge = Charge.objects.get(subscription=sub)
    assert snapshot(charge) == {
        "unit_price": D("3.60"),
        "amount": D("18.00"),
        "list_unit_price": D("4.00"),
        "unit_cost": D("3.20"),
        "unit_margin": D("0.40"),
        "cost_amount": D("16.00"),
        "margin_amount": D("2.00"),
        "monthly_list_price": D("4.00"),
        "monthly_price": D("3.60"),
        "monthly_cost": D("3.20"),
        "price_source": PriceSource.SPECIAL_PRICE,
    }
    assert charge.customer_price == special and charge.price_rule is None
    assert (charge.tier, charge.tier_discount, charge.reseller_discount) == (
        gold.tier,
        gold,
        None,
    )
    assert sub.orders.get().amount == D("18.00")
    other = Charge.objects.get(customer=other_tenant.customer)
    assert (other.amount, other.cost_amount, other.price_source) == (
        D("20.00"),
        D("20.00"),
        PriceSource.LIST_PRICE,
    )


def test_purchase_at_a_markup_on_cost(tenant, other_tenant, plans, gold):
    flexible = plans[Plan.Kind.FLEXIBLE]
    rule = price_rule_for(tenant.reseller, flexible, kind="markup", markup_percent=D("10"))
    sub = buy(owner_of(tenant), flexible, licences=5)
    # 3.20 + 10 % = 3.52
    assert sub.monthly_price == D("3.52")
    charge = Charge.objects.get(subscription=sub)
    assert (charge.amount, charge.cost_amount, charge.margin_amount) == (
        D("17.60"),
        D("16.00"),
        D("1.60"),
    )
    assert (charge.price_source, charge.price_rule, charge.customer_price) == (
        PriceSource.PRICE_RULE,
        rule,
        None,
    )


def test_purchase_at_a_fixed_price_on_a_yearly_plan(tenant, other_tenant, plans, gold):
    yearly = plans[Plan.Kind.ANNUAL_YEARLY]
    rule = price_rule_for(tenant.reseller, yearly, kind="fixed", price=D("2.90"))
    sub = buy(owner_of(tenant), yearly, licences=3)
    charge = Charge.objects.get(subscription=sub)
    # Per licence for the 12-month period: 2.90 x 12, the cost 2.40 x 12.
    assert snapshot(charge) == {
        "unit_price": D("34.80"),
        "amount": D("104.40"),
        "list_unit_price": D("36.00"),
        "unit_cost": D("28.80"),
        "unit_margin": D("6.00"),
        "cost_amount": D("86.40"),
        "margin_amount": D("18.00"),
        "monthly_list_price": D("3.00"),
        "monthly_price": D("2.90"),
        "monthly_cost": D("2.40"),
        "price_source": PriceSource.PRICE_RULE,
    }
    assert charge.price_rule == rule


# --- Proration: the period's price, the cost of its first day --------------------------------


def test_proration_at_the_current_period_price_and_its_first_days_cost(
    tenant, other_tenant, plans, gold
):
    flexible = plans[Plan.Kind.FLEXIBLE]
    sub = buy(owner_of(tenant), flexible, licences=5)  # 10 March - 9 April, at 4.00
    later = TODAY + 10 * DAY
    # From 20 March the reseller's cost falls (25 % off) and its price book says 3.60: neither
    # touches the period that started on 10 March.
    ResellerDiscount.objects.create(
        reseller=tenant.reseller, product=None, percent=D("25"), valid_from=later
    )
    price_rule_for(tenant.reseller, flexible, kind="fixed", price=D("3.60"), valid_from=later)
    with time_machine.travel(TODAY + 15 * DAY, tick=False):
        order = change(owner_of(tenant), sub, 7)
    period = Period(TODAY, date(2026, 4, 10))
    on = TODAY + 15 * DAY
    expected = prorate(licences=2, period_price=D("4.00"), period=period, on=on)
    expected_cost = prorate(licences=2, period_price=D("3.20"), period=period, on=on)
    assert (expected, expected_cost) == (D("4.13"), D("3.30"))  # 2 x 4.00 x 16/31; x 3.20
    assert order.amount == expected
    charge = Charge.objects.get(kind=Charge.Kind.PRORATION)
    assert (charge.unit_price, charge.amount, charge.unit_cost, charge.cost_amount) == (
        D("4.00"),
        expected,
        D("3.20"),
        expected_cost,
    )
    assert charge.margin_amount == expected - expected_cost
    assert (charge.price_source, charge.price_rule, charge.reseller_discount) == (
        PriceSource.LIST_PRICE,
        None,
        None,
    )


def test_licences_added_keep_a_price_the_period_kept(tenant, other_tenant, plans, gold):
    """The reseller raised its price without notice: the renewed period keeps the old one,
    and licences added during it pay that too; the source says the price was kept."""
    flexible = plans[Plan.Kind.FLEXIBLE]
    sub = buy(owner_of(tenant), flexible, licences=5)
    price_rule_for(tenant.reseller, flexible, kind="fixed", price=D("4.50"), valid_from=TODAY)
    with time_machine.travel(date(2026, 4, 20), tick=False):
        change(owner_of(tenant), sub, 6)
    sub.refresh_from_db()
    assert sub.monthly_price == D("4.00")
    period, added = Charge.objects.filter(kind__in=["period", "proration"]).order_by("kind")
    assert (period.monthly_price, period.price_source, period.price_rule) == (
        D("4.00"),
        PriceSource.PERIOD_PRICE,
        None,
    )
    assert (added.monthly_price, added.monthly_cost, added.price_source) == (
        D("4.00"),
        D("3.20"),
        PriceSource.PERIOD_PRICE,
    )


# --- Renewal and plan change -------------------------------------------------------------------


def test_a_renewal_picks_up_a_decrease_without_notice(tenant, other_tenant, plans, gold):
    flexible = plans[Plan.Kind.FLEXIBLE]
    sub = buy(owner_of(tenant), flexible, licences=5)
    special = special_price_for(tenant.customer, flexible, D("3.50"), valid_from=TODAY + 5 * DAY)
    services.subscription_renew_due(subscription_id=sub.pk, today=date(2026, 4, 10))
    sub.refresh_from_db()
    assert sub.monthly_price == D("3.50")
    charge = Charge.objects.get(kind=Charge.Kind.PERIOD)
    assert (charge.period_start, charge.amount, charge.cost_amount, charge.margin_amount) == (
        date(2026, 4, 10),
        D("17.50"),
        D("16.00"),
        D("1.50"),
    )
    assert (charge.price_source, charge.customer_price) == (PriceSource.SPECIAL_PRICE, special)
    assert not sub.price_notices.exists()


def test_a_plan_change_charges_the_new_plan_at_the_customers_price(
    tenant, other_tenant, plans, gold
):
    flexible, yearly = plans[Plan.Kind.FLEXIBLE], plans[Plan.Kind.ANNUAL_YEARLY]
    sub = buy(owner_of(tenant), flexible, licences=5)
    rule = price_rule_for(tenant.reseller, yearly, kind="fixed", price=D("2.90"))
    # The reseller's cost for the months billed falls from 10 April, the first of them.
    ResellerDiscount.objects.create(
        reseller=tenant.reseller, product=None, percent=D("30"), valid_from=date(2026, 4, 10)
    )
    with time_machine.travel(TODAY + 10 * DAY, tick=False):
        services.subscription_change_plan(
            membership=owner_of(tenant), subscription=sub, plan=yearly
        )
    sub.refresh_from_db()
    assert sub.monthly_price == D("2.90")
    charge = Charge.objects.get(kind=Charge.Kind.PLAN_CHANGE)
    # The 11 months after the paid one: 2.90 x 11 per licence, cost 2.10 x 11.
    assert (charge.period_start, charge.period_end) == (date(2026, 4, 10), date(2027, 3, 10))
    assert (charge.unit_price, charge.amount) == (D("31.90"), D("159.50"))
    assert (charge.unit_cost, charge.cost_amount, charge.margin_amount) == (
        D("23.10"),
        D("115.50"),
        D("44.00"),
    )
    assert (charge.monthly_cost, charge.price_source, charge.price_rule) == (
        D("2.10"),
        PriceSource.PRICE_RULE,
        rule,
    )


def test_a_trial_converted_pays_the_customers_price(tenant, other_tenant, plans, gold):
    trial, flexible = plans[Plan.Kind.TRIAL], plans[Plan.Kind.FLEXIBLE]
    # A price book entry for the trial plan would never make it cost anything.
    sub = buy(owner_of(tenant), trial, licences=3)
    assert sub.monthly_price == D("0.00") and not Charge.objects.exists()
    price_rule_for(tenant.reseller, flexible, kind="markup", markup_percent=D("25"))
    services.subscription_change_plan(membership=owner_of(tenant), subscription=sub, plan=flexible)
    charge = Charge.objects.get()
    assert (charge.monthly_price, charge.amount, charge.cost_amount) == (
        D("4.00"),
        D("12.00"),
        D("9.60"),
    )


# --- The snapshot's arithmetic and its permanence ----------------------------------------------


def test_margin_is_amount_less_cost_on_every_charge(tenant, other_tenant, plans, gold):
    flexible, monthly = plans[Plan.Kind.FLEXIBLE], plans[Plan.Kind.ANNUAL_MONTHLY]
    price_rule_for(tenant.reseller, flexible, kind="markup", markup_percent=D("7.77"))
    sub = buy(owner_of(tenant), flexible, licences=3)
    other = buy(owner_of(other_tenant), monthly, licences=2)
    with time_machine.travel(TODAY + 13 * DAY, tick=False):
        change(owner_of(tenant), sub, 10)
        change(owner_of(other_tenant), other, 9)
    services.subscription_renew_due(subscription_id=sub.pk, today=date(2026, 5, 10))
    charges = list(Charge.objects.all())
    assert len(charges) == 6
    for charge in charges:
        assert charge.margin_amount == charge.amount - charge.cost_amount, charge
        assert charge.unit_margin == charge.unit_price - charge.unit_cost, charge
    # The database holds it too.
    charge = charges[0]
    with pytest.raises(IntegrityError), transaction.atomic():
        Charge.objects.filter(pk=charge.pk).update(margin_amount=charge.margin_amount + D("0.01"))


@hypothesis_settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    percent=st.integers(min_value=0, max_value=60),
    kind=st.sampled_from(["list", "markup", "fixed", "special"]),
    cents=st.integers(min_value=0, max_value=300),
    changes=st.lists(
        st.tuples(
            st.sampled_from(["catalogue", "tier", "override", "rule", "special"]),
            st.integers(min_value=0, max_value=500),
            st.integers(min_value=0, max_value=40),
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_a_price_change_never_alters_a_charge_already_made(
    tenant: Tenant,
    other_tenant: Tenant,
    percent: int,
    kind: str,
    cents: int,
    changes: list[tuple[str, int, int]],
) -> None:
    # Each example in its own transaction, rolled back: the next starts from the fixtures.
    with transaction.atomic(), time_machine.travel(TODAY, tick=False) as traveller:
        plan = catalogue(name="Priced", sku="priced", currencies=("EUR",))[Plan.Kind.FLEXIBLE]
        tier = tier_for(tenant.reseller, D(percent), name="Property tier")
        cost = (D("4.00") * (100 - percent) / 100).quantize(D("0.01"))
        owner = owner_of(tenant)
        above_cost = cost + cents * D("0.01")
        if kind == "special":
            special_price_for(tenant.customer, plan, above_cost)
        elif kind != "list":
            price_rule_for(
                tenant.reseller,
                plan,
                kind=kind,
                markup_percent=D(cents) / 10 if kind == "markup" else None,
                price=above_cost if kind == "fixed" else None,
            )
        sub = buy(owner, plan, licences=4)
        traveller.shift(12 * DAY)
        change(owner, sub, 6)
        made = {charge.pk: snapshot(charge) for charge in Charge.objects.all()}
        for what, value, days in changes:
            day = TODAY + (12 + days) * DAY
            if what == "catalogue":
                PlanPrice.objects.filter(plan=plan).update(monthly_price=value * D("0.01") + 1)
            elif what == "tier":
                TierDiscount.objects.update_or_create(
                    tier=tier, product=None, valid_from=day, defaults={"percent": value % 90}
                )
            elif what == "override":
                ResellerDiscount.objects.update_or_create(
                    reseller=tenant.reseller,
                    product=None,
                    valid_from=day,
                    defaults={"percent": value % 90},
                )
            # Written past the services (which refuse a price below cost): from a cent, as a
            # free period makes no charge at all.
            elif what == "rule":
                price_rule_for(tenant.reseller, plan, kind="fixed", price=(value + 1) * D("0.01"))
            else:
                special_price_for(tenant.customer, plan, (value + 1) * D("0.01"), valid_from=day)
        # Previews, the next periods and more licences after the changes.
        services.subscription_preview_licences(subscription=sub, new_count=8)
        services.subscription_renew_due(subscription_id=sub.pk, today=date(2026, 5, 10))
        traveller.move_to(date(2026, 5, 20))
        change(owner, sub, 8)
        for charge in Charge.objects.all():
            assert charge.margin_amount == charge.amount - charge.cost_amount
            if charge.pk in made:
                assert snapshot(charge) == made[charge.pk]
        assert Charge.objects.count() == len(made) + 3  # two periods and the licences added
        transaction.set_rollback(True)


# --- The previews: the reseller's cost and margin, to those who may see them -------------------


def buy_preview(client: Client, tenant: Tenant, plan: Plan, licences: int) -> str:
    response = client.get(
        reverse("subscriptions:buy", kwargs={"customer_id": tenant.customer.public_id}),
        {"plan": plan.public_id, "licences": str(licences)},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    return response.content.decode()


# Billing members see margins (Action.MARGIN_VIEW) but do not order: the order pages are not
# theirs (403), so the previews are the owner's, the admins' and sales'.
@pytest.mark.parametrize(
    ("role", "sees"), [(Role.OWNER, True), (Role.ADMIN, True), (Role.SALES, False)]
)
def test_the_previews_show_the_margin_to_owner_and_admin_not_sales(
    tenant, other_tenant, plans, gold, client_for, role, sees
):
    flexible, yearly = plans[Plan.Kind.FLEXIBLE], plans[Plan.Kind.ANNUAL_YEARLY]
    special_price_for(tenant.customer, flexible, D("3.60"))
    client = client_for(member_of(tenant.reseller, role).user)
    cost_text = money_format(D("16.00"), "EUR")  # 5 x 3.20
    margin_text = money_format(D("2.00"), "EUR")  # 5 x (3.60 - 3.20)

    body = buy_preview(client, tenant, flexible, 5)
    assert money_format(D("18.00"), "EUR") in body  # every role sees the customer's price
    assert ('id="cost-now"' in body, 'id="margin-now"' in body) == (sees, sees)
    assert (cost_text in body, margin_text in body) == (sees, sees)

    sub = buy(owner_of(tenant), flexible, licences=5)
    url = reverse("subscriptions:licences", kwargs={"subscription_id": sub.public_id})
    body = client.get(url, {"licences": "6"}, HTTP_HX_REQUEST="true").content.decode()
    # One licence for the whole period (the period started today): 3.60, cost 3.20.
    assert money_format(D("3.60"), "EUR") in body
    assert ('id="margin-now"' in body, money_format(D("0.40"), "EUR") in body) == (sees, sees)

    url = reverse("subscriptions:change_plan", kwargs={"subscription_id": sub.public_id})
    body = client.get(url, {"plan": yearly.public_id}).content.decode()
    # 11 months x 3.00 x 5 = 165.00 at the list price; the cost 11 x 2.40 x 5 = 132.00.
    assert money_format(D("165.00"), "EUR") in body
    assert ('id="plan-change-margin"' in body, money_format(D("132.00"), "EUR") in body) == (
        sees,
        sees,
    )


def test_the_buy_preview_charges_the_customers_price(tenant, other_tenant, plans, gold):
    flexible = plans[Plan.Kind.FLEXIBLE]
    price_rule_for(tenant.reseller, flexible, kind="markup", markup_percent=D("10"))
    quote = services.subscription_preview_purchase(
        customer=tenant.customer, plan=flexible, licences=5, currency="EUR"
    )
    assert (quote.due_now, quote.cost_now, quote.margin_now) == (D("17.60"), D("16.00"), D("1.60"))
    assert quote.recurring_amount == D("17.60")
    order = buy(owner_of(tenant), flexible, licences=5).orders.get()
    assert order.amount == quote.due_now


def test_the_customer_side_never_shows_cost_or_margin(
    tenant, other_tenant, plans, gold, client_for
):
    flexible = plans[Plan.Kind.FLEXIBLE]
    special_price_for(tenant.customer, flexible, D("3.60"))
    sub = buy(owner_of(tenant), flexible, licences=5)
    # A decrease from the next period, shown as the upcoming price.
    special_price_for(tenant.customer, flexible, D("3.40"), valid_from=TODAY + 3 * DAY)
    client = client_for(admin_of(tenant.customer))
    url = reverse(
        "my_subscriptions:detail",
        kwargs={"customer_id": tenant.customer.public_id, "subscription_id": sub.public_id},
    )
    body = client.get(url).content.decode()
    assert money_format(D("3.60"), "EUR") in body
    assert money_format(D("3.40"), "EUR") in body and 'id="upcoming-price"' in body
    for secret in (D("3.20"), D("0.40"), D("0.20"), D("16.00"), D("2.00")):
        assert money_format(secret, "EUR") not in body, secret
    assert "margin" not in body.lower() and "cost" not in body.lower()
    organisation = client.get(
        reverse("customer_side:organisation", kwargs={"customer_id": tenant.customer.public_id})
    ).content.decode()
    assert "margin" not in organisation.lower()
    assert money_format(D("3.20"), "EUR") not in organisation


def test_a_plan_no_longer_priced_keeps_its_price_at_no_known_cost(
    tenant, other_tenant, plans, gold
):
    flexible = plans[Plan.Kind.FLEXIBLE]
    sub = buy(owner_of(tenant), flexible, licences=5)
    PlanPrice.objects.filter(plan=flexible, currency="EUR").delete()
    charge = services.subscription_renew_due(subscription_id=sub.pk, today=date(2026, 4, 10))
    assert charge is True
    period = Charge.objects.get(kind=Charge.Kind.PERIOD)
    # No list price or cost to read: both taken as the price kept, a margin of 0.
    assert (period.monthly_price, period.monthly_list_price, period.monthly_cost) == (
        D("4.00"),
        D("4.00"),
        D("4.00"),
    )
    assert (period.amount, period.margin_amount, period.price_source) == (
        D("20.00"),
        D("0.00"),
        PriceSource.PERIOD_PRICE,
    )


def test_staff_read_the_snapshot_in_the_charge_admin(
    tenant, other_tenant, plans, gold, staff_client
):
    special_price_for(tenant.customer, plans[Plan.Kind.FLEXIBLE], D("3.60"))
    sub = buy(owner_of(tenant), plans[Plan.Kind.FLEXIBLE], licences=5)
    charge = Charge.objects.get(subscription=sub)
    url = reverse("admin:subscriptions_charge_change", args=[charge.pk])
    page = staff_client.get(url)
    assert page.status_code == 200
    body = page.content.decode()
    for label in ("Reseller cost", "Margin", "Price source", "Special customer price"):
        assert label in body, label
    # Read-only: no input for the snapshot, and no way to add or delete a charge.
    assert 'name="cost_amount"' not in body and 'name="margin_amount"' not in body
    assert staff_client.get(reverse("admin:subscriptions_charge_add")).status_code == 403
    listing = staff_client.get(reverse("admin:subscriptions_charge_changelist"))
    assert listing.status_code == 200
    subscription_page = staff_client.get(
        reverse("admin:subscriptions_subscription_change", args=[sub.pk])
    )
    assert subscription_page.status_code == 200


@pytest.mark.parametrize(("role", "sees"), [(Role.OWNER, True), (Role.SALES, False)])
def test_the_order_confirmation_shows_the_margin_kept_on_its_charges(
    tenant, other_tenant, plans, gold, client_for, role, sees
):
    special_price_for(tenant.customer, plans[Plan.Kind.FLEXIBLE], D("3.60"))
    order = buy(owner_of(tenant), plans[Plan.Kind.FLEXIBLE], licences=5).orders.get()
    client = client_for(member_of(tenant.reseller, role).user)
    body = client.get(
        reverse("subscriptions:order_done", kwargs={"order_id": order.public_id})
    ).content.decode()
    assert money_format(D("18.00"), "EUR") in body
    assert ('id="order-margin"' in body, money_format(D("2.00"), "EUR") in body) == (sees, sees)
    assert (money_format(D("16.00"), "EUR") in body) == sees
