"""The reseller's audit log: who did what to which object, before and after, from where, and
through which API key (`via`), newest first with keyset cursors.

Owners and admins only (Action.AUDIT_VIEW).
"""

from datetime import date, datetime
from typing import Any

from ninja import Query, Router, Schema
from pydantic import Field

from api.auth import ApiRequest, KeyAuth
from api.models import Scope
from api.routes.examples import (
    CURSOR,
    CURSOR_DESCRIPTION,
    CUSTOMER_ID,
    SUBSCRIPTION_ID,
    example,
    examples,
)
from core.ids import PUBLIC_ID_PATTERN
from insights.audit import audit_log, audit_page, audit_period_check
from resellers.models import AuditEvent
from resellers.roles import Action, require

router = Router(tags=["Audit events"])

# Examples, for the docs and for schemathesis: a key named "PSA sync" adds 5 licences to Acme
# Iberia's subscription, and Ana invites a customer on the pages.
_STATE_BEFORE = {
    "status": "active",
    "suspension_reason": "",
    "plan_id": 2,
    "licences": 25,
    "period_start": "2026-12-01",
    "period_end": "2027-01-01",
    "term_end": "2027-11-01",
    "renewal_setting": "auto_renew",
    "renewal_licences": None,
    "scheduled_plan_id": None,
    "monthly_price": "3.20",
}
EVENT_EXAMPLES: list[dict[str, Any]] = [
    {
        "actor_email": "ana@nimbus.example",
        "action": "subscription.licences_added",
        "action_label": "Licences added",
        "object_type": "subscriptions.subscription",
        "object_id": SUBSCRIPTION_ID,
        "object_repr": "Acme Iberia — Shared Contacts for Gmail — Annual, paid monthly",
        "customer_id": CUSTOMER_ID,
        "before": {**_STATE_BEFORE, "order": None},
        "after": {**_STATE_BEFORE, "licences": 30, "order": "ORD-7KQ2M9XH", "amount": "12.90"},
        "ip": "203.0.113.24",
        "via": "PSA sync",
        "created_at": "2026-12-07T10:03:12Z",
    },
    {
        "actor_email": "ana@nimbus.example",
        "action": "customer.invited",
        "action_label": "Customer invited",
        "object_type": "customers.customer",
        "object_id": CUSTOMER_ID,
        "object_repr": "Acme Iberia",
        "customer_id": CUSTOMER_ID,
        "before": None,
        "after": {
            "organisation": "Acme Iberia",
            "domain": "acme-iberia.es",
            "contact_name": "Lucía Fernández",
            "contact_email": "lucia.fernandez@acme-iberia.es",
        },
        "ip": "198.51.100.7",
        "via": "",
        "created_at": "2026-11-02T10:14:31Z",
    },
]


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

    model_config = examples(*EVENT_EXAMPLES)


class AuditPage(Schema):
    items: list[AuditEventOut]
    count: int
    next_cursor: str | None
    previous_cursor: str | None

    model_config = examples(
        {
            "items": EVENT_EXAMPLES,
            "count": 2,
            "next_cursor": None,
            "previous_cursor": None,
        }
    )


class AuditFilters(Schema):
    actor: str = Field(
        "",
        max_length=254,
        pattern=r"^[^\x00]*$",
        description="The email address of whoever acted, in any case.",
        json_schema_extra=example("ana@nimbus.example"),
    )
    customer: str = Field(
        "",
        pattern=rf"^({PUBLIC_ID_PATTERN})?$",
        description="A customer's ID.",
        json_schema_extra=example(CUSTOMER_ID),
    )
    # An action ("customer.invited") or a family of them ("customer." for every customer action).
    action: str = Field(
        "",
        max_length=64,
        pattern=r"^([a-z0-9_]+(\.[a-z0-9_]+)*\.?)?$",
        description="An action (`customer.invited`), or a family of them with a trailing dot "
        "(`subscription.`).",
        json_schema_extra=example("subscription."),
    )
    date_from: date | None = Field(
        None,
        description="The first day, in the portal's time zone.",
        json_schema_extra=example("2026-12-01"),
    )
    date_to: date | None = Field(
        None,
        description="The last day, in the portal's time zone.",
        json_schema_extra=example("2026-12-31"),
    )
    cursor: str = Field(
        "",
        description=CURSOR_DESCRIPTION,
        json_schema_extra=example(CURSOR),
    )


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


@router.get(
    "/",
    response=AuditPage,
    auth=KeyAuth(Scope.READ),
    url_name="audit_event_list",
    summary="List audit events",
)
def audit_event_list(request: ApiRequest, filters: Query[AuditFilters]) -> Any:
    """The reseller's audit log, newest first, 50 a page: follow `next_cursor`. Filters:
    `actor` (the email address of whoever acted, in any case), `customer` (a customer's ID),
    `action` (as `customer.invited`, or `customer.` for every customer action), `date_from`
    and `date_to` (YYYY-MM-DD, both included, in the portal's time zone). Owners and admins
    only."""
    require(request.membership.role, Action.AUDIT_VIEW)
    audit_period_check(date_from=filters.date_from, date_to=filters.date_to)
    events = audit_log(reseller=request.reseller, **filters.dict(exclude={"cursor"}))
    page = audit_page(events=events, cursor=filters.cursor)
    return {
        "items": [_row(event) for event in page.object_list],
        "count": page.count,
        "next_cursor": page.next_cursor,
        "previous_cursor": page.previous_cursor,
    }
