"""The gate in front of every reseller page: signed in, a member, an active reseller."""

from collections.abc import Callable
from functools import wraps
from typing import Concatenate, ParamSpec, cast

from django.contrib.auth.views import redirect_to_login
from django.http.response import HttpResponseBase
from django.shortcuts import redirect

from core.http import PortalRequest, ResellerRequest
from resellers.roles import Action, require

P = ParamSpec("P")


def reseller_required(
    action: Action | None = None,
) -> Callable[
    [Callable[Concatenate[ResellerRequest, P], HttpResponseBase]],
    Callable[Concatenate[PortalRequest, P], HttpResponseBase],
]:
    """Let the view run only for a member of an active reseller (and a role allowing `action`).
    Any response will do, a streamed export or a file as well as a page."""

    def decorator(
        view: Callable[Concatenate[ResellerRequest, P], HttpResponseBase],
    ) -> Callable[Concatenate[PortalRequest, P], HttpResponseBase]:
        @wraps(view)
        def wrapper(request: PortalRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponseBase:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            membership = request.membership
            if membership is None:
                return redirect("resellers:apply")
            if not membership.reseller.is_active:
                return redirect("resellers:status")
            if action is not None:
                require(membership.role, action)
            # Signed in, with a membership of an active reseller: what ResellerRequest declares.
            return view(cast(ResellerRequest, request), *args, **kwargs)

        return wrapper

    return decorator
