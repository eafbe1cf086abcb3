"""Request context that services read without every call passing it on: the client's IP."""

from collections.abc import Callable
from contextvars import ContextVar

from django.conf import settings
from django.http import HttpRequest, HttpResponse

client_ip: ContextVar[str | None] = ContextVar("client_ip", default=None)
# How the request's writes were made when not through the pages: the API key's name, which
# every audit row of the request keeps (resellers.services.audit_record).
audit_via: ContextVar[str] = ContextVar("audit_via", default="")


def request_ip(request: HttpRequest) -> str | None:
    # Behind N trusted proxies the client is the N-th address from the right of X-Forwarded-For;
    # anything left of it was written by the client and proves nothing.
    proxies = getattr(settings, "NUM_PROXIES", 0)
    if proxies:
        forwarded = [p.strip() for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [p for p in forwarded if p]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR") or None


class ClientIpMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = client_ip.set(request_ip(request))
        try:
            return self.get_response(request)
        finally:
            client_ip.reset(token)


def permissions_policy_header(policy: dict[str, list[str]]) -> str:
    """PERMISSIONS_POLICY as the header's structured field: `camera=()` for a feature no one
    may use, `payment=(self "https://js.stripe.com")` for this site and one origin."""

    def allowlist(origins: list[str]) -> str:
        return " ".join(origin if origin in ("self", "*") else f'"{origin}"' for origin in origins)

    return ", ".join(f"{feature}=({allowlist(origins)})" for feature, origins in policy.items())


class PermissionsPolicyMiddleware:
    """The Permissions-Policy header (settings.PERMISSIONS_POLICY) on every response: the
    portal uses no camera, microphone, location or other device feature, so a script that got
    in cannot ask for them either. Django has no setting for this header."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        policy = getattr(settings, "PERMISSIONS_POLICY", None)
        if policy:
            response.headers.setdefault("Permissions-Policy", permissions_policy_header(policy))
        return response
