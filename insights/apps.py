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


def _cached(instance: Any, field: str) -> Any:
    """The related object `field` of `instance` if it is loaded already (no query), else None."""
    return instance._state.fields_cache.get(field)


def _changed(sender: type, instance: Any, **kwargs: Any) -> None:
    from billing.models import Invoice, Payment
    from insights.services import insights_changed
    from resellers.models import AuditEvent
    from subscriptions.models import Subscription

    owner: Any = instance  # the object holding the reseller
    if isinstance(instance, Payment):
        owner = _cached(instance, "invoice")
        if owner is None:
            reseller_id = (
                Invoice.objects.filter(pk=instance.invoice_id)
                .values_list("reseller_id", flat=True)
                .first()
            )
            insights_changed(reseller_id=reseller_id)
            return
    elif isinstance(instance, Subscription):
        owner = instance.customer
    elif not isinstance(instance, Invoice | AuditEvent):
        return
    reseller = _cached(owner, "reseller")
    insights_changed(
        reseller_id=owner.reseller_id,
        reseller_public_id=reseller.public_id if reseller is not None else None,
    )
