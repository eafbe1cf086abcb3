"""The daily jobs (renewals and period rollover, trial expiry, reminders) through Celery, day by
day with time-machine across a subscription's year. Every day each job runs twice: the second
run must change nothing."""

from datetime import date, timedelta
from decimal import Decimal

import time_machine
from django.conf import settings

from core.models import OutboundEmail
from resellers.models import AuditEvent
from resellers.roles import Role
from subscriptions import services, tasks
from subscriptions.models import Charge, LicenceChange, PlanPrice, PriceNotice, Subscription
from tests.factories import buy, change, member_of, owner_of

D = Decimal


def run_jobs() -> tuple[int, int, int, int]:
    """What beat starts each day. The jobs are called in-process (each queues its
    per-subscription tasks through Celery, eager in tests) to keep a year of days quick. The
    price notice job queues a step for every subscription whose next period is near, and the
    step finds nothing to announce unless a price rises: its count is how many it sent."""
    notices_before = PriceNotice.objects.count()
    tasks.subscriptions_send_price_notices()
    return (
        tasks.subscriptions_renew(),
        tasks.subscriptions_expire_trials(),
        tasks.subscriptions_send_reminders(),
        PriceNotice.objects.count() - notices_before,
    )


def footprint() -> tuple:
    return (
        list(Subscription.objects.order_by("pk").values()),
        Charge.objects.count(),
        LicenceChange.objects.count(),
        AuditEvent.objects.count(),
        OutboundEmail.objects.count(),
    )


def days(first: date, last: date):
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def live_one_day(day: date, then=None) -> None:
    with time_machine.travel(day, tick=False):
        if then is not None:
            then()
        # On a day the jobs do something, a second run finds nothing due: it queues nothing
        # and changes nothing. (On a day they do nothing, nothing changed for a second run to
        # find: the same state on the same day.)
        if any(run_jobs()):
            before = footprint()
            assert run_jobs() == (0, 0, 0, 0), day
            assert footprint() == before, day


def test_the_beat_schedule_runs_the_three_jobs_daily(tenant, other_tenant, plans):
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {
        "subscriptions.tasks.subscriptions_renew",
        "subscriptions.tasks.subscriptions_expire_trials",
        "subscriptions.tasks.subscriptions_send_reminders",
        "subscriptions.tasks.subscriptions_send_price_notices",
    } <= scheduled
    with time_machine.travel(date(2026, 3, 15), tick=False):
        buy(owner_of(tenant), plans["flexible"], licences=2)
    with time_machine.travel(date(2026, 4, 15), tick=False):
        assert tasks.subscriptions_renew.delay().get() == 1
        assert tasks.subscriptions_renew.delay().get() == 0
        # A duplicated per-subscription message is harmless too.
        sub_id = Subscription.objects.get().pk
        assert tasks.subscription_renew.delay(sub_id, "2026-04-15").get() is False
    assert Charge.objects.filter(kind="period").count() == 1


def test_a_year_of_an_annual_monthly_subscription(tenant, other_tenant, plans):
    tenant.owner.language = "de"
    tenant.owner.save()
    admin = member_of(tenant.reseller, Role.ADMIN)
    admin.user.language = "fr"
    admin.user.save()
    member_of(tenant.reseller, Role.SALES)
    member_of(tenant.reseller, Role.BILLING)
    owner = owner_of(tenant)
    # Another reseller's subscription renews on its own; it must not disturb this one.
    with time_machine.travel(date(2026, 1, 31), tick=False):
        sub = buy(owner, plans["annual_monthly"], licences=5)
        buy(owner_of(other_tenant), plans["flexible"], licences=1)
    assert sub.term_end == date(2027, 1, 31)

    def raise_price() -> None:
        PlanPrice.objects.filter(plan=plans["annual_monthly"], currency="EUR").update(
            monthly_price=D("3.50")
        )

    def add_two() -> None:
        assert change(owner, sub, 7).amount == D("4.74")  # 2 x 3.50 x 21/31

    def renew_with_four() -> None:
        services.subscription_set_renewal(
            membership=owner, subscription=sub, setting="renew_with_count", licences=4
        )

    events = {date(2026, 6, 15): raise_price, date(2026, 8, 10): add_two}
    events[date(2026, 11, 20)] = renew_with_four
    for day in days(date(2026, 1, 31), date(2027, 3, 31)):
        live_one_day(day, events.get(day))

    charges = list(
        Charge.objects.filter(subscription=sub, kind="period")
        .order_by("period_start")
        .values_list("period_start", "period_end", "licences", "amount")
    )
    assert charges == [
        (date(2026, 2, 28), date(2026, 3, 31), 5, D("16.00")),
        (date(2026, 3, 31), date(2026, 4, 30), 5, D("16.00")),
        (date(2026, 4, 30), date(2026, 5, 31), 5, D("16.00")),
        (date(2026, 5, 31), date(2026, 6, 30), 5, D("16.00")),
        # The price rose on 15 June, announced that day: from the first period that starts
        # 30 days later, 31 July (issue 16); the period of 30 June keeps the old price.
        (date(2026, 6, 30), date(2026, 7, 31), 5, D("16.00")),
        (date(2026, 7, 31), date(2026, 8, 31), 5, D("17.50")),
        (date(2026, 8, 31), date(2026, 9, 30), 7, D("24.50")),
        (date(2026, 9, 30), date(2026, 10, 31), 7, D("24.50")),
        (date(2026, 10, 31), date(2026, 11, 30), 7, D("24.50")),
        (date(2026, 11, 30), date(2026, 12, 31), 7, D("24.50")),
        (date(2026, 12, 31), date(2027, 1, 31), 7, D("24.50")),
        # Renewal: a new term with the renewal count.
        (date(2027, 1, 31), date(2027, 2, 28), 4, D("14.00")),
        (date(2027, 2, 28), date(2027, 3, 31), 4, D("14.00")),
        (date(2027, 3, 31), date(2027, 4, 30), 4, D("14.00")),
    ]
    sub.refresh_from_db()
    assert (sub.term_start, sub.term_end) == (date(2027, 1, 31), date(2028, 1, 31))
    assert (sub.licences, sub.renewal_setting, sub.renewal_licences) == (4, "auto_renew", None)
    renewal = LicenceChange.objects.get(subscription=sub, kind="renewal")
    assert (renewal.licences_before, renewal.licences_after, renewal.amount) == (7, 4, D("14.00"))
    assert AuditEvent.objects.filter(action="subscription.renewed").count() == 1
    assert (
        AuditEvent.objects.filter(
            action="subscription.period_started", customer_public_id=tenant.customer.public_id
        ).count()
        == 13
    )

    # One reminder, 30 days before the term ends, to the owner and the admin in their language.
    emails = OutboundEmail.objects.filter(template="subscription_term_ending")
    assert sorted(emails.values_list("to", "language")) == sorted(
        [(tenant.owner.email, "de"), (admin.user.email, "fr")]
    )
    assert all(e.created_at.date() == date(2027, 1, 1) for e in emails)
    first = emails.first()
    assert first is not None
    body = first.body_text
    assert "Shared Contacts for Gmail" in body and tenant.customer.organisation in body
    assert f"/customers/{tenant.customer.public_id}/" in body


def test_a_trial_is_reminded_then_suspended_on_day_30_unless_converted(tenant, other_tenant, plans):
    owner = owner_of(tenant)
    converted_customer = type(tenant.customer).objects.create(
        reseller=tenant.reseller,
        organisation="Converts",
        domain="converts.example",
        contact_name="C",
        contact_email="c@converts.example",
        status="active",
    )
    with time_machine.travel(date(2026, 4, 1), tick=False):
        trial = buy(owner, plans["trial"], licences=3, customer=tenant.customer)
        converting = buy(owner, plans["trial"], licences=2, customer=converted_customer)
    assert trial.term_end == date(2026, 5, 1)

    def convert() -> None:
        services.subscription_change_plan(
            membership=owner, subscription=converting, plan=plans["flexible"]
        )

    for day in days(date(2026, 4, 1), date(2026, 5, 10)):
        live_one_day(day, convert if day == date(2026, 4, 20) else None)
        trial.refresh_from_db()
        if day < date(2026, 5, 1):
            assert trial.status == "trial", day
        else:
            assert (trial.status, trial.suspension_reason) == ("suspended", "trial_ended"), day

    reminders = OutboundEmail.objects.filter(template="subscription_trial_ending")
    assert reminders.count() == 1  # only the owner is owner or admin here
    assert reminders.get().created_at.date() == date(2026, 4, 24)
    assert AuditEvent.objects.filter(action="subscription.trial_ended").count() == 1
    converting.refresh_from_db()
    assert converting.status == "active"
    # The converted one is billed monthly from its conversion day.
    assert list(
        Charge.objects.filter(subscription=converting).values_list("kind", "period_start", "amount")
    ) == [("plan_change", date(2026, 4, 20), D("8.00"))]


def test_missed_days_are_caught_up_once(tenant, other_tenant, plans):
    """A yearly plan scheduled to become flexible; the jobs do not run for weeks."""
    owner = owner_of(tenant)
    with time_machine.travel(date(2026, 3, 15), tick=False):
        sub = buy(owner, plans["annual_yearly"], licences=5)
        services.subscription_change_plan(
            membership=owner, subscription=sub, plan=plans["flexible"]
        )
    live_one_day(date(2027, 4, 20))
    sub.refresh_from_db()
    assert sub.plan == plans["flexible"] and sub.scheduled_plan is None
    assert (sub.term_start, sub.term_end) == (None, None)
    assert sub.period_start == date(2027, 4, 15) and sub.period_end == date(2027, 5, 15)
    assert list(
        Charge.objects.filter(subscription=sub, kind="period")
        .order_by("period_start")
        .values_list("period_start", "amount")
    ) == [(date(2027, 3, 15), D("20.00")), (date(2027, 4, 15), D("20.00"))]
    # A flexible plan is never reminded of a term.
    assert not OutboundEmail.objects.filter(template__startswith="subscription_").exists()


def test_cancel_at_term_end_cancels_on_that_day(tenant, other_tenant, plans):
    owner = owner_of(tenant)
    with time_machine.travel(date(2026, 3, 15), tick=False):
        sub = buy(owner, plans["annual_yearly"], licences=5)
        services.subscription_cancel(membership=owner, subscription=sub)
    live_one_day(date(2027, 2, 13))  # the reminder says it will be cancelled
    body = OutboundEmail.objects.get(template="subscription_term_ending").body_text
    assert "will then be cancelled" in body
    live_one_day(date(2027, 3, 14))
    sub.refresh_from_db()
    assert sub.status == "active"
    live_one_day(date(2027, 3, 15))
    sub.refresh_from_db()
    assert sub.status == "cancelled" and sub.cancelled_at is not None
    assert not Charge.objects.filter(subscription=sub, kind="period").exists()


def test_a_suspended_by_reseller_subscription_keeps_its_periods(tenant, other_tenant, plans):
    owner = owner_of(tenant)
    with time_machine.travel(date(2026, 3, 15), tick=False):
        sub = buy(owner, plans["flexible"], licences=2)
        services.subscription_suspend(membership=owner, subscription=sub)
    live_one_day(date(2026, 4, 15))
    assert Charge.objects.filter(subscription=sub, kind="period").count() == 1
    sub.refresh_from_db()
    assert sub.status == "suspended" and sub.period_start == date(2026, 4, 15)
