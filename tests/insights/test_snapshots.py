"""The dashboard's history (issue 18): over random histories made through the services (buy,
add and remove licences, suspend, reactivate, cancel, change plan, the daily renewal and trial
jobs, a new price from the next period, a customer revoking the reseller) for two resellers in
two currencies,

- the figures replayed from the audit log for the end of any day equal the live figures as they
  stood at that day's end (insights.snapshots);
- and those live figures equal a plain reading of the subscriptions written here: MRR = licences
  x price of the active ones, the margin with each one's latest charged cost.

Then the snapshot job: it writes one row per reseller, currency and day from the reseller's
first subscription, the past days replayed and final, today's live and not final, and a rerun
changes nothing but today's.
"""

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404
from django.utils import timezone
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from customers import services as customer_services
from insights.models import DailySnapshot
from insights.services import snapshots_take
from insights.snapshots import Figures, figures_live, figures_replayed
from resellers.models import Reseller
from subscriptions import services
from subscriptions import tasks as subscription_tasks
from subscriptions.models import Plan, Subscription
from tests.factories import CustomerFactory, admin_of, catalogue, make_tenant, owner_of
from tests.support.insights import plain_figures

pytestmark = pytest.mark.django_db

START = date(2026, 1, 10)
KINDS = [Plan.Kind.FLEXIBLE, Plan.Kind.ANNUAL_MONTHLY, Plan.Kind.ANNUAL_YEARLY, Plan.Kind.TRIAL]
OPERATIONS = [
    "buy",
    "add",
    "remove",
    "suspend",
    "reactivate",
    "cancel",
    "plan",
    "price",
    "revoke",
]


def _at(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


def plain_reading(reseller: Reseller) -> dict[str, Figures]:
    return {currency: Figures(*values) for currency, values in plain_figures(reseller).items()}


def _step(operation: str, membership, plans: dict[str, Plan], customers, index: int, count: int):
    customer = customers[index % len(customers)]
    live = list(
        Subscription.objects.filter(customer__reseller=membership.reseller)
        .exclude(status=Subscription.Status.CANCELLED)
        .order_by("id")
    )
    subscription = live[index % len(live)] if live else None
    if operation == "buy":
        services.subscription_buy(
            membership=membership,
            customer=customer,
            plan=plans[KINDS[count % len(KINDS)]],
            licences=min(count, 10),
            payer="reseller_card",
            order_key=services.order_key_new(),
        )
    elif subscription is None:
        return
    elif operation in ("add", "remove"):
        new = subscription.licences + (count if operation == "add" else -min(count, 3))
        services.subscription_change_licences(
            membership=membership,
            subscription=subscription,
            new_count=max(new, 1),
            expected_count=subscription.licences,
            order_key=services.order_key_new(),
        )
    elif operation == "suspend":
        services.subscription_suspend(membership=membership, subscription=subscription)
    elif operation == "reactivate":
        services.subscription_reactivate(membership=membership, subscription=subscription)
    elif operation == "cancel":
        services.subscription_cancel(membership=membership, subscription=subscription)
    elif operation == "plan":
        target = KINDS[count % 3]  # a paid plan
        services.subscription_change_plan(
            membership=membership, subscription=subscription, plan=plans[target]
        )
    elif operation == "revoke":
        customer_services.customer_access_revoke(customer=customer, user=admin_of(customer))
    elif operation == "price":
        services.price_rule_set(
            membership=membership,
            plan=subscription.plan,
            currency=subscription.currency,
            kind="markup",
            markup_percent=Decimal(10 + count),
            valid_from=timezone.localdate() + timedelta(days=1),
        )


history = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=25),  # days passed before it
        st.sampled_from(OPERATIONS),
        st.integers(min_value=0, max_value=1),  # which reseller
        st.integers(min_value=0, max_value=5),  # which customer or subscription
        st.integers(min_value=1, max_value=12),  # how many
    ),
    min_size=3,
    max_size=18,
)


@hypothesis_settings(
    max_examples=12,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=history)
def test_the_replay_of_any_day_is_the_live_figures_of_its_end(steps):
    with transaction.atomic():
        _replay_check(steps)
        transaction.set_rollback(True)


def _replay_check(steps) -> None:
    plans = catalogue(currencies=("EUR", "USD"))
    tenants = [make_tenant("Replay EUR"), make_tenant("Replay USD")]
    Reseller.objects.filter(pk=tenants[1].reseller.pk).update(currency="USD")
    for tenant in tenants:
        tenant.reseller.refresh_from_db()
    memberships = [owner_of(tenant) for tenant in tenants]
    customers = [
        [tenant.customer, *CustomerFactory.create_batch(2, reseller=tenant.reseller)]
        for tenant in tenants
    ]
    ids = [tenant.reseller.pk for tenant in tenants]
    seen: dict[date, dict[tuple[int, str], Figures]] = {}
    day = START
    with time_machine.travel(_at(day), tick=False) as traveller:
        for passed, operation, which, index, count in steps:
            for _ in range(passed):
                day += timedelta(days=1)
                # The daily jobs, in the beat's order (CELERY_BEAT_SCHEDULE).
                traveller.move_to(_at(day, 0))
                subscription_tasks.subscriptions_renew()
                subscription_tasks.subscriptions_expire_trials()
                traveller.move_to(_at(day))
            try:
                with transaction.atomic():
                    _step(operation, memberships[which], plans, customers[which], index, count)
            except (ValidationError, PermissionDenied, Http404):
                pass  # refused as the page would refuse it: nothing changed
            seen[day] = figures_live(reseller_ids=ids)
            for tenant in tenants:
                assert {
                    currency: figures
                    for (reseller_id, currency), figures in seen[day].items()
                    if reseller_id == tenant.reseller.pk and figures != Figures()
                } == plain_reading(tenant.reseller)
        traveller.move_to(_at(day, 23))
        replayed = figures_replayed(reseller_ids=ids, days=list(seen))
    for when, figures in seen.items():
        expected = {key: value for key, value in figures.items() if value != Figures()}
        assert replayed[when] == expected, when


def test_the_job_writes_a_row_per_day_from_the_first_subscription(tenant, other_tenant):
    plans = catalogue()
    membership = owner_of(tenant)
    with time_machine.travel(_at(START), tick=False) as traveller:
        subscription = services.subscription_buy(
            membership=membership,
            customer=tenant.customer,
            plan=plans[Plan.Kind.FLEXIBLE],
            licences=4,
            payer="reseller_card",
            order_key=services.order_key_new(),
        ).subscription
        traveller.move_to(_at(START + timedelta(days=3)))
        services.subscription_change_licences(
            membership=membership,
            subscription=subscription,
            new_count=9,
            expected_count=4,
            order_key=services.order_key_new(),
        )
        traveller.move_to(_at(START + timedelta(days=5)))
        today = timezone.localdate()
        written = snapshots_take(today=today)
        rows = list(DailySnapshot.objects.filter(reseller=tenant.reseller).order_by("day"))
        assert written == len(rows) == 6
        assert [row.day for row in rows] == [START + timedelta(days=n) for n in range(6)]
        assert [row.licences for row in rows] == [4, 4, 4, 9, 9, 9]
        assert [row.final for row in rows] == [True] * 5 + [False]
        assert rows[0].mrr == 4 * subscription.monthly_price
        assert not DailySnapshot.objects.filter(reseller=other_tenant.reseller).exists()
        # A rerun the same day: today's row again, the days before as they were.
        kept = {row.day: row.computed_at for row in rows[:-1]}
        services.subscription_change_licences(
            membership=membership,
            subscription=subscription,
            new_count=10,
            expected_count=9,
            order_key=services.order_key_new(),
        )
        assert snapshots_take(today=today) == 1
        rows = list(DailySnapshot.objects.filter(reseller=tenant.reseller).order_by("day"))
        assert {row.day: row.computed_at for row in rows[:-1]} == kept
        assert rows[-1].licences == 10
        # The next day, today's row is closed with the figures last captured (the hourly
        # run's) and the day's money counted afresh.
        traveller.move_to(_at(START + timedelta(days=6)))
        snapshots_take(today=timezone.localdate())
        closed = DailySnapshot.objects.get(reseller=tenant.reseller, day=today)
        assert closed.final and closed.licences == 10
