"""Subscription services on the database: buy, add and remove licences, renewal settings, plan
changes, cancel, suspend; charges, ledger and audit; selectors and the admin."""

from datetime import date
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.http import Http404
from django.test.utils import CaptureQueriesContext

from customers.models import Customer
from resellers.models import AuditEvent
from resellers.roles import Role
from subscriptions import selectors, services
from subscriptions.models import (
    Charge,
    LicenceChange,
    Order,
    Plan,
    PlanPrice,
    Subscription,
)
from subscriptions.periods import Period, period_price, prorate
from subscriptions.services import records
from tests.factories import (
    CustomerFactory,
    UserFactory,
    buy,
    catalogue,
    change,
    member_of,
    owner_of,
)

D = Decimal
EUR_PRICES = {
    Plan.Kind.FLEXIBLE: D("4.00"),
    Plan.Kind.ANNUAL_MONTHLY: D("3.20"),
    Plan.Kind.ANNUAL_YEARLY: D("3.00"),
    Plan.Kind.TRIAL: D("0.00"),
}


def messages_of(error: ValidationError) -> str:
    return " ".join(error.messages)


# Buying


@time_machine.travel(date(2026, 3, 10), tick=False)
def test_buy_flexible_charges_the_first_month_and_records_everything(tenant, other_tenant, plans):
    order = services.subscription_buy(
        membership=owner_of(tenant),
        customer=tenant.customer,
        plan=plans["flexible"],
        licences=5,
        payer="customer_card",
        order_key="key-1",
    )
    subscription = order.subscription
    assert order.reference.startswith("ORD-") and order.amount == D("20.00")
    assert subscription.status == "active" and subscription.licences == 5
    assert subscription.currency == "EUR" and subscription.payer == "customer_card"
    assert subscription.period == Period(date(2026, 3, 10), date(2026, 4, 10))
    assert subscription.term_end is None and subscription.monthly_price == D("4.00")
    charge = Charge.objects.get(subscription=subscription)
    assert (charge.kind, charge.amount, charge.licences, charge.unit_price) == (
        "purchase",
        D("20.00"),
        5,
        D("4.00"),
    )
    assert (charge.period_start, charge.period_end) == (date(2026, 3, 10), date(2026, 4, 10))
    assert charge.invoiced_at is None and charge.payer == "customer_card"
    assert charge.customer == tenant.customer
    row = LicenceChange.objects.get(subscription=subscription)
    assert (row.kind, row.licences_before, row.licences_after, row.amount, row.actor) == (
        "purchase",
        0,
        5,
        D("20.00"),
        tenant.owner,
    )
    event = AuditEvent.objects.get(action="subscription.bought")
    assert event.customer_public_id == tenant.customer.public_id
    assert event.after is not None
    assert event.reseller == tenant.reseller and event.after["order"] == order.reference


@time_machine.travel(date(2026, 1, 31), tick=False)
def test_buy_annual_plans(tenant, other_tenant, plans):
    yearly = buy(owner_of(tenant), plans["annual_yearly"], licences=2)
    assert yearly.period == Period(date(2026, 1, 31), date(2027, 1, 31))
    assert (yearly.term_start, yearly.term_end) == (date(2026, 1, 31), date(2027, 1, 31))
    assert Charge.objects.get(subscription=yearly).amount == D("72.00")  # 2 x 12 x 3.00

    other = CustomerFactory(reseller=tenant.reseller)
    monthly = buy(owner_of(tenant), plans["annual_monthly"], licences=3, customer=other)
    assert monthly.period == Period(date(2026, 1, 31), date(2026, 2, 28))
    assert monthly.term_end == date(2027, 1, 31)
    assert Charge.objects.get(subscription=monthly).amount == D("9.60")


@time_machine.travel(date(2026, 5, 1), tick=False)
def test_trial_is_free_with_at_most_ten_licences(tenant, other_tenant, plans):
    with pytest.raises(ValidationError) as error:
        buy(owner_of(tenant), plans["trial"], licences=11)
    assert "at most 10" in messages_of(error.value)
    trial = buy(owner_of(tenant), plans["trial"], licences=10)
    assert trial.status == "trial"
    assert trial.term_end == date(2026, 5, 31) and trial.period.days == 30
    assert not Charge.objects.exists()
    assert LicenceChange.objects.get().amount == D("0.00")
    # One trial per product and customer, even after it was cancelled.
    services.subscription_cancel(membership=owner_of(tenant), subscription=trial)
    with pytest.raises(ValidationError, match="already had a trial"):
        buy(owner_of(tenant), plans["trial"], licences=1)


def test_an_invited_customer_cannot_be_sold_to(tenant, other_tenant, plans):
    invited = CustomerFactory(reseller=tenant.reseller, status=Customer.Status.INVITED)
    with pytest.raises(ValidationError) as error:
        buy(owner_of(tenant), plans["flexible"], customer=invited)
    assert "has not accepted the invitation yet" in messages_of(error.value)
    assert invited.organisation in messages_of(error.value)
    assert not Subscription.objects.exists() and not Order.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="subscription.").exists()


def test_buy_checks_role_tenant_plan_and_payer(tenant, other_tenant, plans):
    with pytest.raises(PermissionDenied):
        buy(member_of(tenant.reseller, Role.BILLING), plans["flexible"])
    with pytest.raises(PermissionDenied):
        buy(owner_of(tenant), plans["flexible"], customer=other_tenant.customer)
    with pytest.raises(ValidationError, match="Choose who pays"):
        services.subscription_buy(
            membership=owner_of(tenant),
            customer=tenant.customer,
            plan=plans["flexible"],
            licences=1,
            payer="cash",
            order_key="k",
        )
    plans["flexible"].is_active = False
    plans["flexible"].save()
    with pytest.raises(ValidationError, match="no longer on sale"):
        buy(owner_of(tenant), plans["flexible"])
    with pytest.raises(ValidationError, match="at most 500"):
        buy(owner_of(tenant), plans["annual_monthly"], licences=501)
    with pytest.raises(ValidationError, match="at least 1 licence"):
        buy(owner_of(tenant), plans["annual_monthly"], licences=0)
    assert not Subscription.objects.exists()
    # Sales may buy.
    assert buy(member_of(tenant.reseller, Role.SALES), plans["annual_monthly"]).licences == 5


def test_one_live_subscription_per_product_and_the_same_key_is_one_order(
    tenant, other_tenant, plans
):
    first = buy(owner_of(tenant), plans["flexible"], key="same-key")
    again = buy(owner_of(tenant), plans["flexible"], key="same-key")
    assert again == first
    assert Order.objects.count() == 1 and Charge.objects.count() == 1
    with pytest.raises(ValidationError, match="already has a subscription"):
        buy(owner_of(tenant), plans["annual_monthly"])
    # Once cancelled, the product can be bought again.
    services.subscription_cancel(membership=owner_of(tenant), subscription=first)
    assert buy(owner_of(tenant), plans["annual_monthly"]).status == "active"


def test_a_currency_without_a_price_is_refused(tenant, other_tenant, plans):
    tenant.reseller.currency = "GBP"
    tenant.reseller.save()
    with pytest.raises(ValidationError, match="not offered in GBP"):
        buy(owner_of(tenant), plans["flexible"])


# Licences: preview and order share one calculation


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 3, 10), "12.00"),  # first day of the period: 3 x 4.00
        (date(2026, 3, 25), "6.19"),  # 3 x 4 x 16/31 = 6.193…
        (date(2026, 4, 9), "0.39"),  # last day: 3 x 4 x 1/31 = 0.387…
    ],
)
def test_adding_licences_charges_the_prorated_preview(tenant, other_tenant, plans, day, expected):
    with time_machine.travel(date(2026, 3, 10), tick=False):
        subscription = buy(owner_of(tenant), plans["flexible"], licences=5)
    with time_machine.travel(day, tick=False):
        preview = services.subscription_preview_licences(subscription=subscription, new_count=8)
        assert preview.due_now == D(expected)
        assert preview.recurring_amount == D("32.00") and preview.recurring_months == 1
        assert preview.period == Period(date(2026, 3, 10), date(2026, 4, 10))
        assert preview.due_now == prorate(
            licences=3,
            period_price=period_price(monthly_price=D("4.00"), months=1),
            period=preview.period,
            on=day,
        )
        order = change(member_of(tenant.reseller, Role.SALES), subscription, 8)
    assert order.amount == D(expected) and order.kind == "add"
    subscription.refresh_from_db()
    assert subscription.licences == 8
    charge = Charge.objects.get(kind="proration")
    assert (charge.amount, charge.licences, charge.unit_price) == (D(expected), 3, D("4.00"))
    assert (charge.period_start, charge.period_end) == (date(2026, 3, 10), date(2026, 4, 10))
    assert charge.order == order
    row = LicenceChange.objects.get(kind="add")
    assert (row.licences_before, row.licences_after, row.amount, row.order) == (
        5,
        8,
        D(expected),
        order,
    )
    event = AuditEvent.objects.get(action="subscription.licences_added")
    assert event.after is not None and event.before is not None
    assert event.before["licences"] == 5 and event.after["licences"] == 8
    assert event.customer_public_id == tenant.customer.public_id


@time_machine.travel(date(2026, 6, 1), tick=False)
def test_adding_to_an_annual_yearly_plan_prorates_over_the_year(tenant, other_tenant, plans):
    subscription = buy(owner_of(tenant), plans["annual_yearly"], licences=2)
    with time_machine.travel(date(2026, 12, 1), tick=False):
        preview = services.subscription_preview_licences(subscription=subscription, new_count=3)
        # 1 x 36.00 x 182 / 365 = 17.950…
        assert preview.remaining_days == 182 and preview.period.days == 365
        assert preview.due_now == D("17.95") and preview.recurring_amount == D("108.00")
        assert change(owner_of(tenant), subscription, 3).amount == D("17.95")


@time_machine.travel(date(2026, 3, 10), tick=False)
def test_removing_licences_on_flexible_is_at_once_with_no_credit(tenant, other_tenant, plans):
    subscription = buy(owner_of(tenant), plans["flexible"], licences=5)
    with pytest.raises(PermissionDenied):
        change(member_of(tenant.reseller, Role.SALES), subscription, 4)
    preview = services.subscription_preview_licences(subscription=subscription, new_count=2)
    assert preview.due_now == D("0.00") and preview.recurring_amount == D("8.00")
    order = change(member_of(tenant.reseller, Role.ADMIN), subscription, 2)
    assert order.kind == "remove" and order.amount == D("0.00")
    subscription.refresh_from_db()
    assert subscription.licences == 2
    assert Charge.objects.filter(kind="proration").count() == 0
    assert LicenceChange.objects.get(kind="remove").licences_after == 2
    assert AuditEvent.objects.filter(action="subscription.licences_removed").count() == 1


@time_machine.travel(date(2026, 3, 10), tick=False)
def test_removing_licences_on_an_annual_plan_points_to_the_renewal_count(
    tenant, other_tenant, plans
):
    subscription = buy(owner_of(tenant), plans["annual_monthly"], licences=5)
    for attempt in (
        lambda: change(owner_of(tenant), subscription, 4),
        lambda: services.subscription_preview_licences(subscription=subscription, new_count=4),
    ):
        with pytest.raises(ValidationError) as error:
            attempt()
        assert "renewal" in messages_of(error.value)
        assert error.value.error_dict["licences"][0].code == "annual_no_removal"
    subscription.refresh_from_db()
    assert subscription.licences == 5 and not Order.objects.exclude(kind="purchase").exists()


@pytest.mark.parametrize(
    ("new_count", "message"),
    [
        (0, "at least 1 licence"),
        (-3, "at least 1 licence"),
        (501, "at most 500 licences"),
        ("7", "whole number"),
        (2.5, "whole number"),
        (None, "whole number"),
        (True, "whole number"),
        (5, "already has 5 licences"),
    ],
)
def test_bad_licence_counts_are_refused_and_nothing_is_saved(
    tenant, other_tenant, plans, new_count, message
):
    subscription = buy(owner_of(tenant), plans["flexible"], licences=5)
    with pytest.raises(ValidationError) as error:
        change(owner_of(tenant), subscription, new_count)
    assert message in messages_of(error.value)
    with pytest.raises(ValidationError):
        services.subscription_preview_licences(subscription=subscription, new_count=new_count)
    subscription.refresh_from_db()
    assert subscription.licences == 5
    assert Order.objects.count() == 1 and LicenceChange.objects.count() == 1


def test_a_stale_page_is_told_the_new_count(tenant, other_tenant, plans):
    subscription = buy(owner_of(tenant), plans["flexible"], licences=5)
    change(owner_of(tenant), subscription, 7)
    with pytest.raises(ValidationError) as error:
        change(owner_of(tenant), subscription, 6, expected_count=5)
    (stale,) = error.value.error_dict["licences"]
    assert stale.code == "stale" and stale.params == {"count": 7}
    assert "changed the number of licences to 7" in messages_of(error.value)
    subscription.refresh_from_db()
    assert subscription.licences == 7 and LicenceChange.objects.count() == 2


def test_the_same_order_key_twice_is_one_order(tenant, other_tenant, plans):
    subscription = buy(owner_of(tenant), plans["flexible"], licences=5)
    first = change(owner_of(tenant), subscription, 6, order_key="double-click", expected_count=5)
    second = change(owner_of(tenant), subscription, 6, order_key="double-click", expected_count=5)
    assert first == second
    subscription.refresh_from_db()
    assert subscription.licences == 6
    assert LicenceChange.objects.filter(kind="add").count() == 1
    assert Charge.objects.filter(kind="proration").count() == 1
    # The key cannot be reused for another subscription's order.
    other = buy(owner_of(tenant), catalogue(sku="other")["flexible"], licences=1)
    with pytest.raises(ValidationError, match="already used"):
        change(owner_of(tenant), other, 2, order_key="double-click")


def test_no_orders_on_cancelled_or_suspended_subscriptions(tenant, other_tenant, plans):
    subscription = buy(owner_of(tenant), plans["flexible"], licences=5)
    services.subscription_suspend(membership=owner_of(tenant), subscription=subscription)
    with pytest.raises(ValidationError, match="suspended"):
        change(owner_of(tenant), subscription, 6)
    services.subscription_reactivate(membership=owner_of(tenant), subscription=subscription)
    services.subscription_cancel(membership=owner_of(tenant), subscription=subscription)
    with pytest.raises(ValidationError, match="cancelled"):
        change(owner_of(tenant), subscription, 6)
    with pytest.raises(ValidationError, match="cancelled"):
        services.subscription_add_licences(
            membership=owner_of(tenant), subscription=subscription, quantity=1, order_key="x"
        )
    subscription.refresh_from_db()
    assert subscription.licences == 5


def test_another_resellers_member_cannot_order(tenant, other_tenant, plans):
    subscription = buy(owner_of(tenant), plans["flexible"], licences=5)
    with pytest.raises(PermissionDenied):
        change(owner_of(other_tenant), subscription, 6)
    with pytest.raises(PermissionDenied):
        change(member_of(tenant.reseller, Role.BILLING), subscription, 6)


def test_a_trial_can_add_and_remove_up_to_ten_for_free(tenant, other_tenant, plans):
    trial = buy(owner_of(tenant), plans["trial"], licences=3)
    assert change(owner_of(tenant), trial, 10).amount == D("0.00")
    with pytest.raises(ValidationError, match="at most 10"):
        change(owner_of(tenant), trial, 11)
    assert change(owner_of(tenant), trial, 1).kind == "remove"
    assert not Charge.objects.exists()


# Renewal settings


@time_machine.travel(date(2026, 3, 10), tick=False)
def test_renewal_settings(tenant, other_tenant, plans):
    subscription = buy(owner_of(tenant), plans["annual_monthly"], licences=5)
    sales = member_of(tenant.reseller, Role.SALES)
    services.subscription_set_renewal(
        membership=sales, subscription=subscription, setting="renew_with_count", licences=8
    )
    subscription.refresh_from_db()
    assert (subscription.renewal_setting, subscription.renewal_licences) == ("renew_with_count", 8)
    with pytest.raises(PermissionDenied):
        services.subscription_set_renewal(
            membership=sales, subscription=subscription, setting="renew_with_count", licences=3
        )
    with pytest.raises(PermissionDenied):
        services.subscription_set_renewal(
            membership=sales, subscription=subscription, setting="cancel_at_term_end"
        )
    with pytest.raises(ValidationError, match="at least 1"):
        services.subscription_set_renewal(
            membership=owner_of(tenant),
            subscription=subscription,
            setting="renew_with_count",
            licences=0,
        )
    services.subscription_set_renewal(
        membership=owner_of(tenant),
        subscription=subscription,
        setting="renew_with_count",
        licences=3,
    )
    services.subscription_set_renewal(
        membership=owner_of(tenant), subscription=subscription, setting="auto_renew"
    )
    subscription.refresh_from_db()
    assert (subscription.renewal_setting, subscription.renewal_licences) == ("auto_renew", None)
    events = AuditEvent.objects.filter(action="subscription.renewal_changed")
    assert events.count() == 3
    flexible = buy(owner_of(tenant), catalogue(sku="other")["flexible"])
    with pytest.raises(ValidationError, match="annual plans only"):
        services.subscription_set_renewal(
            membership=owner_of(tenant), subscription=flexible, setting="auto_renew"
        )


# Plan changes


def test_trial_to_paid_starts_paid_service_today(tenant, other_tenant, plans):
    with time_machine.travel(date(2026, 5, 1), tick=False):
        trial = buy(owner_of(tenant), plans["trial"], licences=4)
    with time_machine.travel(date(2026, 5, 20), tick=False):
        sub = services.subscription_change_plan(
            membership=member_of(tenant.reseller, Role.SALES),
            subscription=trial,
            plan=plans["annual_monthly"],
        )
    assert sub.status == "active" and sub.plan == plans["annual_monthly"]
    assert sub.period == Period(date(2026, 5, 20), date(2026, 6, 20))
    assert (sub.term_start, sub.term_end) == (date(2026, 5, 20), date(2027, 5, 20))
    charge = Charge.objects.get()
    assert (charge.kind, charge.amount) == ("plan_change", D("12.80"))  # 4 x 3.20
    assert LicenceChange.objects.filter(kind="plan_change").count() == 1
    after = AuditEvent.objects.get(action="subscription.plan_changed").after
    assert after is not None and after["plan_id"] == plans["annual_monthly"].pk


def test_an_ended_trial_converts(tenant, other_tenant, plans):
    with time_machine.travel(date(2026, 5, 1), tick=False):
        trial = buy(owner_of(tenant), plans["trial"], licences=4)
    with time_machine.travel(date(2026, 6, 5), tick=False):
        with pytest.raises(ValidationError, match="trial has ended"):
            change(owner_of(tenant), trial, 5)
        with pytest.raises(ValidationError, match="trial has ended"):
            services.subscription_reactivate(membership=owner_of(tenant), subscription=trial)
        sub = services.subscription_change_plan(
            membership=owner_of(tenant), subscription=trial, plan=plans["flexible"]
        )
    assert sub.status == "active" and sub.suspension_reason == ""
    assert sub.period == Period(date(2026, 6, 5), date(2026, 7, 5))


def test_flexible_to_annual_monthly_at_once_counting_from_the_paid_period(
    tenant, other_tenant, plans
):
    with time_machine.travel(date(2026, 1, 31), tick=False):
        sub = buy(owner_of(tenant), plans["flexible"], licences=5)
    with time_machine.travel(date(2026, 2, 10), tick=False):
        sub = services.subscription_change_plan(
            membership=owner_of(tenant), subscription=sub, plan=plans["annual_monthly"]
        )
    assert sub.plan == plans["annual_monthly"] and sub.status == "active"
    assert (sub.term_start, sub.term_end) == (date(2026, 1, 31), date(2027, 1, 31))
    assert sub.period == Period(date(2026, 1, 31), date(2026, 2, 28))
    assert sub.monthly_price == D("3.20")
    assert not Charge.objects.filter(kind="plan_change").exists()  # the month is paid


def test_flexible_to_annual_yearly_charges_the_other_eleven_months(tenant, other_tenant, plans):
    with time_machine.travel(date(2026, 3, 10), tick=False):
        sub = buy(owner_of(tenant), plans["flexible"], licences=2)
    with time_machine.travel(date(2026, 3, 20), tick=False):
        sub = services.subscription_change_plan(
            membership=owner_of(tenant), subscription=sub, plan=plans["annual_yearly"]
        )
    assert sub.period == Period(date(2026, 3, 10), date(2027, 3, 10))
    charge = Charge.objects.get(kind="plan_change")
    assert charge.amount == D("66.00")  # 2 licences x 11 months x 3.00
    assert (charge.period_start, charge.period_end) == (date(2026, 4, 10), date(2027, 3, 10))


def test_annual_to_flexible_is_scheduled_and_can_be_withdrawn(tenant, other_tenant, plans):
    sub = buy(owner_of(tenant), plans["annual_monthly"], licences=5)
    with pytest.raises(PermissionDenied):
        services.subscription_change_plan(
            membership=member_of(tenant.reseller, Role.SALES),
            subscription=sub,
            plan=plans["flexible"],
        )
    sub = services.subscription_change_plan(
        membership=owner_of(tenant), subscription=sub, plan=plans["flexible"]
    )
    assert sub.plan == plans["annual_monthly"] and sub.scheduled_plan == plans["flexible"]
    assert AuditEvent.objects.filter(action="subscription.plan_change_scheduled").count() == 1
    choices = dict(selectors.subscription_plan_choices(subscription=sub))
    assert choices == {plans["flexible"]: "at_term_end"}
    sub = services.subscription_cancel_plan_change(membership=owner_of(tenant), subscription=sub)
    assert sub.scheduled_plan is None
    with pytest.raises(ValidationError, match="No plan change"):
        services.subscription_cancel_plan_change(membership=owner_of(tenant), subscription=sub)


def test_plan_changes_that_are_not_allowed(tenant, other_tenant, plans):
    sub = buy(owner_of(tenant), plans["annual_monthly"], licences=5)
    for target in (plans["annual_yearly"], plans["trial"], plans["annual_monthly"]):
        with pytest.raises(ValidationError, match="cannot change"):
            services.subscription_change_plan(
                membership=owner_of(tenant), subscription=sub, plan=target
            )
    other_product = catalogue(sku="other")
    with pytest.raises(ValidationError, match="same product"):
        services.subscription_change_plan(
            membership=owner_of(tenant), subscription=sub, plan=other_product["flexible"]
        )


# Cancel, suspend, reactivate


def test_cancel_flexible_at_once_and_annual_at_term_end(tenant, other_tenant, plans):
    flexible = buy(owner_of(tenant), plans["flexible"])
    with pytest.raises(PermissionDenied):
        services.subscription_cancel(
            membership=member_of(tenant.reseller, Role.SALES), subscription=flexible
        )
    assert selectors.subscription_cancellation_date(subscription=flexible) == date.today()
    flexible = services.subscription_cancel(
        membership=member_of(tenant.reseller, Role.ADMIN), subscription=flexible
    )
    assert flexible.status == "cancelled" and flexible.cancelled_at is not None
    with pytest.raises(ValidationError, match="already cancelled"):
        services.subscription_cancel(membership=owner_of(tenant), subscription=flexible)

    annual = buy(owner_of(tenant), catalogue(sku="other")["annual_monthly"])
    assert selectors.subscription_cancellation_date(subscription=annual) == annual.term_end
    annual = services.subscription_cancel(membership=owner_of(tenant), subscription=annual)
    assert annual.status == "active" and annual.renewal_setting == "cancel_at_term_end"
    services.subscription_cancel(membership=owner_of(tenant), subscription=annual)  # no-op
    assert AuditEvent.objects.filter(action="subscription.cancellation_scheduled").count() == 1
    assert AuditEvent.objects.filter(action="subscription.cancelled").count() == 1


def test_suspend_and_reactivate(tenant, other_tenant, plans):
    sub = buy(owner_of(tenant), plans["flexible"])
    with pytest.raises(PermissionDenied):
        services.subscription_suspend(
            membership=member_of(tenant.reseller, Role.SALES), subscription=sub
        )
    sub = services.subscription_suspend(
        membership=member_of(tenant.reseller, Role.ADMIN), subscription=sub
    )
    assert (sub.status, sub.suspension_reason) == ("suspended", "reseller_initiated")
    with pytest.raises(ValidationError):
        services.subscription_suspend(membership=owner_of(tenant), subscription=sub)
    sub = services.subscription_reactivate(membership=owner_of(tenant), subscription=sub)
    assert (sub.status, sub.suspension_reason) == ("active", "")
    trial = buy(owner_of(tenant), catalogue(sku="other")["trial"], licences=2)
    trial = services.subscription_suspend(membership=owner_of(tenant), subscription=trial)
    assert services.subscription_reactivate(
        membership=owner_of(tenant), subscription=trial
    ).status == ("trial")
    assert AuditEvent.objects.filter(action="subscription.suspended").count() == 2
    assert AuditEvent.objects.filter(action="subscription.reactivated").count() == 2


def test_a_pending_payment_suspension_is_lifted_by_staff_only(tenant, other_tenant, plans):
    sub = buy(owner_of(tenant), plans["flexible"])
    Subscription.objects.filter(pk=sub.pk).update(
        status="suspended", suspension_reason="pending_payment"
    )
    with pytest.raises(ValidationError, match="when it is paid"):
        services.subscription_reactivate(membership=owner_of(tenant), subscription=sub)
    staff = UserFactory(is_staff=True)
    assert services.subscription_reactivate_by_staff(subscription=sub, by=staff).status == "active"


# Catalogue prices apply from the next period


def test_a_price_change_applies_from_the_next_period(tenant, other_tenant, plans):
    # A decrease: it needs no notice (an increase waits 30 days for one, issue 16; see
    # test_price_notices.py).
    with time_machine.travel(date(2026, 3, 10), tick=False):
        sub = buy(owner_of(tenant), plans["flexible"], licences=5)
    PlanPrice.objects.filter(plan=plans["flexible"], currency="EUR").update(monthly_price=D("3.00"))
    with time_machine.travel(date(2026, 3, 10), tick=False):
        preview = services.subscription_preview_licences(subscription=sub, new_count=6)
        assert preview.due_now == D("4.00")  # this period keeps its price
        assert preview.recurring_amount == D("18.00")  # 6 x the new price
    with time_machine.travel(date(2026, 4, 10), tick=False):
        # The job has not run yet: the order first starts the new period, then prorates.
        preview = services.subscription_preview_licences(subscription=sub, new_count=6)
        assert preview.due_now == D("3.00") and preview.period.start == date(2026, 4, 10)
        order = change(owner_of(tenant), sub, 6)
        assert order.amount == D("3.00")
    period_charge = Charge.objects.get(kind="period")
    assert (period_charge.amount, period_charge.period_start) == (D("15.00"), date(2026, 4, 10))


# Selectors


def test_selectors_are_scoped_to_the_reseller(tenant, other_tenant, plans):
    sub = buy(owner_of(tenant), plans["flexible"])
    assert selectors.subscription_get(reseller=tenant.reseller, public_id=sub.public_id) == sub
    with pytest.raises(Http404) as foreign:
        selectors.subscription_get(reseller=other_tenant.reseller, public_id=sub.public_id)
    with pytest.raises(Http404) as missing:
        selectors.subscription_get(reseller=other_tenant.reseller, public_id="x" * 16)
    assert str(foreign.value) == str(missing.value)
    assert list(
        selectors.subscription_list(reseller=tenant.reseller, customer=tenant.customer)
    ) == [sub]
    assert not selectors.subscription_list(
        reseller=other_tenant.reseller, customer=tenant.customer
    ).exists()
    order = sub.orders.get()
    assert selectors.order_get(reseller=tenant.reseller, public_id=order.public_id) == order
    with pytest.raises(Http404):
        selectors.order_get(reseller=other_tenant.reseller, public_id=order.public_id)
    # A customer that revoked the reseller's access is gone from its view.
    Customer.objects.filter(pk=tenant.customer.pk).update(status="access_revoked")
    with pytest.raises(Http404):
        selectors.subscription_get(reseller=tenant.reseller, public_id=sub.public_id)
    assert selectors.subscription_list_for_customer_side(customer=tenant.customer).get() == sub


def test_ledger_lists_every_change_newest_first(tenant, other_tenant, plans):
    sub = buy(owner_of(tenant), plans["flexible"], licences=5)
    change(owner_of(tenant), sub, 7)
    change(owner_of(tenant), sub, 6)
    rows = list(selectors.subscription_ledger(subscription=sub))
    assert [(r.kind, r.licences_before, r.licences_after) for r in rows] == [
        ("remove", 7, 6),
        ("add", 5, 7),
        ("purchase", 0, 5),
    ]
    assert rows[0].actor_email == tenant.owner.email
    with pytest.raises(ValueError, match="append-only"):
        rows[0].save()


def test_summaries_for_many_customers_in_one_query(tenant, other_tenant, plans):
    second = catalogue(sku="other")
    customers = [tenant.customer] + [CustomerFactory(reseller=tenant.reseller) for _ in range(5)]
    for n, customer in enumerate(customers[:4], start=1):
        buy(owner_of(tenant), plans["flexible"], licences=n, customer=customer)
    buy(owner_of(tenant), second["annual_monthly"], licences=10, customer=customers[0])
    cancelled = buy(owner_of(tenant), second["flexible"], licences=99, customer=customers[1])
    services.subscription_cancel(membership=owner_of(tenant), subscription=cancelled)
    with CaptureQueriesContext(connection) as queries:
        summaries = selectors.customer_plan_summaries(customer_ids=[c.pk for c in customers])
    assert len(queries) == 1
    assert summaries[customers[0].pk].licences == 11
    assert summaries[customers[0].pk].plan_kinds == ["flexible", "annual_monthly"]
    assert summaries[customers[1].pk].licences == 2  # the cancelled one is left out
    assert summaries[customers[1].pk].plan_kinds == ["flexible"]
    assert summaries[customers[5].pk] == selectors.CustomerPlans()
    assert selectors.customer_plan_summaries(customer_ids=[]) == {}


# Admin


def test_admin_lists_filters_and_suspends(staff_client, tenant, other_tenant, plans):
    sub = buy(owner_of(tenant), plans["flexible"], licences=5)
    buy(owner_of(other_tenant), plans["annual_monthly"], licences=2)
    url = "/admin/subscriptions/subscription/"
    assert staff_client.get(url).status_code == 200
    response = staff_client.get(url, {"customer__reseller__id__exact": tenant.reseller.pk})
    assert response.status_code == 200 and sub.public_id in response.content.decode()
    assert staff_client.get(url, {"status": "active", "plan__id__exact": sub.plan_id}).status_code
    assert staff_client.get(f"{url}{sub.pk}/change/").status_code == 200
    response = staff_client.post(
        url, {"action": "suspend", "_selected_action": [sub.pk]}, follow=True
    )
    assert response.status_code == 200
    sub.refresh_from_db()
    assert (sub.status, sub.suspension_reason) == ("suspended", "reseller_initiated")
    event = AuditEvent.objects.get(action="subscription.suspended")
    assert event.actor == staff_client.staff and event.customer_public_id == sub.customer.public_id
    staff_client.post(url, {"action": "reactivate", "_selected_action": [sub.pk]})
    sub.refresh_from_db()
    assert sub.status == "active"
    assert AuditEvent.objects.filter(action="subscription.reactivated").count() == 1


def test_a_subscription_is_written_in_one_query_and_its_constraints_still_hold(tenant, plans):
    """The services write a subscription through records._save: its fields are checked in
    Python, and its constraints by the database on the write itself (full_clean asked the
    database once per check constraint, each in a savepoint: about thirty round trips)."""
    subscription = buy(owner_of(tenant), plans["flexible"], licences=2)
    subscription.licences = 3
    with CaptureQueriesContext(connection) as queries:
        records._save(subscription)
    assert len(queries) == 1, [query["sql"] for query in queries]
    subscription.licences = 0
    with pytest.raises(IntegrityError), transaction.atomic():
        records._save(subscription)
