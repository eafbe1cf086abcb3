"""The demo's past, lived one day at a time (demo_seed).

Each day before today runs under a clock moved to that day (time_machine), in order: the jobs
Celery beat runs in production (CELERY_BEAT_SCHEDULE), at their hours and through the services
they call, then what the resellers and their customers did that day, at its hour. Today runs at
the real time. So every date the portal shows (charges, invoices and their numbers, payments,
the ledger, the audit log, statements, the dashboard's snapshots) is the one the real flow would
have written."""

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import time_machine
from django.conf import settings
from django.utils import timezone

from billing import services as billing_services
from billing.models import Invoice
from billing.payments import selectors as payment_selectors
from billing.payments import services as payment_services
from commissions.statements import statements_issue
from subscriptions import selectors as subscription_selectors
from subscriptions import services as subscription_services
from subscriptions.periods import add_months, day_in_month

Step = Callable[[], None]


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """`day` at this hour, in the vendor's time zone."""
    return timezone.make_aware(datetime.combine(day, time(hour, minute)))


def months_from(day: date, months: int) -> date:
    """The same day of the month `months` later (earlier when negative), or that month's last
    day when it is shorter."""
    return day_in_month(*add_months(day.year, day.month, months), day.day)


@dataclass
class Diary:
    """What happens on each day, at its hour; a step may write in a later day's page."""

    pages: dict[date, list[tuple[time, Step]]] = field(default_factory=lambda: defaultdict(list))

    def on(self, day: date, hour: int, step: Step, minute: int = 0) -> None:
        self.pages[day].append((time(hour, minute), step))

    def take(self, day: date) -> list[tuple[time, Step]]:
        return self.pages.pop(day, [])


@dataclass
class DailyJobs:
    """The beat schedule's jobs for one day, each called through the services its task calls
    (in-process and in order, so the next job sees what the one before did). `issued` gets each
    invoice the billing run issues, at the run's time. Card retries run only when invoices are
    paid by card."""

    issued: Callable[[Invoice], None]
    cards: bool

    def steps(self, day: date) -> list[tuple[time, Step]]:
        steps: list[tuple[time, Step]] = [
            (time(0, 5), lambda: self._renew(day)),
            (time(0, 15), lambda: self._trials_expire(day)),
            (settings.BILLING_RUN_AT, lambda: self._bill(day)),
        ]
        if day.day == 1:
            steps.append((time(3, 0), lambda: self._statements(day)))
        if self.cards:
            steps.append((time(6, 0), lambda: self._payments_retry(day)))
        return steps

    @staticmethod
    def _renew(day: date) -> None:
        for subscription_id in subscription_selectors.subscription_ids_due_for_renewal(today=day):
            subscription_services.subscription_renew_due(subscription_id=subscription_id, today=day)

    @staticmethod
    def _trials_expire(day: date) -> None:
        for subscription_id in subscription_selectors.subscription_ids_trial_over(today=day):
            subscription_services.subscription_expire_trial(
                subscription_id=subscription_id, today=day
            )

    def _bill(self, day: date) -> None:
        for invoice in billing_services.billing_run(day=day):
            self.issued(invoice)

    @staticmethod
    def _statements(day: date) -> None:
        statements_issue(month=day - timedelta(days=1))

    @staticmethod
    def _payments_retry(day: date) -> None:
        for invoice_id, attempt in payment_selectors.invoice_ids_due_for_retry(today=day):
            payment_services.invoice_charge(invoice_id=invoice_id, attempt=attempt)


def days_live(*, first: date, today: date, jobs: DailyJobs, diary: Diary) -> None:
    """Live every day from `first` to `today`: its jobs, then its diary, each step in the order
    of its hour (jobs first at the same hour). Days before today under the moved clock; today's
    steps at the real time, whatever their hour, so the demo is the same at any hour it loads."""
    day = first
    while day <= today:
        steps = sorted([*jobs.steps(day), *diary.take(day)], key=lambda step: step[0])
        for hour, step in steps:
            if day == today:
                step()
                continue
            with time_machine.travel(at(day, hour.hour, hour.minute), tick=False):
                step()
        day += timedelta(days=1)
