"""The Celery application: tasks are Django tasks that can be queued on commit."""

import os
from typing import Any

from celery import Celery
from celery.signals import celeryd_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("partner_portal", task_cls="celery.contrib.django.task:DjangoTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@celeryd_init.connect
def _worker_waits_for_redis(conf: Any, **kwargs: Any) -> None:
    """The worker's broker connection has no socket timeout, only a connect timeout.

    A web process must give up on a frozen Redis within a second (the work waits in the
    database), but a worker has nothing better to do than wait: with a read timeout, the
    acknowledgements that time out while Redis is frozen leave kombu's consumer wedged after
    Redis thaws (it never fetches again until restarted; tests/system/test_faults.py)."""
    options = dict(conf.broker_transport_options or {})
    options.pop("socket_timeout", None)
    conf.broker_transport_options = options
