"""The customer side of subscriptions, read-only: mounted at `my/` beside customers' own
customer-side pages (customers does not import subscriptions)."""

from django.urls import path

from subscriptions.views import terms

app_name = "my_subscriptions"

urlpatterns = [
    path(
        "<pid:customer_id>/subscriptions/<pid:subscription_id>/",
        terms.my_subscription,
        name="detail",
    ),
]
