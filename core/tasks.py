"""Celery tasks of core: sending a queued email, and the sweeper that queues overdue work.

Retries by class. Before the SMTP call, a database error is retried with backoff (nothing was
sent); a temporary SMTP failure (4xx, a dropped connection, a timeout) hands the row back and is
retried with backoff; a permanent one (5xx: a bad address, a refused sender) marks the row failed
at once, for staff to see. After the SMTP call only the record of the send is retried, in the
task, never the send itself.
"""

import logging
import smtplib
import time
from datetime import datetime, timedelta

from celery import shared_task
from cryptography.fernet import InvalidToken
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.mail import EmailMultiAlternatives
from django.db import DatabaseError, InterfaceError, OperationalError, connection
from django.db.models import F
from django.utils import timezone

from core import selectors, sweeper
from core.emails import message_id_new, secrets_fill, secrets_open
from core.models import OutboundEmail

logger = logging.getLogger(__name__)

# Retries back off up to 10 minutes, far below the broker's visibility timeout (1 hour).
EMAIL_RETRY_BACKOFF_MAX = 600
# A send never outlasts its lease (settings.EMAIL_SEND_LEASE, 5 minutes by default): the SMTP
# timeout is shorter still (EMAIL_TIMEOUT).
EMAIL_SEND_TIME_LIMIT = 240
DATABASE_ERRORS = (OperationalError, InterfaceError)
# The database went away after the message left: the record of the send is tried again, on a
# new connection, every half second while the email's lease lasts (less a margin). It lands as
# soon as the database is back, before the sweeper could take the email for lost and send it
# again; only an outage longer than the lease can make an email go twice (with the same
# Message-ID, which mail systems take for the same message).
RECORD_RETRY_EVERY = 0.5
RECORD_LEASE_MARGIN = 2.0
_clock = time.monotonic  # seconds, for the lease; a test can move it


class PermanentSendError(Exception):
    """Sending this email again cannot succeed (an unknown recipient, a refused sender...)."""


def _is_permanent(error: Exception) -> bool:
    """A 5xx SMTP answer is permanent; a 4xx, a lost connection or a timeout is not."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _message in error.recipients.values()]
        return bool(codes) and all(code >= 500 for code in codes)
    if isinstance(error, smtplib.SMTPResponseException):
        return error.smtp_code >= 500
    return isinstance(error, smtplib.SMTPNotSupportedError | PermanentSendError)


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(smtplib.SMTPException, ConnectionError, TimeoutError, *DATABASE_ERRORS),
    retry_backoff=True,
    retry_backoff_max=EMAIL_RETRY_BACKOFF_MAX,
    max_retries=8,
    time_limit=EMAIL_SEND_TIME_LIMIT,
)
def send_email(self, email_id: int, secrets: dict[str, str] | None = None) -> str:
    """Send one queued email. Running it twice sends it once: the first run claims the row.

    The one-time links come from the row's sealed copy (`secrets` is what tasks queued before it
    existed still carry), are put into the body for this send only, and are erased once the
    email is sent or given up."""
    now = timezone.now()
    lease_ends = _clock() + settings.EMAIL_SEND_LEASE - RECORD_LEASE_MARGIN
    claimed = OutboundEmail.objects.filter(pk=email_id, status=OutboundEmail.Status.PENDING).update(
        status=OutboundEmail.Status.SENDING, attempts=F("attempts") + 1, claimed_at=now
    )
    if not claimed:
        return "skipped"
    email = OutboundEmail.objects.get(pk=email_id)
    if not email.message_id:
        # Rows queued before Message-IDs were recorded: one now, before the SMTP call.
        email.message_id = message_id_new()
        email.save(update_fields=["message_id"])
    try:
        message = _message(email, secrets or {})
        _attach_stored_files(message, email.attachments)
        message.send()
    except Exception as error:
        final = self.request.retries >= self.max_retries or _is_permanent(error)
        final = final or isinstance(error, FileNotFoundError | InvalidToken)
        _send_failed(email_id, error, final=final, retries=self.request.retries)
        if final:
            return "failed"
        raise
    _record(
        email_id,
        lease_ends=lease_ends,
        status=OutboundEmail.Status.SENT,
        sent_at=timezone.now(),
        last_error="",
        secrets_sealed="",
    )
    return "sent"


def _message(email: OutboundEmail, secrets: dict[str, str]) -> EmailMultiAlternatives:
    if email.secrets_sealed:
        secrets = secrets_open(email.secrets_sealed)
    message = EmailMultiAlternatives(
        secrets_fill(email.subject, secrets, html=False),
        secrets_fill(email.body_text, secrets, html=False),
        to=[email.to],
        headers={"Message-ID": str(email.message_id)},
    )
    message.attach_alternative(secrets_fill(email.body_html, secrets, html=True), "text/html")
    return message


def _send_failed(email_id: int, error: Exception, *, final: bool, retries: int) -> None:
    """Give the row up or hand it back for the retry. A permanent failure erases the one-time
    links (that address will never get them); after the last temporary one they stay sealed,
    so staff can send the email again (the admin's "Send again")."""
    if isinstance(error, InvalidToken):
        error = PermanentSendError("the one-time link could not be opened (SECRET_KEY changed)")
    changes: dict[str, object]
    if final:
        logger.error("Email %s not sent, for good: %r", email_id, error)
        changes = {"status": OutboundEmail.Status.FAILED}
        if _is_permanent(error):
            changes["secrets_sealed"] = ""
    else:
        logger.warning("Sending email %s failed, to be retried: %r", email_id, error)
        # The retry's countdown is Celery's (at most 2^retries seconds); the sweeper steps in
        # only if that retry is lost, WORK_REQUEUE_AFTER after it was due.
        now = timezone.now()
        backoff = timedelta(seconds=min(2**retries, EMAIL_RETRY_BACKOFF_MAX))
        changes = {
            "status": OutboundEmail.Status.PENDING,
            "next_attempt_at": now + backoff,
            "queued_at": now,
        }
    try:
        OutboundEmail.objects.filter(pk=email_id).update(last_error=repr(error)[:2000], **changes)
    except DatabaseError:
        # Left `sending`: the sweeper hands it back once its lease is over.
        logger.exception("Email %s: its failure could not be recorded", email_id)


def _record(email_id: int, *, lease_ends: float, **changes: object) -> None:
    """Write what happened after the SMTP call, reconnecting while the database is away, until
    the email's lease is nearly over (`lease_ends`, on _clock's time): the email is not
    sent again because this write failed."""
    while True:
        try:
            OutboundEmail.objects.filter(pk=email_id).update(**changes)
            return
        except DATABASE_ERRORS:
            if _clock() + RECORD_RETRY_EVERY > lease_ends:
                # Still `sending` when its lease ends: the sweeper sends it again with the same
                # Message-ID, which mail systems take for the same message.
                logger.exception("Email %s was sent but could not be recorded", email_id)
                raise
            if not connection.in_atomic_block:
                connection.close()  # a new one on the next query
            time.sleep(RECORD_RETRY_EVERY)


def _attach_stored_files(
    message: EmailMultiAlternatives, attachments: list[dict[str, str]]
) -> None:
    """Read each attachment from the default storage when sending: the row names the file, so
    a retry attaches the same bytes without the row carrying them."""
    for attachment in attachments:
        try:
            with default_storage.open(attachment["path"], "rb") as stored:
                content = stored.read()
        except FileNotFoundError:
            # Some storages do not say which file; the row's last_error should.
            raise FileNotFoundError(f"attachment {attachment['path']} is missing") from None
        message.attach(attachment["filename"], content, attachment["mimetype"])


@shared_task
def work_sweep() -> dict[str, int]:
    """Every minute (beat): queue again whatever pending work is overdue (core.sweeper)."""
    return sweeper.work_sweep()


def emails_sweep(*, now: datetime, force: bool) -> int:
    """Queue again the emails overdue: pending and not sent within WORK_REQUEUE_AFTER of being
    due and queued (their task was lost), or claimed by a worker that did not finish within
    EMAIL_SEND_LEASE (it died mid-send). Returns how many were queued."""
    # A worker that died mid-send: its email is handed back, with its Message-ID. Even when
    # forced, not before the lease ends: the worker may still be sending it.
    OutboundEmail.objects.filter(selectors.emails_stuck_q(now=now)).update(
        status=OutboundEmail.Status.PENDING, next_attempt_at=F("claimed_at"), queued_at=None
    )
    if force:
        # Now, not at the end of their backoff.
        OutboundEmail.objects.filter(
            status=OutboundEmail.Status.PENDING, next_attempt_at__gt=now
        ).update(next_attempt_at=now)
    return sweeper.rows_requeue(
        OutboundEmail.objects.filter(status=OutboundEmail.Status.PENDING),
        due_field="next_attempt_at",
        task=send_email,
        now=now,
        force=force,
    )
