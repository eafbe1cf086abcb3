"""The gate in front of every reseller page: signed in, a member, an active reseller."""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from resellers.roles import Action, require


def reseller_required(
    action: Action | None = None,
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Let the view run only for a member of an active reseller (and a role allowing `action`)."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            membership = request.membership  # type: ignore[attr-defined]
            if membership is None:
                return redirect("resellers:apply")
            if not membership.reseller.is_active:
                return redirect("resellers:status")
            if action is not None:
                require(membership.role, action)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
