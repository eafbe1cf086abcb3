"""Every action the code writes to the audit log has a label in the reader's language: the
Activity lists never show a raw code like "refund.owed"."""

import re
from pathlib import Path

from django.apps import apps as django_apps

from billing.models import Refund
from resellers.models import AUDIT_ACTION_LABELS

ROOT = Path(__file__).resolve().parents[2]
# The project's own apps (not Django's or the libraries'), as installed.
APPS = [
    config.name
    for config in django_apps.get_app_configs()
    if Path(config.path).resolve().is_relative_to(ROOT)
]


def test_every_audited_action_has_a_label():
    written = set()
    assert {"billing", "commissions"} <= set(APPS)
    for app in APPS:
        for path in (ROOT / app.replace(".", "/")).rglob("*.py"):
            written |= set(re.findall(r'action="([a-z_]+\.[a-z_]+)"', path.read_text()))
    # commissions.statements writes "statement.corrected" for a correction.
    written.add("statement.corrected")
    # billing.services.refund_record writes "refund.<status>" for the settled statuses.
    written |= {f"refund.{status}" for status in (Refund.Status.SUCCEEDED, Refund.Status.FAILED)}
    # The data migration of customers' countries writes this one.
    written.add("customer.country_defaulted")
    assert written - set(AUDIT_ACTION_LABELS) == set()
