from typing import Any

from allauth.account import views as allauth_views
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


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    return render(request, "403_csrf.html", status=403)
