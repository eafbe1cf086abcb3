from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CommissionsConfig(AppConfig):
    """The reseller's earnings: margins on its customers' invoices and commission statements."""

    name = "commissions"
    verbose_name = _("Commissions")
