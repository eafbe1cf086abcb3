from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ApiConfig(AppConfig):
    """The reseller's REST API (/api/v1/): the pages' services, called with API keys."""

    name = "api"
    verbose_name = _("API")
