from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    default = True
    name = "core"
    # The admin's heading for users and outgoing emails.
    verbose_name = _("Accounts and email")

    def ready(self) -> None:
        # The sweeper queues again the emails whose task was lost (core.sweeper); the admin's
        # "Background work" box shows them (core.selectors).
        from core import selectors, sweeper, tasks

        sweeper.sweep_register("emails", tasks.emails_sweep)
        sweeper.backlog_register(
            "emails", selectors.emails_backlog, queued_text=selectors.emails_queued_text
        )


class PortalAdminConfig(admin_apps.AdminConfig):
    default = False
    default_site = "core.admin_site.PortalAdminSite"
