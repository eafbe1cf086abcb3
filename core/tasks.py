import logging
import smtplib

from celery import shared_task
from django.core.files.storage import default_storage
from django.core.mail import EmailMultiAlternatives
from django.db.models import F
from django.utils import timezone

from core.emails import secrets_fill
from core.models import OutboundEmail

logger = logging.getLogger(__name__)

# Retries back off up to 10 minutes, far below the broker's visibility timeout (1 hour).
EMAIL_RETRY_BACKOFF_MAX = 600


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(smtplib.SMTPException, ConnectionError, TimeoutError),
    retry_backoff=True,
    retry_backoff_max=EMAIL_RETRY_BACKOFF_MAX,
    max_retries=8,
)
def send_email(self, email_id: int, secrets: dict[str, str] | None = None) -> str:
    """Send one queued email. Running it twice sends it once: the first run claims the row.

    `secrets` (one-time links) are put into the stored body for this send only, never saved;
    a retry gets them again from its own arguments."""
    claimed = OutboundEmail.objects.filter(pk=email_id, status=OutboundEmail.Status.PENDING).update(
        status=OutboundEmail.Status.SENDING, attempts=F("attempts") + 1
    )
    if not claimed:
        return "skipped"
    email = OutboundEmail.objects.get(pk=email_id)
    secrets = secrets or {}
    message = EmailMultiAlternatives(
        secrets_fill(email.subject, secrets, html=False),
        secrets_fill(email.body_text, secrets, html=False),
        to=[email.to],
    )
    message.attach_alternative(secrets_fill(email.body_html, secrets, html=True), "text/html")
    try:
        _attach_stored_files(message, email.attachments)
        message.send()
    except FileNotFoundError as exc:
        # An attachment is gone from the storage; retrying cannot bring it back.
        OutboundEmail.objects.filter(pk=email_id).update(
            status=OutboundEmail.Status.FAILED, last_error=repr(exc)[:2000]
        )
        logger.error("Email %s not sent, an attachment is missing: %r", email_id, exc)
        return "failed"
    except Exception as exc:
        # Hand the row back so the retry can claim it again.
        final = self.request.retries >= self.max_retries
        OutboundEmail.objects.filter(pk=email_id).update(
            status=OutboundEmail.Status.FAILED if final else OutboundEmail.Status.PENDING,
            last_error=repr(exc)[:2000],
        )
        logger.warning("Sending email %s failed: %r", email_id, exc)
        raise
    OutboundEmail.objects.filter(pk=email_id).update(
        status=OutboundEmail.Status.SENT, sent_at=timezone.now(), last_error=""
    )
    return "sent"


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
