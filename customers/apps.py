from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save
from django.utils.translation import gettext_lazy as _


class CustomersConfig(AppConfig):
    name = "customers"
    verbose_name = _("Customers")

    def ready(self) -> None:
        from customers.list_version import customer_saved_or_deleted
        from customers.models import Customer

        # The Customers page's totals are kept per version of the list (customers.list_version).
        post_save.connect(customer_saved_or_deleted, sender=Customer, dispatch_uid="list_version")
        post_delete.connect(customer_saved_or_deleted, sender=Customer, dispatch_uid="list_version")
