"""Celery tasks of webhooks: send one delivery (queued on commit by webhooks.services), and the
minute job that sends every due delivery (retries, and those whose task never reached Redis).

Both claim before sending (webhooks.services.deliveries_claim: FOR UPDATE SKIP LOCKED and a
lease), so running them together, or twice, sends each attempt once.
"""

import logging
from datetime import datetime

from celery import shared_task
from django.utils import timezone

from core.queue import task_enqueue
from webhooks import selectors, services

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def webhook_event_send(event_id: int) -> int:
    """Make the event's deliveries (if not made yet) and send those due now; returns how many
    attempts it made."""
    services.events_fan_out(now=timezone.now(), event_id=event_id)
    claimed = services.deliveries_claim(now=timezone.now(), event_id=event_id)
    _attempt_each(claimed)
    return len(claimed)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def webhook_delivery_send(delivery_id: int) -> str:
    """Send one delivery now, if it is still due (claimed by nobody else): a replay."""
    claimed = services.deliveries_claim(now=timezone.now(), delivery_id=delivery_id)
    if not claimed:
        return "not due"
    return services.delivery_attempt(delivery_id=delivery_id)


@shared_task
def webhook_deliveries_send_due() -> int:
    """Make the deliveries of the events whose task was lost, then send every due delivery, a
    batch at a time, until none is due; returns how many attempts it made. Each batch is
    claimed first, so parallel runs share the work."""
    while services.events_fan_out(now=timezone.now()) == services.DELIVERIES_PER_RUN:
        pass
    sent = 0
    while True:
        claimed = services.deliveries_claim(now=timezone.now())
        _attempt_each(claimed)
        sent += len(claimed)
        if len(claimed) < services.DELIVERIES_PER_RUN:
            return sent


def _attempt_each(delivery_ids: list[int]) -> None:
    for delivery_id in delivery_ids:
        try:
            services.delivery_attempt(delivery_id=delivery_id)
        except Exception:
            # Its claim's lease ends and it is tried again; the others go on.
            logger.exception("Webhook delivery %s could not be attempted", delivery_id)


@shared_task
def webhook_invoices_overdue() -> int:
    return services.invoices_overdue_announce(today=timezone.localdate())


def webhooks_sweep(*, now: datetime, force: bool) -> int:
    """core.sweeper, every minute (Celery beat's work sweep): queue the job that sends the due
    deliveries (retries, and the events whose task was lost) if any are due, and the one that
    announces newly overdue invoices if there are some. Returns how many tasks it queued."""
    queued = 0
    if selectors.deliveries_due_exist(now=now):
        queued += int(task_enqueue(webhook_deliveries_send_due))
    if services.invoices_newly_overdue(today=timezone.localdate()).exists():
        queued += int(task_enqueue(webhook_invoices_overdue))
    return queued
