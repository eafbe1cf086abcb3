"""Plans and terms pages: the subscription's page with its licence ledger, renewal settings,
change plan, cancel, suspend / reactivate; the customer's read-only view; and what happens to
subscriptions when their customer moves to another reseller or revokes its reseller."""

import re
from datetime import date
from decimal import Decimal

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from core.ids import new_public_id
from customers import services as customer_services
from customers.models import Customer
from resellers.models import AuditEvent
from resellers.roles import Role
from subscriptions import services
from subscriptions.models import Charge, LicenceChange, Payer, Plan, Subscription
from tests.factories import Tenant, admin_of, buy, catalogue, member_of, owner_of

D = Decimal
Kind = Plan.Kind
TODAY = date(2026, 3, 10)
DASH = "\u2013"  # between the first and last day of a period


@pytest.fixture(autouse=True)
def _today():
    with time_machine.travel(TODAY, tick=False):
        yield


def url(name: str, subscription: Subscription) -> str:
    return reverse(f"subscriptions:{name}", kwargs={"subscription_id": subscription.public_id})


def client_with(tenant: Tenant, role: str, client_for) -> Client:
    return client_for(member_of(tenant.reseller, role).user)


def fresh(subscription: Subscription) -> Subscription:
    return Subscription.objects.get(pk=subscription.pk)


# Plans and terms


def test_plans_and_terms_page(tenant, other_tenant, owner_client, plans):
    subscription = buy(owner_of(tenant), plans[Kind.FLEXIBLE], licences=5)
    services.subscription_add_licences(
        membership=owner_of(tenant),
        subscription=subscription,
        quantity=2,
        order_key=services.order_key_new(),
    )
    response = owner_client.get(url("detail", subscription))
    assert response.status_code == 200
    page = response.content.decode()
    customer = tenant.customer
    assert f"You are managing <strong>{customer.organisation}</strong> ({customer.domain})" in page
    assert "Shared Contacts for Gmail" in page
    assert "Flexible" in page
    assert "€4.00 per month" in page  # the locked price, in English notation
    assert "€28.00" in page  # 7 licences for one month
    assert "Reseller card" in page
    assert f"March 10, 2026 {DASH} April 9, 2026" in page  # the current period
    # The ledger: every change, who, before → after, amount, order reference.
    ledger = list(LicenceChange.objects.filter(subscription=subscription).select_related("order"))
    assert len(ledger) == 2
    assert page.count(tenant.owner.email) >= 2
    assert "0 → 5" in page and "5 → 7" in page
    assert "€20.00" in page  # the purchase
    for change in ledger:
        assert change.order is not None and change.order.reference in page
    # The way on to Add licences.
    assert url("licences", subscription) in page


def test_money_follows_the_reader_s_language(tenant, other_tenant, owner_client, plans):
    subscription = buy(owner_of(tenant), plans[Kind.FLEXIBLE], licences=5)
    page = owner_client.get(url("detail", subscription), HTTP_ACCEPT_LANGUAGE="de").content
    assert "20,00\xa0€".encode() in page
    assert "€20.00".encode() not in page


def test_annual_plan_shows_term_end_and_renewal_settings(tenant, other_tenant, owner_client, plans):
    subscription = buy(owner_of(tenant), plans[Kind.ANNUAL_YEARLY], licences=3)
    page = owner_client.get(url("detail", subscription)).content.decode()
    assert "Annual, paid yearly" in page
    assert "€36.00 per year" in page
    assert "March 9, 2027" in page  # the term's last day
    assert "Renews on March 10, 2027" in page
    assert 'id="renewal"' in page
    assert url("renewal", subscription) in page


def test_flexible_plan_has_no_renewal_settings(tenant, other_tenant, owner_client, plans):
    subscription = buy(owner_of(tenant), plans[Kind.FLEXIBLE])
    page = owner_client.get(url("detail", subscription)).content.decode()
    assert 'id="renewal"' not in page
    assert "Next billing on April 10, 2026" in page


def test_suspension_reason_is_shown(tenant, other_tenant, owner_client, plans):
    subscription = buy(owner_of(tenant), plans[Kind.FLEXIBLE])
    services.subscription_suspend(membership=owner_of(tenant), subscription=subscription)
    page = owner_client.get(url("detail", subscription)).content.decode()
    assert "Suspended — Suspended by the reseller" in page
    assert url("reactivate", subscription) in page
    assert url("suspend", subscription) not in page


def test_buttons_follow_the_role(tenant, other_tenant, client_for, plans):
    subscription = buy(owner_of(tenant), plans[Kind.FLEXIBLE])
    billing = client_with(tenant, Role.BILLING, client_for).get(url("detail", subscription))
    assert billing.status_code == 200  # billing reads
    page = billing.content.decode()
    for name in ("licences", "change_plan", "cancel", "suspend"):
        assert url(name, subscription) not in page, name
    body = client_with(tenant, Role.SALES, client_for).get(url("detail", subscription)).content
    assert url("licences", subscription).encode() in body
    assert url("change_plan", subscription).encode() in body
    assert url("cancel", subscription).encode() not in body
    assert url("suspend", subscription).encode() not in body
    body = client_with(tenant, Role.ADMIN, client_for).get(url("detail", subscription)).content
    assert url("cancel", subscription).encode() in body
    assert url("suspend", subscription).encode() in body


def test_another_resellers_subscription_is_not_found(tenant, other_tenant, client_for, plans):
    subscription = buy(owner_of(tenant), plans[Kind.FLEXIBLE])
    outsider = client_for(other_tenant.owner)
    for name in ("detail", "change_plan", "cancel", "suspend", "reactivate"):
        assert outsider.get(url(name, subscription)).status_code == 404, name
    for name in ("renewal", "change_plan", "cancel", "suspend", "cancel_plan_change"):
        assert outsider.post(url(name, subscription)).status_code == 404, name
    assert fresh(subscription).status == Subscription.Status.ACTIVE


# Renewal settings


def test_renew_with_a_set_number_of_licences(tenant, other_tenant, owner_client, plans):
    subscription = buy(owner_of(tenant), plans[Kind.ANNUAL_MONTHLY], licences=10)
    response = owner_client.post(
        url("renewal", subscription), {"setting": "renew_with_count", "renewal_licences": "6"}
    )
    assert response.status_code == 302
    assert response["Location"].endswith("#renewal")
    subscription = fresh(subscription)
    assert subscription.renewal_setting == "renew_with_count"
    assert subscription.renewal_licences == 6
    assert AuditEvent.objects.filter(action="subscription.renewal_changed").count() == 1
    page = owner_client.get(url("detail", subscription)).content.decode()
    assert "Renew with a set number of licences: 6 licences" in page


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("abc", "Enter a whole number of licences."),
        ("", "Enter how many licences to renew with."),
        ("0", "A subscription needs at least 1 licence."),
        ("-3", "A subscription needs at least 1 licence."),
        ("501", "This plan allows at most 500 licences."),
    ],
)
def test_bad_renewal_count_is_explained_beside_the_field(
    tenant, other_tenant, owner_client, plans, typed, message
):
    subscription = buy(owner_of(tenant), plans[Kind.ANNUAL_MONTHLY], licences=10)
    response = owner_client.post(
        url("renewal", subscription), {"setting": "renew_with_count", "renewal_licences": typed}
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="id_renewal_licences_error"' in page
    assert message in page
    if typed:
        assert f'value="{typed}"' in page  # what was typed is kept
    assert re.search(r'value="renew_with_count"[^>]*checked', page)  # the choice is kept
    assert fresh(subscription).renewal_setting == "auto_renew"


def test_count_typed_beside_another_choice_is_ignored(tenant, other_tenant, owner_client, plans):
    subscription = buy(owner_of(tenant), plans[Kind.ANNUAL_MONTHLY], licences=10)
    services.subscription_set_renewal(
        membership=owner_of(tenant),
        subscription=subscription,
        setting="renew_with_count",
        licences=4,
    )
    response = owner_client.post(
        url("renewal", subscription), {"setting": "auto_renew", "renewal_licences": "abc"}
    )
    assert response.status_code == 302
    subscription = fresh(subscription)
    assert subscription.renewal_setting == "auto_renew"
    assert subscription.renewal_licences is None


def test_renewal_cancel_at_term_end(tenant, other_tenant, owner_client, plans):
    subscription = buy(owner_of(tenant), plans[Kind.ANNUAL_YEARLY], licences=2)
    response = owner_client.post(url("renewal", subscription), {"setting": "cancel_at_term_end"})
    assert response.status_code == 302
    assert fresh(subscription).renewal_setting == "cancel_at_term_end"
    page = owner_client.get(url("detail", subscription)).content.decode()
    assert "will not renew: it ends on March 10, 2027" in page


def test_renewal_roles(tenant, other_tenant, client_for, plans):
    subscription = buy(owner_of(tenant), plans[Kind.ANNUAL_MONTHLY], licences=10)
    billing = client_with(tenant, Role.BILLING, client_for)
    assert billing.post(url("renewal", subscription), {"setting": "auto_renew"}).status_code == 403
    sales = client_with(tenant, Role.SALES, client_for)
    page = sales.get(url("detail", subscription)).content.decode()
    assert 'value="cancel_at_term_end"' not in page
    assert (
        sales.post(url("renewal", subscription), {"setting": "cancel_at_term_end"}).status_code
        == 403
    )
    lower = {"setting": "renew_with_count", "renewal_licences": "4"}
    assert sales.post(url("renewal", subscription), lower).status_code == 403
    assert fresh(subscription).renewal_setting == "auto_renew"
    higher = {"setting": "renew_with_count", "renewal_licences": "12"}
    assert sales.post(url("renewal", subscription), higher).status_code == 302
    assert fresh(subscription).renewal_licences == 12


def test_renewal_settings_are_for_annual_plans(tenant, other_tenant, owner_client, plans):
    subscription = buy(owner_of(tenant), plans[Kind.FLEXIBLE])
    response = owner_client.post(url("renewal", subscription), {"setting": "cancel_at_term_end"})
    assert response.status_code == 400
    assert "Renewal settings apply to annual plans only." in response.content.decode()
    assert fresh(subscription).renewal_setting == "auto_renew"


def test_renewal_is_post_only(tenant, other_tenant, owner_client, plans):
    subscription = buy(owner_of(tenant), plans[Kind.ANNUAL_MONTHLY])
    assert owner_client.get(url("renewal", subscription)).status_code == 405


# Change plan


def test_change_plan_offers_only_the_allowed_plans(tenant, other_tenant, owner_client, plans):
    subscription = buy(owner_of(tenant), plans[Kind.FLEXIBLE])
    page = owner_client.get(url("change_plan", subscription)).content.decode()
    assert plans[Kind.ANNUAL_MONTHLY].public_id in page
    assert plans[Kind.ANNUAL_YEARLY].public_id in page
    assert plans[Kind.TRIAL].public_id not in page
    assert f'value="{plans[Kind.FLEXIBLE].public_id}"' not in page
    assert "€3.20 per licence per month" in page


def test_flexible_to_annual_at_once_with_its_confirmation(
    tenant, other_tenant, owner_client, plans
):
    subscription = buy(owner_of(tenant), plans[Kind.FLEXIBLE], licences=5)
    target = plans[Kind.ANNUAL_YEARLY]
    confirm = owner_client.get(url("change_plan", subscription), {"plan": target.public_id})
    assert confirm.status_code == 200
    page = confirm.content.decode()
    assert "today, March 10, 2026" in page
    assert "the term renews on March 10, 2027" in page
    # 5 licences x 3.00 x the 11 months after the paid one.
    assert f"Charged now: <strong>€165.00</strong>, for April 10, 2026 {DASH} March 9, 2027" in page
    assert fresh(subscription).plan_id == plans[Kind.FLEXIBLE].pk  # GET changes nothing

    response = owner_client.post(url("change_plan", subscription), {"plan": target.public_id})
    assert response.status_code == 302
    assert response["Location"] == url("detail", subscription)
    subscription = fresh(subscription)
    assert subscription.plan_id == target.pk
    charge = Charge.objects.get(subscription=subscription, kind=Charge.Kind.PLAN_CHANGE)
    assert charge.amount == D("165.00")  # what the confirmation said
    assert (
        "is now on Annual, paid yearly" in owner_client.get(response["Location"]).content.decode()
    )


def test_flexible_to_annual_monthly_charges_nothing_now(tenant, other_tenant, owner_client, plans):
    subscription = buy(owner_of(tenant), plans[Kind.FLEXIBLE], licences=5)
    target = plans[Kind.ANNUAL_MONTHLY]
    page = owner_client.get(url("change_plan", subscription), {"plan": target.public_id})
    assert "Nothing is charged now" in page.content.decode()
    owner_client.post(url("change_plan", subscription), {"plan": target.public_id})
    assert fresh(subscription).plan_id == target.pk
    assert not Charge.objects.filter(subscription=subscription, kind=Charge.Kind.PLAN_CHANGE)


def test_trial_to_paid_starts_paid_service(tenant, other_tenant, owner_client, plans):
    subscription = buy(owner_of(tenant), plans[Kind.TRIAL], licences=4)
    target = plans[Kind.FLEXIBLE]
    page = owner_client.get(url("change_plan", subscription)).content.decode()
    assert "Starts paid service today." in page
    page = owner_client.get(url("change_plan", subscription), {"plan": target.public_id}).content
    text = page.decode()
    assert "Start paid service" in text
    assert f"Charged now: <strong>€16.00</strong>, for March 10, 2026 {DASH} April 9, 2026" in text
    owner_client.post(url("change_plan", subscription), {"plan": target.public_id})
    subscription = fresh(subscription)
    assert subscription.status == Subscription.Status.ACTIVE
    assert Charge.objects.get(subscription=subscription).amount == D("16.00")


def test_annual_to_flexible_is_scheduled_visible_and_cancellable(
    tenant, other_tenant, owner_client, plans
):
    subscription = buy(owner_of(tenant), plans[Kind.ANNUAL_MONTHLY], licences=5)
    target = plans[Kind.FLEXIBLE]
    page = owner_client.get(url("change_plan", subscription), {"plan": target.public_id})
    assert "scheduled for <strong>March 10, 2027</strong>" in page.content.decode()
    response = owner_client.post(url("change_plan", subscription), {"plan": target.public_id})
    assert response.status_code == 302
    subscription = fresh(subscription)
    assert subscription.plan_id == plans[Kind.ANNUAL_MONTHLY].pk
    assert subscription.scheduled_plan_id == target.pk
    page = owner_client.get(url("detail", subscription)).content.decode()
    assert "Changes to <strong>Flexible</strong> on March 10, 2027" in page
    assert url("cancel_plan_change", subscription) in page

    response = owner_client.post(url("cancel_plan_change", subscription))
    assert response.status_code == 302
    assert fresh(subscription).scheduled_plan_id is None
    page = owner_client.get(response["Location"]).content.decode()
    assert "The plan change was cancelled" in page
    # Nothing left to withdraw: said so, nothing changes.
    again = owner_client.post(url("cancel_plan_change", subscription), follow=True)
    assert "No plan change is scheduled." in again.content.decode()
    assert owner_client.get(url("cancel_plan_change", subscription)).status_code == 405


def test_plan_not_offered_is_refused(tenant, other_tenant, owner_client, plans):
    subscription = buy(owner_of(tenant), plans[Kind.FLEXIBLE])
    trial = plans[Kind.TRIAL]
    response = owner_client.get(url("change_plan", subscription), {"plan": trial.public_id})
    assert response.status_code == 400
    assert "Choose one of the plans offered." in response.content.decode()
    response = owner_client.post(url("change_plan", subscription), {"plan": trial.public_id})
    assert response.status_code == 400
    assert "cannot change to Trial" in response.content.decode()
    response = owner_client.post(url("change_plan", subscription), {"plan": new_public_id()})
    assert response.status_code == 400
    assert "Choose one of the plans offered." in response.content.decode()
    other_product = catalogue(sku="other")[Kind.ANNUAL_MONTHLY]
    response = owner_client.post(
        url("change_plan", subscription), {"plan": other_product.public_id}
    )
    assert response.status_code == 400
    assert fresh(subscription).plan_id == plans[Kind.FLEXIBLE].pk


def test_change_plan_of_a_suspended_subscription_says_why(
    tenant, other_tenant, owner_client, plans
):
    subscription = buy(owner_of(tenant), plans[Kind.FLEXIBLE])
    services.subscription_suspend(membership=owner_of(tenant), subscription=subscription)
    target = plans[Kind.ANNUAL_MONTHLY]
    response = owner_client.post(url("change_plan", subscription), {"plan": target.public_id})
    assert response.status_code == 400
    assert "must be reactivated" in response.content.decode()
    assert fresh(subscription).plan_id == plans[Kind.FLEXIBLE].pk


def test_change_plan_roles(tenant, other_tenant, client_for, plans):
    subscription = buy(owner_of(tenant), plans[Kind.ANNUAL_MONTHLY])
    flexible = plans[Kind.FLEXIBLE]
    billing = client_with(tenant, Role.BILLING, client_for)
    assert billing.get(url("change_plan", subscription)).status_code == 403
    assert (
        billing.post(url("change_plan", subscription), {"plan": flexible.public_id}).status_code
        == 403
    )
    sales = client_with(tenant, Role.SALES, client_for)
    page = sales.get(url("change_plan", subscription)).content.decode()
    assert flexible.public_id not in page  # annual → flexible is for admins and owners
    assert (
        sales.post(url("change_plan", subscription), {"plan": flexible.public_id}).status_code
        == 403
    )
    assert fresh(subscription).scheduled_plan_id is None


def test_cancelled_subscription_cannot_change_plan(tenant, other_tenant, owner_client, plans):
    subscription = buy(owner_of(tenant), plans[Kind.FLEXIBLE])
    services.subscription_cancel(membership=owner_of(tenant), subscription=subscription)
    page = owner_client.get(url("change_plan", subscription)).content.decode()
    assert "A cancelled subscription cannot change plan." in page


# Cancel


def test_cancel_flexible_at_once(tenant, other_tenant, owner_client, plans):
    subscription = buy(owner_of(tenant), plans[Kind.FLEXIBLE], licences=3)
    page = owner_client.get(url("cancel", subscription)).content.decode()
    assert "ends at once, <strong>today, March 10, 2026</strong>" in page
    assert "paid until April 9, 2026" in page
    assert fresh(subscription).status == Subscription.Status.ACTIVE
    response = owner_client.post(url("cancel", subscription))
    assert response.status_code == 302
    assert fresh(subscription).status == Subscription.Status.CANCELLED
    assert "was cancelled" in owner_client.get(response["Location"]).content.decode()
    # Again: said so, nothing changes.
    again = owner_client.post(url("cancel", subscription))
    assert again.status_code == 400
    assert "already cancelled" in again.content.decode()


def test_cancel_trial_at_once(tenant, other_tenant, owner_client, plans):
    subscription = buy(owner_of(tenant), plans[Kind.TRIAL], licences=2)
    page = owner_client.get(url("cancel", subscription)).content.decode()
    assert "The trial ends at once" in page
    owner_client.post(url("cancel", subscription))
    assert fresh(subscription).status == Subscription.Status.CANCELLED


def test_cancel_annual_at_term_end(tenant, other_tenant, owner_client, plans):
    subscription = buy(owner_of(tenant), plans[Kind.ANNUAL_MONTHLY], licences=3)
    page = owner_client.get(url("cancel", subscription)).content.decode()
    assert "It ends on <strong>March 10, 2027</strong>" in page
    assert "The last day of service is March 9, 2027" in page
    response = owner_client.post(url("cancel", subscription))
    assert response.status_code == 302
    subscription = fresh(subscription)
    assert subscription.status == Subscription.Status.ACTIVE
    assert subscription.renewal_setting == "cancel_at_term_end"
    page = owner_client.get(response["Location"]).content.decode()
    assert "will not renew: it ends on March 10, 2027" in page
    assert url("cancel", subscription) not in page  # nothing more to cancel
    page = owner_client.get(url("cancel", subscription)).content.decode()
    assert "already set to end on March 10, 2027" in page


@pytest.mark.parametrize("role", [Role.SALES, Role.BILLING])
def test_cancel_is_for_admins_and_owners(tenant, other_tenant, client_for, plans, role):
    subscription = buy(owner_of(tenant), plans[Kind.FLEXIBLE])
    client = client_with(tenant, role, client_for)
    assert client.get(url("cancel", subscription)).status_code == 403
    assert client.post(url("cancel", subscription)).status_code == 403
    assert fresh(subscription).status == Subscription.Status.ACTIVE


def test_admin_may_cancel(tenant, other_tenant, client_for, plans):
    subscription = buy(owner_of(tenant), plans[Kind.FLEXIBLE])
    client = client_with(tenant, Role.ADMIN, client_for)
    assert client.post(url("cancel", subscription)).status_code == 302
    assert fresh(subscription).status == Subscription.Status.CANCELLED


# Suspend and reactivate


def test_suspend_and_reactivate(tenant, other_tenant, client_for, plans):
    subscription = buy(owner_of(tenant), plans[Kind.FLEXIBLE])
    admin = client_with(tenant, Role.ADMIN, client_for)
    page = admin.get(url("suspend", subscription)).content.decode()
    assert "billing goes on" in page
    assert fresh(subscription).status == Subscription.Status.ACTIVE
    assert admin.post(url("suspend", subscription)).status_code == 302
    subscription = fresh(subscription)
    assert subscription.status == Subscription.Status.SUSPENDED
    assert subscription.suspension_reason == "reseller_initiated"
    # A second suspend is refused with a reason.
    again = admin.post(url("suspend", subscription))
    assert again.status_code == 400
    assert "Only an active subscription" in again.content.decode()

    page = admin.get(url("reactivate", subscription)).content.decode()
    assert "Reactivate now" in page
    assert admin.post(url("reactivate", subscription)).status_code == 302
    assert fresh(subscription).status == Subscription.Status.ACTIVE
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"subscription.suspended", "subscription.reactivated"} <= actions
    again = admin.post(url("reactivate", subscription))
    assert again.status_code == 400
    assert "not suspended" in again.content.decode()


def test_ended_trial_is_converted_not_reactivated(tenant, other_tenant, owner_client, plans):
    subscription = buy(owner_of(tenant), plans[Kind.TRIAL], licences=2)
    # The trial job's step as on day 30 (the page itself is seen today: a client's session
    # would not last the month).
    assert services.subscription_expire_trial(
        subscription_id=subscription.pk, today=date(2026, 4, 9)
    )
    page = owner_client.get(url("reactivate", subscription)).content.decode()
    assert "Change to a paid plan" in page
    response = owner_client.post(url("reactivate", subscription))
    assert response.status_code == 400
    assert "The trial has ended." in response.content.decode()
    assert fresh(subscription).suspension_reason == "trial_ended"


@pytest.mark.parametrize("role", [Role.SALES, Role.BILLING])
def test_suspend_is_for_admins_and_owners(tenant, other_tenant, client_for, plans, role):
    subscription = buy(owner_of(tenant), plans[Kind.FLEXIBLE])
    client = client_with(tenant, role, client_for)
    for name in ("suspend", "reactivate"):
        assert client.get(url(name, subscription)).status_code == 403
        assert client.post(url(name, subscription)).status_code == 403
    assert fresh(subscription).status == Subscription.Status.ACTIVE


# The customer side


def my_url(customer: Customer, subscription: Subscription) -> str:
    return reverse(
        "my_subscriptions:detail",
        kwargs={"customer_id": customer.public_id, "subscription_id": subscription.public_id},
    )


def test_customer_sees_its_subscriptions_read_only(tenant, other_tenant, client_for, plans):
    subscription = buy(owner_of(tenant), plans[Kind.ANNUAL_MONTHLY], licences=4)
    services.subscription_add_licences(
        membership=owner_of(tenant),
        subscription=subscription,
        quantity=3,
        order_key=services.order_key_new(),
    )
    customer = tenant.customer
    client = client_for(admin_of(customer))
    page = client.get(
        reverse("customer_side:organisation", kwargs={"customer_id": customer.public_id})
    ).content.decode()
    assert my_url(customer, subscription) in page
    assert "Annual, paid monthly" in page
    assert "Renews on March 10, 2027" in page

    response = client.get(my_url(customer, subscription))
    assert response.status_code == 200
    page = response.content.decode()
    assert "4 → 7" in page and "0 → 4" in page  # the ledger
    assert "Renews on March 10, 2027" in page
    # Read-only: none of the reseller's pages or buttons.
    for name in ("detail", "licences", "change_plan", "renewal", "cancel", "suspend"):
        assert f'"{url(name, subscription)}' not in page, name
    assert client.post(my_url(customer, subscription)).status_code == 405


def test_customer_side_needs_its_own_subscription(tenant, other_tenant, client_for, plans):
    own = buy(owner_of(tenant), plans[Kind.FLEXIBLE])
    other_plans = catalogue(sku="other")
    theirs = buy(owner_of(other_tenant), other_plans[Kind.FLEXIBLE])
    client = client_for(admin_of(tenant.customer))
    assert client.get(my_url(tenant.customer, own)).status_code == 200
    # Another customer's subscription under one's own customer id, and the other way round.
    assert client.get(my_url(tenant.customer, theirs)).status_code == 404
    assert client.get(my_url(other_tenant.customer, theirs)).status_code == 404
    # A reseller member is not the customer's administrator.
    assert client_for(tenant.owner).get(my_url(tenant.customer, own)).status_code == 404


def test_customer_without_subscriptions(tenant, other_tenant, client_for):
    client = client_for(admin_of(tenant.customer))
    page = client.get(
        reverse("customer_side:organisation", kwargs={"customer_id": tenant.customer.public_id})
    ).content.decode()
    assert "Your organisation has no subscriptions yet." in page


# When the customer moves or revokes its reseller


def test_subscriptions_follow_an_imported_customer(tenant, other_tenant, client_for, plans):
    subscription = buy(owner_of(tenant), plans[Kind.FLEXIBLE], licences=5)
    old_customer = tenant.customer
    customer_admin = admin_of(old_customer)
    new_customer = customer_services.customer_transfer(
        customer=old_customer,
        to_reseller=other_tenant.reseller,
        actor=other_tenant.owner,
        via="token",
    )
    subscription = fresh(subscription)
    assert subscription.customer_id == new_customer.pk
    # The ledger follows; orders and charges stay with the record they were made for.
    assert LicenceChange.objects.filter(subscription=subscription).count() == 1
    assert Charge.objects.get(subscription=subscription).customer_id == old_customer.pk
    event = AuditEvent.objects.get(action="subscription.transferred")
    assert event.reseller == other_tenant.reseller
    assert event.customer_public_id == new_customer.public_id
    assert event.before == {"customer": old_customer.public_id}
    assert event.after == {"customer": new_customer.public_id}

    # The new reseller manages it; the old one no longer finds it.
    assert client_for(other_tenant.owner).get(url("detail", subscription)).status_code == 200
    assert client_for(tenant.owner).get(url("detail", subscription)).status_code == 404
    # The customer's administrators see it under the new record.
    client = client_for(customer_admin)
    assert client.get(my_url(new_customer, subscription)).status_code == 200
    assert client.get(my_url(old_customer, subscription)).status_code == 404


def test_revoking_access_moves_payment_to_the_customer_card(tenant, other_tenant, plans):
    owner = owner_of(tenant)
    live = buy(owner, plans[Kind.FLEXIBLE], licences=5)
    other_plans = catalogue(sku="other")
    ended = buy(owner, other_plans[Kind.FLEXIBLE])
    services.subscription_cancel(membership=owner, subscription=ended)
    customer_services.customer_access_revoke(
        customer=tenant.customer, user=admin_of(tenant.customer)
    )
    assert fresh(live).payer == Payer.CUSTOMER_CARD
    assert fresh(ended).payer == Payer.RESELLER_CARD  # a cancelled one is left as it was
    event = AuditEvent.objects.get(action="subscription.payer_changed")
    assert event.object_id == live.public_id
    assert event.before == {"payer": "reseller_card"}
    assert event.after == {"payer": "customer_card"}
    assert event.customer_public_id == tenant.customer.public_id


def test_hooks_leave_other_customers_alone(tenant, other_tenant, plans):
    other_plans = catalogue(sku="other")
    theirs = buy(owner_of(other_tenant), other_plans[Kind.FLEXIBLE])
    buy(owner_of(tenant), plans[Kind.FLEXIBLE])
    customer_services.customer_access_revoke(
        customer=tenant.customer, user=admin_of(tenant.customer)
    )
    assert fresh(theirs).payer == Payer.RESELLER_CARD
    assert fresh(theirs).customer_id == other_tenant.customer.pk
