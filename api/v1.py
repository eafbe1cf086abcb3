"""The reseller's REST API, version 1 (/api/v1/): django-ninja over the pages' own services and
selectors, so every rule lives in one place. The OpenAPI 3.1 schema is generated from the
routes (/api/v1/openapi.json); the interactive docs are ninja's Swagger UI, served from static
files under the portal's CSP (/api/v1/docs)."""

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja.errors import AuthenticationError
from ninja.errors import ValidationError as SchemaValidationError

from api.auth import RateLimitExceeded, ScopeMissing
from api.openapi import ProblemNinjaAPI
from api.problems import field_errors, invalid, not_found, problem
from api.routes.audit import router as audit_router
from api.routes.billing import router as billing_router
from api.routes.customers import router as customers_router
from api.routes.subscriptions import router as subscriptions_router
from core.ratelimit import RateLimited
from webhooks.models import EventType

DESCRIPTION = f"""
Everything the reseller pages do, for scripts: the same rules, the same roles, the same audit log.

## Keys and scopes
Owners and admins make API keys in **Settings → API keys**. Send one as
`Authorization: Bearer ppk_…`. A key acts with the role of the member who made it, never more,
and stops working when it is revoked, when it expires, or when that member leaves the team or
changes role (then: 401). Each operation names the scope it needs (403 without it):
`read` (customers, subscriptions, the audit log), `customers:write`, `subscriptions:write`,
`billing:read` (invoices and credit notes). Every change made with a key is audited with the
key's name.

## Errors
Errors are RFC 9457 problem details (`application/problem+json`): `title`, `status`,
`detail`, and for bad input `errors`, a list of `{{"field", "message"}}`. Messages follow
`Accept-Language` (en, es, fr, de, nl). Another reseller's object is a 404 with exactly the
body of a missing one.

## Changes, retries and conflicts
Every change takes an `Idempotency-Key` header: sending the same request again with the same
key returns the first answer instead of ordering twice. A licence change names the count it
starts from (`expected_licences`, or `If-Match` with the subscription's `ETag`); if the count
has changed since, the answer is **409** with the current count. Lists return `items` and
`next_cursor`: pass it as `cursor` for the next page.

## Webhooks
Owners and admins register endpoints in **Settings → Webhooks** (https; the signing secret,
`whsec_…`, is shown once) and choose their events:
{", ".join(f"`{event}`" for event in EventType.values)}.
Each delivery is a POST of `{{"type", "timestamp", "data"}}` signed with the
[Standard Webhooks](https://www.standardwebhooks.com/) scheme (`webhook-id`,
`webhook-timestamp`, `webhook-signature`): verify it with a Standard Webhooks library and the
endpoint's secret. Delivery is at least once: answer 2xx within 10 seconds, and skip an event
whose `webhook-id` you already have. A failed delivery is tried again with growing delays
(5 s, 5 min, 30 min, 2 h, 5 h, then every 10 h) for three days; then the endpoint is disabled
and the reseller's owners and admins are emailed. The delivery log in Settings shows each
attempt, and sends one event or a time range again.

## Rate limits
"""
# (api.openapi adds the published limit under this heading, from the settings of the moment.)

api = ProblemNinjaAPI(
    title="Partner Portal API",
    version="1",
    description=DESCRIPTION,
    urls_namespace="api-v1",
    openapi_url="/openapi.json",
    docs_url="/docs",
)
api.add_router("/customers", customers_router)
api.add_router("/subscriptions", subscriptions_router)
api.add_router("/invoices", billing_router)
api.add_router("/audit-events", audit_router)


# The names the routes give their body and query parameters (not the caller's field names).
PARAMETERS = ("payload", "filters")


def _schema_errors(errors: list[dict[str, Any]]) -> list[dict[str, str]]:
    """pydantic's errors, named by field and worded in the request's language (pydantic's own
    messages are English only)."""
    messages = {
        "missing": _("This field is required."),
        "string_too_long": _("This value is too long."),
        "literal_error": _("Select a valid choice."),
        "enum": _("Select a valid choice."),
        "bool_parsing": _("Enter true or false."),
        "bool_type": _("Enter true or false."),
        "int_parsing": _("Enter a whole number."),
        "int_type": _("Enter a whole number."),
        "datetime_parsing": _("Enter a valid date and time."),
        "datetime_from_date_parsing": _("Enter a valid date and time."),
        "date_parsing": _("Enter a valid date."),
    }

    def field(location: tuple[Any, ...]) -> str:
        # ("body", "payload", "contact_email"): where ninja found it, the view's parameter, the
        # field; the caller knows only the field.
        parts = [str(part) for part in location]
        while parts and parts[0] in ("body", "query", "path", "header", *PARAMETERS):
            parts.pop(0)
        return ".".join(parts)

    return [
        {
            "field": field(tuple(error.get("loc", ()))),
            "message": messages.get(error.get("type", ""), _("Enter a valid value.")),
        }
        for error in errors
    ]


@api.exception_handler(SchemaValidationError)
def _on_schema_error(request: HttpRequest, error: SchemaValidationError) -> HttpResponse:
    return invalid(_schema_errors(list(error.errors)))


@api.exception_handler(ValidationError)
def _on_service_error(request: HttpRequest, error: ValidationError) -> HttpResponse:
    return invalid(field_errors(error))


@api.exception_handler(AuthenticationError)
def _on_no_key(request: HttpRequest, error: AuthenticationError) -> HttpResponse:
    return problem(
        401,
        _("A valid API key is needed."),
        _("Send `Authorization: Bearer` with a key that is not revoked or expired."),
        headers={"WWW-Authenticate": "Bearer"},
    )


@api.exception_handler(ScopeMissing)
def _on_scope(request: HttpRequest, error: ScopeMissing) -> HttpResponse:
    return problem(
        403,
        _("This key may not do this."),
        _("The key was not given the scope %(scope)s.") % {"scope": error.scope.value},
    )


@api.exception_handler(PermissionDenied)
def _on_role(request: HttpRequest, error: PermissionDenied) -> HttpResponse:
    return problem(403, _("This key may not do this."), str(error) or "")


@api.exception_handler(Http404)
def _on_not_found(request: HttpRequest, error: Http404) -> HttpResponse:
    return not_found(request)


@api.exception_handler(RateLimitExceeded)
def _on_key_limit(request: HttpRequest, error: RateLimitExceeded) -> HttpResponse:
    return problem(
        429,
        _("Too many requests."),
        _("This key may make %(limit)s requests in %(window)s seconds; try again later.")
        % {"limit": error.state.limit, "window": error.state.window},
        headers={"Retry-After": str(error.state.retry_after)},
    )


@api.exception_handler(RateLimited)
def _on_send_limit(request: HttpRequest, error: RateLimited) -> HttpResponse:
    return problem(
        429, _("Too many requests."), error.message, headers={"Retry-After": str(error.retry_after)}
    )
