"""Making and revoking API keys (owners and admins), and finding the key a request carries."""

import secrets
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from api.models import KEY_PREFIX, ApiKey, Scope
from core.tokens import token_digest
from resellers.models import Membership
from resellers.roles import Action, require
from resellers.services import audit_record

# last_used_at is written at most this often per key: not a write on every request.
LAST_USED_EVERY = timedelta(minutes=1)


def api_key_create(
    *, membership: Membership, name: str, scopes: list[str], expires_at: datetime | None = None
) -> tuple[ApiKey, str]:
    """A new key for `membership`'s reseller, acting with `membership`'s role; returns the key
    and the raw secret, which is never shown again."""
    require(membership.role, Action.API_KEYS_MANAGE)
    name = " ".join(name.split())
    errors: dict[str, str] = {}
    if not name:
        errors["name"] = _("Give the key a name, so that you can tell it apart later.")
    unknown = [scope for scope in scopes if scope not in Scope.values]
    if not scopes or unknown:
        errors["scopes"] = _("Choose at least one of the scopes offered.")
    if expires_at is not None and expires_at <= timezone.now():
        errors["expires_at"] = _("The expiry must be in the future.")
    if errors:
        raise ValidationError(errors)
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        key = ApiKey.objects.create(
            reseller=membership.reseller,
            membership=membership,
            created_by_email=membership.user.email,
            role=membership.role,
            name=name,
            prefix=raw[: len(KEY_PREFIX) + 6],
            key_hash=token_digest(raw),
            scopes=sorted(set(scopes)),
            expires_at=expires_at,
        )
        audit_record(
            actor=membership.user,
            reseller=membership.reseller,
            action="api_key.created",
            obj=key,
            after={"name": key.name, "scopes": key.scopes, "role": key.role},
        )
    return key, raw


def api_key_revoke(*, membership: Membership, key: ApiKey) -> ApiKey:
    require(membership.role, Action.API_KEYS_MANAGE)
    if key.reseller_id != membership.reseller_id:
        raise ApiKey.DoesNotExist
    with transaction.atomic():
        updated = ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        if updated:
            audit_record(
                actor=membership.user,
                reseller=membership.reseller,
                action="api_key.revoked",
                obj=key,
                before={"name": key.name},
            )
    key.refresh_from_db()
    return key


def api_key_for_secret(raw: str) -> ApiKey | None:
    """The usable key whose secret is `raw`, with its member and reseller, or None."""
    if not raw.startswith(KEY_PREFIX) or len(raw) > 100:
        return None
    key = (
        ApiKey.objects.select_related("membership__user", "membership__reseller", "reseller")
        .filter(key_hash=token_digest(raw))
        .first()
    )
    if key is None or not key.is_usable or not key.reseller.is_active:
        return None
    now = timezone.now()
    if key.last_used_at is None or key.last_used_at < now - LAST_USED_EVERY:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key
