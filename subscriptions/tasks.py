"""Daily jobs (Celery beat, see CELERY_BEAT_SCHEDULE). Each finds the subscriptions due and
queues one task per subscription, which locks it and calls a service; a service that finds
nothing left to do returns False, so running a job twice the same day changes nothing."""

from datetime import date
from typing import Any

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from core.queue import task_enqueue
from subscriptions import pricing, selectors, services

# A per-subscription step retries only what is transient (the database went away); it is
# idempotent, so a retry after a partial failure is safe.
RETRY_BACKOFF_MAX = 600
STEP_OPTIONS: dict[str, Any] = {
    "autoretry_for": (OperationalError,),
    "retry_backoff": True,
    "retry_backoff_max": RETRY_BACKOFF_MAX,
    "max_retries": 5,
}


def _fan_out(ids: list[int], step: Any, today: date) -> int:
    """One task per subscription, so a failure retries that subscription only."""
    for subscription_id in ids:
        task_enqueue(step, subscription_id, today.isoformat())
    return len(ids)


@shared_task
def subscriptions_renew() -> int:
    """Start the periods (and annual terms) that begin today, charging them in advance."""
    today = timezone.localdate()
    return _fan_out(
        selectors.subscription_ids_due_for_renewal(today=today), subscription_renew, today
    )


@shared_task(**STEP_OPTIONS)
def subscription_renew(subscription_id: int, day: str) -> bool:
    return services.subscription_renew_due(
        subscription_id=subscription_id, today=date.fromisoformat(day)
    )


@shared_task
def subscriptions_expire_trials() -> int:
    """Suspend (trial_ended) the trials that reached day 30 without being converted."""
    today = timezone.localdate()
    return _fan_out(
        selectors.subscription_ids_trial_over(today=today), subscription_expire_trial, today
    )


@shared_task(**STEP_OPTIONS)
def subscription_expire_trial(subscription_id: int, day: str) -> bool:
    return services.subscription_expire_trial(
        subscription_id=subscription_id, today=date.fromisoformat(day)
    )


@shared_task
def subscriptions_send_reminders() -> int:
    """Email the reseller when a trial ends in 7 days or an annual term in 30."""
    today = timezone.localdate()
    ids = selectors.subscription_ids_due_for_reminder(
        today=today,
        trial_days=services.TRIAL_REMINDER_DAYS,
        term_days=services.TERM_REMINDER_DAYS,
    )
    return _fan_out(ids, subscription_send_reminder, today)


@shared_task(**STEP_OPTIONS)
def subscription_send_reminder(subscription_id: int, day: str) -> bool:
    return services.subscription_send_reminder(
        subscription_id=subscription_id, today=date.fromisoformat(day)
    )


@shared_task
def subscriptions_send_price_notices() -> int:
    """Announce to customers, 30 days ahead, a price increase of their next periods."""
    today = timezone.localdate()
    return _fan_out(
        pricing.subscription_ids_for_price_notice(today=today),
        subscription_send_price_notice,
        today,
    )


@shared_task(**STEP_OPTIONS)
def subscription_send_price_notice(subscription_id: int, day: str) -> bool:
    return services.subscription_send_price_notice(
        subscription_id=subscription_id, today=date.fromisoformat(day)
    )
