"""Resolve the request's reseller once, from the signed-in user's memberships.

The session remembers which of the user's resellers is active; it is only ever checked
against the memberships loaded here, so a client cannot name a reseller it does not belong to.
"""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from core.http import PortalRequest
from resellers.models import Membership
from resellers.selectors import membership_landing, memberships_for_user

SESSION_KEY = "active_reseller"


class ResellerMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: PortalRequest) -> HttpResponse:
        memberships: list[Membership] = []
        if request.user.is_authenticated:
            memberships = memberships_for_user(user=request.user)
        chosen = request.session.get(SESSION_KEY)
        # Without a choice (just signed in): the reseller last used, else the highest role.
        fallback = membership_landing(memberships=memberships)
        active = next((m for m in memberships if m.reseller.public_id == chosen), fallback)
        request.memberships = memberships
        request.membership = active
        request.reseller = active.reseller if active else None
        if active is None:
            return self.get_response(request)
        # A reseller's team reads times in the reseller's zone, as its customers read theirs in
        # their own (the customer-side views override this with the customer's zone).
        with timezone.override(active.reseller.time_zone):
            return self.get_response(request)
