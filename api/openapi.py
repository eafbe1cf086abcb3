"""What the API's OpenAPI schema says beyond its routes: the rate limit each key has, and the
RFC 9457 problem details (api.problems) that any operation may answer with.

Ninja writes each operation's own answers from its `response=`; the refusals that come from
outside the view (no key, a missing scope, the rate limit, a path id of nothing the key's
reseller has, input that fails the schema) are the same for every route, so they are declared
here once, for every operation, rather than in each route. A status a route declares itself
(a 409 of its own, say) is left as the route wrote it. api.v1 builds its NinjaAPI from
ProblemNinjaAPI; the docs page and the schemathesis run read the same schema.
"""

import re
from copy import deepcopy
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern
from django.urls.converters import StringConverter
from django.utils.translation import gettext as _
from ninja import NinjaAPI, Schema
from ninja.errors import HttpError
from ninja.openapi.schema import OpenAPISchema

from api.problems import PROBLEM_TYPE, problem

METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


class FieldError(Schema):
    field: str
    message: str


class Problem(Schema):
    """An RFC 9457 problem: `title` and `detail` in the language of `Accept-Language`; `errors`
    names each field that was refused, with its message."""

    type: str
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldError] | None = None


def rate_limit_text() -> str:
    """The published limit, as the docs state it (api.auth counts it)."""
    return (
        f"Rate limit: each key may make {settings.API_RATE_LIMIT} requests per "
        f"{settings.API_RATE_WINDOW} seconds, counted in a sliding window. Every answer to a "
        "request with a valid key says what is left in `RateLimit-Limit`, "
        "`RateLimit-Remaining`, `RateLimit-Reset` (seconds) and `RateLimit-Policy`; past the "
        "limit the answer is 429 with `Retry-After` (seconds)."
    )


_INTEGER = {"schema": {"type": "integer"}}
RATE_LIMIT_HEADERS = {
    "RateLimit-Limit": {"description": "Requests allowed per window.", **_INTEGER},
    "RateLimit-Remaining": {"description": "Requests left in this window.", **_INTEGER},
    "RateLimit-Reset": {"description": "Seconds until the window frees a request.", **_INTEGER},
    "RateLimit-Policy": {
        "description": "The limit and its window: `600;w=60`.",
        "schema": {"type": "string"},
    },
}


def _problem(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    if headers:
        response["headers"] = headers
    return response


# (status, description, headers, whether the operation answers it: (operation) -> bool)
def _secured(operation: dict[str, Any]) -> bool:
    return bool(operation.get("security"))


def _has_input(operation: dict[str, Any]) -> bool:
    return bool(operation.get("parameters")) or "requestBody" in operation


def _has_body(operation: dict[str, Any]) -> bool:
    return "requestBody" in operation


PROBLEMS: list[tuple[str, str, dict[str, Any], Any]] = [
    (
        "400",
        "The body could not be read: it is not JSON (or not the media type declared).",
        {},
        _has_body,
    ),
    (
        "401",
        "No API key, or one that is unknown, revoked or expired, or whose member left the team "
        "or changed role.",
        {"WWW-Authenticate": {"schema": {"type": "string"}, "required": True}},
        _secured,
    ),
    (
        "403",
        "The key was not given the scope this operation needs, or its member's role may not do it.",
        {},
        _secured,
    ),
    (
        "404",
        "Nothing with an id given (in the path, the query or the body) for the key's reseller. "
        "Another reseller's object answers exactly the same.",
        {},
        _has_input,
    ),
    (
        "422",
        "The request is not valid: `errors` names each field and what is wrong with it.",
        {},
        _has_input,
    ),
    (
        "429",
        "Past the key's rate limit (or a limit on sending email): try again after "
        "`Retry-After` seconds.",
        {"Retry-After": {"schema": {"type": "integer"}, "required": True}},
        _secured,
    ),
]


def problem_components() -> dict[str, Any]:
    """Problem and FieldError as OpenAPI components."""
    schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    definitions = schema.pop("$defs", {})
    return {**definitions, "Problem": schema}


def path_patterns(api: NinjaAPI) -> dict[str, dict[str, str]]:
    """For each route of `api` ("customers/{customer_id}"), the regular expression of each path
    parameter that a converter checks (`{pid:customer_id}`). ninja leaves it out of the schema,
    and an id of another shape is no URL of the API at all (the site's 404 page)."""
    patterns: dict[str, dict[str, str]] = {}
    try:
        urls = api.urls[0]
    except ImproperlyConfigured:
        # Asked for before the URLconf registered its converters (config.urls registers `pid`),
        # say at import: nothing to add then. The schema the API serves always has them.
        return patterns
    for url in urls:
        if not isinstance(url, URLPattern):
            continue
        converters = getattr(url.pattern, "converters", {})
        checked = {
            name: converter.regex
            for name, converter in converters.items()
            if not isinstance(converter, StringConverter)
        }
        if checked:
            patterns[re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", str(url.pattern))] = checked
    return patterns


def schema_complete(schema: dict[str, Any], api: NinjaAPI | None = None) -> dict[str, Any]:
    """`schema` with the problem answers, the rate-limit headers and the published limit added,
    its path parameters never empty and, given the `api` it describes, shaped as the URL
    converters take them (in place, and returned). Twice changes nothing."""
    patterns = path_patterns(api) if api is not None else {}
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, definition in problem_components().items():
        components.setdefault(name, definition)
    info = schema.setdefault("info", {})
    limit = rate_limit_text()
    if limit not in info.get("description", ""):
        info["description"] = f"{info.get('description', '')}\n\n{limit}".strip()
    for path, item in schema.get("paths", {}).items():
        shapes = next(
            (shape for route, shape in patterns.items() if path.endswith(f"/{route}")), {}
        )
        for method, operation in item.items():
            if method not in METHODS:
                continue
            # An empty path segment is another URL (a 404 page, not this operation).
            for parameter in operation.get("parameters", []):
                if parameter.get("in") != "path":
                    continue
                parameter_schema = parameter.setdefault("schema", {})
                if parameter_schema.get("type") in ("string", None):
                    parameter_schema.setdefault("minLength", 1)
                if parameter["name"] in shapes:
                    parameter_schema.setdefault("pattern", f"^{shapes[parameter['name']]}$")
            responses = operation.setdefault("responses", {})
            # ninja's own schema names the statuses with integers, its JSON with strings.
            declared = {str(status) for status in responses}
            if _secured(operation):
                for status, response in responses.items():
                    if str(status).startswith("2"):
                        response.setdefault("headers", {})
                        for name, header in RATE_LIMIT_HEADERS.items():
                            response["headers"].setdefault(name, deepcopy(header))
            for status, description, headers, applies in PROBLEMS:
                if applies(operation) and status not in declared:
                    response = _problem(description, deepcopy(headers))
                    if status != "401" and _secured(operation):
                        response.setdefault("headers", {}).update(deepcopy(RATE_LIMIT_HEADERS))
                    responses[status] = response
    return schema


def on_http_error(request: HttpRequest, error: HttpError) -> HttpResponse:
    """ninja's own refusals (HttpError) as problem details too: a body that is not JSON is a
    400 from ninja's parser before any route runs, which would otherwise answer
    `{"detail": "Cannot parse request body"}` in English, outside the schema."""
    if error.status_code == 400:
        return problem(
            400,
            _("The request body could not be read."),
            _("Send it as JSON, in the form the operation's schema describes."),
        )
    return problem(error.status_code, str(error.message))


def problem_handlers_add(api: NinjaAPI) -> None:
    api.exception_handler(HttpError)(on_http_error)


class ProblemNinjaAPI(NinjaAPI):
    """A NinjaAPI whose OpenAPI schema declares the problem answers and the rate limit, and
    whose own refusals (a body it cannot parse) are problem details like the rest."""

    def set_default_exception_handlers(self) -> None:
        super().set_default_exception_handlers()
        problem_handlers_add(self)

    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> OpenAPISchema:
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        schema_complete(schema, self)
        return schema
