"""`make demo` in one process: apply pending migrations, load the demo data, serve, and list the
demo users once the server is up.

Starting Django costs seconds here (WeasyPrint and the Factur-X libraries load with the apps), so
`migrate`, `demo_seed` and `runserver` run as one command instead of three: a second `make demo`
with nothing to do starts Django twice (the reloader's parent and the child that serves) instead
of four times. The users' list comes last, below the emails the seed printed, and again after
each reload.
"""

import os
from typing import Any

from django.conf import settings
from django.contrib.staticfiles.management.commands.runserver import Command as RunserverCommand
from django.core.management import call_command
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse
from django.utils import autoreload

from demo.management.commands.demo_seed import demo_users_write


class Command(RunserverCommand):
    help = "Migrate if needed, load the demo data if missing, serve, and list the demo users."
    addr: str  # set by runserver's handle()

    def handle(self, *args: Any, **options: Any) -> None:
        # The reloader's child (and each restart of it) only serves: the parent, or the one
        # process of --noreload, has prepared the database.
        if os.environ.get(autoreload.DJANGO_AUTORELOAD_ENV) != "true":
            self._database_prepare()
        super().handle(*args, **options)

    def _database_prepare(self) -> None:
        executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
        if executor.migration_plan(executor.loader.graph.leaf_nodes()):
            call_command("migrate", interactive=False, stdout=self.stdout, stderr=self.stderr)
        call_command("demo_seed", users=False, stdout=self.stdout, stderr=self.stderr)

    def on_bind(self, server_port: int) -> None:
        super().on_bind(server_port)
        if settings.DEBUG:  # the outbox exists only then (config.urls)
            address = f"{self.protocol}://{self.addr}:{server_port}"
            self.stdout.write(
                f"Emails: one line each on this console, with their links (one-time links only "
                f"here); in full, as their recipients see them: {address}{reverse('dev_outbox')}"
            )
        demo_users_write(self.stdout)
