"""Settings of the processes the fault tests start (tests/support/fault_stack.py: the Celery worker
and gunicorn): the test settings, with what several processes must share and what the web must do as
in production.

- Files in a directory (FAULT_MEDIA_ROOT), not the test settings' in-memory storage: the worker
  process that renders a PDF is not the one that attaches it to the email, nor the one started
  after a kill.
- Tasks queued for real (the test settings run them in-process).
- The cache and the sessions of production: a signed-in page must answer while Redis is down.
"""

from config.settings.test import *  # noqa: F403
from config.settings.test import REDIS_TIMEOUT, REDIS_URL, STORAGES, env

STORAGES = {
    **STORAGES,
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": env("FAULT_MEDIA_ROOT")},
    },
}
CELERY_TASK_ALWAYS_EAGER = False
# As config/settings/production.py has them.
CACHES = {
    "default": {
        "BACKEND": "core.cache.ResilientRedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {"socket_connect_timeout": REDIS_TIMEOUT, "socket_timeout": REDIS_TIMEOUT},
    }
}
SESSION_ENGINE = "django.contrib.sessions.backends.db"
