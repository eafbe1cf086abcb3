"""Production: every secret comes from the environment and has no default."""

from .base import *

DEBUG = False
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
    "whitenoise.middleware.WhiteNoiseMiddleware",
)
SECRET_KEY = env("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
DATABASES = {"default": env.db("DATABASE_URL")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
REDIS_URL = env("REDIS_URL")
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default=REDIS_URL)
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
# Every link in every email starts with it: no default that would send people elsewhere.
PORTAL_URL = env("PORTAL_URL").rstrip("/")

# Google is the only way in for resellers and customers.
GOOGLE_CLIENT_ID = env("GOOGLE_CLIENT_ID")
GOOGLE_CLIENT_SECRET = env("GOOGLE_CLIENT_SECRET")
SOCIALACCOUNT_PROVIDERS["google"]["APPS"] = [
    {"client_id": GOOGLE_CLIENT_ID, "secret": GOOGLE_CLIENT_SECRET, "key": ""}
]

# Redis down or frozen degrades the site, it does not take it down: the cache misses and drops
# writes after a short timeout (core.cache), the rate limits say what they do then
# (core.ratelimit).
CACHES = {
    "default": {
        "BACKEND": "core.cache.ResilientRedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {"socket_connect_timeout": REDIS_TIMEOUT, "socket_timeout": REDIS_TIMEOUT},
    }
}
# Sessions live in PostgreSQL only, so signing in and every signed-in page work without Redis.
# Not cached_db: a sign-out during a Redis outage deletes the database row but cannot delete the
# cached copy, which would sign the session in again once Redis is back.
SESSION_ENGINE = "django.contrib.sessions.backends.db"

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_REFERRER_POLICY = "same-origin"

MAILERS = {
    "default": {
        "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "OPTIONS": {
            "host": env("EMAIL_HOST"),
            "port": env.int("EMAIL_PORT", default=587),
            "username": env("EMAIL_HOST_USER", default=""),
            "password": env("EMAIL_HOST_PASSWORD", default=""),
            "use_tls": env.bool("EMAIL_USE_TLS", default=True),
            # A send never outlasts its lease (EMAIL_SEND_LEASE), or the sweeper would hand
            # the email to another worker while the first one still waits for the server.
            "timeout": env.int("EMAIL_TIMEOUT", default=30),
        },
    }
}

STORAGES = {
    "default": (
        {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": env("AWS_STORAGE_BUCKET_NAME"),
                "endpoint_url": env("AWS_S3_ENDPOINT_URL", default=None),
                "default_acl": "private",
                "querystring_auth": True,
            },
        }
        if env.bool("USE_S3", default=False)
        else {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    ),
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# The seller on every invoice: no demo defaults here (base.py's are for development).
VENDOR_NAME = env("VENDOR_NAME")
VENDOR_ADDRESS = env("VENDOR_ADDRESS").replace(r"\n", "\n")
VENDOR_COUNTRY = env("VENDOR_COUNTRY").upper()
VENDOR_VAT_ID = env("VENDOR_VAT_ID")
VENDOR_EMAIL = env("VENDOR_EMAIL")
VENDOR_BANK_IBAN = env("VENDOR_BANK_IBAN")
VENDOR_BANK_BIC = env("VENDOR_BANK_BIC")
