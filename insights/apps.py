from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save
from django.utils.translation import gettext_lazy as _


class InsightsConfig(AppConfig):
    """What the reseller runs its business on: the dashboard, its daily snapshots, the
    reports. It only reads the apps below it (resellers, customers, subscriptions, billing,
    commissions); its one table is the snapshots it writes itself."""

    name = "insights"
    verbose_name = _("Insights")

    def ready(self) -> None:
        from billing.models import Invoice, Payment
        from core.admin_site import admin_page_register
        from insights import staff
        from resellers.models import AuditEvent
        from subscriptions.models import Subscription

        # The vendor's overview of every reseller, for staff (admin:vendor_overview).
        admin_page_register("overview/", staff.vendor_overview_page, name="vendor_overview")

        # The dashboard's figures are kept in the cache under the reseller's "insights"
        # version (core.versions): any saved subscription, invoice or payment moves it on, and
        # any audit event (the dashboard's recent activity).
        for model in (Subscription, Invoice, Payment, AuditEvent):
            post_save.connect(_changed, sender=model, dispatch_uid=f"insights-{model.__name__}")
            post_delete.connect(_changed, sender=model, dispatch_uid=f"insights-{model.__name__}")


def _changed(sender: type, instance: Any, **kwargs: Any) -> None:
    from billing.models import Invoice, Payment
    from insights.services import insights_changed
    from resellers.models import AuditEvent
    from subscriptions.models import Subscription

    reseller_id: int | None
    if isinstance(instance, Invoice | AuditEvent):
        reseller_id = instance.reseller_id
    elif isinstance(instance, Payment):
        reseller_id = (
            Invoice.objects.filter(pk=instance.invoice_id)
            .values_list("reseller_id", flat=True)
            .first()
        )
    elif isinstance(instance, Subscription):
        reseller_id = instance.customer.reseller_id
    else:
        return
    insights_changed(reseller_id=reseller_id)
