from collections.abc import Callable

from allauth.account.decorators import secure_admin_login
from allauth.mfa.models import Authenticator
from django.conf import settings
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import URLPattern, URLResolver, path
from django.utils.translation import gettext as _


def needs_mfa_setup(user: object) -> bool:
    return bool(
        settings.ADMIN_REQUIRE_MFA
        and getattr(user, "is_staff", False)
        and not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()
    )


# Staff pages of the apps above core (core imports none of them): each app adds its own in its
# AppConfig.ready(), before the URLs are first read. {route: (view, URL name in "admin:")}
_PAGES: dict[str, tuple[Callable[..., HttpResponse], str]] = {}


def admin_page_register(route: str, view: Callable[..., HttpResponse], *, name: str) -> None:
    """Serve `view` at admin/<route> as "admin:<name>", behind the admin's sign-in and second
    factor (AdminSite.admin_view)."""
    _PAGES[route] = (view, name)


class PortalAdminSite(admin.AdminSite):
    """The vendor's staff console: signed in through allauth, and with a second factor."""

    def get_urls(self) -> list[URLResolver | URLPattern]:
        pages = [
            path(route, self.admin_view(view), name=name) for route, (view, name) in _PAGES.items()
        ]
        return [*pages, *super().get_urls()]

    def has_permission(self, request: HttpRequest) -> bool:
        return super().has_permission(request) and not needs_mfa_setup(request.user)

    def login(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        if request.user.is_authenticated and needs_mfa_setup(request.user):
            messages.warning(request, _("Set up two-factor authentication to use the admin."))
            return redirect("mfa_activate_totp")
        return secure_admin_login(super().login)(request, extra_context)
