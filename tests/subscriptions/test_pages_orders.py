"""The ordering pages, for the whole request: Buy, Add licences with + and - (htmx and without
JavaScript), Order now and its confirmation; the subscriptions section of the customer page and
the Customers list's plan and licence columns."""

import re
import threading
from datetime import date
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from customers.models import Customer
from resellers.roles import Role
from subscriptions import services
from subscriptions.models import (
    Charge,
    LicenceChange,
    Order,
    Plan,
    PlanPrice,
    Subscription,
)
from subscriptions.periods import Period, prorate
from tests.factories import CustomerFactory, Tenant, catalogue, make_tenant, member_of, owner_of

D = Decimal
PRICES = {
    Plan.Kind.FLEXIBLE: D("4.00"),
    Plan.Kind.ANNUAL_MONTHLY: D("3.20"),
    Plan.Kind.ANNUAL_YEARLY: D("3.00"),
    Plan.Kind.TRIAL: D("0.00"),
}
BOUGHT_ON = date(2026, 3, 10)  # periods run from the 10th to the 10th
ADDED_ON = date(2026, 3, 20)  # 21 of the 31 days of March 10 - April 9 remain


def bought(tenant: Tenant, plan: Plan, licences: int = 5, customer: Customer | None = None):
    with time_machine.travel(BOUGHT_ON, tick=False):
        order = services.subscription_buy(
            membership=owner_of(tenant),
            customer=customer or tenant.customer,
            plan=plan,
            licences=licences,
            payer="reseller_card",
            order_key=services.order_key_new(),
        )
    return order.subscription


def buy_url(customer: Customer) -> str:
    return f"/subscriptions/buy/{customer.public_id}/"


def licences_url(subscription: Subscription) -> str:
    return f"/subscriptions/{subscription.public_id}/licences/"


def field_value(body: str, name: str) -> str:
    match = re.search(rf'<input[^>]*name="{name}"[^>]*value="([^"]*)"', body)
    assert match, f"no {name} field"
    return match.group(1)


def order_form(client: Client, subscription: Subscription) -> dict[str, str]:
    """What the Add licences page's form would post, as the page rendered it."""
    body = client.get(licences_url(subscription)).content.decode()
    return {
        "licences": field_value(body, "licences"),
        "expected": field_value(body, "expected"),
        "key": field_value(body, "key"),
    }


def text(response) -> str:
    return response.content.decode()


def nothing_saved(subscription: Subscription, licences: int) -> None:
    subscription.refresh_from_db()
    assert subscription.licences == licences
    assert not Order.objects.filter(subscription=subscription).exclude(kind="purchase").exists()
    assert LicenceChange.objects.filter(subscription=subscription).count() == 1  # the purchase


# Buy


@time_machine.travel(BOUGHT_ON, tick=False)
def test_buy_page_offers_plans_with_prices_licences_and_payer(owner_client, tenant, plans):
    response = owner_client.get(buy_url(tenant.customer))
    body = text(response)
    assert response.status_code == 200
    assert "Shared Contacts for Gmail" in body
    assert "Flexible: €4.00 per licence per month" in body
    assert "billed yearly (€36.00 per licence)" in body
    assert "Trial: free for 30 days, at most 10 licences" in body
    assert 'value="reseller_card" checked' in body and 'value="customer_card"' in body
    assert "Whose card pays this subscription&#x27;s invoices" in body or (
        "Whose card pays this subscription's invoices" in body
    )
    assert field_value(body, "key")
    assert "Order now" in body


@time_machine.travel(BOUGHT_ON, tick=False)
def test_buying_redirects_to_the_confirmation(owner_client, tenant, other_tenant, plans):
    body = text(owner_client.get(buy_url(tenant.customer)))
    form = {
        "plan": plans["flexible"].public_id,
        "licences": "5",
        "payer": "customer_card",
        "key": field_value(body, "key"),
    }
    response = owner_client.post(buy_url(tenant.customer), form)
    order = Order.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/subscriptions/orders/{order.public_id}/"
    subscription = order.subscription
    assert (subscription.licences, subscription.payer, subscription.plan) == (
        5,
        "customer_card",
        plans["flexible"],
    )
    assert Charge.objects.get(order=order).amount == D("20.00")

    done = text(owner_client.get(response["Location"]))
    assert order.reference in done
    assert "New subscription with 5 licences" in done
    assert "€20.00" in done and "Customer card" in done
    assert f"/subscriptions/{subscription.public_id}/licences/" in done

    # The same form submitted again is the same order.
    again = owner_client.post(buy_url(tenant.customer), form)
    assert again.status_code == 302 and again["Location"] == response["Location"]
    assert Order.objects.count() == 1 and Subscription.objects.count() == 1


def test_an_invited_customer_cannot_be_sold_to(owner_client, tenant, plans):
    invited = CustomerFactory(
        reseller=tenant.reseller, organisation="Waiting Co", status=Customer.Status.INVITED
    )
    response = owner_client.get(buy_url(invited))
    body = text(response)
    assert response.status_code == 200
    assert "Waiting Co has not accepted the invitation yet" in body
    assert 'name="plan"' not in body and "Order now" not in body

    posted = owner_client.post(
        buy_url(invited),
        {
            "plan": plans["flexible"].public_id,
            "licences": "5",
            "payer": "reseller_card",
            "key": "k",
        },
    )
    assert posted.status_code == 400 and "has not accepted the invitation" in text(posted)
    assert not Subscription.objects.exists()

    cancelled = CustomerFactory(reseller=tenant.reseller, status=Customer.Status.CANCELLED)
    assert "whose status is Cancelled" in text(owner_client.get(buy_url(cancelled)))


def test_buy_roles(tenant, other_tenant, client_for, plans):
    billing = client_for(member_of(tenant.reseller, Role.BILLING).user)
    assert billing.get(buy_url(tenant.customer)).status_code == 403
    assert billing.post(buy_url(tenant.customer), {}).status_code == 403

    sales = client_for(member_of(tenant.reseller, Role.SALES).user)
    body = text(sales.get(buy_url(tenant.customer)))
    response = sales.post(
        buy_url(tenant.customer),
        {
            "plan": plans["annual_monthly"].public_id,
            "licences": "3",
            "payer": "reseller_card",
            "key": field_value(body, "key"),
        },
    )
    assert response.status_code == 302
    assert Subscription.objects.get().plan == plans["annual_monthly"]


@pytest.mark.parametrize(
    ("kind", "licences", "message"),
    [
        ("trial", "11", "A trial has at most 10 licences."),
        ("flexible", "501", "This plan allows at most 500 licences."),
        ("flexible", "0", "A subscription needs at least 1 licence."),
        ("flexible", "-4", "A subscription needs at least 1 licence."),
        ("flexible", "many", "Enter a whole number of licences."),
        ("flexible", "", "Enter the number of licences."),
    ],
)
def test_buy_bad_licence_counts(owner_client, tenant, plans, kind, licences, message):
    form = {
        "plan": plans[kind].public_id,
        "licences": licences,
        "payer": "reseller_card",
        "key": "form-key",
    }
    response = owner_client.post(buy_url(tenant.customer), form)
    body = text(response)
    assert response.status_code == 400
    assert re.search(r'id="id_licences_error"><span>' + re.escape(message), body)
    assert field_value(body, "licences") == licences  # what was typed stays
    assert f'value="{plans[kind].public_id}" checked' in body
    assert not Subscription.objects.exists() and not Order.objects.exists()


def test_buy_other_bad_input(owner_client, tenant, plans):
    base = {"plan": plans["flexible"].public_id, "licences": "2", "payer": "reseller_card"}
    no_payer = owner_client.post(buy_url(tenant.customer), {**base, "payer": "", "key": "a"})
    assert no_payer.status_code == 400 and "Choose who pays." in text(no_payer)
    bogus_plan = owner_client.post(buy_url(tenant.customer), {**base, "plan": "x" * 16, "key": "b"})
    assert bogus_plan.status_code == 400 and "Select a valid choice" in text(bogus_plan)
    assert not Subscription.objects.exists()

    bought(tenant, plans["flexible"])
    held = owner_client.post(buy_url(tenant.customer), {**base, "key": "c"})
    body = text(held)
    assert held.status_code == 400
    assert "already has a subscription to Shared Contacts for Gmail" in body
    assert "Already subscribed" in body and "Add licences" in body
    assert Subscription.objects.count() == 1


def test_plans_without_a_price_in_the_resellers_currency_are_not_offered(
    owner_client, tenant, plans
):
    tenant.reseller.currency = "GBP"
    tenant.reseller.save()
    body = text(owner_client.get(buy_url(tenant.customer)))
    assert plans["flexible"].public_id not in body
    assert plans["trial"].public_id in body  # trials are free in every currency
    PlanPrice.objects.create(plan=plans["flexible"], currency="GBP", monthly_price=D("3.50"))
    assert "£3.50 per licence per month" in text(owner_client.get(buy_url(tenant.customer)))


# Add licences


@time_machine.travel(ADDED_ON, tick=False)
def test_licences_page_shows_count_stepper_and_preview(owner_client, tenant, plans):
    subscription = bought(tenant, plans["flexible"], licences=5)
    response = owner_client.get(licences_url(subscription))
    body = text(response)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]  # Back must not bring a used order key
    assert "Add licences" in body and "Order now" in body
    assert "Now 5 licences; at most 500." in body
    assert field_value(body, "licences") == "6"  # one more than now
    assert field_value(body, "expected") == "5"
    assert len(field_value(body, "key")) >= 32
    assert 'name="step" value="up"' in body and 'name="step" value="down"' in body
    assert f'hx-get="{licences_url(subscription)}"' in body
    # 1 x 4.00 x 21/31, and from the next period 6 x 4.00.
    expected = prorate(
        licences=1,
        period_price=D("4.00"),
        period=Period(date(2026, 3, 10), date(2026, 4, 10)),
        on=ADDED_ON,
    )
    assert expected == D("2.71")
    assert f'<strong id="due-now">€{expected}</strong>' in body
    assert '<span id="recurring">€24.00</span>' in body
    assert "21/31" in body
    assert "Removing licences takes effect at once. The rest of the period is not credited." in body


@time_machine.travel(ADDED_ON, tick=False)
def test_htmx_preview_as_the_number_is_typed(owner_client, tenant, plans):
    subscription = bought(tenant, plans["flexible"], licences=5)
    response = owner_client.get(
        licences_url(subscription),
        {"licences": "8", "expected": "5"},
        headers={"HX-Request": "true"},
    )
    fragment = text(response)
    assert response.status_code == 200
    assert fragment.lstrip().startswith('<div id="preview"') and "<header" not in fragment
    quote = services.subscription_preview_licences(subscription=subscription, new_count=8)
    assert quote.due_now == D("8.13")  # 3 x 4.00 x 21/31 = 8.129…
    assert '<strong id="due-now">€8.13</strong>' in fragment
    assert '<span id="recurring">€32.00</span>' in fragment

    bad = owner_client.get(
        licences_url(subscription),
        {"licences": "501", "expected": "5"},
        headers={"HX-Request": "true"},
    )
    assert bad.status_code == 200  # htmx swaps only 2xx
    assert "This plan allows at most 500 licences." in text(bad)
    same = owner_client.get(
        licences_url(subscription),
        {"licences": "5", "expected": "5"},
        headers={"HX-Request": "true"},
    )
    assert "That is the current number" in text(same) and "due-now" not in text(same)


@time_machine.travel(ADDED_ON, tick=False)
def test_htmx_plus_and_minus_swap_the_quantity(owner_client, tenant, plans):
    subscription = bought(tenant, plans["flexible"], licences=5)
    form = order_form(owner_client, subscription)
    up = owner_client.post(
        licences_url(subscription), {**form, "step": "up"}, headers={"HX-Request": "true"}
    )
    fragment = text(up)
    assert up.status_code == 200 and fragment.lstrip().startswith('<div id="quantity">')
    assert field_value(fragment, "licences") == "7"
    assert '<strong id="due-now">€5.42</strong>' in fragment  # 2 x 4.00 x 21/31
    down = owner_client.post(
        licences_url(subscription),
        {**form, "licences": "7", "step": "down"},
        headers={"HX-Request": "true"},
    )
    assert field_value(text(down), "licences") == "6"
    nothing_saved(subscription, 5)


@time_machine.travel(ADDED_ON, tick=False)
def test_plus_and_minus_without_javascript_re_render_the_page(owner_client, tenant, plans):
    subscription = bought(tenant, plans["flexible"], licences=5)
    form = order_form(owner_client, subscription)
    for step, start, result in [("up", "6", "7"), ("up", "7", "8"), ("down", "8", "7")]:
        response = owner_client.post(
            licences_url(subscription), {**form, "licences": start, "step": step}
        )
        body = text(response)
        assert response.status_code == 200 and "<header" in body
        assert field_value(body, "licences") == result
        assert field_value(body, "key") == form["key"]  # still the same order form
    assert '<strong id="due-now">€5.42</strong>' in body
    # "Update the price" shows the typed number's price.
    shown = owner_client.post(licences_url(subscription), {**form, "licences": "9", "step": "show"})
    assert '<strong id="due-now">€10.84</strong>' in text(shown)
    nothing_saved(subscription, 5)


def test_order_now_charges_what_the_preview_showed(owner_client, tenant, other_tenant, plans):
    subscription = bought(tenant, plans["flexible"], licences=5)
    with time_machine.travel(ADDED_ON, tick=False):
        form = order_form(owner_client, subscription)
        preview = owner_client.get(
            licences_url(subscription),
            {"licences": "7", "expected": "5"},
            headers={"HX-Request": "true"},
        )
        due_now = re.search(r'id="due-now">€([\d.]+)<', text(preview))
        assert due_now is not None
        shown = due_now.group(1)
        response = owner_client.post(
            licences_url(subscription), {**form, "licences": "7", "step": "order"}
        )
    order = Order.objects.get(kind="add")
    assert response.status_code == 302
    assert response["Location"] == f"/subscriptions/orders/{order.public_id}/"
    assert order.amount == D(shown) == D("5.42")
    assert Charge.objects.get(order=order, kind="proration").amount == D(shown)
    subscription.refresh_from_db()
    assert subscription.licences == 7

    done = text(owner_client.get(response["Location"]))
    assert order.reference in done
    assert "5 → <strong>7</strong> (2 licences added)" in done
    assert "€5.42" in done

    # A double click: the same form again is the same order.
    again = owner_client.post(
        licences_url(subscription), {**form, "licences": "7", "step": "order"}
    )
    assert again.status_code == 302 and again["Location"] == response["Location"]
    assert Order.objects.filter(kind="add").count() == 1
    subscription.refresh_from_db()
    assert subscription.licences == 7


def test_order_now_through_htmx_redirects_the_browser(owner_client, tenant, plans):
    subscription = bought(tenant, plans["flexible"], licences=5)
    form = order_form(owner_client, subscription)
    response = owner_client.post(
        licences_url(subscription),
        {**form, "licences": "6", "step": "order"},
        headers={"HX-Request": "true"},
    )
    order = Order.objects.get(kind="add")
    assert response.status_code == 200
    assert response["HX-Redirect"] == f"/subscriptions/orders/{order.public_id}/"
    refused = owner_client.post(
        licences_url(subscription),
        {**form, "key": "another-key", "expected": "6", "licences": "0", "step": "order"},
        headers={"HX-Request": "true"},
    )
    assert refused.status_code == 200  # htmx swaps only 2xx: the message comes in the fragment
    assert text(refused).lstrip().startswith('<div id="quantity">')
    assert "A subscription needs at least 1 licence." in text(refused)
    assert "Someone changed" not in text(refused)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_submits_of_one_form_are_one_order(tenant, other_tenant, client_for):
    subscription = bought(tenant, catalogue()["flexible"], licences=5)
    form = order_form(client_for(tenant.owner), subscription)
    barrier = threading.Barrier(2)
    answers: list[str] = []

    def submit() -> None:
        try:
            client = client_for(tenant.owner)
            barrier.wait()
            response = client.post(
                licences_url(subscription), {**form, "licences": "8", "step": "order"}
            )
            answers.append(f"{response.status_code} {response.get('Location')}")
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    order = Order.objects.get(kind="add")
    assert answers == [f"302 /subscriptions/orders/{order.public_id}/"] * 2
    subscription.refresh_from_db()
    assert subscription.licences == 8


def test_a_stale_page_is_shown_the_new_count_and_asked_again(
    owner_client, tenant, other_tenant, plans
):
    subscription = bought(tenant, plans["flexible"], licences=5)
    with time_machine.travel(ADDED_ON, tick=False):
        form = order_form(owner_client, subscription)
        # Meanwhile a colleague orders one more.
        services.subscription_add_licences(
            membership=owner_of(tenant), subscription=subscription, quantity=1, order_key="other"
        )
        response = owner_client.post(
            licences_url(subscription), {**form, "licences": "8", "step": "order"}
        )
        body = text(response)
        assert response.status_code == 409
        assert "Someone changed the number of licences to 6 while this page was open" in body
        assert field_value(body, "licences") == "8"  # what was typed stays
        assert field_value(body, "expected") == "6"  # asked again from the new count
        assert "Now 6 licences" in body
        assert '<strong id="due-now">€5.42</strong>' in body  # 2 more than 6
        subscription.refresh_from_db()
        assert subscription.licences == 6 and Order.objects.filter(kind="add").count() == 1

        again = owner_client.post(
            licences_url(subscription),
            {**form, "licences": "8", "expected": "6", "step": "order"},
        )
    assert again.status_code == 302
    subscription.refresh_from_db()
    assert subscription.licences == 8


@time_machine.travel(ADDED_ON, tick=False)
def test_a_stale_preview_says_so_and_updates_the_count(owner_client, tenant, plans):
    subscription = bought(tenant, plans["flexible"], licences=5)
    services.subscription_add_licences(
        membership=owner_of(tenant), subscription=subscription, quantity=2, order_key="other"
    )
    fragment = text(
        owner_client.get(
            licences_url(subscription),
            {"licences": "9", "expected": "5"},
            headers={"HX-Request": "true"},
        )
    )
    assert "changed the number of licences to 7" in fragment
    assert field_value(fragment, "expected") == "7"


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("0", "A subscription needs at least 1 licence. To end it, cancel it instead."),
        ("-3", "A subscription needs at least 1 licence."),
        ("501", "This plan allows at most 500 licences."),
        ("abc", "Enter a whole number of licences."),
        ("2.5", "Enter a whole number of licences."),
        ("", "Enter the number of licences."),
        ("5", "The subscription already has 5 licences."),
    ],
)
def test_bad_licence_counts_are_refused_beside_the_field(
    owner_client, tenant, plans, typed, message
):
    subscription = bought(tenant, plans["flexible"], licences=5)
    with time_machine.travel(ADDED_ON, tick=False):
        form = order_form(owner_client, subscription)
        response = owner_client.post(
            licences_url(subscription), {**form, "licences": typed, "step": "order"}
        )
    body = text(response)
    assert response.status_code == 400
    assert re.search(r'id="licences-error">\s*<span>' + re.escape(message), body)
    assert field_value(body, "licences") == typed
    assert "due-now" not in body
    nothing_saved(subscription, 5)


def test_an_expired_form_is_refused(owner_client, tenant, plans):
    subscription = bought(tenant, plans["flexible"], licences=5)
    response = owner_client.post(
        licences_url(subscription), {"licences": "6", "expected": "5", "step": "order"}
    )
    assert response.status_code == 400
    assert "This form has expired. Open the page again." in text(response)
    nothing_saved(subscription, 5)


def test_annual_plans_lower_the_count_at_renewal_only(owner_client, tenant, plans):
    subscription = bought(tenant, plans["annual_monthly"], licences=5)
    with time_machine.travel(ADDED_ON, tick=False):
        form = order_form(owner_client, subscription)
        page = text(owner_client.get(licences_url(subscription)))
        response = owner_client.post(
            licences_url(subscription), {**form, "licences": "4", "step": "order"}
        )
    terms = f"/subscriptions/{subscription.public_id}/#renewal"
    assert "can only be lowered at renewal" in page and terms in page
    body = text(response)
    assert response.status_code == 400
    assert "On an annual plan licences cannot be removed during the term." in body
    assert f'<a href="{terms}">Renewal settings</a>' in body  # beside the message
    with time_machine.travel(ADDED_ON, tick=False):
        fragment = text(
            owner_client.get(
                licences_url(subscription),
                {"licences": "4", "expected": "5"},
                headers={"HX-Request": "true"},
            )
        )
    assert "On an annual plan licences cannot be removed during the term." in fragment
    assert f'<a href="{terms}">Renewal settings</a>' in fragment
    assert field_value(body, "licences") == "4"
    nothing_saved(subscription, 5)


@pytest.mark.parametrize(
    ("status", "reason", "message"),
    [
        ("cancelled", "", "This subscription is cancelled"),
        ("suspended", "reseller_initiated", "This subscription is suspended"),
        ("suspended", "pending_payment", "This subscription is suspended (Payment pending)"),
    ],
)
def test_no_orders_on_cancelled_or_suspended_subscriptions(
    owner_client, tenant, plans, status, reason, message
):
    subscription = bought(tenant, plans["flexible"], licences=5)
    with time_machine.travel(ADDED_ON, tick=False):
        form = order_form(owner_client, subscription)
        Subscription.objects.filter(pk=subscription.pk).update(
            status=status,
            suspension_reason=reason,
            cancelled_at=timezone.now() if status == "cancelled" else None,
        )
        shown = text(owner_client.get(licences_url(subscription)))
        response = owner_client.post(
            licences_url(subscription), {**form, "licences": "6", "step": "order"}
        )
    assert message in shown  # said at once, before anyone orders
    assert response.status_code == 400 and message in text(response)
    assert field_value(text(response), "licences") == "6"
    nothing_saved(subscription, 5)


def test_licence_roles(tenant, other_tenant, client_for, plans):
    subscription = bought(tenant, plans["flexible"], licences=5)
    billing = client_for(member_of(tenant.reseller, Role.BILLING).user)
    assert billing.get(licences_url(subscription)).status_code == 403
    assert billing.post(licences_url(subscription), {"step": "order"}).status_code == 403

    sales = client_for(member_of(tenant.reseller, Role.SALES).user)
    with time_machine.travel(ADDED_ON, tick=False):
        page = text(sales.get(licences_url(subscription)))
        assert "removing them needs an admin or the owner" in page
        form = order_form(sales, subscription)
        preview = text(
            sales.get(
                licences_url(subscription),
                {"licences": "4", "expected": "5"},
                headers={"HX-Request": "true"},
            )
        )
        assert "Your role can add licences but not remove them" in preview
        removed = sales.post(licences_url(subscription), {**form, "licences": "4", "step": "order"})
        assert removed.status_code == 403
        assert "Your role can add licences but not remove them" in text(removed)
        assert field_value(text(removed), "licences") == "4"
        nothing_saved(subscription, 5)
        added = sales.post(licences_url(subscription), {**form, "licences": "6", "step": "order"})
    assert added.status_code == 302
    subscription.refresh_from_db()
    assert subscription.licences == 6


def test_sales_minus_button_stops_at_the_current_count(tenant, other_tenant, client_for, plans):
    subscription = bought(tenant, plans["flexible"], licences=5)
    sales = client_for(member_of(tenant.reseller, Role.SALES).user)
    with time_machine.travel(ADDED_ON, tick=False):
        form = order_form(sales, subscription)
        at_current = text(sales.post(licences_url(subscription), {**form, "step": "down"}))
    assert field_value(at_current, "licences") == "5"
    assert re.search(r'id="licences-minus"[^>]*disabled', at_current)


def test_admin_removes_licences_on_a_flexible_plan_at_once_with_no_credit(
    tenant, other_tenant, client_for, plans
):
    subscription = bought(tenant, plans["flexible"], licences=5)
    admin = client_for(member_of(tenant.reseller, Role.ADMIN).user)
    with time_machine.travel(ADDED_ON, tick=False):
        form = order_form(admin, subscription)
        preview = text(admin.post(licences_url(subscription), {**form, "licences": "3"}))
        assert '<strong id="due-now">€0.00</strong>' in preview
        assert "Removed licences are not credited" in preview
        response = admin.post(
            licences_url(subscription), {**form, "licences": "3", "step": "order"}
        )
    order = Order.objects.get(kind="remove")
    assert response.status_code == 302 and order.amount == D("0.00")
    done = text(admin.get(response["Location"]))
    assert "5 → <strong>3</strong> (2 licences removed)" in done
    assert "Removed licences are not credited." in done
    assert not Charge.objects.filter(order=order).exists()


def test_a_trial_adds_and_removes_up_to_ten_for_free(owner_client, tenant, plans):
    subscription = bought(tenant, plans["trial"], licences=3)
    with time_machine.travel(ADDED_ON, tick=False):
        form = order_form(owner_client, subscription)
        page = text(owner_client.get(licences_url(subscription)))
        assert "Now 3 licences; at most 10." in page and "Free during the trial." in page
        too_many = owner_client.post(
            licences_url(subscription), {**form, "licences": "11", "step": "order"}
        )
        assert too_many.status_code == 400
        assert "A trial has at most 10 licences." in text(too_many)
        at_limit = text(owner_client.post(licences_url(subscription), {**form, "licences": "10"}))
        assert re.search(r'id="licences-plus"[^>]*disabled', at_limit)
        response = owner_client.post(
            licences_url(subscription), {**form, "licences": "2", "step": "order"}
        )
    assert response.status_code == 302
    subscription.refresh_from_db()
    assert subscription.licences == 2


def test_money_follows_the_language(tenant, other_tenant, client_for, plans):
    subscription = bought(tenant, plans["flexible"], licences=300)
    client = client_for(tenant.owner)
    with time_machine.travel(ADDED_ON, tick=False):
        german = client.get(licences_url(subscription), headers={"Accept-Language": "de"})
        english = client.get(licences_url(subscription), headers={"Accept-Language": "en"})
    # From the next period 301 x 4.00.
    assert '<span id="recurring">1.204,00\xa0€</span>' in text(german)
    assert '<span id="recurring">€1,204.00</span>' in text(english)


def test_another_resellers_subscription_and_order_are_404(tenant, other_tenant, client_for, plans):
    subscription = bought(tenant, plans["flexible"], licences=5)
    order = Order.objects.get(subscription=subscription)
    outsider = client_for(other_tenant.owner)
    assert outsider.get(licences_url(subscription)).status_code == 404
    assert outsider.post(licences_url(subscription), {"step": "order"}).status_code == 404
    assert outsider.get(f"/subscriptions/orders/{order.public_id}/").status_code == 404
    assert outsider.get(buy_url(tenant.customer)).status_code == 404


# The customer page and the Customers list


def test_customer_page_lists_subscriptions_with_buy_and_add_licences(
    owner_client, tenant, other_tenant, client_for, plans
):
    subscription = bought(tenant, plans["annual_yearly"], licences=7)
    bought(other_tenant, plans["flexible"], licences=99, customer=other_tenant.customer)
    body = text(owner_client.get(f"/customers/{tenant.customer.public_id}/"))
    assert f'href="/subscriptions/buy/{tenant.customer.public_id}/"' in body
    assert "Shared Contacts for Gmail" in body and "Annual, paid yearly" in body
    assert "<td>7</td>" in body and "Reseller card" in body
    assert licences_url(subscription) in body
    assert "<td>99</td>" not in body  # the other reseller's subscription

    billing = client_for(member_of(tenant.reseller, Role.BILLING).user)
    read_only = text(billing.get(f"/customers/{tenant.customer.public_id}/"))
    assert "Annual, paid yearly" in read_only
    assert "/subscriptions/buy/" not in read_only and licences_url(subscription) not in read_only

    invited = CustomerFactory(reseller=tenant.reseller, status=Customer.Status.INVITED)
    page = text(owner_client.get(f"/customers/{invited.public_id}/"))
    assert "has not accepted the invitation yet" in page and "/subscriptions/buy/" not in page


def test_customer_page_costs_the_same_with_more_subscriptions(owner_client, tenant, plans):
    url = f"/customers/{tenant.customer.public_id}/"
    bought(tenant, plans["flexible"])

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert owner_client.get(url).status_code == 200
        return len(captured)

    one = queries()
    for n in range(3):
        bought(tenant, catalogue(f"Product {n}", f"product-{n}")["annual_monthly"])
    assert queries() == one


def test_customer_list_shows_plan_and_licences_without_a_query_per_row(
    owner_client, tenant, other_tenant, plans
):
    bought(tenant, plans["flexible"], licences=12)

    def page() -> tuple[str, int]:
        with CaptureQueriesContext(connection) as captured:
            response = owner_client.get("/customers/")
        return text(response), len(captured)

    body, one_row = page()
    assert "<td>12</td>" in body and "<td>Flexible</td>" in body
    for n in range(10):
        customer = CustomerFactory(reseller=tenant.reseller)
        bought(tenant, plans["annual_monthly"], licences=n + 1, customer=customer)
    body, many_rows = page()
    assert many_rows == one_row
    assert "Annual, paid monthly" in body and "<td>10</td>" in body


# In a real browser: Manage → Add licences → + / - → Order now (seed steps 8-10), with htmx.


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_add_licences_in_a_real_browser(browser, live_server):
    from playwright.sync_api import ConsoleMessage, expect

    from tests.support.browser import session_cookie

    tenant = make_tenant("Browser Orders")
    subscription = bought(tenant, catalogue()["flexible"], licences=5)
    context = browser.new_context(base_url=live_server.url)
    context.add_cookies([session_cookie(tenant.owner, live_server.url)])
    page = context.new_page()
    violations: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            violations.append(message.text)

    page.on("console", on_console)
    page.goto("/customers/")
    page.click("text=Manage")
    page.click("text=Add licences")
    expect(page.locator("#id_licences")).to_have_value("6")

    # "+" is an htmx request: the number and the preview change, the page stays.
    # Typing below must wait until htmx has settled the new input (and bound its "input"
    # trigger to it), or the typed number races the swap.
    page.evaluate(
        "() => { window.settled = false; document.body.addEventListener("
        "'htmx:afterSettle', () => { window.settled = true }, {once: true}) }"
    )
    with page.expect_response(lambda r: r.request.headers.get("hx-request") == "true"):
        page.click("#licences-plus")
    page.wait_for_function("() => window.settled")
    expect(page.locator("#id_licences")).to_have_value("7")
    due_for_seven = services.subscription_preview_licences(
        subscription=subscription, new_count=7
    ).due_now
    expect(page.locator("#due-now")).to_have_text(f"€{due_for_seven}")

    # Typing a number updates the preview as it is typed.
    page.fill("#id_licences", "12")
    due_for_twelve = services.subscription_preview_licences(
        subscription=subscription, new_count=12
    ).due_now
    expect(page.locator("#due-now")).to_have_text(f"€{due_for_twelve}")

    page.click("text=Order now")
    page.wait_for_url("**/subscriptions/orders/**")
    order = Order.objects.get(kind="add")
    expect(page.locator("h1")).to_have_text("Order placed")
    assert order.reference in page.content() and order.amount == due_for_twelve
    assert violations == []
    subscription.refresh_from_db()
    assert subscription.licences == 12
