"""Celery: the monthly commission statements (Celery beat, CELERY_BEAT_SCHEDULE
"commission-statements", on the 1st) and the render of each statement's PDF after issue."""

import logging
from datetime import timedelta

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from commissions import pdf, statements

logger = logging.getLogger(__name__)

RETRY_BACKOFF_MAX = 600


@shared_task(
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_backoff_max=RETRY_BACKOFF_MAX,
    max_retries=5,
)
def statements_issue_monthly() -> int:
    """Issue the statements of the month that ended yesterday (or earlier, for a run that is
    late); returns how many were issued. Idempotent: a rerun issues nothing twice."""
    last_month = timezone.localdate().replace(day=1) - timedelta(days=1)
    return len(statements.statements_issue(month=last_month))


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_backoff_max=RETRY_BACKOFF_MAX,
    max_retries=6,
)
def statement_render_pdf(statement_id: int) -> bool:
    """Render and store the statement's PDF once (commissions.pdf.statement_pdf_store); the
    page renders it on demand too if this has not run yet."""
    return pdf.statement_pdf_store(statement_id=statement_id)
