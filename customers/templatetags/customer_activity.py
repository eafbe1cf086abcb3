"""How an audit entry about a customer reads: each changed field with its label, before → after."""

from typing import Any

from django import template
from django.core.exceptions import FieldDoesNotExist
from django.utils.translation import gettext_lazy as _

from customers.models import Customer
from resellers.models import AuditEvent

register = template.Library()

# Audit keys that are not customer fields.
OTHER_LABELS = {
    "email": _("sent to"),
    "to_reseller": _("for reseller"),
    "via": _("through"),
    "transfer_tokens_withdrawn": _("transfer tokens withdrawn"),
}
VIA = {"token": _("a transfer token"), "staff": _("vendor staff")}
# Kept for the record, not worth a line on the page.
HIDDEN = {"to_reseller_id", "previous"}


def _label_and_display(field_name: str, value: Any) -> tuple[str, str]:
    try:
        field = Customer._meta.get_field(field_name)
    except FieldDoesNotExist:
        if field_name == "via":
            value = VIA.get(value, value)
        label = str(OTHER_LABELS.get(field_name, field_name.replace("_", " ")))
        return label, "" if value is None else str(value)
    label = str(getattr(field, "verbose_name", field_name))
    choices = dict(getattr(field, "flatchoices", None) or ())
    if value in choices:
        return label, str(choices[value])
    if value is True or value is False:
        return label, "✓" if value else "✗"
    return label, "" if value in (None, "") else str(value)


@register.filter
def changes(event: AuditEvent) -> list[tuple[str, str, str]]:
    """(field label, before, after) for the fields an event changed. A creation lists what it
    set only when that is short (a new customer's full record is on its page already)."""
    before = event.before or {}
    after = event.after or {}
    if not before and len(after) > 3:
        return []
    rows = []
    for name in [*before, *(key for key in after if key not in before)]:
        if name in HIDDEN:
            continue
        label, old = _label_and_display(name, before.get(name))
        _, new = _label_and_display(name, after.get(name))
        if old != new:
            rows.append((label, old, new))
    return rows
