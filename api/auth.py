"""Who calls: the bearer key (api.models.ApiKey), its scope for the operation, its rate limit.

A key acts with its member's role (checked again by each service) within the scopes it was
given (checked here, per operation). Each key may make API_RATE_LIMIT requests per
API_RATE_WINDOW seconds, counted in Redis in a sliding window (core.ratelimit); every answer
says what is left in RateLimit-* headers (api.middleware).
"""

from typing import cast

from django.conf import settings
from django.http import HttpRequest
from ninja.security import HttpBearer

from api.models import ApiKey, Scope
from api.services import api_key_for_secret
from core.http import ResellerRequest
from core.middleware import audit_via
from core.ratelimit import Limit, LimitState, limit_take_counted


class ApiRequest(ResellerRequest):
    """A request KeyAuth let through: the key, its member (acting with the member's role), the
    reseller and what is left of the key's rate limit. Only an annotation, as in core.http."""

    api_key: ApiKey
    api_limit: LimitState


class ScopeMissing(Exception):
    """The key is good but was not given the scope the operation needs: a 403."""

    def __init__(self, scope: Scope) -> None:
        super().__init__(scope)
        self.scope = scope


class RateLimitExceeded(Exception):
    def __init__(self, state: LimitState) -> None:
        super().__init__(state.retry_after)
        self.state = state


class KeyAuth(HttpBearer):
    """`Authorization: Bearer ppk_…` with `scope` among the key's scopes."""

    def __init__(self, scope: Scope = Scope.READ) -> None:
        super().__init__()
        self.scope = scope

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey | None:
        key = api_key_for_secret(token)
        if key is None:
            return None
        api_request = cast(ApiRequest, request)
        state = limit_take_counted(
            Limit(
                scope="api",
                key=key.public_id,
                limit=settings.API_RATE_LIMIT,
                window=settings.API_RATE_WINDOW,
                # An outage of Redis must not stop every integration: counted per process then.
                fail_open=True,
            )
        )
        api_request.api_limit = state
        if state.retry_after is not None:
            raise RateLimitExceeded(state)
        if self.scope not in key.scopes:
            raise ScopeMissing(self.scope)
        assert key.membership is not None  # is_usable
        api_request.api_key = key
        api_request.membership = key.membership
        api_request.reseller = key.reseller
        api_request.user = key.membership.user
        # Every audit row this request writes names the key (reset by api.middleware).
        audit_via.set(key.name)
        return key
