import math
from http import HTTPStatus
from typing import Any

from allauth.account import app_settings as allauth_settings
from allauth.account import views as allauth_views
from allauth.core.internal import ratelimit  # the parser of allauth's own rate settings
from django.conf import settings
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django.views.i18n import set_language as django_set_language

from core.models import User


@require_POST
def set_language(request: HttpRequest) -> HttpResponse:
    """Django's language switch, remembered on the user so emails follow it too."""
    response = django_set_language(request)
    language = request.POST.get("language", "")
    if request.user.is_authenticated and language in dict(
        request.user._meta.get_field("language").choices or []
    ):
        request.user.language = language
        request.user.save(update_fields=["language"])
    return response


class LoginView(allauth_views.LoginView):
    """allauth's sign-in page: Google for everyone, a password form only for the staff flow."""

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        next_url = self.request.POST.get("next") or self.request.GET.get("next") or ""
        context["staff_sign_in"] = (
            next_url.startswith(reverse("admin:index")) or self.request.method == "POST"
        )
        if settings.DEVELOPMENT_SIGN_IN:
            context["demo_users"] = list(
                User.objects.filter(is_staff=False)
                .filter(Q(memberships__isnull=False) | Q(customer_memberships__isnull=False))
                .distinct()
                .order_by("email")
                .values_list("email", flat=True)[:12]
            )
        return context

    def form_invalid(self, form: Any) -> HttpResponse:
        """allauth refuses a sign-in past its failed-login limit (ACCOUNT_RATE_LIMITS
        "login_failed", per address and per IP) with a form error; answer it with 429 and
        Retry-After, the page and its message unchanged."""
        response = super().form_invalid(form)
        if any(
            error.code == "too_many_login_attempts" for error in form.non_field_errors().as_data()
        ):
            response.status_code = HTTPStatus.TOO_MANY_REQUESTS
            response["Retry-After"] = str(login_failed_retry_after())
        return response


def login_failed_retry_after() -> int:
    """Seconds until a refused sign-in may be tried again, at most: the longest window of
    allauth's failed-login limits (the failures in it slide out by then)."""
    rates = ratelimit.parse_rates(allauth_settings.RATE_LIMITS.get("login_failed"))
    return max((math.ceil(rate.duration) for rate in rates), default=60)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    return render(request, "403_csrf.html", status=403)
