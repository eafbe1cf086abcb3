"""Loading config.settings.production in a child process, as a deployment would: the
variables production requires (throwaway values that connect nowhere), and a run with only
those, none of the caller's own."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION_ENV = {
    "DJANGO_SECRET_KEY": "x" * 60,
    "DJANGO_ALLOWED_HOSTS": "portal.example.com",
    "PORTAL_URL": "https://portal.example.com",
    "DATABASE_URL": "postgres://portal@db:5432/portal",
    "REDIS_URL": "redis://redis:6379/0",
    "GOOGLE_CLIENT_ID": "id.apps.googleusercontent.com",
    "GOOGLE_CLIENT_SECRET": "secret",
    "EMAIL_HOST": "smtp.example.com",
    # The seller on invoices: no demo defaults in production.
    "VENDOR_NAME": "Vendor Ltd",
    "VENDOR_ADDRESS": r"1 Quay\nDublin",
    "VENDOR_COUNTRY": "IE",
    "VENDOR_VAT_ID": "IE6388047V",
    "VENDOR_EMAIL": "billing@vendor.example",
    "VENDOR_BANK_IBAN": "IE29AIBK93115212345678",
    "VENDOR_BANK_BIC": "AIBKIE2D",
}

# What the caller's environment must not lend the child: every variable production reads.
_SETTINGS_PREFIXES = (
    "DJANGO_",
    "DATABASE_URL",
    "REDIS_",
    "CELERY_",
    "GOOGLE_",
    "EMAIL_",
    "VENDOR_",
    "PORTAL_URL",
)


def production_run(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `python -c code` from the project's directory with `env` as the only settings
    variables."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(_SETTINGS_PREFIXES)}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=False,
    )
