from typing import Any

from django.conf import settings
from django.http import HttpRequest

from resellers.roles import PERMISSIONS


def tenant(request: HttpRequest) -> dict[str, Any]:
    membership = getattr(request, "membership", None)
    return {
        "memberships": getattr(request, "memberships", []),
        "membership": membership,
        "reseller": getattr(request, "reseller", None),
        # `{% if "team.manage" in can %}`: what the user's role allows, to hide buttons only.
        "can": PERMISSIONS.get(membership.role, frozenset()) if membership else frozenset(),
        "portal_name": settings.PORTAL_NAME,
        "vendor_name": settings.VENDOR_NAME,
        "development_sign_in": settings.DEVELOPMENT_SIGN_IN,
        "google_sign_in": bool(settings.SOCIALACCOUNT_PROVIDERS["google"]["APPS"]),
    }
