from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.urls import include, path, register_converter

from api.v1 import api as api_v1
from config import views
from core.ids import PublicIdConverter
from core.views import LoginView, set_language
from insights.views import dashboard

register_converter(PublicIdConverter, "pid")

admin.site.site_header = settings.PORTAL_NAME

urlpatterns = [
    path("", views.home, name="home"),
    path("dashboard/", dashboard.dashboard, name="dashboard"),
    path(
        "dashboard/renewals/<pid:subscription_id>/", dashboard.renewal_set, name="dashboard_renewal"
    ),
    path("", include("resellers.urls")),
    path("customers/", include("customers.urls")),
    path("subscriptions/", include("subscriptions.urls")),
    path("invoices/", include("billing.urls")),
    path("billing/", include("billing.payments.urls")),
    path("margin/", include("commissions.urls")),
    path("", include("insights.urls")),
    path("", include("customers.urls_customer_side")),
    path("my/", include("subscriptions.urls_customer_side")),
    path("my/", include("billing.urls_customer_side")),
    path("my/", include("billing.payments.urls_customer_side")),
    path("i18n/setlang/", set_language, name="set_language"),
    path("accounts/login/", LoginView.as_view(), name="account_login"),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("statements/", include("commissions.statement_urls")),
    path("api/v1/", api_v1.urls),
    path("settings/api-keys/", include("api.urls")),
    path("settings/webhooks/", include("webhooks.urls")),
]

if settings.DEBUG and apps.is_installed("demo"):
    # The development outbox (demo.views): every email as its recipient sees it. Never in
    # production, which does not install the demo app: it shows other people's email to staff.
    urlpatterns.append(path("dev/", include("demo.urls")))
