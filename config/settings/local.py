"""Trying it out on one machine: SQLite, tasks in-process, email to the console, local files."""

from typing import Any, cast

from .base import *

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="local-development-key-not-for-production")
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
# Demo data (demo_seed, demo_serve) and the development outbox: never installed in production.
INSTALLED_APPS = [*INSTALLED_APPS, "demo"]

# One line per email on the console (recipient, subject, links, attachment names), not the whole
# MIME message: the development outbox (/dev/outbox/) shows each email in full.
MAILERS = {"default": {"BACKEND": "core.mail.DemoConsoleBackend"}}

CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=True)
# Tasks run in-process here: a "Task ... succeeded" line and an "Invoice N PDF: stored" line for
# each would bury the console's email lines. Warnings and failures are still logged.
_loggers = cast(dict[str, Any], LOGGING["loggers"])
_loggers["celery.app.trace"] = {"level": "WARNING"}
_loggers["billing.rendering_tasks"] = {"level": "WARNING"}
ADMIN_REQUIRE_MFA = env.bool("ADMIN_REQUIRE_MFA", default=False)

DEVELOPMENT_SIGN_IN = DEBUG and not GOOGLE_CLIENT_ID
ACCOUNT_LOGIN_BY_CODE_ENABLED = DEVELOPMENT_SIGN_IN
