"""The portal's URLs plus the benchmark's yardsticks, served through the same middleware
(session, user, reseller): the smallest view a signed-in member can ask for, an empty page of
the portal's layout (base.html, no queries of its own), and the smallest API operation (the
REST API's key authentication and rate limit, django-ninja, no work of its own)."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.template import engines
from django.urls import path
from ninja import NinjaAPI

from api.auth import KeyAuth
from config.urls import urlpatterns as portal_urlpatterns
from resellers.access import reseller_required

_EMPTY_PAGE = engines["django"].from_string('{% extends "base.html" %}')


@login_required
def minimal(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


@reseller_required()
def empty_page(request: HttpRequest) -> HttpResponse:
    return HttpResponse(_EMPTY_PAGE.render({}, request))


_minimal_api = NinjaAPI(urls_namespace="benchmark-api", docs_url=None, openapi_url=None)


@_minimal_api.get("/minimal/", auth=KeyAuth())
def api_minimal(request: HttpRequest) -> dict[str, bool]:
    return {"ok": True}


urlpatterns = [
    # Under /api/, as the API's own routes: api.middleware adds the RateLimit-* headers.
    path("api/benchmark/", _minimal_api.urls),
    path("benchmark/minimal/", minimal, name="benchmark_minimal"),
    path("benchmark/empty-page/", empty_page, name="benchmark_empty_page"),
    *portal_urlpatterns,
]
