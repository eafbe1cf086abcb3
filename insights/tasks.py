"""Celery: the daily snapshots (beat "insights-snapshots", hourly)."""

from celery import shared_task
from django.db import OperationalError

from insights.services import snapshots_take


@shared_task(
    autoretry_for=(OperationalError,), retry_backoff=True, retry_backoff_max=600, max_retries=5
)
def snapshots_take_hourly() -> int:
    """Today's rows again, and the days before closed (insights.services); idempotent."""
    return snapshots_take()
