from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WebhooksConfig(AppConfig):
    """Signed notifications of the reseller's events to its own endpoints (Standard Webhooks)."""

    name = "webhooks"
    verbose_name = _("Webhooks")
