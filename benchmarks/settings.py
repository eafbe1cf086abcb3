"""Benchmark settings: production's request stack on the local machine.

What a production request pays is kept (DEBUG off, cached templates, the same middleware,
sessions in the database, the fail-soft Redis cache, persistent database connections); what
needs a real deployment is left out (HTTPS redirects, WhiteNoise, S3, SMTP). The URLconf adds one
minimal view, the yardstick, to the portal's own URLs.
"""

from config.settings.base import *  # noqa: F403
from config.settings.base import REDIS_URL, env

# The demo data loads the soak's stack (demo_seed); production does not install the app.
INSTALLED_APPS = [*INSTALLED_APPS, "demo"]  # noqa: F405

SECRET_KEY = "benchmark-only-key-never-used-for-anything-real-0123456789"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
ROOT_URLCONF = "benchmarks.urls"

DATABASES = {"default": env.db("DATABASE_URL")}
DATABASES["default"]["CONN_MAX_AGE"] = 60
CACHES = {"default": {"BACKEND": "core.cache.ResilientRedisCache", "LOCATION": REDIS_URL}}
SESSION_ENGINE = "django.contrib.sessions.backends.db"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}

# benchmarks.api delivers webhooks to a receiver on 127.0.0.1, which webhooks.transport refuses
# (SSRF) unless this is set; that run sets it in its environment, nothing else does.
WEBHOOK_ALLOW_PRIVATE_TARGETS = env.bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", default=False)
