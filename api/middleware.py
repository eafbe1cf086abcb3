"""Around every /api/ request: the key's name for the audit log stays within the request, the
answer carries the key's rate limit (draft-ietf-httpapi-ratelimit-headers), and Django's own
404 and 405 pages become problem details."""

import contextvars
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _

from api.problems import PROBLEM_TYPE, invalid, not_found, problem
from core.ratelimit import LimitState

API_PREFIX = "/api/"


def _null_characters(request: HttpRequest) -> HttpResponse | None:
    """A NUL in a query parameter or the body is refused as the pages' forms refuse it (Django's
    CharField): PostgreSQL cannot store or compare one, and would answer with an error."""
    fields = [name for name, values in request.GET.lists() if any("\x00" in v for v in values)]
    fields += [name for name in request.GET if "\x00" in name]
    body = request.body if request.method in ("POST", "PUT", "PATCH") else b""
    if not fields and b"\x00" not in body and b"\\u0000" not in body:
        return None
    message = _("Null characters are not allowed.")
    return invalid(
        [{"field": name, "message": message} for name in sorted(set(fields))]
        or [{"field": "", "message": message}]
    )


class ApiMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(API_PREFIX):
            return self.get_response(request)
        refused = _null_characters(request)
        if refused is not None:
            return refused
        # A copy of the context: what authentication sets (core.middleware.audit_via) is gone
        # when the request ends, whatever the worker serves next.
        response = contextvars.copy_context().run(self.get_response, request)
        if response.status_code in (404, 405) and response.get("Content-Type") != PROBLEM_TYPE:
            # Django's own answers (no route, or an id the `pid` converter refuses; a method the
            # route does not take) in the API's words: a malformed id is the same 404 as a
            # missing one.
            allow = response.get("Allow")
            response = (
                not_found()
                if response.status_code == 404
                else problem(405, _("This method is not allowed here."))
            )
            if allow:
                response["Allow"] = allow
        state: LimitState | None = getattr(request, "api_limit", None)
        if state is not None:
            response["RateLimit-Limit"] = str(state.limit)
            response["RateLimit-Remaining"] = str(state.remaining)
            response["RateLimit-Reset"] = str(state.reset)
            response["RateLimit-Policy"] = f"{state.limit};w={state.window}"
        return response
