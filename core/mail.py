"""An email backend for the demo console: one line per email instead of the whole MIME message.

Django's console backend prints every message in full, PDF attachments in base64 included, so
the first `make demo` printed thousands of lines and the demo users' list scrolled away. The
demo needs only what a person acts on: who the email is for, its subject, the links it holds
(one-time links included: that is how a demo user accepts an invitation), a sign-in code, and
the names of its attachments. The whole email, as its recipient sees it, is on the development
outbox page (demo.views).
"""

import re
from collections.abc import Sequence
from typing import Any

from django.core.mail import EmailMessage
from django.core.mail.backends.console import EmailBackend as ConsoleBackend

# Links as they stand in a text body: up to the first space or closing bracket.
LINK_RE = re.compile(r"https?://[^\s<>\"')\]]+")
# allauth's sign-in code stands alone on its line (account/email/login_code_message.txt).
CODE_RE = re.compile(r"^[A-Z0-9]{3,8}(?:-[A-Z0-9]{3,8})?$")


def email_summary(message: EmailMessage) -> str:
    """One line: `✉ to <addr> · <subject> · links: <url> … · code: … · attachments: <name> …`."""
    body = str(message.body or "")
    parts = [f"✉ to {', '.join(message.to)}", " ".join(str(message.subject).split())]
    links = list(dict.fromkeys(match.rstrip(".,;:") for match in LINK_RE.findall(body)))
    if links:
        parts.append("links: " + " ".join(links))
    codes = [line.strip() for line in body.splitlines() if CODE_RE.match(line.strip())]
    if codes:
        parts.append("code: " + " ".join(codes))
    names = attachment_names(message.attachments)
    if names:
        parts.append("attachments: " + " ".join(names))
    return " · ".join(parts)


def attachment_names(attachments: Sequence[Any]) -> list[str]:
    """The file names of a message's attachments (a tuple, an EmailAttachment or a MIME part)."""
    names = []
    for attachment in attachments:
        if hasattr(attachment, "get_filename"):
            name = attachment.get_filename()
        elif hasattr(attachment, "filename"):
            name = attachment.filename
        else:
            name = attachment[0]
        names.append(str(name or "(unnamed)"))
    return names


class DemoConsoleBackend(ConsoleBackend):
    """Django's console backend (its stream, lock and error handling), writing `email_summary`
    of each message instead of the message."""

    def write_message(self, message: EmailMessage) -> None:
        self.stream.write(email_summary(message) + "\n")
