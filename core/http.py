"""The request as the portal's middleware leaves it, for views to declare instead of HttpRequest.

django-htmx's HtmxMiddleware sets `htmx`; resellers.middleware.ResellerMiddleware sets
`memberships`, `membership` and `reseller` on every request (None when the user is signed out or
belongs to no reseller). Behind resellers.access.reseller_required they are known to be there,
which ResellerRequest says. These classes are only annotations: the object is Django's own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import HttpRequest

if TYPE_CHECKING:
    from django_htmx.middleware import HtmxDetails

    from core.models import User
    from resellers.models import Membership, Reseller


class PortalRequest(HttpRequest):
    """Any request: the user may be signed out, and a member of no reseller."""

    htmx: HtmxDetails
    memberships: list[Membership]
    membership: Membership | None
    reseller: Reseller | None


class ResellerRequest(PortalRequest):
    """A request to a view behind `reseller_required`: a signed-in member of an active reseller."""

    user: User
    membership: Membership
    reseller: Reseller
