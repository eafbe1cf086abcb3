"""The demo app (demo data, the development outbox) is installed by the local and test settings
only: production neither installs nor imports it, and serves no /dev/outbox/."""

import json

from django.apps import apps
from django.conf import settings

from tests.support.production_settings import PRODUCTION_ENV, production_run

# Even with DEBUG turned on, the outbox is mounted only where the demo app is installed.
_PRODUCTION_APPS_AND_URLS = """
import json, os, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.production"
import django
from django.conf import settings
django.setup()
settings.DEBUG = True
from django.apps import apps
from django.core.management import get_commands
from django.urls import Resolver404, resolve
try:
    resolve("/dev/outbox/")
    outbox = True
except Resolver404:
    outbox = False
print(json.dumps({
    "installed": apps.is_installed("demo"),
    "apps": [config.name for config in apps.get_app_configs()],
    "outbox": outbox,
    "commands": sorted(name for name in get_commands() if name.startswith("demo")),
    "imported": sorted(name for name in sys.modules if name == "demo" or name.startswith("demo.")),
}))
"""


def test_production_installs_no_demo_app_and_serves_no_outbox():
    result = production_run(_PRODUCTION_APPS_AND_URLS, PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["installed"] is False
    assert "billing" in found["apps"] and "demo" not in found["apps"]
    assert found["outbox"] is False
    assert found["commands"] == []
    assert found["imported"] == []


def test_the_test_settings_install_the_demo_app():
    """What the demo tests rely on (as local.py does for `make demo`)."""
    assert apps.is_installed("demo")
    assert settings.INSTALLED_APPS[-1] == "demo"
