"""Around every /api/ request: the key's name for the audit log stays within the request, and
the answer carries the key's rate limit (draft-ietf-httpapi-ratelimit-headers)."""

import contextvars
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

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
        state: LimitState | None = getattr(request, "api_limit", None)
        if state is not None:
            response["RateLimit-Limit"] = str(state.limit)
            response["RateLimit-Remaining"] = str(state.remaining)
            response["RateLimit-Reset"] = str(state.reset)
            response["RateLimit-Policy"] = f"{state.limit};w={state.window}"
        return response
