"""Email: rendered in the recipient's language when queued, sent by a Celery task on commit."""

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import translation

from core.models import OutboundEmail


class EmailAttachment(TypedDict):
    """A file in the default storage to send along: read when the email goes out."""

    path: str  # the storage name, e.g. FieldFile.name
    filename: str  # the name the recipient sees
    mimetype: str


def email_queue(
    *,
    to: str,
    template: str,
    context: Mapping[str, Any],
    language: str,
    attachments: Sequence[EmailAttachment] = (),
) -> OutboundEmail:
    """Render `emails/<template>.{subject.txt,txt,html}` in `language` and send after commit.

    The caller's transaction decides: if it rolls back, no row and no email. `attachments`
    name files already in the default storage; the row keeps their names, not their bytes.
    """
    if language not in dict(settings.LANGUAGES):
        language = settings.LANGUAGE_CODE
    full_context = {"portal_name": settings.PORTAL_NAME, "vendor_name": settings.VENDOR_NAME}
    full_context.update(context)
    with translation.override(language):
        subject = render_to_string(f"emails/{template}.subject.txt", full_context)
        body_text = render_to_string(f"emails/{template}.txt", full_context)
        body_html = render_to_string(f"emails/{template}.html", full_context)
    email = OutboundEmail.objects.create(
        to=to,
        template=template,
        language=language,
        subject=" ".join(subject.split()),
        body_text=body_text,
        body_html=body_html,
        attachments=[dict(attachment) for attachment in attachments],
    )
    from core.tasks import send_email

    transaction.on_commit(lambda: send_email.delay(email.pk))
    return email
