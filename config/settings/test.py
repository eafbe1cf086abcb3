"""Tests: real PostgreSQL and Redis when reachable, SQLite otherwise.

REQUIRE_SERVICES=1 (set by CI) turns a missing service into an error instead.
"""

import os
import socket
from urllib.parse import urlsplit

from .base import *

SECRET_KEY = "test-secret-key-only-for-the-test-suite"
DEBUG = False
ALLOWED_HOSTS = ["*"]
# The demo app (demo data, the development outbox) is tested; production does not install it.
INSTALLED_APPS = [*INSTALLED_APPS, "demo"]
REQUIRE_SERVICES = env.bool("REQUIRE_SERVICES", default=False)


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 1
        ):
            return True
    except OSError:
        return False


DATABASE_URL = env("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/partner_portal")
POSTGRES_AVAILABLE = _reachable(DATABASE_URL, 5432)
REDIS_AVAILABLE = _reachable(REDIS_URL, 6379)
if REQUIRE_SERVICES and not (POSTGRES_AVAILABLE and REDIS_AVAILABLE):
    raise RuntimeError(
        f"REQUIRE_SERVICES=1 but PostgreSQL ({DATABASE_URL}: {POSTGRES_AVAILABLE}) "
        f"or Redis ({REDIS_URL}: {REDIS_AVAILABLE}) is not reachable"
    )
if POSTGRES_AVAILABLE:
    DATABASES = {"default": env.db_url_config(DATABASE_URL)}
    # A throwaway database: commits need not wait for the disk, and no query of a test is big
    # enough to gain from compiling (JIT compiles by cost estimates, which a test database
    # without statistics inflates).
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = (
        "-c synchronous_commit=off -c jit=off"
    )
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}

if REDIS_AVAILABLE:
    # The invitation quota lives in the cache; a prefix per test process keeps parallel runs apart.
    CACHES = {
        "default": {
            "BACKEND": "core.cache.ResilientRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": f"test-{os.getpid()}",
        }
    }

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
# The real-worker test runs Celery in another process: it reads the mail it sent from files.
TEST_EMAIL_FILE_PATH = env("TEST_EMAIL_FILE_PATH", default="")
if TEST_EMAIL_FILE_PATH:
    MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "OPTIONS": {"file_path": TEST_EMAIL_FILE_PATH},
        }
    }
CELERY_TASK_ALWAYS_EAGER = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
GOOGLE_CLIENT_ID = "test-client-id.apps.googleusercontent.com"
GOOGLE_CLIENT_SECRET = "test-client-secret"
SOCIALACCOUNT_PROVIDERS["google"]["APPS"] = [
    {"client_id": GOOGLE_CLIENT_ID, "secret": GOOGLE_CLIENT_SECRET, "key": ""}
]
ADMIN_REQUIRE_MFA = True
LANGUAGE_CODE = "en"
