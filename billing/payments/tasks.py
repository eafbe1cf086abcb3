"""Celery tasks of payments (imported by BillingConfig.ready, so the worker knows them).

Each takes ids, loads, and calls one service; only an unreachable gateway is retried, with
backoff, well under the broker's visibility timeout. The services make a second run harmless.
"""

import logging
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from billing.payments import selectors, services
from billing.payments.gateways import GatewayUnavailable

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
        invoice_charge.delay(invoice_id, attempt)
    refunds = selectors.refund_ids_pending_since(before=now - STALE_AFTER)
    for refund_id in refunds:
        refund_process.delay(refund_id)
    events = selectors.stripe_event_ids_unprocessed(received_before=now - STALE_AFTER)
    for stripe_event_id in events:
        stripe_event_process.delay(stripe_event_id)
    return len(due) + len(events) + len(refunds)


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
