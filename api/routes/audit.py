"""The reseller's audit log: who did what to which object, before and after, from where, and
through which API key (`via`), newest first with keyset cursors.

Owners and admins only. No role action names the audit log yet, so it is gated on
Action.API_KEYS_MANAGE: the roles that manage what acts for the whole team (keys, webhooks)
are the ones that read the team's log.
"""

import re
from datetime import date, datetime, time, timedelta
from typing import Any

from django import forms
from django.db.models import F, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from ninja import Query, Router, Schema

from api.auth import ApiRequest, KeyAuth
from api.models import Scope
from api.problems import invalid
from core.ids import PUBLIC_ID_PATTERN
from core.pagination import keyset_page
from resellers.models import AuditEvent
from resellers.roles import Action, require
from resellers.selectors import audit_list

router = Router(tags=["Audit events"])

AUDIT_PAGE_SIZE = 50
# Newest first; the primary key breaks ties among the events one request writes.
AUDIT_SORT = "-created"
# An action ("customer.invited") or a family of them ("customer." for every customer action).
_ACTION = re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+)*\.?")
_PUBLIC_ID = re.compile(PUBLIC_ID_PATTERN)


class AuditEventOut(Schema):
    actor_email: str
    action: str
    # The action in words, in the language of Accept-Language.
    action_label: str
    object_type: str
    object_id: str
    object_repr: str
    # The customer the event concerns, if any (its ID).
    customer_id: str
    before: Any
    after: Any
    ip: str | None
    # The name of the API key that made the change; "" for a change made on the pages.
    via: str
    created_at: datetime


class AuditPage(Schema):
    items: list[AuditEventOut]
    count: int
    next_cursor: str | None
    previous_cursor: str | None


class AuditFilters(Schema):
    actor: str = ""
    customer: str = ""
    action: str = ""
    date_from: str = ""
    date_to: str = ""
    cursor: str = ""


class AuditFilterForm(forms.Form):
    actor = forms.EmailField(required=False)
    customer = forms.CharField(required=False)
    action = forms.CharField(required=False, max_length=64)
    date_from = forms.DateField(required=False)
    date_to = forms.DateField(required=False)

    error_messages = {
        "customer": gettext_lazy("Enter a customer ID."),
        "action": gettext_lazy("Enter an action, such as customer.invited, or customer."),
    }

    def clean_customer(self) -> str:
        value = self.cleaned_data["customer"].strip()
        if value and not _PUBLIC_ID.fullmatch(value):
            raise forms.ValidationError(self.error_messages["customer"])
        return value

    def clean_action(self) -> str:
        value = self.cleaned_data["action"].strip()
        if value and not _ACTION.fullmatch(value):
            raise forms.ValidationError(self.error_messages["action"])
        return value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", _("The end of the range is before its start."))
        return cleaned


def _day_start(day: date) -> datetime:
    """Midnight at the start of `day` in the portal's time zone."""
    return timezone.make_aware(datetime.combine(day, time.min))


def audit_events_filtered(
    events: QuerySet[AuditEvent],
    *,
    actor: str = "",
    customer: str = "",
    action: str = "",
    date_from: date | None = None,
    date_to: date | None = None,
) -> QuerySet[AuditEvent]:
    """`events` by the actor's email, the customer's ID, the action (a trailing "." takes the
    whole family) and the days they happened on (both included, in the portal's time zone)."""
    if actor:
        events = events.filter(actor_email__iexact=actor)
    if customer:
        events = events.filter(customer_public_id=customer)
    if action.endswith("."):
        events = events.filter(action__startswith=action)
    elif action:
        events = events.filter(action=action)
    if date_from:
        events = events.filter(created_at__gte=_day_start(date_from))
    if date_to:
        events = events.filter(created_at__lt=_day_start(date_to + timedelta(days=1)))
    return events


def _row(event: AuditEvent) -> dict[str, Any]:
    return {
        "actor_email": event.actor_email,
        "action": event.action,
        "action_label": event.action_label,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "object_repr": event.object_repr,
        "customer_id": event.customer_public_id,
        "before": event.before,
        "after": event.after,
        "ip": event.ip,
        "via": event.via,
        "created_at": event.created_at,
    }


@router.get("/", response=AuditPage, auth=KeyAuth(Scope.READ), url_name="audit_event_list")
def audit_event_list(request: ApiRequest, filters: Query[AuditFilters]) -> Any:
    """The reseller's audit log, newest first, 50 a page: follow `next_cursor`. Filters:
    `actor` (an email address), `customer` (a customer's ID), `action` (as `customer.invited`,
    or `customer.` for every customer action), `date_from` and `date_to` (YYYY-MM-DD, both
    included). Owners and admins only."""
    require(request.membership.role, Action.API_KEYS_MANAGE)
    form = AuditFilterForm(filters.dict(exclude={"cursor"}))
    if not form.is_valid():
        return invalid(
            [
                {"field": "" if field == "__all__" else field, "message": str(message)}
                for field, messages in form.errors.items()
                for message in messages
            ]
        )
    events = audit_events_filtered(audit_list(reseller=request.reseller), **form.cleaned_data)
    page = keyset_page(
        events,
        keys=[F("created_at"), F("id")],
        descending=True,
        cursor=filters.cursor,
        size=AUDIT_PAGE_SIZE,
        sort=AUDIT_SORT,
    )
    return {
        "items": [_row(event) for event in page.object_list],
        "count": page.count,
        "next_cursor": page.next_cursor,
        "previous_cursor": page.previous_cursor,
    }
