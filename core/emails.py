"""Email: rendered in the recipient's language when queued, sent by a Celery task on commit.

One-time links (invitations, card consents) are secrets: the stored body holds a placeholder in
their place, so staff reading an email in the admin never see a live link. The links themselves
are kept with the row, encrypted (`secrets_seal`, a key derived from SECRET_KEY, never stored),
only until the email is sent or given up: the row, not the broker's message, is the pending
work, so an email whose task was lost (Redis restarted empty) is still sent by the sweeper.
"""

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from email.utils import make_msgid
from typing import Any, TypedDict
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.html import escape

from core.models import OutboundEmail
from core.queue import task_enqueue_on_commit


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
    secrets: Mapping[str, str] | None = None,
) -> OutboundEmail:
    """Render `emails/<template>.{subject.txt,txt,html}` in `language` and send after commit.

    The caller's transaction decides: if it rolls back, no row and no email. `attachments`
    name files already in the default storage; the row keeps their names, not their bytes.
    `secrets` are template variables never stored in the body (one-time links): the body keeps
    a placeholder for each, and the sending task puts the value in (`secrets_fill`) from the
    row's sealed copy, which is erased once the email is sent.
    """
    if language not in dict(settings.LANGUAGES):
        language = settings.LANGUAGE_CODE
    secrets = dict(secrets or {})
    full_context = {"portal_name": settings.PORTAL_NAME, "vendor_name": settings.VENDOR_NAME}
    full_context.update(context)
    full_context.update({name: secret_placeholder(name) for name in secrets})
    with translation.override(language):
        subject = render_to_string(f"emails/{template}.subject.txt", full_context)
        body_text = render_to_string(f"emails/{template}.txt", full_context)
        body_html = render_to_string(f"emails/{template}.html", full_context)
    now = timezone.now()
    email = OutboundEmail.objects.create(
        to=to,
        template=template,
        language=language,
        subject=" ".join(subject.split()),
        body_text=body_text,
        body_html=body_html,
        attachments=[dict(attachment) for attachment in attachments],
        message_id=message_id_new(),
        secrets_sealed=secrets_seal(secrets) if secrets else "",
        next_attempt_at=now,
        queued_at=now,
    )
    from core.tasks import send_email

    task_enqueue_on_commit(send_email, email.pk)
    return email


def message_id_new() -> str:
    """A unique Message-ID in the portal's domain, e.g. <175…@portal.example.com>."""
    return make_msgid(domain=urlsplit(settings.PORTAL_URL).hostname or "localhost")


def _secrets_cipher() -> MultiFernet:
    """Fernet keys derived from SECRET_KEY (and its fallbacks, so a key rotation does not strand
    the emails still pending): a database backup alone cannot open the sealed links."""
    keys = [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
    return MultiFernet(
        [
            Fernet(base64.urlsafe_b64encode(hashlib.sha256(SEAL_SALT + str(key).encode()).digest()))
            for key in keys
        ]
    )


SEAL_SALT = b"core.emails.secrets_seal:"


def secrets_seal(secrets: Mapping[str, str]) -> str:
    """The secrets, encrypted for the row until the email is sent."""
    return _secrets_cipher().encrypt(json.dumps(dict(secrets)).encode()).decode()


def secrets_open(sealed: str) -> dict[str, str]:
    """The secrets a row was sealed with (InvalidToken if no current key opens them)."""
    return dict(json.loads(_secrets_cipher().decrypt(sealed.encode())))


def secret_placeholder(name: str) -> str:
    """What the stored email shows instead of the secret `name`: "[accept_url sent by email]",
    unique per name, so the sending task can put each value in its place."""
    return f"[{name} sent by email]"


def secrets_fill(text: str, secrets: Mapping[str, str], *, html: bool) -> str:
    """The stored `text` with each secret in place of its placeholder (escaped in HTML, as the
    template would have escaped it)."""
    for name, value in secrets.items():
        text = text.replace(secret_placeholder(name), escape(value) if html else value)
    return text
