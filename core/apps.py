from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class CoreConfig(AppConfig):
    default = True
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        # The sweeper queues again the emails whose task was lost (core.sweeper).
        from core import sweeper, tasks

        sweeper.sweep_register("emails", tasks.emails_sweep)


class PortalAdminConfig(admin_apps.AdminConfig):
    default = False
    default_site = "core.admin_site.PortalAdminSite"
