"""Celery: render and store an invoice's PDF (billing.pdf) once the invoice is issued, write it
back when staff ask after a storage loss (identical bytes only), and re-queue the documents left
without one (billing.tasks.invoice_pdfs_sweep). billing.services calls `invoice_pdf_enqueue`
when it issues a document and `invoice_pdf_regenerate` when staff ask again; billing.apps imports
this module too, so the worker knows the task."""

import logging

from celery import shared_task

from billing import pdf
from billing.models import Invoice
from core.queue import task_enqueue_on_commit

logger = logging.getLogger(__name__)

# Retries back off up to 10 minutes, far below the broker's visibility timeout (1 hour); a
# render takes well under a second, the hard limit only stops a runaway one.
RENDER_RETRY_BACKOFF_MAX = 600
RENDER_TIME_LIMIT = 300


@shared_task(
    bind=True,
    # Idempotent (billing.pdf.invoice_pdf_store): a message redelivered after a lost worker
    # finds the PDF stored, or stores it; two at once render once (the row lock).
    acks_late=True,
    reject_on_worker_lost=True,
    # Only what is transient: the database or the storage went away for a moment. A missing
    # invoice, an invalid Factur-X or a template error fails at once.
    autoretry_for=pdf.TRANSIENT_ERRORS,
    retry_backoff=True,
    retry_backoff_max=RENDER_RETRY_BACKOFF_MAX,
    max_retries=6,
    time_limit=RENDER_TIME_LIMIT,
)
def invoice_render_pdf(self, invoice_id: int, regenerate: bool = False) -> str:
    """Render the invoice's PDF/A-3 (with its Factur-X XML) and store it with its SHA-256.
    Returns what billing.pdf.invoice_pdf_store did ("stored", "skipped", "restored", ...). A
    failure is recorded on the invoice (attempts, error; staff are told once it fails for
    good) and raised: retried if transient."""
    try:
        result = pdf.invoice_pdf_store(invoice_id=invoice_id, regenerate=regenerate)
    except Invoice.DoesNotExist:
        raise
    except Exception as error:
        try:
            pdf.invoice_pdf_failure_record(invoice_id=invoice_id, error=error)
        except pdf.TRANSIENT_ERRORS:
            logger.exception("Invoice %s PDF: the failure could not be recorded", invoice_id)
        raise
    logger.info("Invoice %s PDF: %s", invoice_id, result)
    return str(result)


def invoice_pdf_enqueue(invoice: Invoice) -> None:
    """After the issuing transaction commits, render the new document's PDF."""
    task_enqueue_on_commit(invoice_render_pdf, invoice.pk)


def invoice_pdf_regenerate(invoice: Invoice) -> None:
    """After the caller's transaction commits, render the PDF again for staff: written back only
    if the stored file is missing or altered and the render has the recorded hash."""
    task_enqueue_on_commit(invoice_render_pdf, invoice.pk, regenerate=True)
