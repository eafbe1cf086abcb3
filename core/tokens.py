"""One-time tokens: team invitations, customer invitations and transfer tokens share this.

The raw token (32 random bytes) is shown or mailed once; only its SHA-256 is stored, so a
database leak does not leak usable links. A token is consumed by one conditional UPDATE, so of
many concurrent accepts exactly one wins.
"""

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


def token_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def token_new() -> tuple[str, str]:
    """Return (raw token for the link, digest to store)."""
    raw = secrets.token_urlsafe(32)
    return raw, token_digest(raw)


def default_expiry() -> datetime:
    return timezone.now() + timedelta(days=settings.INVITATION_VALID_DAYS)


class TokenState(models.TextChoices):
    VALID = "valid"
    EXPIRED = "expired"
    USED = "used"
    WITHDRAWN = "withdrawn"


class OneTimeToken(models.Model):
    token_hash = models.CharField(_("token hash"), max_length=64, unique=True, editable=False)
    expires_at = models.DateTimeField(_("expires"), default=default_expiry)
    consumed_at = models.DateTimeField(_("used"), null=True, blank=True, editable=False)
    withdrawn_at = models.DateTimeField(_("withdrawn"), null=True, blank=True, editable=False)

    class Meta:
        abstract = True

    @property
    def state(self) -> TokenState:
        if self.consumed_at is not None:
            return TokenState.USED
        if self.withdrawn_at is not None:
            return TokenState.WITHDRAWN
        if self.expires_at <= timezone.now():
            return TokenState.EXPIRED
        return TokenState.VALID

    def renew_token(self) -> str:
        """Give the row a new token (the old link dies) and a new expiry; returns the raw token."""
        raw, self.token_hash = token_new()
        self.expires_at = default_expiry()
        return raw


def token_consume(queryset: models.QuerySet, *, pk: int, **also: Any) -> bool:
    """Mark the token row consumed if it still is valid; True for exactly one caller.

    `also` sets more columns in the same conditional UPDATE (e.g. who accepted).
    """
    now = timezone.now()
    updated = queryset.filter(
        pk=pk, consumed_at__isnull=True, withdrawn_at__isnull=True, expires_at__gt=now
    ).update(consumed_at=now, **also)
    return updated == 1
