"""Trying it out on one machine: SQLite, tasks in-process, email to the console, local files."""

from .base import *

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="local-development-key-not-for-production")
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

# One line per email on the console (recipient, subject, links, attachment names), not the whole
# MIME message: the development outbox (/dev/outbox/) shows each email in full.
MAILERS = {"default": {"BACKEND": "core.mail.DemoConsoleBackend"}}

CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=True)
ADMIN_REQUIRE_MFA = env.bool("ADMIN_REQUIRE_MFA", default=False)

DEVELOPMENT_SIGN_IN = DEBUG and not GOOGLE_CLIENT_ID
ACCOUNT_LOGIN_BY_CODE_ENABLED = DEVELOPMENT_SIGN_IN
