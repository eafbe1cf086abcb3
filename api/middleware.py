"""Around every /api/ request: the key's name for the audit log stays within the request, the
answer carries the key's rate limit (draft-ietf-httpapi-ratelimit-headers), and Django's own
404 and 405 pages become problem details."""

import contextvars
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _

from api.problems import PROBLEM_TYPE, not_found, problem
from core.ratelimit import LimitState

API_PREFIX = "/api/"


class ApiMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(API_PREFIX):
            return self.get_response(request)
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
