"""Daily billing run (Celery beat, see CELERY_BEAT_SCHEDULE). The job finds which invoices are
due and queues one task per customer (for the payer and currency of its oldest charge: one
invoice per customer per day); each locks that customer's charges and issues at most one
invoice for the day, so running the job twice changes nothing.

Celery discovers this module only: the PDF and payment tasks live in billing.rendering_tasks
and billing.payments, which billing.apps imports."""

from datetime import date

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from billing import services
from customers.models import Customer

# Only what is transient (the database went away) is retried; issuing is idempotent for a day.
RETRY_BACKOFF_MAX = 600


@shared_task
def billing_run_daily() -> int:
    """Queue today's invoices; returns how many were queued."""
    today = timezone.localdate()
    groups = services.billing_due(day=today)
    for customer_id, payer, currency in groups:
        invoice_issue.delay(customer_id, payer, currency, today.isoformat())
    return len(groups)


@shared_task(
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_backoff_max=RETRY_BACKOFF_MAX,
    max_retries=5,
)
def invoice_issue(customer_id: int, payer: str, currency: str, day: str) -> str | None:
    """Issue one customer's invoice for `day`; returns its number, or None if nothing was due
    or the invoice could not be rendered (held: a BillingHold tells staff why, and its charges
    wait for a later run; retrying would not help, so it is not an error)."""
    customer = Customer.objects.select_related("reseller").get(pk=customer_id)
    invoice = services.invoice_issue_for_customer(
        customer=customer, payer=payer, currency=currency, day=date.fromisoformat(day)
    )
    return invoice.number if invoice else None
