"""Subscriptions (after Google's Reseller API): list, get, buy, change licences, change plan,
renewal settings, cancel, suspend and reactivate, and the order preview (the exact amount before
ordering). The pages' forms check the input, the pages' selectors find the objects through the
key's reseller, and the same services do the work and check the role.

Every change takes an `Idempotency-Key` header:

- buying and changing licences make an order, and the services already make one order of one
  key (Order.key, under a row lock): the header becomes the order's key, scoped to the
  reseller, so a retry, or 20 requests at once, with the same header is one order and answers
  with it;
- the other changes keep what they answered for a day (Django's cache, Redis), and a request
  with the same header while the first is running waits for its answer. A request that failed
  changed nothing (each service is one transaction) and is not kept: it may be sent again with
  the same header.

A licence change says which count it was made from, `expected_licences` in the body or
`If-Match` with the `ETag` that GET /subscriptions/{id} answers (the subscription's id, licence
count and latest ledger row): if someone changed the licences meanwhile, the answer is a 409
with the current count and nothing is ordered.
"""

import hashlib
import inspect
import json
import time
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db.models import F, QuerySet
from django.http import HttpResponse, JsonResponse
from django.utils.http import parse_etags
from django.utils.translation import gettext as _
from ninja import Field, Header, Query, Router, Schema, Status
from ninja.params.functions import Path

from api.auth import ApiRequest, KeyAuth
from api.models import Scope
from api.problems import PROBLEM_TYPE, form_invalid, invalid, problem
from api.routes.examples import (
    CURSOR,
    CURSOR_DESCRIPTION,
    CUSTOMER_ID,
    CUSTOMER_REF,
    SUBSCRIPTION_ID,
    eur,
    example,
    examples,
)
from api.schemas import Money, money
from core.pagination import keyset_page
from customers import selectors as customer_selectors
from customers.models import Customer
from customers.selectors import VISIBLE_STATUSES
from resellers.models import Reseller
from resellers.roles import Action, require, role_can
from subscriptions import pricing, selectors, services
from subscriptions.forms import BuyForm, LicenceForm
from subscriptions.forms_terms import ChangePlanForm, RenewalForm
from subscriptions.models import Order, Plan, Subscription
from subscriptions.periods import money_round, period_price

router = Router(tags=["Subscriptions"])

PAGE_SIZE = 50
PAGE_SIZE_MAX = 100
# How long the answer to a change without an order is kept for its Idempotency-Key.
IDEMPOTENCY_SECONDS = 24 * 60 * 60
# How long a request waits for another one with the same Idempotency-Key to finish; how long
# the mark that one is running outlives a request that died without removing it.
IDEMPOTENCY_WAIT_SECONDS = 10.0
IDEMPOTENCY_LOCK_SECONDS = 60
IDEMPOTENCY_KEY_MAX_LENGTH = 255
IDEMPOTENCY_HEADER = "Idempotency-Key"

StatusName = Literal["trial", "active", "suspended", "cancelled"]
PlanKind = Literal["flexible", "annual_monthly", "annual_yearly", "trial"]
PayerName = Literal["reseller_card", "customer_card"]
RenewalName = Literal["auto_renew", "renew_with_count", "cancel_at_term_end"]


# Examples, for the docs and for schemathesis: Acme Iberia's subscription to Shared Contacts on
# the annual plan paid monthly, 25 licences at 3.20 EUR, growing to 30 on 7 December.


PRODUCT_EXAMPLE: dict[str, Any] = {
    "id": "pS2cN6hG9jF3kA1q",
    "name": "Shared Contacts for Gmail",
    "sku": "shared-contacts",
}
PLAN_EXAMPLES: dict[str, dict[str, Any]] = {
    kind: {"id": plan_id, "kind": kind, "product": PRODUCT_EXAMPLE, "max_licences": limit}
    for kind, plan_id, limit in (
        ("flexible", "pF3nW8kZ1rT6yH0a", 10000),
        ("annual_monthly", "aM5tQ9vB2xK7cL4e", 10000),
        ("annual_yearly", "aY8gJ3sD6uP1wN9r", 10000),
        ("trial", "tR4lE7oI0zV2bX5m", 10),
    )
}
PLANS_ON_SALE_EXAMPLE: list[dict[str, Any]] = [
    {**PLAN_EXAMPLES["flexible"], "list_price": eur("4.00")},
    {**PLAN_EXAMPLES["annual_monthly"], "list_price": eur("3.20")},
    {**PLAN_EXAMPLES["annual_yearly"], "list_price": eur("3.00")},
    {**PLAN_EXAMPLES["trial"], "list_price": None},
]
ROW_EXAMPLE: dict[str, Any] = {
    "id": SUBSCRIPTION_ID,
    "customer": CUSTOMER_REF,
    "plan": PLAN_EXAMPLES["annual_monthly"],
    "status": "active",
    "suspension_reason": None,
    "licences": 25,
    "monthly_price": eur("3.20"),
    "period_price": eur("3.20"),
    "amount_per_period": eur("80.00"),
    "period": {"start": "2026-12-01", "end": "2027-01-01"},
    "term": {"start": "2026-11-01", "end": "2027-11-01"},
    "renewal": {"setting": "auto_renew", "licences": None},
    "scheduled_plan": None,
    "payer": "reseller_card",
    "created_at": "2026-11-01T09:12:44Z",
}
DETAIL_EXAMPLE: dict[str, Any] = {
    **ROW_EXAMPLE,
    "upcoming_price": {
        "monthly_price": eur("3.40"),
        "applies_from": "2027-01-01",
        "announced": True,
    },
    "cost": eur("2.56"),
    "margin": eur("0.64"),
}
FLEXIBLE_EXAMPLE: dict[str, Any] = {
    **DETAIL_EXAMPLE,
    "id": "Lw3nQ8rT1vY6bK0s",
    "plan": PLAN_EXAMPLES["flexible"],
    "licences": 10,
    "monthly_price": eur("4.00"),
    "period_price": eur("4.00"),
    "amount_per_period": eur("40.00"),
    "period": {"start": "2026-12-07", "end": "2027-01-07"},
    "term": None,
    "upcoming_price": None,
    "cost": eur("3.20"),
    "margin": eur("0.80"),
    "created_at": "2026-12-07T11:30:02Z",
}
GROWN_EXAMPLE: dict[str, Any] = {
    **DETAIL_EXAMPLE,
    "licences": 30,
    "amount_per_period": eur("96.00"),
}
ORDER_EXAMPLES: list[dict[str, Any]] = [
    {
        "id": "oD9fK2wP5yB8nT3v",
        "reference": "ORD-7KQ2M9XH",
        "kind": "add",
        "licences_before": 25,
        "licences_after": 30,
        "amount": eur("12.90"),
        "created_at": "2026-12-07T10:03:12Z",
        "subscription": GROWN_EXAMPLE,
    },
    {
        "id": "Ec5hU0jM3pW8zR1g",
        "reference": "ORD-4TNB8R2C",
        "kind": "purchase",
        "licences_before": 0,
        "licences_after": 10,
        "amount": eur("40.00"),
        "created_at": "2026-12-07T11:30:02Z",
        "subscription": FLEXIBLE_EXAMPLE,
    },
]
QUOTE_EXAMPLES: list[dict[str, Any]] = [
    {
        "current_licences": 25,
        "new_licences": 30,
        "period": {"start": "2026-12-01", "end": "2027-01-01"},
        "remaining_days": 25,
        "unit_period_price": eur("3.20"),
        "due_now": eur("12.90"),
        "recurring_amount": eur("96.00"),
        "recurring_months": 1,
        "cost_now": eur("10.32"),
        "margin_now": eur("2.58"),
        "recurring_cost": eur("76.80"),
        "recurring_margin": eur("19.20"),
    },
    {
        "current_licences": 0,
        "new_licences": 10,
        "period": {"start": "2026-12-07", "end": "2027-01-07"},
        "remaining_days": 31,
        "unit_period_price": eur("4.00"),
        "due_now": eur("40.00"),
        "recurring_amount": eur("40.00"),
        "recurring_months": 1,
        "cost_now": None,
        "margin_now": None,
        "recurring_cost": None,
        "recurring_margin": None,
    },
]
ETAG_EXAMPLE = '"2d711642b726b04401627ca9fbac32f5"'


SubscriptionId = Annotated[str, Path(description="The subscription's id.", example=SUBSCRIPTION_ID)]


# Schemas


class ProductOut(Schema):
    id: str
    name: str
    sku: str

    model_config = examples(PRODUCT_EXAMPLE)


class PlanOut(Schema):
    id: str
    kind: PlanKind
    product: ProductOut
    max_licences: int

    model_config = examples(PLAN_EXAMPLES["annual_monthly"])


class PlanOnSale(PlanOut):
    list_price: Money | None = Field(
        description="Per licence per month in the reseller's currency; null for a trial. A "
        "customer may pay another price: the preview gives the exact amount."
    )

    model_config = examples(*PLANS_ON_SALE_EXAMPLE)


class CustomerRef(Schema):
    id: str
    organisation: str

    model_config = examples(ROW_EXAMPLE["customer"])


class PeriodOut(Schema):
    start: date
    end: date = Field(description="The first day after it (the next period starts then).")

    model_config = examples(ROW_EXAMPLE["period"])


class RenewalOut(Schema):
    setting: RenewalName
    licences: int | None = Field(description="With renew_with_count: the count at renewal.")

    model_config = examples(ROW_EXAMPLE["renewal"], {"setting": "renew_with_count", "licences": 20})


class SubscriptionRow(Schema):
    id: str
    customer: CustomerRef
    plan: PlanOut
    status: StatusName
    suspension_reason: Literal["pending_payment", "reseller_initiated", "trial_ended"] | None
    licences: int
    monthly_price: Money = Field(description="Per licence per month, for the current period.")
    period_price: Money = Field(description="Per licence per billing period (a year or a month).")
    amount_per_period: Money
    period: PeriodOut
    term: PeriodOut | None = Field(description="The 12-month commitment of an annual plan.")
    renewal: RenewalOut
    scheduled_plan: PlanOut | None = Field(description="Changes to it at the end of the term.")
    payer: PayerName
    created_at: datetime

    model_config = examples(ROW_EXAMPLE)


class UpcomingPriceOut(Schema):
    monthly_price: Money
    applies_from: date
    announced: bool

    model_config = examples(DETAIL_EXAMPLE["upcoming_price"])


class SubscriptionOut(SubscriptionRow):
    upcoming_price: UpcomingPriceOut | None
    cost: Money | None = Field(
        description="The reseller's cost per licence per month for the current period; only "
        "for keys whose member's role sees margins."
    )
    margin: Money | None = Field(description="monthly_price - cost; as cost.")

    model_config = examples(DETAIL_EXAMPLE, {**DETAIL_EXAMPLE, "cost": None, "margin": None})


class SubscriptionPage(Schema):
    items: list[SubscriptionRow]
    count: int
    next_cursor: str | None
    previous_cursor: str | None

    model_config = examples(
        {
            "items": [
                {key: FLEXIBLE_EXAMPLE[key] for key in ROW_EXAMPLE},
                ROW_EXAMPLE,
            ],
            "count": 2,
            "next_cursor": None,
            "previous_cursor": None,
        }
    )


class OrderOut(Schema):
    id: str
    reference: str
    kind: Literal["purchase", "add", "remove"]
    licences_before: int
    licences_after: int
    amount: Money = Field(description="Charged for this order.")
    created_at: datetime
    subscription: SubscriptionOut

    model_config = examples(*ORDER_EXAMPLES)


class QuoteOut(Schema):
    current_licences: int
    new_licences: int
    period: PeriodOut
    remaining_days: int
    unit_period_price: Money = Field(description="One licence for the whole current period.")
    due_now: Money = Field(description="What the order charges.")
    recurring_amount: Money = Field(description="Per period from the next one on.")
    recurring_months: int
    cost_now: Money | None = Field(description="Only for roles that see margins, as below.")
    margin_now: Money | None
    recurring_cost: Money | None
    recurring_margin: Money | None

    model_config = examples(*QUOTE_EXAMPLES)


class ListFilters(Schema):
    customer: str = Field(
        "", description="A customer's id.", json_schema_extra=example(CUSTOMER_ID)
    )
    status: StatusName | None = Field(None, json_schema_extra=example("active"))
    product: str = Field(
        "",
        description="A product's id.",
        json_schema_extra=example(PRODUCT_EXAMPLE["id"]),
    )
    cursor: str = Field(
        "",
        description=CURSOR_DESCRIPTION,
        json_schema_extra=example(CURSOR),
    )
    limit: int = Field(PAGE_SIZE, ge=1, le=PAGE_SIZE_MAX, json_schema_extra=example(50))


class PurchasePreviewQuery(Schema):
    customer: str = Field(
        description="The customer's id; it must be active.",
        json_schema_extra=example(CUSTOMER_ID),
    )
    plan: str = Field(
        description="A plan's id (GET /subscriptions/plans).",
        json_schema_extra=example(PLAN_EXAMPLES["flexible"]["id"]),
    )
    licences: int = Field(json_schema_extra=example(10))


class LicencePreviewQuery(Schema):
    licences: int = Field(description="The new total.", json_schema_extra=example(30))


class BuyIn(Schema):
    customer: str = Field(description="The customer's id; it must be active.")
    plan: str = Field(description="A plan's id (GET /subscriptions/plans).")
    licences: int
    payer: PayerName = "reseller_card"

    model_config = examples(
        {
            "customer": CUSTOMER_ID,
            "plan": PLAN_EXAMPLES["flexible"]["id"],
            "licences": 10,
            "payer": "reseller_card",
        }
    )


class LicencesIn(Schema):
    licences: int = Field(description="The new total.")
    expected_licences: int | None = Field(
        None,
        description="The count the change was made from; or send If-Match with the ETag.",
    )

    model_config = examples({"licences": 30, "expected_licences": 25}, {"licences": 30})


class PlanIn(Schema):
    plan: str = Field(description="The id of a plan of the same product.")

    model_config = examples({"plan": PLAN_EXAMPLES["annual_yearly"]["id"]})


class RenewalIn(Schema):
    setting: RenewalName
    renewal_licences: int | None = Field(None, description="Needed with renew_with_count.")

    model_config = examples(
        {"setting": "renew_with_count", "renewal_licences": 20},
        {"setting": "auto_renew"},
    )


# The 409s the changes answer besides the common problems (api.v1), as problem details.
CONFLICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "licences": {"type": "integer", "description": "The current count (a stale change)."},
    },
}


def _conflict(description: str, example: dict[str, Any]) -> dict[str, Any]:
    return {
        "responses": {
            409: {
                "description": description,
                "content": {PROBLEM_TYPE: {"schema": CONFLICT_SCHEMA, "example": example}},
            }
        }
    }


STALE = _conflict(
    "The licences changed since the count or ETag the change was made from: nothing was "
    "ordered; `licences` is the current count and `ETag` the current tag.",
    {
        "type": "about:blank",
        "title": "The subscription was changed meanwhile.",
        "status": 409,
        "detail": "Someone changed the number of licences to 27 while this page was open. "
        "Check the new count and order again.",
        "licences": 27,
    },
)
IN_PROGRESS = _conflict(
    "A request with the same Idempotency-Key is still running: send it again after "
    "`Retry-After` seconds to get its answer.",
    {
        "type": "about:blank",
        "title": "A request with this Idempotency-Key is still being processed.",
        "status": 409,
        "detail": "Send it again in a moment: it will then be answered as the first one was.",
    },
)

# The headers the changes answer with, for the docs.
ETAG_HEADER = {
    "ETag": {
        "description": "The licence state's tag after the change: send it as `If-Match` with "
        "the next licence change.",
        "schema": {"type": "string"},
        "example": ETAG_EXAMPLE,
    }
}
REPLAYED_HEADER = {
    "Idempotent-Replayed": {
        "description": "`true` when this is the answer to an earlier request with the same "
        "Idempotency-Key, sent again; absent on the first.",
        "schema": {"type": "string", "enum": ["true"]},
        "example": "true",
    }
}
LOCATION_HEADER = {
    "Location": {
        "description": "The new subscription (GET it for its ETag).",
        "schema": {"type": "string"},
        "example": f"/api/v1/subscriptions/{ORDER_EXAMPLES[1]['subscription']['id']}",
    }
}


def _extra(*parts: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI additions `parts`, merged (a later one's keys into an earlier one's)."""
    merged: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = _extra(merged[key], value)
            else:
                merged[key] = value
    return merged


def _answer_headers(status: int, *headers: dict[str, Any]) -> dict[str, Any]:
    return {"responses": {status: {"headers": _extra(*headers)}}}


IDEMPOTENCY_KEY_DESCRIPTION = (
    "A value of your own, unique to this change (a UUID, say), at most "
    f"{IDEMPOTENCY_KEY_MAX_LENGTH} characters. The same value again answers as the first "
    "request did and changes nothing again."
)
IDEMPOTENCY_KEY_EXAMPLE = "7d0c2f5e-3b1a-4c9e-8f26-5a4e9d1b6c03"


def _idempotency_key() -> Any:
    """The Idempotency-Key header parameter, as each change declares it."""
    return Header(
        ...,
        alias=IDEMPOTENCY_HEADER,
        description=IDEMPOTENCY_KEY_DESCRIPTION,
        example=IDEMPOTENCY_KEY_EXAMPLE,
    )


# What every change without an order (plan, renewal, cancel, suspend, reactivate) answers to a
# repeated Idempotency-Key (_change), added to each one's description in the docs.
CHANGE_WITHOUT_ORDER_DOC = (
    "`Idempotency-Key` (required): the same key again within a day answers what the first\n"
    "request answered, with `Idempotent-Replayed: true`, and changes nothing again. While the\n"
    "first is still running, a request with the same key waits for its answer, up to 10\n"
    "seconds, then gets a 409 with `Retry-After`. The key with another request (another\n"
    "subscription or change) is a 422. A refused request changes nothing and keeps nothing:\n"
    "it may be sent again with the same key."
)


def _change_without_order(view: Callable[..., Any]) -> Callable[..., Any]:
    """Under the route's decorator (ninja reads the docstring when the route is declared)."""
    view.__doc__ = f"{inspect.cleandoc(view.__doc__ or '')}\n\n{CHANGE_WITHOUT_ORDER_DOC}"
    return view


CHANGE_EXTRA = _extra(IN_PROGRESS, _answer_headers(200, ETAG_HEADER, REPLAYED_HEADER))


# Answers


def _plan(plan: Plan) -> dict[str, Any]:
    product = plan.product
    return {
        "id": plan.public_id,
        "kind": plan.kind,
        "product": {"id": product.public_id, "name": product.name, "sku": product.sku},
        "max_licences": plan.licence_limit,
    }


def _period(start: date | None, end: date | None) -> dict[str, date] | None:
    return None if start is None or end is None else {"start": start, "end": end}


def _row(subscription: Subscription) -> dict[str, Any]:
    plan, currency = subscription.plan, subscription.currency
    unit = period_price(monthly_price=subscription.monthly_price, months=plan.months_per_period)
    return {
        "id": subscription.public_id,
        "customer": {
            "id": subscription.customer.public_id,
            "organisation": subscription.customer.organisation,
        },
        "plan": _plan(plan),
        "status": subscription.status,
        "suspension_reason": subscription.suspension_reason or None,
        "licences": subscription.licences,
        "monthly_price": money(subscription.monthly_price, currency),
        "period_price": money(unit, currency),
        "amount_per_period": money(money_round(subscription.licences * unit), currency),
        "period": _period(subscription.period_start, subscription.period_end),
        "term": _period(subscription.term_start, subscription.term_end),
        "renewal": {
            "setting": subscription.renewal_setting,
            "licences": subscription.renewal_licences,
        },
        "scheduled_plan": (
            _plan(subscription.scheduled_plan) if subscription.scheduled_plan else None
        ),
        "payer": subscription.payer,
        "created_at": subscription.created_at,
    }


def _detail(subscription: Subscription, role: str) -> dict[str, Any]:
    """As the Plans and terms page shows it; the reseller's cost and margin as the order pages
    show them, to the roles that see them."""
    currency = subscription.currency
    upcoming = pricing.upcoming_price(subscription=subscription)
    cost = margin = None
    if role_can(role, Action.MARGIN_VIEW):
        quote = pricing.current_period_quote(subscription=subscription)
        cost, margin = money(quote.cost, currency), money(quote.margin, currency)
    return {
        **_row(subscription),
        "upcoming_price": None
        if upcoming is None
        else {
            "monthly_price": money(upcoming.monthly_price, upcoming.currency),
            "applies_from": upcoming.applies_from,
            "announced": upcoming.announced,
        },
        "cost": cost,
        "margin": margin,
    }


def _order(order: Order, role: str) -> dict[str, Any]:
    return {
        "id": order.public_id,
        "reference": order.reference,
        "kind": order.kind,
        "licences_before": order.licences_before,
        "licences_after": order.licences_after,
        "amount": money(order.amount, order.currency),
        "created_at": order.created_at,
        "subscription": _detail(order.subscription, role),
    }


def _quote(quote: services.LicenceQuote, role: str) -> dict[str, Any]:
    currency = quote.currency
    sees_margin = role_can(role, Action.MARGIN_VIEW)

    def reseller_side(amount: Decimal) -> dict[str, str] | None:
        return money(amount, currency) if sees_margin else None

    return {
        "current_licences": quote.current_count,
        "new_licences": quote.new_count,
        "period": _period(quote.period.start, quote.period.end),
        "remaining_days": quote.remaining_days,
        "unit_period_price": money(quote.unit_period_price, currency),
        "due_now": money(quote.due_now, currency),
        "recurring_amount": money(quote.recurring_amount, currency),
        "recurring_months": quote.recurring_months,
        "cost_now": reseller_side(quote.cost_now),
        "margin_now": reseller_side(quote.margin_now),
        "recurring_cost": reseller_side(quote.recurring_cost),
        "recurring_margin": reseller_side(quote.recurring_margin),
    }


def etag(subscription: Subscription) -> str:
    """The licence state's ETag: the subscription, its count and its latest ledger row (so a
    count changed and changed back is a change too)."""
    version = subscription.licence_changes.order_by("-id").values_list("id", flat=True).first() or 0
    text = f"{subscription.public_id}:{subscription.licences}:{version}"
    return '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'


def _stale(subscription: Subscription, error: ValidationError) -> HttpResponse:
    """409: the licences changed since the count (or ETag) the change was made from; the
    service's message gives the current count, as does the `licences` member."""
    subscription.refresh_from_db(fields=["licences"])
    response = problem(
        409,
        _("The subscription was changed meanwhile."),
        " ".join(error.message_dict["licences"]),
        headers={"ETag": etag(subscription)},
    )
    return _with(response, licences=subscription.licences)


def _with(response: HttpResponse, **members: object) -> HttpResponse:
    """A problem answer with extension members (RFC 9457 §3.2)."""
    body = json.loads(response.content)
    body.update(members)
    extended = JsonResponse(body, status=response.status_code, content_type=PROBLEM_TYPE)
    for name, value in response.items():
        if name.lower() not in ("content-type", "content-length"):
            extended[name] = value
    return extended


def _error_code(error: ValidationError, field: str | None = None) -> str | None:
    if field is None:
        return getattr(error, "code", None)
    errors = getattr(error, "error_dict", {}).get(field, [])
    return errors[0].code if errors else None


# Idempotency


def _key_checked(idempotency_key: str) -> HttpResponse | None:
    if not idempotency_key.strip() or len(idempotency_key) > IDEMPOTENCY_KEY_MAX_LENGTH:
        return invalid(
            [
                {
                    "field": IDEMPOTENCY_HEADER,
                    "message": _("Send a unique value of at most %(limit)d characters.")
                    % {"limit": IDEMPOTENCY_KEY_MAX_LENGTH},
                }
            ]
        )
    return None


def _key_digest(reseller: Reseller, idempotency_key: str) -> str:
    return hashlib.sha256(f"{reseller.public_id}\n{idempotency_key}".encode()).hexdigest()


def order_key(reseller: Reseller, idempotency_key: str) -> str:
    """The order key an Idempotency-Key stands for: the reseller's own (two resellers may
    send the same header), 64 characters (services.ORDER_KEY_MAX_LENGTH), never one a page
    makes (services.order_key_new: 32)."""
    return _key_digest(reseller, idempotency_key)[: services.ORDER_KEY_MAX_LENGTH]


def idempotency_record(reseller: Reseller, idempotency_key: str) -> str:
    """Where the answer to a change without an order is kept (and `:running` beside it
    while it runs)."""
    return "api:idempotency:" + _key_digest(reseller, idempotency_key)


def _key_reused() -> HttpResponse:
    return invalid(
        [
            {
                "field": IDEMPOTENCY_HEADER,
                "message": _(
                    "This Idempotency-Key was already used for another request. Send a new one."
                ),
            }
        ]
    )


def _in_progress() -> HttpResponse:
    return problem(
        409,
        _("A request with this Idempotency-Key is still being processed."),
        _("Send it again in a moment: it will then be answered as the first one was."),
        headers={"Retry-After": "1"},
    )


# Reads


def _subscriptions(reseller: Reseller) -> QuerySet[Subscription]:
    """The reseller's subscriptions as selectors.subscription_get finds them: through its own
    customers, not those that left it."""
    return Subscription.objects.filter(
        customer__reseller=reseller, customer__status__in=VISIBLE_STATUSES
    ).select_related("customer", "plan__product", "scheduled_plan__product")


@router.get(
    "/plans",
    response=list[PlanOnSale],
    auth=KeyAuth(Scope.READ),
    url_name="plan_list",
    summary="List the plans on sale",
    openapi_extra={
        "responses": {200: {"content": {"application/json": {"example": PLANS_ON_SALE_EXAMPLE}}}}
    },
)
def plan_list(request: ApiRequest) -> list[dict[str, Any]]:
    """The plans on sale, as the Buy page offers them, with their list price in the
    reseller's currency."""
    require(request.membership.role, Action.CUSTOMER_VIEW)
    currency = request.reseller.currency
    plans = []
    for plan in selectors.plan_list_for_purchase(currency=currency):
        prices = getattr(plan, "price_list", [])  # the one price in `currency`
        plans.append(
            {
                **_plan(plan),
                "list_price": (
                    money(prices[0].monthly_price, currency)
                    if prices and not plan.is_trial
                    else None
                ),
            }
        )
    return plans


@router.get(
    "/preview",
    response=QuoteOut,
    auth=KeyAuth(Scope.READ),
    url_name="subscription_preview",
    summary="Preview a purchase",
)
def subscription_preview(
    request: ApiRequest, filters: Query[PurchasePreviewQuery]
) -> dict[str, Any] | HttpResponse:
    """What buying `licences` on `plan` for `customer` costs, as POST /subscriptions charges
    it today: the first period in full at the customer's price (a trial is free), and per
    period from the next one."""
    membership = request.membership
    require(membership.role, Action.SUBSCRIPTION_BUY)
    reseller = membership.reseller
    customer = customer_selectors.customer_get(reseller=reseller, public_id=filters.customer)
    refused = _not_sellable(customer)
    if refused is not None:
        return refused
    form = BuyForm(
        {**filters.dict(), "payer": "reseller_card", "key": "preview"},
        plans=selectors.plan_list_for_purchase(currency=reseller.currency),
        currency=reseller.currency,
    )
    if not form.is_valid():
        return form_invalid(form)
    quote = services.subscription_preview_purchase(
        customer=customer,
        plan=form.cleaned_data["plan"],
        licences=form.cleaned_data["licences"],
        currency=reseller.currency,
    )
    return _quote(quote, membership.role)


def _not_sellable(customer: Customer) -> HttpResponse | None:
    """The Buy page's refusal, before any price: licences are bought for active customers."""
    if customer.status == Customer.Status.ACTIVE:
        return None
    if customer.status == Customer.Status.INVITED:
        message = _(
            "%(organisation)s has not accepted the invitation yet. Licences can be bought "
            "for it once it has."
        ) % {"organisation": customer.organisation}
    else:
        message = _("Licences cannot be bought for a customer whose status is %(status)s.") % {
            "status": customer.get_status_display()
        }
    return invalid([{"field": "customer", "message": message}])


@router.get(
    "/",
    response=SubscriptionPage,
    auth=KeyAuth(Scope.READ),
    url_name="subscription_list",
    summary="List subscriptions",
)
def subscription_list(request: ApiRequest, filters: Query[ListFilters]) -> dict[str, Any]:
    """The reseller's subscriptions, newest first, `limit` at a time (at most 100): follow
    `next_cursor`. Filter by `customer` id, `status` or `product` id."""
    require(request.membership.role, Action.CUSTOMER_VIEW)
    subscriptions = _subscriptions(request.reseller)
    if filters.customer:
        subscriptions = subscriptions.filter(customer__public_id=filters.customer)
    if filters.status:
        subscriptions = subscriptions.filter(status=filters.status)
    if filters.product:
        subscriptions = subscriptions.filter(product__public_id=filters.product)
    page = keyset_page(
        subscriptions,
        keys=[F("created_at"), F("id")],
        descending=True,
        cursor=filters.cursor,
        size=filters.limit,
        sort="-created",
    )
    return {
        "items": [_row(subscription) for subscription in page.object_list],
        "count": page.count,
        "next_cursor": page.next_cursor,
        "previous_cursor": page.previous_cursor,
    }


@router.get(
    "/{pid:subscription_id}",
    response=SubscriptionOut,
    auth=KeyAuth(Scope.READ),
    url_name="subscription_get",
    summary="Get a subscription",
    openapi_extra=_answer_headers(200, ETAG_HEADER),
)
def subscription_get(
    request: ApiRequest, subscription_id: SubscriptionId, response: HttpResponse
) -> dict[str, Any]:
    """Plans and terms: plan, price per licence, licences, period, term, renewal, payer, and
    a price change to come (`upcoming_price`). `cost` and `margin` are there only for a key
    whose member's role sees margins (null otherwise).

    The answer's `ETag` header tags the licence state (the count and its latest change): send
    it as `If-Match` with POST /subscriptions/{subscription_id}/licences, so that a change made
    from a stale read is a 409 rather than an order."""
    require(request.membership.role, Action.CUSTOMER_VIEW)
    subscription = selectors.subscription_get(reseller=request.reseller, public_id=subscription_id)
    response["ETag"] = etag(subscription)
    return _detail(subscription, request.membership.role)


@router.get(
    "/{pid:subscription_id}/licences/preview",
    response=QuoteOut,
    auth=KeyAuth(Scope.READ),
    url_name="subscription_licences_preview",
    summary="Preview a licence change",
)
def subscription_licences_preview(
    request: ApiRequest, subscription_id: SubscriptionId, filters: Query[LicencePreviewQuery]
) -> dict[str, Any]:
    """What changing the count to `licences` costs, as the change charges it today: the added
    licences for the rest of the current period, and per period from the next one."""
    membership = request.membership
    require(membership.role, Action.LICENCES_ADD)
    subscription = selectors.subscription_get(reseller=request.reseller, public_id=subscription_id)
    quote = services.subscription_preview_licences(
        subscription=subscription, new_count=filters.licences
    )
    if quote.change < 0:
        require(membership.role, Action.LICENCES_REMOVE)
    return _quote(quote, membership.role)


# Changes


@router.post(
    "/",
    response={201: OrderOut},
    auth=KeyAuth(Scope.SUBSCRIPTIONS_WRITE),
    url_name="subscription_buy",
    summary="Buy a subscription",
    openapi_extra=_answer_headers(201, LOCATION_HEADER, REPLAYED_HEADER),
)
def subscription_buy(
    request: ApiRequest,
    payload: BuyIn,
    response: HttpResponse,
    idempotency_key: str = _idempotency_key(),
) -> HttpResponse | Status[dict[str, Any]]:
    """Buy a subscription for an active customer: the first period is charged in full (GET
    /subscriptions/preview gives the amount first). The answer is the order, with the new
    subscription in it and its address in `Location`.

    `Idempotency-Key` (required) becomes the order's key: the same key again, sent after the
    first or at the same time as it, makes no second order and answers 201 with the first
    one, with `Idempotent-Replayed: true`. A key already used for another request is a 422:
    send a new one. A refused request orders nothing and may be sent again with its key."""
    refused = _key_checked(idempotency_key)
    if refused is not None:
        return refused
    membership = request.membership
    reseller = membership.reseller
    customer = customer_selectors.customer_get(reseller=reseller, public_id=payload.customer)
    key = order_key(reseller, idempotency_key)
    form = BuyForm(
        {**payload.dict(), "key": key},
        plans=selectors.plan_list_for_purchase(currency=reseller.currency),
        currency=reseller.currency,
    )
    if not form.is_valid():
        return form_invalid(form)
    replayed = Order.objects.filter(key=key).exists()
    try:
        order = services.subscription_buy(
            membership=membership,
            customer=customer,
            plan=form.cleaned_data["plan"],
            licences=form.cleaned_data["licences"],
            payer=form.cleaned_data["payer"],
            order_key=key,
        )
    except ValidationError as error:
        if _error_code(error) == "key":
            return _key_reused()
        raise
    response["Location"] = f"{request.path.rstrip('/')}/{order.subscription.public_id}"
    if replayed:
        response["Idempotent-Replayed"] = "true"
    return Status(201, _order(order, membership.role))


@router.post(
    "/{pid:subscription_id}/licences",
    response=OrderOut,
    auth=KeyAuth(Scope.SUBSCRIPTIONS_WRITE),
    url_name="subscription_licences",
    summary="Change the number of licences",
    openapi_extra=_extra(STALE, _answer_headers(200, ETAG_HEADER, REPLAYED_HEADER)),
)
def subscription_licences(
    request: ApiRequest,
    subscription_id: SubscriptionId,
    payload: LicencesIn,
    response: HttpResponse,
    idempotency_key: str = _idempotency_key(),
    if_match: str = Header(
        "",
        alias="If-Match",
        description="The ETag of GET /subscriptions/{subscription_id} the change was made from "
        "(or `*`: any), instead of `expected_licences`.",
        example=ETAG_EXAMPLE,
    ),
) -> HttpResponse | dict[str, Any]:
    """Set the licence count to `licences`. Adding charges the rest of the current period
    (prorated, as GET /subscriptions/{subscription_id}/licences/preview says); removing
    (flexible plans and trials) takes effect at once with no credit. The answer is the order,
    with the changed subscription, and its new `ETag`.

    Say which count the change is made from: `expected_licences` in the body, or `If-Match`
    with the `ETag` of GET /subscriptions/{subscription_id} (`*` matches any); without
    either, a 422. If the licences changed since (someone else's change), the answer is a 409
    problem with the current count in `licences` and the current `ETag`, and nothing is
    ordered: read again, then decide.

    `Idempotency-Key` (required) becomes the order's key: the same key again (a retry, or 20
    requests at once) is one order, and each answers with it, with `Idempotent-Replayed:
    true`, even one whose `If-Match` went stale through that very order. A key already used
    for another request is a 422."""
    refused = _key_checked(idempotency_key)
    if refused is not None:
        return refused
    membership = request.membership
    subscription = selectors.subscription_get(reseller=request.reseller, public_id=subscription_id)
    expected = payload.expected_licences
    stale_tag = False
    if if_match:
        tags = parse_etags(if_match)
        if tags != ["*"] and etag(subscription) not in tags:
            stale_tag = True
        elif expected is None:
            # Matched now: the service checks the count again under its lock.
            expected = subscription.licences
    if expected is None and not stale_tag:
        return invalid(
            [
                {
                    "field": "expected_licences",
                    "message": _(
                        "Send the number of licences the change is made from, or If-Match "
                        "with the subscription's ETag."
                    ),
                }
            ]
        )
    key = order_key(request.reseller, idempotency_key)
    form = LicenceForm(
        {
            "licences": payload.licences,
            # A stale ETag: no count matches, so only a repeat of an order already made (the
            # service looks for the key first) gets through.
            "expected": 0 if stale_tag else expected,
            "key": key,
        }
    )
    if not form.is_valid():
        return form_invalid(form, {"expected": "expected_licences", "key": IDEMPOTENCY_HEADER})
    replayed = Order.objects.filter(key=key).exists()
    try:
        order = services.subscription_change_licences(
            membership=membership,
            subscription=subscription,
            new_count=form.cleaned_data["licences"],
            expected_count=-1 if stale_tag else form.cleaned_data["expected"],
            order_key=key,
        )
    except ValidationError as error:
        if _error_code(error) == "key":
            return _key_reused()
        if _error_code(error, "licences") == "stale":
            return _stale(subscription, error)
        raise
    response["ETag"] = etag(order.subscription)
    if replayed:
        response["Idempotent-Replayed"] = "true"
    return _order(order, membership.role)


def _change(
    request: ApiRequest,
    subscription_id: str,
    idempotency_key: str,
    response: HttpResponse,
    change: Callable[[Subscription], Subscription | HttpResponse],
) -> dict[str, Any] | HttpResponse:
    """A change without an order, made once per reseller and Idempotency-Key: the same key
    again answers what the first request answered. `change` answers the changed subscription,
    or a refusal of the input (nothing changed, nothing kept for the key)."""
    subscription = selectors.subscription_get(reseller=request.reseller, public_id=subscription_id)
    refused = _key_checked(idempotency_key)
    if refused is not None:
        return refused
    record = idempotency_record(request.reseller, idempotency_key)
    fingerprint = f"{request.method} {request.path}"

    def replay() -> dict[str, Any] | HttpResponse | None:
        kept = cache.get(record)
        if kept is None:
            return None
        if kept["request"] != fingerprint:
            return _key_reused()
        response["ETag"] = kept["etag"]
        response["Idempotent-Replayed"] = "true"
        body: dict[str, Any] = kept["body"]
        return body

    answer = replay()
    if answer is not None:
        return answer
    # One request per key at a time; the others wait for its answer. (With Redis away, add()
    # answers True and each runs: the service's row lock then refuses the repeats.)
    lock = record + ":running"
    deadline = time.monotonic() + IDEMPOTENCY_WAIT_SECONDS
    while not cache.add(lock, 1, IDEMPOTENCY_LOCK_SECONDS):
        if time.monotonic() > deadline:
            return _in_progress()
        time.sleep(0.05)
        answer = replay()
        if answer is not None:
            return answer
    try:
        answer = replay()  # finished between our look and our lock
        if answer is not None:
            return answer
        changed = change(subscription)
        if isinstance(changed, HttpResponse):
            return changed
        # JSON-ready, as it will be answered again.
        body = SubscriptionOut.model_validate(_detail(changed, request.membership.role))
        answered: dict[str, Any] = body.model_dump(mode="json")
        tag = etag(changed)
        cache.set(
            record, {"request": fingerprint, "body": answered, "etag": tag}, IDEMPOTENCY_SECONDS
        )
    finally:
        cache.delete(lock)
    response["ETag"] = tag
    return answered


@router.post(
    "/{pid:subscription_id}/plan",
    response=SubscriptionOut,
    auth=KeyAuth(Scope.SUBSCRIPTIONS_WRITE),
    url_name="subscription_change_plan",
    summary="Change plan",
    openapi_extra=CHANGE_EXTRA,
)
@_change_without_order
def subscription_change_plan(
    request: ApiRequest,
    subscription_id: SubscriptionId,
    payload: PlanIn,
    response: HttpResponse,
    idempotency_key: str = _idempotency_key(),
) -> dict[str, Any] | HttpResponse:
    """Change plan. A trial → a paid plan starts paid service today (its first period
    charged); flexible → annual applies at once, the term counting from the current period's
    start; annual → flexible is scheduled for the end of the term (`scheduled_plan`). The
    answer is the subscription."""

    def change(subscription: Subscription) -> Subscription | HttpResponse:
        form = ChangePlanForm(payload.dict(), subscription=subscription)
        if not form.is_valid():
            return form_invalid(form)
        return services.subscription_change_plan(
            membership=request.membership, subscription=subscription, plan=form.cleaned_data["plan"]
        )

    return _change(request, subscription_id, idempotency_key, response, change)


@router.put(
    "/{pid:subscription_id}/renewal",
    response=SubscriptionOut,
    auth=KeyAuth(Scope.SUBSCRIPTIONS_WRITE),
    url_name="subscription_renewal",
    summary="Set what happens at renewal",
    openapi_extra=CHANGE_EXTRA,
)
@_change_without_order
def subscription_renewal(
    request: ApiRequest,
    subscription_id: SubscriptionId,
    payload: RenewalIn,
    response: HttpResponse,
    idempotency_key: str = _idempotency_key(),
) -> dict[str, Any] | HttpResponse:
    """What happens at the end of an annual plan's term: auto_renew, renew_with_count (with
    `renewal_licences`) or cancel_at_term_end. The answer is the subscription."""

    def change(subscription: Subscription) -> Subscription | HttpResponse:
        count = payload.renewal_licences
        form = RenewalForm(
            {"setting": payload.setting, "renewal_licences": "" if count is None else str(count)}
        )
        if not form.is_valid():
            return form_invalid(form)
        return services.subscription_set_renewal(
            membership=request.membership,
            subscription=subscription,
            setting=form.cleaned_data["setting"],
            licences=form.cleaned_data["renewal_licences"],
        )

    return _change(request, subscription_id, idempotency_key, response, change)


@router.post(
    "/{pid:subscription_id}/cancel",
    response=SubscriptionOut,
    auth=KeyAuth(Scope.SUBSCRIPTIONS_WRITE),
    url_name="subscription_cancel",
    summary="Cancel a subscription",
    openapi_extra=CHANGE_EXTRA,
)
@_change_without_order
def subscription_cancel(
    request: ApiRequest,
    subscription_id: SubscriptionId,
    response: HttpResponse,
    idempotency_key: str = _idempotency_key(),
) -> dict[str, Any] | HttpResponse:
    """Cancel: a flexible plan or a trial ends at once (no credit); an annual plan at the end
    of its term (its renewal setting becomes cancel_at_term_end). The answer is the
    subscription."""
    return _change(
        request,
        subscription_id,
        idempotency_key,
        response,
        lambda subscription: services.subscription_cancel(
            membership=request.membership, subscription=subscription
        ),
    )


@router.post(
    "/{pid:subscription_id}/suspend",
    response=SubscriptionOut,
    auth=KeyAuth(Scope.SUBSCRIPTIONS_WRITE),
    url_name="subscription_suspend",
    summary="Suspend a subscription",
    openapi_extra=CHANGE_EXTRA,
)
@_change_without_order
def subscription_suspend(
    request: ApiRequest,
    subscription_id: SubscriptionId,
    response: HttpResponse,
    idempotency_key: str = _idempotency_key(),
) -> dict[str, Any] | HttpResponse:
    """Suspend an active subscription or a running trial: its users lose access until it is
    reactivated. The answer is the subscription (`status` suspended, `suspension_reason`
    reseller_initiated)."""
    return _change(
        request,
        subscription_id,
        idempotency_key,
        response,
        lambda subscription: services.subscription_suspend(
            membership=request.membership, subscription=subscription
        ),
    )


@router.post(
    "/{pid:subscription_id}/reactivate",
    response=SubscriptionOut,
    auth=KeyAuth(Scope.SUBSCRIPTIONS_WRITE),
    url_name="subscription_reactivate",
    summary="Reactivate a subscription",
    openapi_extra=CHANGE_EXTRA,
)
@_change_without_order
def subscription_reactivate(
    request: ApiRequest,
    subscription_id: SubscriptionId,
    response: HttpResponse,
    idempotency_key: str = _idempotency_key(),
) -> dict[str, Any] | HttpResponse:
    """Reactivate a subscription the reseller suspended (one suspended for an unpaid invoice
    is reactivated when it is paid). The answer is the subscription."""
    return _change(
        request,
        subscription_id,
        idempotency_key,
        response,
        lambda subscription: services.subscription_reactivate(
            membership=request.membership, subscription=subscription
        ),
    )
