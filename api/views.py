"""Settings → API keys: the reseller's keys, making one (its secret shown once, in the answer
to the POST that made it) and revoking one after a confirmation. Owners and admins only."""

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _

from api import selectors, services
from api.forms import ApiKeyForm
from core.forms import add_service_errors
from core.http import ResellerRequest
from resellers.access import reseller_required
from resellers.roles import Action


@reseller_required(Action.API_KEYS_MANAGE)
def key_list(request: ResellerRequest) -> HttpResponse:
    """The keys and the form that makes one. The raw key exists only in the response to the
    POST that made it: only its digest is stored, and it is neither put in the session nor
    carried through a redirect, so nothing can show it again."""
    form = ApiKeyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            key, raw = services.api_key_create(
                membership=request.membership,
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                expires_at=form.expires_at_in(request.reseller.time_zone),
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            response = render(
                request,
                "api/key_created.html",
                {"key": key, "raw": raw, "scopes": selectors.scope_labels(key)},
            )
            add_never_cache_headers(response)
            return response
    keys = [
        {
            "key": key,
            "scopes": selectors.scope_labels(key),
            "state": (state := selectors.api_key_state(key)),
            "state_label": selectors.KeyState.LABELS[state],
            "state_reason": selectors.KeyState.REASONS.get(state, ""),
        }
        for key in selectors.api_key_list(reseller=request.reseller)
    ]
    context = {
        "keys": keys,
        "form": form,
        "rate_limit": settings.API_RATE_LIMIT,
        "rate_window": settings.API_RATE_WINDOW,
    }
    return render(request, "api/keys.html", context, status=400 if form.errors else 200)


@reseller_required(Action.API_KEYS_MANAGE)
def key_revoke(request: ResellerRequest, api_key_id: str) -> HttpResponse:
    """GET says what revoking means; POST revokes."""
    key = selectors.api_key_get(reseller=request.reseller, public_id=api_key_id)
    if request.method == "POST":
        services.api_key_revoke(membership=request.membership, key=key)
        messages.success(
            request,
            _("The key %(name)s was revoked: requests made with it are refused from now on.")
            % {"name": key.name},
        )
        return redirect("api_keys:list")
    return render(request, "api/key_revoke.html", {"key": key})
