"""Settings shared by every environment; environment files override what differs."""

from datetime import time
from pathlib import Path
from typing import Any

import environ
from celery.schedules import crontab
from django.utils.csp import CSP
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env("DJANGO_SECRET_KEY", default="")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    "core.apps.PortalAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_countries",
    "django_htmx",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.google",
    "allauth.mfa",
    "core",
    "resellers",
    "customers",
    "subscriptions",
    "billing",
    "commissions",
    "webhooks",
    "insights",
    "api",
    "ninja",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "core.middleware.PermissionsPolicyMiddleware",
    "core.middleware.ClientIpMiddleware",
    "api.middleware.ApiMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "resellers.middleware.ResellerMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "resellers.context_processors.tenant",
                "customers.context_processors.customer_side",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Covering indexes (Index(include=...)) are PostgreSQL's; SQLite, the demo's database, builds
# them without the included columns, which is all it needs.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

AUTH_USER_MODEL = "core.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"

# Internationalisation: the five languages of the product, catalogues under locale/. British
# English is English with British dates (Django's en_GB formats); it reads the English source,
# so it has no catalogue (core.languages).
LANGUAGE_CODE = "en"
LANGUAGES = [
    ("en", _("English")),
    ("en-gb", _("British English")),
    ("es", _("Spanish")),
    ("fr", _("French")),
    ("de", _("German")),
    ("nl", _("Dutch")),
]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_URL = "media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Email: rendered in the recipient's language, sent by a Celery task.
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Partner Portal <no-reply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
MAILERS: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.mail.backends.console.EmailBackend"}
}

# Content Security Policy through Django's own middleware: no inline script without the nonce.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "form-action": [CSP.SELF, "https://accounts.google.com"],
    "frame-ancestors": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "object-src": [CSP.NONE],
}
# Browser features pages may use (core.middleware.PermissionsPolicyMiddleware): none. Stripe
# Elements may ask for `payment` (the Payment Request API) when Stripe is on, below.
PERMISSIONS_POLICY: dict[str, list[str]] = {
    "accelerometer": [],
    "camera": [],
    "display-capture": [],
    "geolocation": [],
    "gyroscope": [],
    "magnetometer": [],
    "microphone": [],
    "midi": [],
    "payment": [],
    "usb": [],
}
# Payments: the Stripe gateway when all three keys are set, else the manual gateway (staff mark
# invoices paid; the PDF prints bank details). Stripe.js and its frames come from Stripe's own
# hosts, so the CSP (and the Permissions-Policy) allows them only when Stripe is on.
STRIPE_SECRET_KEY = env("STRIPE_SECRET_KEY", default="")
STRIPE_PUBLISHABLE_KEY = env("STRIPE_PUBLISHABLE_KEY", default="")
STRIPE_WEBHOOK_SECRET = env("STRIPE_WEBHOOK_SECRET", default="")
if STRIPE_SECRET_KEY and STRIPE_PUBLISHABLE_KEY and STRIPE_WEBHOOK_SECRET:
    SECURE_CSP["script-src"] = [CSP.SELF, CSP.NONCE, "https://js.stripe.com"]
    SECURE_CSP["frame-src"] = ["https://js.stripe.com", "https://hooks.stripe.com"]
    SECURE_CSP["connect-src"] = [CSP.SELF, "https://api.stripe.com"]
    PERMISSIONS_POLICY["payment"] = ["self", "https://js.stripe.com"]
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
CSRF_FAILURE_VIEW = "core.views.csrf_failure"

# django-allauth: resellers and customers sign in with Google; staff sign in with a password
# and a second factor, through the same login flow (the admin login redirects there).
SITE_ID = 1
ACCOUNT_ADAPTER = "core.adapters.AccountAdapter"
SOCIALACCOUNT_ADAPTER = "core.adapters.SocialAccountAdapter"
# Passwords are for staff only (core.adapters.AccountAdapter): a reset link for anyone else is
# invalid, and a reset request for anyone else or for an unknown address sends nothing (no
# "unknown account" email either: nobody signs up here, and the form is no way to mail anyone).
# The development sign-in's code request also signs up a never-seen invitee, and no one else
# (core.adapters.InviteeRequestLoginCodeForm).
ACCOUNT_FORMS = {
    "user_token": "core.adapters.StaffPasswordResetTokenForm",
    "request_login_code": "core.adapters.InviteeRequestLoginCodeForm",
}
ACCOUNT_EMAIL_UNKNOWN_ACCOUNTS = False
ACCOUNT_LOGIN_METHODS = {"email"}
# The password field keeps staff password sign-in working (allauth derives the login form from
# these); sign-up itself is closed by core.adapters.AccountAdapter.
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_SESSION_REMEMBER = None
SOCIALACCOUNT_AUTO_SIGNUP = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = True
SOCIALACCOUNT_LOGIN_ON_GET = False
SOCIALACCOUNT_STORE_TOKENS = False
GOOGLE_CLIENT_ID = env("GOOGLE_CLIENT_ID", default="")
GOOGLE_CLIENT_SECRET = env("GOOGLE_CLIENT_SECRET", default="")
SOCIALACCOUNT_PROVIDERS = {
    "google": {
        "SCOPE": ["openid", "profile", "email"],
        "AUTH_PARAMS": {"prompt": "select_account"},
        "OAUTH_PKCE_ENABLED": True,
        "APPS": (
            [{"client_id": GOOGLE_CLIENT_ID, "secret": GOOGLE_CLIENT_SECRET, "key": ""}]
            if GOOGLE_CLIENT_ID
            else []
        ),
    }
}
# The development sign-in (email + one-time code printed to the console) exists only when
# DEBUG is on and no Google client is configured; environment files recompute it.
DEVELOPMENT_SIGN_IN = False
ACCOUNT_LOGIN_BY_CODE_ENABLED = False
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
ADMIN_REQUIRE_MFA = env.bool("ADMIN_REQUIRE_MFA", default=True)

# Celery: JSON only, Redis broker; every countdown stays under the visibility timeout, or
# Redis would hand a delayed task to a second worker before the first one runs it.
REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
# Every Redis client (cache, broker, results, rate limits) connects and reads with this timeout
# in seconds, so a frozen Redis costs a second, not twenty; the cache (core.cache) then leaves
# Redis alone for REDIS_RETRY_AFTER seconds before it tries again.
REDIS_TIMEOUT = env.float("REDIS_TIMEOUT", default=1.0)
REDIS_RETRY_AFTER = env.float("REDIS_RETRY_AFTER", default=5.0)
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default=REDIS_URL)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 3600
CELERY_VISIBILITY_TIMEOUT = 3600
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    "socket_timeout": REDIS_TIMEOUT,
    "socket_connect_timeout": REDIS_TIMEOUT,
}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
CELERY_REDIS_SOCKET_TIMEOUT = REDIS_TIMEOUT
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = REDIS_TIMEOUT
# Redis down: an enqueue gives up at once (refused) or within three seconds (frozen: a timeout,
# one retry) instead of holding the request; the work it wakes up for is in the database, and
# core.sweeper queues it again.
CELERY_BROKER_CONNECTION_TIMEOUT = REDIS_TIMEOUT
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
# Nothing reads a task's result: the database holds what a task did.
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Reaches Redis again every second or two while it is away (config/worker.py).
CELERY_WORKER_CONSUMER = "config.worker:Consumer"
CELERY_TIMEZONE = "UTC"
# Recovery (core.sweeper): work queued this many seconds ago and still not done is queued
# again; an email a worker claimed for sending is handed back after its lease.
WORK_SWEEP_EVERY = env.int("WORK_SWEEP_EVERY", default=60)
WORK_REQUEUE_AFTER = env.int("WORK_REQUEUE_AFTER", default=120)
EMAIL_SEND_LEASE = env.int("EMAIL_SEND_LEASE", default=300)
# The daily billing run (UTC); the sweeper issues what its lost tasks left undone after it.
BILLING_RUN_AT = time(1, 0)
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    # Daily, in this order: start today's periods and terms, end trials, then remind.
    # Each job is idempotent, so a rerun (or a missed day caught up) is harmless.
    "subscriptions-renew": {
        "task": "subscriptions.tasks.subscriptions_renew",
        "schedule": crontab(hour=0, minute=5),
    },
    "subscriptions-expire-trials": {
        "task": "subscriptions.tasks.subscriptions_expire_trials",
        "schedule": crontab(hour=0, minute=15),
    },
    "subscriptions-send-reminders": {
        "task": "subscriptions.tasks.subscriptions_send_reminders",
        "schedule": crontab(hour=7, minute=0),
    },
    # A price increase applies from a period that starts 30 days after the customer is told:
    # announced daily, once per increase (a rerun finds it announced).
    "subscriptions-send-price-notices": {
        "task": "subscriptions.tasks.subscriptions_send_price_notices",
        "schedule": crontab(hour=7, minute=10),
    },
    # After the renewals have charged today's periods: one invoice per customer, payer and
    # currency from the charges not yet invoiced. A rerun issues nothing twice.
    "billing-run": {
        "task": "billing.tasks.billing_run_daily",
        "schedule": crontab(hour=BILLING_RUN_AT.hour, minute=BILLING_RUN_AT.minute),
    },
    # Failed card payments: retried on days 1, 3 and 5 after the first failure, then the
    # invoice's subscriptions are suspended.
    "payments-retry-due": {
        "task": "billing.payments.tasks.payments_retry_due",
        "schedule": crontab(hour=6, minute=0),
    },
    # The database holds all pending work; the broker only carries wake-ups. Every minute the
    # sweeper (core.sweeper) queues again whatever is overdue: emails pending or stuck sending,
    # documents without their PDF, payment attempts, refunds and webhook events unsettled.
    "work-sweep": {
        "task": "core.tasks.work_sweep",
        "schedule": WORK_SWEEP_EVERY,
    },
    # The dashboard's history (insights.services): today's figures again every hour, and the
    # days before closed; a first run replays up to two years from the audit log.
    "insights-snapshots": {
        "task": "insights.tasks.snapshots_take_hourly",
        "schedule": crontab(minute=55),
    },
    # On the 1st, after the night's billing: last month's commission statements, one per
    # reseller and currency with paid invoices. Idempotent: a rerun issues nothing twice.
    "commission-statements": {
        "task": "commissions.tasks.statements_issue_monthly",
        "schedule": crontab(day_of_month=1, hour=3, minute=0),
    },
}

# The product.
PORTAL_NAME = env("PORTAL_NAME", default="Partner Portal")
# Absolute address of the portal, for links in emails.
PORTAL_URL = env("PORTAL_URL", default="http://127.0.0.1:8000").rstrip("/")
VENDOR_NAME = env("VENDOR_NAME", default="Example Software Ltd")
# The seller on every invoice and credit note (snapshotted when a document is issued). The
# defaults are the demo's; set the real ones in production (.env.example).
VENDOR_ADDRESS = env("VENDOR_ADDRESS", default=r"1 Example Quay\nDublin D02 X285").replace(
    r"\n", "\n"
)
VENDOR_COUNTRY = env("VENDOR_COUNTRY", default="IE").upper()  # ISO 3166: where VAT is domestic
VENDOR_VAT_ID = env("VENDOR_VAT_ID", default="IE6388047V")
VENDOR_EMAIL = env("VENDOR_EMAIL", default="billing@example.com")
VENDOR_BANK_IBAN = env("VENDOR_BANK_IBAN", default="IE29AIBK93115212345678")
VENDOR_BANK_BIC = env("VENDOR_BANK_BIC", default="AIBKIE2D")
INVOICE_PAYMENT_TERMS_DAYS = env.int("INVOICE_PAYMENT_TERMS_DAYS", default=14)
INVITATION_VALID_DAYS = env.int("INVITATION_VALID_DAYS", default=14)
TRANSFER_TOKEN_VALID_DAYS = 14
# Emails and tokens sent on a user's behalf, per hour, for the whole reseller (or customer) and
# for one person (core/ratelimit.py). Invitations are team and customer invitations, resends
# included; resends also count against their own, lower limit.
INVITATIONS_PER_HOUR = env.int("INVITATIONS_PER_HOUR", default=100)
INVITATIONS_PER_HOUR_PER_USER = env.int("INVITATIONS_PER_HOUR_PER_USER", default=30)
INVITATION_RESENDS_PER_HOUR = env.int("INVITATION_RESENDS_PER_HOUR", default=30)
INVITATION_RESENDS_PER_HOUR_PER_USER = env.int("INVITATION_RESENDS_PER_HOUR_PER_USER", default=10)
CARD_CONSENTS_PER_HOUR = env.int("CARD_CONSENTS_PER_HOUR", default=30)
CARD_CONSENTS_PER_HOUR_PER_USER = env.int("CARD_CONSENTS_PER_HOUR_PER_USER", default=10)
# Transfer tokens are made by the customer: per customer and per person.
TRANSFER_TOKENS_PER_HOUR = env.int("TRANSFER_TOKENS_PER_HOUR", default=10)
TRANSFER_TOKENS_PER_HOUR_PER_USER = env.int("TRANSFER_TOKENS_PER_HOUR_PER_USER", default=5)
SUPPORTED_CURRENCIES = ["EUR", "USD", "GBP"]
# Reverse proxies in front of the web processes (their X-Forwarded-For entries are trusted).
NUM_PROXIES = env.int("NUM_PROXIES", default=0)

# One-time tokens are redacted from log messages (config/log_redaction.py). A filter on a logger
# sees only that logger's own records, so each logger that writes request paths or template
# contexts has it, and so does the console handler for every other record.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"tokens": {"()": "config.log_redaction.TokenRedactingFilter"}},
    "formatters": {
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        }
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["tokens"]},
        "django.server": {
            "class": "logging.StreamHandler",
            "formatter": "django.server",
            "filters": ["tokens"],
        },
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.request": {"filters": ["tokens"]},
        "django.security.csrf": {"filters": ["tokens"]},
        "django.template": {"filters": ["tokens"]},
        # As Django's default (runserver's request lines), with tokens redacted.
        "django.server": {
            "handlers": ["django.server"],
            "level": "INFO",
            "propagate": False,
            "filters": ["tokens"],
        },
        # WeasyPrint narrates every rendering step at INFO; Stripe's library logs each request.
        "weasyprint.progress": {"level": "WARNING"},
        "weasyprint": {"level": "WARNING"},
        "stripe": {"level": "WARNING"},
        "factur-x": {"level": "WARNING"},
        "facturx": {"level": "WARNING"},
    },
}

# The REST API (api/): requests each key may make per window (seconds), published in its docs.
API_RATE_LIMIT = env.int("API_RATE_LIMIT", default=600)
API_RATE_WINDOW = env.int("API_RATE_WINDOW", default=60)
# Webhook deliveries to private, loopback or link-local addresses are refused (SSRF), except
# with DEBUG; this allows them without DEBUG (a vendor whose receivers are on its own network).
WEBHOOK_ALLOW_PRIVATE_TARGETS = env.bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", default=False)
