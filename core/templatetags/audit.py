"""Audit entries as the reader reads them (core.audit_format)."""

from typing import Any

from django import template

from core.audit_format import audit_object_label

register = template.Library()


@register.filter
def object_label(event: Any) -> str:
    """The audited object's name in the reader's language."""
    return audit_object_label(event)
