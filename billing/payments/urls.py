"""Payments: the reseller's card, who pays a subscription, the customer's consent link, and
Stripe's webhook endpoint (mounted at `billing/`)."""

from django.urls import path

from billing.payments import views

app_name = "payments"

urlpatterns = [
    path("card/", views.reseller_card, name="card"),
    path("card/change/", views.reseller_card_change, name="card_change"),
    path(
        "subscriptions/<pid:subscription_id>/payer/",
        views.subscription_payer,
        name="subscription_payer",
    ),
    path("card-consent/<str:token>/", views.card_consent, name="card_consent"),
    path("stripe/webhook/", views.stripe_webhook, name="stripe_webhook"),
]
