"""Daily billing run (Celery beat, see CELERY_BEAT_SCHEDULE). The job finds which invoices are
due and queues one task per customer (for the payer and currency of its oldest charge: one
invoice per customer per day); each locks that customer's charges and issues at most one
invoice for the day, so running the job twice changes nothing.

The PDF sweep (core.sweeper, every minute) queues again the render of documents still without
a PDF a few minutes after issue.

Celery discovers this module only: the PDF and payment tasks live in billing.rendering_tasks
and billing.payments, which billing.apps imports."""

from datetime import date, datetime, timedelta

from celery import shared_task
from django.conf import settings
from django.db import OperationalError
from django.utils import timezone

from billing import notifications, pdf, rendering_tasks, selectors, services
from billing.models import BillingHold, Invoice
from core import sweeper
from core.queue import task_enqueue
from customers.models import Customer

# Only what is transient (the database went away) is retried; issuing is idempotent for a day.
RETRY_BACKOFF_MAX = 600


@shared_task
def billing_run_daily() -> int:
    """Queue today's invoices; returns how many were queued."""
    today = timezone.localdate()
    groups = selectors.billing_due(day=today)
    for customer_id, payer, currency in groups:
        task_enqueue(invoice_issue, customer_id, payer, currency, today.isoformat())
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


def billing_run_left(*, now: datetime, force: bool = False) -> list[tuple[int, str, str]]:
    """(customer id, payer, currency) of today's invoices the run has left unissued: once the
    run is WORK_REQUEUE_AFTER past its time (BILLING_RUN_AT; `force`: right after it, never
    before, or the day's charges would be split), every customer still due today without an
    invoice of the day or a hold seen today. [] before that time."""
    local = timezone.localtime(now)
    run_at = datetime.combine(local.date(), settings.BILLING_RUN_AT, tzinfo=local.tzinfo)
    grace = timedelta(seconds=0 if force else settings.WORK_REQUEUE_AFTER)
    if local < run_at + grace:
        return []  # today's run is not due yet, or may still be on its way
    today = local.date()
    done = set(
        Invoice.objects.filter(kind=Invoice.Kind.INVOICE, issue_date=today).values_list(
            "customer_id", flat=True
        )
    )
    held = BillingHold.objects.filter(last_seen_on=today)
    done |= set(held.values_list("customer_id", flat=True))
    return [group for group in selectors.billing_due(day=today) if group[0] not in done]


def billing_run_sweep(*, now: datetime, force: bool) -> int:
    """Queue again today's invoices whose task was lost (core.sweeper; billing_run_left).
    Issuing is idempotent for a day, so a task that was only slow issues nothing twice.
    Returns how many were queued."""
    today = timezone.localdate(now).isoformat()
    return sum(
        task_enqueue(invoice_issue, customer_id, payer, currency, today)
        for customer_id, payer, currency in billing_run_left(now=now, force=force)[
            : sweeper.SWEEP_BATCH
        ]
    )


def invoice_pdfs_sweep(*, now: datetime, force: bool) -> int:
    """Queue again the render of each document still without its PDF a while after its issue
    and its last render was queued (billing.selectors.invoices_pdf_missing_q), until it is
    stored or fails for good (billing.pdf.PDF_ATTEMPTS_MAX attempts, or an error that is not
    transient): staff are then emailed once and the sweeper leaves it to them. Returns how many
    were queued (core.sweeper runs it).

    Safe to run twice, or while a render runs: a render locks its invoice, and finds a PDF
    already stored and emails nothing again (invoice_pdf_store, pdf_emailed_at)."""
    missing = Invoice.objects.filter(pdf_sha256="", pdf_failure_reported_at__isnull=True)
    if not force:
        missing = missing.filter(selectors.invoices_pdf_missing_q(now=now))
    given_up = missing.filter(pdf_attempts__gte=pdf.PDF_ATTEMPTS_MAX).values_list("pk", flat=True)
    for invoice_id in given_up[: sweeper.SWEEP_BATCH]:
        # Its last failure was recorded, its report not made (e.g. the render failed
        # transiently the last time): tell staff now rather than render again.
        notifications.invoice_pdf_failure_report(invoice=Invoice(pk=invoice_id))
    return sweeper.rows_requeue(
        missing.filter(pdf_attempts__lt=pdf.PDF_ATTEMPTS_MAX),
        due_field="issued_at",
        queued_field="pdf_queued_at",
        task=rendering_tasks.invoice_render_pdf,
        now=now,
        force=True,  # `missing` is already what is overdue
    )
