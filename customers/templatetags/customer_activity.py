"""How an audit entry about a customer reads: each changed field with its label, before → after
(core.audit_format, the one formatter of audit changes)."""

from django import template

from core.audit_format import Change, audit_changes
from resellers.models import AuditEvent

register = template.Library()


@register.filter
def changes(event: AuditEvent) -> list[Change]:
    """The fields an event changed, formatted for the reader."""
    return audit_changes(event)
