"""The development outbox (DEBUG only): each email the portal sent, as its recipient sees it.

The demo prints one line per email on its console (core.mail); this page shows the whole email,
its HTML body in a sandboxed frame with a policy of its own (no script, no request leaves the
page), and its attachments to download. One-time links are secrets (core.emails): the stored
body holds a placeholder, and the real link only while the row still holds it sealed, that is
until the email is sent; after that, only the console line showed it.
"""

from typing import Any, cast

from cryptography.fernet import InvalidToken
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.csp import CSP
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.csp import csp_override

from core.emails import secrets_fill, secrets_open
from core.models import OutboundEmail, User
from demo.selectors import outbox_email_get, outbox_email_list

# The email's own HTML: inline styles and images as an email client shows them, nothing else,
# sandboxed (no script, no form, a unique origin), framed only by the outbox page.
EMAIL_BODY_CSP: dict[str, Any] = {
    "default-src": [CSP.NONE],
    "style-src": [CSP.UNSAFE_INLINE],
    "img-src": [CSP.SELF, "data:"],
    "frame-ancestors": [CSP.SELF],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.NONE],
    "sandbox": True,
}
OUTBOX_LIMIT = 200


def _debug_only() -> None:
    """The outbox exists only with DEBUG on (its URLs are added only then, too)."""
    if not settings.DEBUG:
        raise Http404("No outbox here.")


def _secrets(email: OutboundEmail) -> dict[str, str]:
    """The one-time links of an email not sent yet; none once sent (they are erased)."""
    if not email.secrets_sealed:
        return {}
    try:
        return secrets_open(email.secrets_sealed)
    except InvalidToken:
        return {}


@login_required
def outbox(request: HttpRequest) -> HttpResponse:
    _debug_only()
    emails = outbox_email_list(user=cast(User, request.user))[:OUTBOX_LIMIT]
    return render(request, "demo/outbox.html", {"emails": emails, "limit": OUTBOX_LIMIT})


@login_required
def outbox_email(request: HttpRequest, pk: int) -> HttpResponse:
    _debug_only()
    email = outbox_email_get(user=cast(User, request.user), pk=pk)
    secrets = _secrets(email)
    context = {
        "email": email,
        "subject": secrets_fill(email.subject, secrets, html=False),
        "body_text": secrets_fill(email.body_text, secrets, html=False),
        "has_secrets": bool(secrets),
        "attachments": list(enumerate(email.attachments)),
    }
    return render(request, "demo/outbox_email.html", context)


@login_required
@xframe_options_sameorigin
@csp_override(EMAIL_BODY_CSP)
def outbox_email_html(request: HttpRequest, pk: int) -> HttpResponse:
    """The HTML body alone, for the outbox page's frame."""
    _debug_only()
    email = outbox_email_get(user=cast(User, request.user), pk=pk)
    return HttpResponse(secrets_fill(email.body_html, _secrets(email), html=True))


@login_required
def outbox_attachment(request: HttpRequest, pk: int, index: int) -> FileResponse:
    _debug_only()
    email = outbox_email_get(user=cast(User, request.user), pk=pk)
    if index >= len(email.attachments):
        raise Http404("No such attachment.")
    attachment = email.attachments[index]
    try:
        stored = default_storage.open(attachment["path"], "rb")
    except FileNotFoundError:
        raise Http404("The attachment's file is missing.") from None
    return FileResponse(
        stored,
        as_attachment=True,
        filename=attachment["filename"],
        content_type=attachment.get("mimetype") or "application/octet-stream",
    )
