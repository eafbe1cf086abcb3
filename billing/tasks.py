"""Daily billing run (Celery beat, see CELERY_BEAT_SCHEDULE). The job finds which invoices are
due and queues one task per customer (for the payer and currency of its oldest charge: one
invoice per customer per day); each locks that customer's charges and issues at most one
invoice for the day, so running the job twice changes nothing.

The PDF sweeper (Celery beat, every few minutes) re-queues the render of documents still
without a PDF 15 minutes after issue.

Celery discovers this module only: the PDF and payment tasks live in billing.rendering_tasks
and billing.payments, which billing.apps imports."""

import logging
from datetime import date

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from billing import notifications, pdf, rendering_tasks, selectors, services
from billing.models import Invoice
from customers.models import Customer

logger = logging.getLogger(__name__)

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


# At most this many renders queued per sweep: after a mass failure the queue is not flooded; the
# next sweeps take the rest.
PDF_SWEEP_BATCH = 500


@shared_task
def invoice_pdfs_sweep() -> int:
    """Queue again the render of each document issued more than 15 minutes ago that has no
    stored PDF (billing.selectors.invoices_pdf_missing_q), until it is stored or fails for good
    (billing.pdf.PDF_ATTEMPTS_MAX attempts, or an error that is not transient): staff are then
    emailed once and the sweeper leaves it to them. Returns how many were queued.

    Safe to run twice, or while a render runs: a render locks its invoice, and finds a PDF
    already stored and emails nothing again (invoice_pdf_store, pdf_emailed_at)."""
    missing = (
        Invoice.objects.filter(selectors.invoices_pdf_missing_q(now=timezone.now()))
        .filter(pdf_failure_reported_at__isnull=True)
        .order_by("pk")
        .values_list("pk", "pdf_attempts")[:PDF_SWEEP_BATCH]
    )
    queued = 0
    for invoice_id, attempts in missing:
        if attempts >= pdf.PDF_ATTEMPTS_MAX:
            # Its last failure was recorded, its report not made (e.g. the render failed
            # transiently the last time): tell staff now rather than render again.
            notifications.invoice_pdf_failure_report(invoice=Invoice(pk=invoice_id))
            continue
        try:
            rendering_tasks.invoice_render_pdf.delay(invoice_id)
        except Exception:
            # Run in-process (the demo's eager tasks) a render's failure raises here; it is
            # recorded on its invoice already. The other documents are still queued.
            logger.exception("PDF sweep: invoice %s", invoice_id)
            continue
        queued += 1
    if queued:
        logger.warning("PDF sweep: %d documents without a PDF queued again", queued)
    return queued
