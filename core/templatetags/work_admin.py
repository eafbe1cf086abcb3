"""The admin index's "Background work" box (templates/admin/index.html)."""

from datetime import datetime, timedelta

from django import template
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.timesince import timesince
from django.utils.translation import gettext

from core import selectors

register = template.Library()


@register.simple_tag
def work_backlog() -> list[selectors.BacklogLine]:
    return selectors.work_backlog(now=timezone.now())


@register.filter
def work_age(oldest: datetime | None) -> str:
    """Within a day "12 minutes ago", after that the date and time; nothing when none waits."""
    if oldest is None:
        return ""
    if timezone.now() - oldest < timedelta(days=1):
        return gettext("%(age)s ago") % {"age": timesince(oldest, depth=1)}
    return date_format(timezone.localtime(oldest), "SHORT_DATETIME_FORMAT")
