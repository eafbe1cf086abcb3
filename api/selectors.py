"""Reading a reseller's API keys for the Settings pages: each with the state a person reads
(active, revoked, expired, or stopped because the member who made it left or changed role)."""

from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from api.models import ApiKey, Scope
from resellers.models import Reseller


class KeyState:
    ACTIVE = "active"
    REVOKED = "revoked"
    EXPIRED = "expired"
    STOPPED = "stopped"

    LABELS = {
        ACTIVE: pgettext_lazy("API key", "Active"),
        REVOKED: pgettext_lazy("API key", "Revoked"),
        EXPIRED: pgettext_lazy("API key", "Expired"),
        # The member who made it left the team or no longer has the role it was made with: it
        # would act with more than its member may (api.models.ApiKey.is_usable).
        STOPPED: pgettext_lazy("API key", "Stopped"),
    }
    REASONS = {
        STOPPED: _("The member who made it left the team or changed role."),
    }


def api_key_state(key: ApiKey) -> str:
    """Why a key works or not, in the order a person fixes it: revoked is final; a stopped key
    needs a new key by a current member; an expired one a new key."""
    if key.revoked_at is not None:
        return KeyState.REVOKED
    if key.membership is None or key.membership.role != key.role:
        return KeyState.STOPPED
    if key.expires_at is not None and key.expires_at <= timezone.now():
        return KeyState.EXPIRED
    return KeyState.ACTIVE


def scope_labels(key: ApiKey) -> list[str]:
    labels = dict(Scope.choices)
    return [str(labels.get(scope, scope)) for scope in key.scopes]


def api_key_list(*, reseller: Reseller) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(reseller=reseller).select_related("membership")


def api_key_get(*, reseller: Reseller, public_id: str) -> ApiKey:
    """The reseller's key; another reseller's key is the same 404 as a missing one."""
    try:
        return api_key_list(reseller=reseller).get(public_id=public_id)
    except ApiKey.DoesNotExist:
        raise Http404(_("No such API key.")) from None
