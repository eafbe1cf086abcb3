from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WebhooksConfig(AppConfig):
    """Signed notifications of the reseller's events to its own endpoints (Standard Webhooks)."""

    name = "webhooks"
    verbose_name = _("Webhooks")

    def ready(self) -> None:
        # The services below announce their changes (core.events); each becomes an outbox row
        # in the same transaction.
        from core import events, sweeper
        from webhooks import services, tasks

        events.event_listen(services.event_announced)
        # Every minute (the work sweep, Celery beat): the deliveries that are due, including
        # those whose on-commit task never reached Redis, and the invoices newly overdue.
        sweeper.sweep_register("webhooks", tasks.webhooks_sweep)
