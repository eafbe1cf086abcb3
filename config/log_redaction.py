"""One-time tokens kept out of the logs (Django's and gunicorn's).

A token is a URL path segment (`/join/<token>/`, `/invitation/<token>/`,
`/billing/card-consent/<token>/`): Django logs "Forbidden: <path>" and "Gone: <path>", gunicorn
logs every request line, and template debugging logs the request and its context. Each record's
message is redacted before any handler writes it: the segment after a token route (also when
URL-encoded in a `next=` parameter), and any other string shaped like a raw token
(`secrets.token_urlsafe(32)`: 43 URL-safe characters).

tests/core/test_tokens_at_rest.py checks that every URL pattern taking a token is covered here.
"""

import logging
import re
from typing import Any

from gunicorn.glogging import Logger as GunicornLogger

# The path segment just before `<token>` in every URL pattern that carries one.
TOKEN_ROUTES = ("join", "invitation", "card-consent")
REDACTED_TOKEN = "[token]"

_TOKEN_PATH = re.compile(
    r"((?:/|%2F)(?:" + "|".join(map(re.escape, TOKEN_ROUTES)) + r")(?:/|%2F))"
    r"[^/?#&%\s'\"<>]+",
    re.IGNORECASE,
)
_TOKEN_SHAPED = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])")


def tokens_redact(text: str) -> str:
    text = _TOKEN_PATH.sub(lambda match: match.group(1) + REDACTED_TOKEN, text)
    return _TOKEN_SHAPED.sub(REDACTED_TOKEN, text)


class TokenRedactingFilter(logging.Filter):
    """Rewrites a record's message without tokens; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = tokens_redact(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        if record.exc_info and not record.exc_text:
            # Formatters print exc_text when it is set (the exception's message may hold the
            # request or a template context).
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = tokens_redact(record.exc_text)
        return True


class TokenRedactingGunicornLogger(GunicornLogger):
    """gunicorn's logger (`--logger-class`) with the access and error logs redacted: the access
    log's request line and path, and "Error handling request <uri>"."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for logger in (self.access_log, self.error_log):
            if not any(isinstance(f, TokenRedactingFilter) for f in logger.filters):
                logger.addFilter(TokenRedactingFilter())
