"""Buy shows what Add licences shows before Order now: the total due now and the recurring
amount, computed as the order charges them (subscriptions.periods)."""

import re
from datetime import date
from decimal import Decimal

import pytest
import time_machine
from django.test import Client

from core.money import money_format
from subscriptions.models import Order, Plan
from subscriptions.periods import Period, period_price, prorate
from tests.factories import Tenant, catalogue

TODAY = date(2026, 3, 10)
# The first monthly period bought on March 10: March 10 - April 9, 31 days, all of them left.
FIRST_MONTH = Period(date(2026, 3, 10), date(2026, 4, 10))


@pytest.fixture
def plans(db: None) -> dict[str, Plan]:
    """A flexible price whose proration does not come out round, no annual plan paid monthly."""
    prices: dict[str, Decimal] = {
        Plan.Kind.FLEXIBLE: Decimal("4.10"),
        Plan.Kind.ANNUAL_YEARLY: Decimal("3.00"),
        Plan.Kind.TRIAL: Decimal("0.00"),
    }
    return catalogue(name="Shared Contacts", prices=prices, currencies=("EUR",))


def buy_url(tenant: Tenant) -> str:
    return f"/subscriptions/buy/{tenant.customer.public_id}/"


def preview(client: Client, tenant: Tenant, plan: Plan, licences: str) -> str:
    with time_machine.travel(TODAY, tick=False):
        response = client.get(
            buy_url(tenant), {"plan": plan.public_id, "licences": licences}, HTTP_HX_REQUEST="true"
        )
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="preview"')  # the fragment only
    return body


def shown(body: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}">([^<]+)<', body)
    assert match is not None, body
    return match.group(1)


def test_the_preview_shows_due_now_and_per_month_as_the_order_charges(
    owner_client: Client, tenant: Tenant, plans: dict[str, Plan]
) -> None:
    plan = plans[Plan.Kind.FLEXIBLE]
    body = preview(owner_client, tenant, plan, "7")
    unit = period_price(monthly_price=Decimal("4.10"), months=1)
    due = prorate(licences=7, period_price=unit, period=FIRST_MONTH, on=TODAY)
    assert due == Decimal("28.70")  # the first period is charged in full
    assert shown(body, "due-now") == money_format(due, "EUR")
    assert shown(body, "recurring") == money_format(Decimal("28.70"), "EUR")
    assert "Per month from the next period" in body

    # What Order now then charges is what the page showed.
    with time_machine.travel(TODAY, tick=False):
        page = owner_client.get(buy_url(tenant))
        key = re.search(r'name="key" value="([^"]+)"', page.content.decode())
        assert key is not None
        owner_client.post(
            buy_url(tenant),
            {"plan": plan.public_id, "licences": "7", "payer": "reseller_card", "key": key[1]},
        )
    assert Order.objects.get(customer=tenant.customer).amount == due


def test_an_annual_plan_paid_yearly_shows_the_year(
    owner_client: Client, tenant: Tenant, plans: dict[str, Plan]
) -> None:
    body = preview(owner_client, tenant, plans[Plan.Kind.ANNUAL_YEARLY], "2")
    assert shown(body, "due-now") == money_format(Decimal("72.00"), "EUR")  # 2 x 3.00 x 12
    assert shown(body, "recurring") == money_format(Decimal("72.00"), "EUR")
    assert "Per year from the next period" in body


def test_a_trial_is_free_and_a_number_over_the_limit_says_why(
    owner_client: Client, tenant: Tenant, plans: dict[str, Plan]
) -> None:
    body = preview(owner_client, tenant, plans[Plan.Kind.TRIAL], "3")
    assert shown(body, "due-now") == money_format(Decimal("0.00"), "EUR")
    assert "Free during the trial." in body and 'id="recurring"' not in body
    body = preview(owner_client, tenant, plans[Plan.Kind.FLEXIBLE], "501")
    assert "This plan allows at most 500 licences." in body and "due-now" not in body
    assert "Enter a whole number" in preview(owner_client, tenant, plans[Plan.Kind.FLEXIBLE], "x")


def test_the_page_without_javascript_shows_the_price_with_the_form_it_returns(
    owner_client: Client, tenant: Tenant, plans: dict[str, Plan]
) -> None:
    with time_machine.travel(TODAY, tick=False):
        first = owner_client.get(buy_url(tenant)).content.decode()
        assert "Choose a plan and the number of licences to see the price." in first
        # Who pays missing: the form comes back, with the price of what was chosen.
        response = owner_client.post(
            buy_url(tenant),
            {"plan": plans[Plan.Kind.FLEXIBLE].public_id, "licences": "2", "key": "k" * 20},
        )
    assert response.status_code == 400
    assert shown(response.content.decode(), "due-now") == money_format(Decimal("8.20"), "EUR")
