"""Email: rendered in the recipient's language when queued, sent by a Celery task on commit.

One-time links (invitations, card consents) are secrets: the stored row holds a placeholder in
their place, and the link itself travels only in the sending task's arguments (see
`email_queue`'s `secrets`), so staff reading an email in the admin never see a live link.
"""

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.html import escape

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
    secrets: Mapping[str, str] | None = None,
) -> OutboundEmail:
    """Render `emails/<template>.{subject.txt,txt,html}` in `language` and send after commit.

    The caller's transaction decides: if it rolls back, no row and no email. `attachments`
    name files already in the default storage; the row keeps their names, not their bytes.
    `secrets` are template variables never stored (one-time links): the row keeps a placeholder
    for each, and the sending task puts the value in (`secrets_fill`).
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

    if secrets:
        # The secrets live in the task's message in the broker (Redis) until the task has run,
        # and in no table: better than the database, where backups and the admin would keep
        # them. kwargsrepr keeps them out of the worker's logs and monitoring events.
        transaction.on_commit(
            lambda: send_email.apply_async(
                (email.pk,),
                {"secrets": secrets},
                # celery-types does not know this documented option.
                kwargsrepr=repr({"secrets": dict.fromkeys(secrets, REDACTED)}),  # type: ignore[call-arg]
            )
        )
    else:
        transaction.on_commit(lambda: send_email.delay(email.pk))
    return email


REDACTED = "[sent by email]"


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
