from allauth.account.decorators import secure_admin_login
from allauth.mfa.models import Authenticator
from django.conf import settings
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _


def needs_mfa_setup(user: object) -> bool:
    return bool(
        settings.ADMIN_REQUIRE_MFA
        and getattr(user, "is_staff", False)
        and not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()
    )


class PortalAdminSite(admin.AdminSite):
    """The vendor's staff console: signed in through allauth, and with a second factor."""

    def has_permission(self, request: HttpRequest) -> bool:
        return super().has_permission(request) and not needs_mfa_setup(request.user)

    def login(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        if request.user.is_authenticated and needs_mfa_setup(request.user):
            messages.warning(request, _("Set up two-factor authentication to use the admin."))
            return redirect("mfa_activate_totp")
        return secure_admin_login(super().login)(request, extra_context)
