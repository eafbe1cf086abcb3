"""Celery tasks of payments (imported by BillingConfig.ready, so the worker knows them).

Each takes ids, loads, and calls one service; only an unreachable gateway is retried, with
backoff, well under the broker's visibility timeout. The services make a second run harmless.
"""

import logging
from datetime import datetime, timedelta

from celery import shared_task
from django.db.models import F, Value
from django.utils import timezone

from billing.models import Refund, StripeEvent
from billing.payments import selectors, services
from billing.payments.gateways import GatewayUnavailable, gateway
from core import sweeper
from core.queue import task_enqueue

logger = logging.getLogger(__name__)

RETRY_BACKOFF_MAX = 600
# An attempt or an event still unsettled after this long is looked at again by the daily job.
STALE_AFTER = timedelta(hours=1)


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(GatewayUnavailable,),
    retry_backoff=True,
    retry_backoff_max=RETRY_BACKOFF_MAX,
    max_retries=8,
)
def invoice_charge(invoice_id: int, attempt: int) -> str:
    """Charge an invoice's card: attempt 1 when it is issued, then the retries."""
    return services.invoice_charge(invoice_id=invoice_id, attempt=attempt)


@shared_task
def payments_retry_due() -> int:
    """Daily: retry the failed invoices whose day has come (days 1, 3 and 5 after the first
    failure); ask again about attempts and webhook events left unsettled. Returns how many
    tasks it queued; running it twice a day queues the same attempts, made once."""
    now = timezone.now()
    due = selectors.invoice_ids_due_for_retry(today=timezone.localdate())
    due += selectors.payments_pending_since(before=now - STALE_AFTER)
    for invoice_id, attempt in due:
        task_enqueue(invoice_charge, invoice_id, attempt)
    refunds = selectors.refund_ids_pending_since(before=now - STALE_AFTER)
    for refund_id in refunds:
        task_enqueue(refund_process, refund_id)
    events = selectors.stripe_event_ids_unprocessed(received_before=now - STALE_AFTER)
    for stripe_event_id in events:
        task_enqueue(stripe_event_process, stripe_event_id)
    return len(due) + len(events) + len(refunds)


def payments_sweep(*, now: datetime, force: bool) -> int:
    """Queue again the payment work whose task was lost (core.sweeper, every minute): first
    charges never made, retries whose day passed, attempts and card refunds still unsettled, and
    webhook events never processed, once each is WORK_REQUEUE_AFTER overdue. Each task is safe
    to run twice (idempotency keys, locked invoices). Returns how many were queued."""
    if not gateway().uses_cards:
        return 0
    today = timezone.localdate(now)
    queued = sweeper.rows_requeue(
        selectors.invoices_charge_first_pending(),
        **selectors.CHARGE_TIMES,
        task=invoice_charge,
        now=now,
        force=force,
        argument_fields=("pk", "first"),
        annotations={"first": Value(1)},
    )
    queued += sweeper.rows_requeue(
        selectors.invoices_charge_retry_pending(today=today),
        **selectors.CHARGE_TIMES,
        task=invoice_charge,
        now=now,
        force=force,
        argument_fields=("pk", "attempt"),
        annotations={"attempt": F("payment_attempts") + 1},
    )
    # Asked again with the same idempotency key; updated_at is the lease.
    queued += sweeper.rows_requeue(
        selectors.payments_unsettled(),
        **selectors.ATTEMPT_TIMES,
        task=invoice_charge,
        now=now,
        force=force,
        argument_fields=("invoice_id", "attempt"),
    )
    queued += sweeper.rows_requeue(
        Refund.objects.filter(status=Refund.Status.PENDING, method=Refund.Method.CARD),
        due_field="created_at",
        queued_field="updated_at",
        task=refund_process,
        now=now,
        force=force,
    )
    # Never processed (an event that failed has its error, and waits for the daily job).
    queued += sweeper.rows_requeue(
        StripeEvent.objects.filter(processed_at__isnull=True, error=""),
        due_field="received_at",
        queued_field="received_at",
        task=stripe_event_process,
        now=now,
        force=force,
        stamp=False,
    )
    return queued


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    retry_backoff=True,
    retry_backoff_max=RETRY_BACKOFF_MAX,
    max_retries=8,
)
def stripe_event_process(self, stripe_event_id: int) -> str:
    """Act on a stored webhook event. A failure is written on the event (the admin lists
    events); an unreachable Stripe is retried, anything else waits for the daily job."""
    try:
        return services.stripe_event_process(stripe_event_id=stripe_event_id)
    except GatewayUnavailable as error:
        services.stripe_event_failed(stripe_event_id=stripe_event_id, error=repr(error))
        raise self.retry(exc=error) from error
    except Exception as error:
        services.stripe_event_failed(stripe_event_id=stripe_event_id, error=repr(error))
        logger.exception("Stripe event %s not processed", stripe_event_id)
        raise


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(GatewayUnavailable,),
    retry_backoff=True,
    retry_backoff_max=RETRY_BACKOFF_MAX,
    max_retries=8,
)
def refund_process(refund_id: int) -> str:
    """Refund a credit note's amount to the card that paid (with the refund's idempotency key,
    so a retry never refunds twice)."""
    return services.refund_process(refund_id=refund_id)


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(GatewayUnavailable,),
    retry_backoff=True,
    retry_backoff_max=RETRY_BACKOFF_MAX,
    max_retries=8,
)
def payment_card_detach(payment_method_id: str) -> None:
    """Detach a replaced card at the gateway, so it can never be charged again."""
    services.payment_card_detach(payment_method_id=payment_method_id)
