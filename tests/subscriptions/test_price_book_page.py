"""The Price book page (issue 16): plans by currencies with list price, the reseller's cost,
the customer's price and the margin; setting a price; customers' special prices, added and
ended. Sales sees prices but not cost or margin, and changes nothing; another reseller's
customer or special price is a 404; the page costs a fixed number of queries."""

import re
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.test import Client

from resellers.models import AuditEvent
from resellers.roles import Role
from subscriptions import pricing
from subscriptions.models import CustomerPrice, Plan, PriceRule, ResellerDiscount, TierDiscount
from tests.factories import (
    CustomerFactory,
    PlanFactory,
    PlanPriceFactory,
    ProductFactory,
    Tenant,
    price_rule_for,
    special_price_for,
    tier_for,
)
from tests.support.url_sweep import same_page

TODAY = date(2026, 3, 10)
DAY = timedelta(days=1)
PAGE = "/subscriptions/prices/"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _today() -> Iterator[None]:
    with time_machine.travel(TODAY, tick=False):
        yield


@pytest.fixture
def flexible(plans: dict[str, Plan]) -> Plan:
    """4.00 EUR / 5.00 USD per licence per month."""
    return plans[Plan.Kind.FLEXIBLE]


@pytest.fixture
def gold(tenant: Tenant) -> None:
    """Reseller A has 20 % off every product: flexible EUR costs it 3.20."""
    tier_for(tenant.reseller, Decimal("20"))


def client_as(tenant: Tenant, client_for, role: str) -> Client:
    return client_for(tenant.owner if role == Role.OWNER else tenant.member(role))


def row_html(body: str, plan: Plan, currency: str) -> str:
    """A plan's row in a currency, and the row below it that holds its form (if shown)."""
    key = f"{plan.public_id}-{currency}"
    match = re.search(
        rf'<tr id="price-{key}">(.*?)</tr>\s*(?:<tr class="price-edit-row" id="price-{key}-form">'
        r"(.*?)</tr>)?",
        body,
        re.S,
    )
    assert match, f"no row for {plan} in {currency}"
    return match.group(1) + (match.group(2) or "")


def found(pattern: str, html: str, group: int = 1) -> str:
    """What `pattern` finds in `html` (its first group, unless said)."""
    match = re.search(pattern, html, re.S)
    assert match, pattern
    return match.group(group)


def special_row(body: str, special: CustomerPrice) -> str:
    """The words of a special price's row."""
    return text(found(rf'<tr id="special-{special.pk}">(.*?)</tr>', body))


def text(html: str) -> str:
    """The words of some HTML, tags and runs of white space gone."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def rule_form_data(plan: Plan, currency: str = "EUR", **values: str) -> dict[str, str]:
    return {
        "plan": plan.public_id,
        "currency": currency,
        "kind": "list",
        "markup_percent": "",
        "price": "",
        "valid_from": TODAY.isoformat(),
        **values,
    }


def special_form_data(customer_id: str, plan: Plan, **values: str) -> dict[str, str]:
    return {
        "customer": customer_id,
        "plan": plan.public_id,
        "currency": "EUR",
        "price": "3.60",
        "valid_from": TODAY.isoformat(),
        "ends_on": "",
        **values,
    }


# --- Who sees what --------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN, Role.BILLING])
def test_money_roles_see_cost_margin_and_the_forms(
    tenant, other_tenant, client_for, plans, gold, role
):
    flexible = plans[Plan.Kind.FLEXIBLE]
    price_rule_for(tenant.reseller, flexible, kind="markup", markup_percent=Decimal("25"))
    response = client_as(tenant, client_for, role).get(PAGE)
    assert response.status_code == 200
    body = response.content.decode()
    # 4.00 list, 20 % off: cost 3.20; + 25 %: 4.00; margin 0.80, 20 % of the price.
    assert text(row_html(body, flexible, "EUR")) == (
        "Shared Contacts for Gmail Flexible EUR €4.00 €3.20 discount 20 % €4.00 "
        "Markup of 25 % on cost €0.80 20 % Set price Customer price: List price Markup on cost "
        "Fixed price Markup on cost (%): Fixed price per licence per month: From: Save price"
    )
    # An entry is for one currency: USD stays at the list price.
    assert text(row_html(body, flexible, "USD")).startswith(
        "Shared Contacts for Gmail Flexible USD $5.00 $4.00 discount 20 % $5.00 List price "
        "$1.00 20 %"
    )
    # Trials are free: not in the price book. Three paid plans in two currencies.
    assert body.count('<tr id="price-') == 6
    assert plans[Plan.Kind.TRIAL].public_id not in body
    assert "told by email at least 30 days before" in body
    assert "Your cost" in body and 'action="/subscriptions/prices/set/"' in body
    assert 'action="/subscriptions/prices/special/"' in body
    # Another reseller's price book is not this one's.
    assert other_tenant.reseller.name not in body


def test_sales_sees_customer_prices_without_cost_margin_or_forms(
    tenant, other_tenant, client_for, flexible, gold
):
    price_rule_for(tenant.reseller, flexible, kind="markup", markup_percent=Decimal("25"))
    special_price_for(tenant.customer, flexible, Decimal("3.60"))
    response = client_as(tenant, client_for, Role.SALES).get(PAGE)
    assert response.status_code == 200
    body = response.content.decode()
    # The price, and how it is set, but not the markup's rate: with the price it gives the cost.
    assert text(row_html(body, flexible, "EUR")) == (
        "Shared Contacts for Gmail Flexible EUR €4.00 €4.00 Markup on cost"
    )
    for hidden in (
        "Your cost",
        "Margin",
        "discount",
        "25 %",
        '<form method="post" action="/subscriptions/prices',
    ):
        assert hidden not in body, hidden
    # The special price is listed, without its margin and without an End button.
    assert text(found(r'<tr id="special-\d+">(.*?)</tr>', body)) == (
        f"{tenant.customer.organisation} Shared Contacts for Gmail Flexible EUR €3.60 "
        "03/10/2026 — Current"
    )


def test_the_menu_links_the_price_book_for_every_role(tenant, other_tenant, client_for):
    for role in Role:
        body = client_as(tenant, client_for, role).get("/dashboard/").content.decode()
        assert f'<a href="{PAGE}">Price book</a>' in body, role
    body = client_as(tenant, client_for, Role.BILLING).get(PAGE).content.decode()
    assert f'<a href="{PAGE}" aria-current="page">Price book</a>' in body


def test_the_page_speaks_spanish(tenant, other_tenant, client_for, flexible, gold):
    price_rule_for(
        tenant.reseller, flexible, kind="fixed", price=Decimal("4.50"), valid_from=TODAY + 5 * DAY
    )
    client = client_as(tenant, client_for, Role.OWNER)
    body = client.get(PAGE, headers={"accept-language": "es"}).content.decode()
    row = text(row_html(body, flexible, "EUR"))
    # Spanish words, money and dates.
    assert "4,00 € 3,20 € descuento del 20 % 4,00 € Precio de catálogo" in row
    assert "15/03/2026: 4,50 €" in row, row


# --- The figures are customer_price's -----------------------------------------------------


def test_every_figure_is_what_customer_price_quotes(tenant, other_tenant, client_for, plans):
    """The page works its figures out in bulk; each must be what the pricing functions quote
    one at a time, on today and on each later entry's day."""
    product = plans[Plan.Kind.FLEXIBLE].product
    flexible, yearly = plans[Plan.Kind.FLEXIBLE], plans[Plan.Kind.ANNUAL_YEARLY]
    monthly = plans[Plan.Kind.ANNUAL_MONTHLY]
    other_plan = PlanFactory(product=ProductFactory(name="Zz other product"), price=None)
    PlanPriceFactory(plan=other_plan, currency="EUR", monthly_price=Decimal("10.00"))
    tier = tier_for(tenant.reseller, Decimal("10"), valid_from=date(2026, 1, 1))
    tier_for(tenant.reseller, Decimal("12.5"), valid_from=TODAY + 20 * DAY)
    # The tier's rate for this product beats its rate for every product, even a later one.
    TierDiscount.objects.create(
        tier=tier, product=product, percent=Decimal("11"), valid_from=date(2026, 2, 1)
    )
    # Staff's override for this product, from a later day: it beats the tier from then on, and
    # their later override for every product.
    ResellerDiscount.objects.create(
        reseller=tenant.reseller, product=product, percent=Decimal("17"), valid_from=TODAY + 3 * DAY
    )
    ResellerDiscount.objects.create(
        reseller=tenant.reseller, product=None, percent=Decimal("5"), valid_from=TODAY + 6 * DAY
    )
    for days in (7, 21):
        price_rule_for(
            tenant.reseller,
            other_plan,
            kind="markup",
            markup_percent=Decimal(days),
            valid_from=TODAY + days * DAY,
        )
    # Another reseller's rows change nothing here.
    tier_for(other_tenant.reseller, Decimal("40"), name="Other")
    price_rule_for(other_tenant.reseller, flexible, kind="fixed", price=Decimal("9.99"))
    price_rule_for(tenant.reseller, flexible, kind="markup", markup_percent=Decimal("33.33"))
    price_rule_for(
        tenant.reseller,
        flexible,
        kind="markup",
        markup_percent=Decimal("7"),
        valid_from=TODAY + 4 * DAY,
    )
    # Two entries on one day: the later entered wins.
    price_rule_for(
        tenant.reseller, yearly, kind="fixed", price=Decimal("3.10"), valid_from=TODAY + 4 * DAY
    )
    price_rule_for(tenant.reseller, yearly, kind="list", valid_from=TODAY + 4 * DAY)
    price_rule_for(
        tenant.reseller,
        monthly,
        currency="USD",
        kind="fixed",
        price=Decimal("4.05"),
        valid_from=TODAY - 30 * DAY,
    )
    price_rule_for(
        tenant.reseller,
        monthly,
        currency="USD",
        kind="markup",
        markup_percent=Decimal("1"),
        valid_from=TODAY + 25 * DAY,
    )

    from subscriptions import selectors

    rows = selectors.price_book_rows(reseller=tenant.reseller, on=TODAY)
    assert len(rows) == 7
    # The rows exercise each level of the discount's resolution.
    discounts = selectors.DiscountTable(reseller=tenant.reseller)
    assert [
        discounts.percent(product_id=product.pk, on=TODAY),
        discounts.percent(product_id=product.pk, on=TODAY + 4 * DAY),
        discounts.percent(product_id=product.pk, on=TODAY + 21 * DAY),
        discounts.percent(product_id=other_plan.product_id, on=TODAY),
        discounts.percent(product_id=other_plan.product_id, on=TODAY + 7 * DAY),
        discounts.percent(product_id=other_plan.product_id, on=TODAY + 21 * DAY),
    ] == [Decimal("11"), Decimal("17"), Decimal("17"), Decimal("10"), Decimal("5"), Decimal("5")]
    customer = tenant.customer
    for row in rows:
        quote = pricing.customer_price(
            customer=customer, plan=row.plan, currency=row.currency, on=TODAY
        )
        assert (row.list_price, row.cost, row.discount_percent, row.customer_price, row.margin) == (
            quote.list_price,
            quote.cost,
            quote.discount_percent,
            quote.customer_price,
            quote.margin,
        ), (row.plan, row.currency)
        assert (row.rule.pk if row.rule else None) == quote.price_rule_id
        for change in row.later:
            later = pricing.customer_price(
                customer=customer, plan=row.plan, currency=row.currency, on=change.rule.valid_from
            )
            assert (change.customer_price, change.cost, change.margin, change.rule.pk) == (
                later.customer_price,
                later.cost,
                later.margin,
                later.price_rule_id,
            )
    later_days = {(row.plan, row.currency): [c.rule.kind for c in row.later] for row in rows}
    assert later_days[(flexible, "EUR")] == ["markup"]
    assert later_days[(yearly, "EUR")] == ["list"]
    assert later_days[(monthly, "USD")] == ["markup"]
    assert later_days[(flexible, "USD")] == []
    assert [c.rule.valid_from for c in rows[-1].later] == [TODAY + 7 * DAY, TODAY + 21 * DAY]


def test_a_later_entry_is_shown_with_its_day(tenant, other_tenant, client_for, flexible, gold):
    price_rule_for(
        tenant.reseller,
        flexible,
        kind="markup",
        markup_percent=Decimal("10"),
        valid_from=TODAY + 5 * DAY,
    )
    body = client_as(tenant, client_for, Role.OWNER).get(PAGE).content.decode()
    # From the 15th: 3.20 + 10 % = 3.52, a margin of 0.32.
    assert "from 03/15/2026: €3.52 (Markup of 10 % on cost), margin €0.32" in text(
        row_html(body, flexible, "EUR")
    )


# --- Setting a price ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"kind": "markup", "markup_percent": "50"}, "€4.80"),
        ({"kind": "fixed", "price": "3.75"}, "€3.75"),
    ],
)
def test_setting_a_price_saves_it_audits_it_and_shows_it(
    tenant, other_tenant, client_for, flexible, gold, values, expected
):
    client = client_as(tenant, client_for, Role.BILLING)
    response = client.post("/subscriptions/prices/set/", rule_form_data(flexible, **values))
    assert response.status_code == 302
    assert response["Location"] == f"{PAGE}#price-{flexible.public_id}-EUR"
    rule = PriceRule.objects.get(reseller=tenant.reseller)
    assert (rule.plan, rule.currency, rule.kind, rule.valid_from) == (
        flexible,
        "EUR",
        values["kind"],
        TODAY,
    )
    event = AuditEvent.objects.get(action="price_rule.set")
    assert (event.reseller, event.object_id) == (tenant.reseller, str(rule.pk))
    page = client.get(response["Location"])
    body = page.content.decode()
    assert "The price of Shared Contacts for Gmail — Flexible in EUR is set from" in body
    assert f"<strong>{expected}</strong>" in row_html(body, flexible, "EUR")
    assert not PriceRule.objects.filter(reseller=other_tenant.reseller).exists()


def test_a_price_below_cost_is_refused_beside_the_price_keeping_what_was_typed(
    tenant, other_tenant, client_for, flexible, gold
):
    client = client_as(tenant, client_for, Role.OWNER)
    response = client.post(
        "/subscriptions/prices/set/", rule_form_data(flexible, kind="fixed", price="3.19")
    )
    assert response.status_code == 400
    assert not PriceRule.objects.exists()
    assert not AuditEvent.objects.filter(action="price_rule.set").exists()
    row = row_html(response.content.decode(), flexible, "EUR")
    key = f"rule-{flexible.public_id}-EUR"
    # The row's form is open, the message beside the price, the price and kind as typed.
    assert '<details class="price-edit" open>' in row
    price_field = found(
        rf'<div class="field has-error">\s*<label for="{key}-price">(.*?)</div>\s*</div>', row, 0
    )
    assert f'id="{key}-price_error"' in price_field
    assert "This price is below your cost of €3.20 per licence per month from" in price_field
    assert 'value="3.19"' in price_field
    assert '<option value="fixed" selected>' in row
    # The other rows' forms stay closed and blank.
    other = row_html(response.content.decode(), flexible, "USD")
    assert "open" not in other and "has-error" not in other


def test_a_day_in_the_past_is_refused_beside_the_day(tenant, other_tenant, client_for, flexible):
    client = client_as(tenant, client_for, Role.ADMIN)
    data = rule_form_data(flexible, kind="list", valid_from=(TODAY - DAY).isoformat())
    response = client.post("/subscriptions/prices/set/", data)
    assert response.status_code == 400
    row = row_html(response.content.decode(), flexible, "EUR")
    assert f'id="rule-{flexible.public_id}-EUR-valid_from_error"' in row
    assert "Choose today or a later day" in row and 'value="2026-03-09"' in row
    assert not PriceRule.objects.exists()


def test_a_plan_not_on_sale_is_an_error_on_top(tenant, other_tenant, client_for, plans):
    trial = plans[Plan.Kind.TRIAL]
    response = client_as(tenant, client_for, Role.OWNER).post(
        "/subscriptions/prices/set/", rule_form_data(trial)
    )
    assert response.status_code == 400
    assert "Choose one of the plans on sale." in response.content.decode()
    assert not PriceRule.objects.exists()


# --- Special prices -----------------------------------------------------------------------


def test_adding_a_special_price(tenant, other_tenant, client_for, flexible, gold):
    client = client_as(tenant, client_for, Role.OWNER)
    customer = tenant.customer
    body = client.get(PAGE).content.decode()
    # The choice is the reseller's own current customers.
    assert f'<option value="{customer.public_id}">{customer.organisation}</option>' in body
    assert other_tenant.customer.public_id not in body
    response = client.post(
        "/subscriptions/prices/special/",
        special_form_data(customer.public_id, flexible, ends_on=(TODAY + 30 * DAY).isoformat()),
    )
    assert response.status_code == 302
    assert response["Location"] == f"{PAGE}#special-prices"
    special = CustomerPrice.objects.get()
    assert (special.customer, special.price, special.valid_from, special.ends_on) == (
        customer,
        Decimal("3.60"),
        TODAY,
        TODAY + 30 * DAY,
    )
    assert AuditEvent.objects.filter(action="customer_price.set", reseller=tenant.reseller).exists()
    body = client.get(PAGE).content.decode()
    row = special_row(body, special)
    assert row == (
        f"{customer.organisation} Shared Contacts for Gmail Flexible EUR €3.60 03/10/2026 "
        "04/09/2026 €0.40 11.1 % Current End today"
    )


def test_a_special_price_below_cost_is_refused_beside_the_price(
    tenant, other_tenant, client_for, flexible, gold
):
    response = client_as(tenant, client_for, Role.OWNER).post(
        "/subscriptions/prices/special/",
        special_form_data(tenant.customer.public_id, flexible, price="3.00"),
    )
    assert response.status_code == 400
    assert not CustomerPrice.objects.exists()
    form = found(
        r'<details class="card section-gap" id="special-price-add" open>(.*?)</details>',
        response.content.decode(),
    )
    price_field = found(
        r'<div class="field has-error">\s*<label for="special-price">.*?</div>\s*</div>', form, 0
    )
    assert "This price is below your cost of €3.20" in price_field and 'value="3.00"' in price_field
    assert f'<option value="{tenant.customer.public_id}" selected>' in form


def test_another_resellers_customer_is_a_404_like_a_missing_one(
    tenant, other_tenant, client_for, flexible
):
    client = client_as(tenant, client_for, Role.OWNER)
    foreign = client.post(
        "/subscriptions/prices/special/",
        special_form_data(other_tenant.customer.public_id, flexible),
    )
    missing = client.post("/subscriptions/prices/special/", special_form_data("x" * 16, flexible))
    assert foreign.status_code == missing.status_code == 404
    assert same_page(foreign.content, missing.content)
    assert not CustomerPrice.objects.exists()


def test_ending_a_special_price(tenant, other_tenant, client_for, flexible, gold):
    special = special_price_for(
        tenant.customer, flexible, Decimal("3.60"), valid_from=TODAY - 5 * DAY
    )
    upcoming = special_price_for(
        tenant.customer, flexible, Decimal("3.70"), valid_from=TODAY + 5 * DAY
    )
    client = client_as(tenant, client_for, Role.BILLING)
    url = f"/subscriptions/prices/special/{tenant.customer.public_id}/end/"
    response = client.post(url, {"special_price": special.pk})
    assert response.status_code == 302
    special.refresh_from_db()
    assert special.ends_on == TODAY
    assert AuditEvent.objects.filter(
        action="customer_price.ended", object_id=str(special.pk)
    ).exists()
    # Withdrawn before its first day: it never applies.
    assert client.post(url, {"special_price": upcoming.pk}).status_code == 302
    upcoming.refresh_from_db()
    assert upcoming.ends_on == upcoming.valid_from
    body = client.get(PAGE).content.decode()
    assert "The special price of" in body
    for ended in (special, upcoming):
        row = special_row(body, ended)
        assert row.endswith("— Ended"), row
    # Ending it again says why not, at the top of the page.
    response = client.post(url, {"special_price": special.pk}, follow=True)
    assert "This special price already ends on" in response.content.decode()


def test_another_resellers_special_price_is_a_404(tenant, other_tenant, client_for, flexible):
    theirs = special_price_for(other_tenant.customer, flexible, Decimal("4.00"))
    mine = CustomerFactory(reseller=tenant.reseller)
    client = client_as(tenant, client_for, Role.OWNER)
    # Their customer in the URL, or my customer with their special price in the form.
    foreign_customer = client.post(
        f"/subscriptions/prices/special/{other_tenant.customer.public_id}/end/",
        {"special_price": theirs.pk},
    )
    foreign_special = client.post(
        f"/subscriptions/prices/special/{mine.public_id}/end/", {"special_price": theirs.pk}
    )
    missing = client.post(
        f"/subscriptions/prices/special/{mine.public_id}/end/", {"special_price": theirs.pk + 1000}
    )
    assert foreign_customer.status_code == foreign_special.status_code == missing.status_code == 404
    assert same_page(foreign_special.content, missing.content)
    theirs.refresh_from_db()
    assert theirs.ends_on is None


def test_sales_may_not_change_prices(tenant, other_tenant, client_for, flexible):
    special = special_price_for(tenant.customer, flexible, Decimal("4.00"))
    sales = client_as(tenant, client_for, Role.SALES)
    posts = {
        "/subscriptions/prices/set/": rule_form_data(flexible, kind="fixed", price="5.00"),
        "/subscriptions/prices/special/": special_form_data(tenant.customer.public_id, flexible),
        f"/subscriptions/prices/special/{tenant.customer.public_id}/end/": {
            "special_price": special.pk
        },
    }
    for url, data in posts.items():
        assert sales.post(url, data).status_code == 403, url
    assert not PriceRule.objects.exists()
    assert CustomerPrice.objects.get().ends_on is None
    assert not AuditEvent.objects.exists()


def test_special_prices_status_and_pages(tenant, other_tenant, client_for, flexible, gold):
    ended = special_price_for(
        tenant.customer,
        flexible,
        Decimal("3.30"),
        valid_from=TODAY - 40 * DAY,
        ends_on=TODAY - 10 * DAY,
    )
    current = special_price_for(
        tenant.customer, flexible, Decimal("3.40"), valid_from=TODAY - 9 * DAY
    )
    upcoming = special_price_for(
        tenant.customer, flexible, Decimal("3.50"), valid_from=TODAY + 9 * DAY
    )
    client = client_as(tenant, client_for, Role.OWNER)
    body = client.get(PAGE).content.decode()

    def row(special: CustomerPrice) -> str:
        return special_row(body, special)

    assert row(ended).endswith("— Ended")
    assert row(current).endswith("€0.20 5.9 % Current End today")
    assert row(upcoming).endswith("€0.30 8.6 % Upcoming Withdraw")
    # The latest first day first.
    assert (
        body.index(f"special-{upcoming.pk}")
        < body.index(f"special-{current.pk}")
        < body.index(f"special-{ended.pk}")
    )
    # 30 more: 25 a page, the rest one link away.
    for n in range(30):
        special_price_for(
            tenant.customer,
            flexible,
            Decimal("4.00"),
            valid_from=TODAY - (50 + n) * DAY,
            ends_on=TODAY - 45 * DAY,
        )
    body = client.get(PAGE).content.decode()
    assert body.count('<tr id="special-') == 25
    assert "1\N{EN DASH}25 of 33" in body
    next_url = found(r'<a href="(\?cursor=[^"]+)" rel="next">', body)
    body = client.get(PAGE + next_url.replace("&amp;", "&")).content.decode()
    assert body.count('<tr id="special-') == 8
    assert "26\N{EN DASH}33 of 33" in body


def test_the_page_costs_a_fixed_number_of_queries(
    tenant, other_tenant, client_for, django_assert_max_num_queries
):
    """5 plans in 3 currencies and 20 special prices cost what 1 plan and 1 special price do."""
    client = client_as(tenant, client_for, Role.OWNER)
    tier_for(tenant.reseller, Decimal("20"))
    plans = []
    for n in range(5):
        plan = PlanFactory(product=ProductFactory(), kind=Plan.Kind.FLEXIBLE, price=None)
        for currency in ("EUR", "USD", "GBP"):
            PlanPriceFactory(plan=plan, currency=currency, monthly_price=Decimal("10.00") + n)
            price_rule_for(
                tenant.reseller,
                plan,
                currency=currency,
                kind="markup",
                markup_percent=Decimal("10"),
            )
            price_rule_for(
                tenant.reseller,
                plan,
                currency=currency,
                kind="fixed",
                price=Decimal("20"),
                valid_from=TODAY + (n + 1) * DAY,
            )
        plans.append(plan)
    for n in range(20):
        customer = CustomerFactory(reseller=tenant.reseller)
        special_price_for(customer, plans[0], Decimal("11.00"), valid_from=TODAY + (n % 3) * DAY)
    with django_assert_max_num_queries(11) as captured:
        response = client.get(PAGE)
    assert response.status_code == 200
    assert response.content.decode().count('<tr id="price-') == 15
    assert response.content.decode().count('<tr id="special-') == 20
    many = len(captured)
    CustomerPrice.objects.exclude(pk=CustomerPrice.objects.order_by("id")[0].pk).delete()
    with django_assert_max_num_queries(many) as captured:
        client.get(PAGE)
    assert len(captured) == many


def test_the_customer_list_is_bounded_and_searched(tenant, other_tenant, client_for, flexible):
    """At most 100 customers to choose from; a search (htmx: the list only) finds the others,
    never another reseller's."""
    for n in range(101):
        CustomerFactory(reseller=tenant.reseller, organisation=f"Aardvark {n:03}")
    late = CustomerFactory(reseller=tenant.reseller, organisation="Zebra Works")
    CustomerFactory(reseller=other_tenant.reseller, organisation="Zebra Foreign")
    client = client_as(tenant, client_for, Role.OWNER)
    body = client.get(PAGE).content.decode()
    select = found(r'(<select name="customer".*?</select>)', body)
    assert select.count("<option") == 101  # "Choose a customer" and 100 customers
    assert late.public_id not in select
    assert "The list shows the first 100 customers by name" in body

    response = client.get(PAGE, {"customer_q": "zebra"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "HX-Request" in response["Vary"]
    fragment = response.content.decode()
    assert fragment.startswith('<select name="customer"') and 'id="special-customer"' in fragment
    assert re.findall(r'<option value="(\w[^"]*)">([^<]+)<', fragment) == [
        (late.public_id, "Zebra Works")
    ]
    # Without JavaScript: the page, its form open, with the customers found.
    body = client.get(PAGE, {"customer_q": "zebra"}).content.decode()
    assert '<details class="card section-gap" id="special-price-add" open>' in body
    assert f'<option value="{late.public_id}">Zebra Works</option>' in body
    assert "Aardvark 000" not in body

    # A refused price for a customer beyond the first 100 keeps it chosen.
    response = client.post(
        "/subscriptions/prices/special/",
        special_form_data(late.public_id, flexible, price="1.00"),
    )
    assert response.status_code == 400
    assert f'<option value="{late.public_id}" selected>Zebra Works</option>' in (
        response.content.decode()
    )


def test_sales_gets_no_customer_list_for_special_prices(tenant, other_tenant, client_for):
    sales = client_as(tenant, client_for, Role.SALES)
    response = sales.get(PAGE, {"customer_q": "a"}, headers={"HX-Request": "true"})
    assert response.status_code == 403
