"""The API's docs (issue 17): Swagger UI served from static files at /api/v1/docs renders every
operation under the portal's Content-Security-Policy, in headless Chromium, and can call the API
with a key; the schema publishes the rate limit and declares the problem answers
(api.openapi)."""

import json
import re
from typing import Any

import pytest
from django.test import Client
from ninja import Router, Schema
from ninja.testing import TestClient

from api.auth import KeyAuth
from api.models import Scope
from api.openapi import ProblemNinjaAPI, rate_limit_text, schema_complete
from api.v1 import api as api_v1
from core.ids import PUBLIC_ID_PATTERN
from resellers.models import Membership
from tests.factories import make_tenant
from tests.support.api import api_key
from tests.support.browser import csp_collect, csp_violations

DOCS = "/api/v1/docs"


def operation_count() -> int:
    paths = api_v1.get_openapi_schema(path_prefix="/api/v1")["paths"]
    return sum(len(item) for item in paths.values())


@pytest.mark.django_db
def test_the_docs_page_uses_only_the_portals_static_files_under_its_csp():
    response = Client().get(DOCS)
    assert response.status_code == 200
    page = response.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources and all(source.startswith("/static/") for source in sources), sources
    policy = response["Content-Security-Policy"]
    script_src = re.search(r"script-src ([^;]+)", policy)
    style_src = re.search(r"style-src ([^;]+)", policy)
    assert script_src and "unsafe-inline" not in script_src.group(1)
    assert style_src and "unsafe-inline" not in style_src.group(1)
    assert "Content-Security-Policy-Report-Only" not in response


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_swagger_ui_renders_every_operation_and_calls_the_api_without_a_csp_violation(
    browser: Any, live_server: Any
) -> None:
    tenant = make_tenant("Docs Reseller")
    _key, raw = api_key(Membership.objects.get(reseller=tenant.reseller, user=tenant.owner))
    context = browser.new_context(base_url=live_server.url)
    page = context.new_page()
    csp_collect(context, page)

    response = page.goto(DOCS)
    assert response is not None and response.status == 200
    assert "script-src" in response.headers["content-security-policy"]
    page.wait_for_selector(".opblock")
    assert page.locator(".opblock").count() == operation_count()
    assert page.locator(".info .title").first.inner_text().startswith("Partner Portal API")

    # Authorize with a key, open the customer list, try it out: the answer is shown.
    page.click("button.authorize")
    page.fill(".modal-ux input", raw)
    page.click(".modal-ux button.authorize")
    page.click(".modal-ux button.btn-done")
    listing = page.locator("#operations-Customers-api_routes_customers_customer_list")
    listing.locator(".opblock-summary").click()
    listing.locator("button.try-out__btn").click()
    listing.locator("button.execute").click()
    code = listing.locator(".live-responses-table tbody .response-col_status")
    code.first.wait_for()
    assert code.first.inner_text().strip() == "200"
    # The filters are filled with the schema's examples, so the page may be empty: its shape is
    # the point here, and that the browser was allowed to send the request (connect-src).
    assert '"next_cursor"' in listing.locator(".live-responses-table").inner_text()

    assert csp_violations(page) == []


def served_schema() -> dict[str, Any]:
    return json.loads(Client().get("/api/v1/openapi.json").content)


@pytest.mark.django_db
def test_the_rate_limit_is_published_as_set(settings):
    settings.API_RATE_LIMIT, settings.API_RATE_WINDOW = 120, 30
    description = schema_complete(served_schema())["info"]["description"]
    assert "each key may make 120 requests per 30 seconds" in description
    assert "`Retry-After`" in description and "`RateLimit-Remaining`" in description
    assert rate_limit_text() in description


@pytest.mark.django_db
def test_every_operation_declares_the_problems_it_may_answer():
    schema = schema_complete(served_schema(), api_v1)
    assert schema == schema_complete(json.loads(json.dumps(schema)), api_v1)  # twice: the same
    problem = {"$ref": "#/components/schemas/Problem"}
    assert {"type", "title", "status"} <= set(
        schema["components"]["schemas"]["Problem"]["required"]
    )
    operations = [
        (path, method, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    ]
    assert operations
    for path, method, operation in operations:
        responses = operation["responses"]
        expected = {"401", "403", "429"} if operation.get("security") else set()
        if operation.get("parameters") or "requestBody" in operation:
            expected |= {"404", "422"}
        if "requestBody" in operation:
            expected.add("400")
        assert expected <= set(responses), (method, path)
        for status in expected:
            content = responses[status]["content"]
            assert content == {"application/problem+json": {"schema": problem}}, (path, status)
        assert responses["429"]["headers"]["Retry-After"]["required"] if "429" in expected else 1
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path":
                assert parameter["schema"]["minLength"] == 1
                # The URLs take public ids only (core.ids): the schema says so.
                if parameter["name"].endswith("_id"):
                    assert parameter["schema"]["pattern"] == f"^{PUBLIC_ID_PATTERN}$", path


class Thing(Schema):
    name: str


def test_a_body_that_is_not_json_is_a_problem_too(tenant, other_tenant):
    router = Router()

    @router.post("/things", auth=KeyAuth(Scope.READ))
    def thing_create(request: Any, payload: Thing) -> dict[str, str]:
        return {"name": payload.name}

    api = ProblemNinjaAPI(urls_namespace="test-problem-api")
    api.add_router("/", router)
    client = TestClient(api)
    _, key = api_key(Membership.objects.get(reseller=tenant.reseller, user=tenant.owner))
    bearer = {"Authorization": f"Bearer {key}"}
    assert client.post("/things", json={"name": "a"}, headers=bearer).json() == {"name": "a"}
    response = client.post(
        "/things",
        data=b"{not json",  # type: ignore[arg-type]  # raw bytes, as a broken client sends
        content_type="application/json",
        headers=bearer,
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["title"] == "The request body could not be read."
    schema = api.get_openapi_schema(path_prefix="")
    responses = schema["paths"]["/things"]["post"]["responses"]
    assert {str(status) for status in responses} == {"200", "400", "401", "403"} | {
        "404",
        "422",
        "429",
    }
    assert set(responses[200]["headers"]) >= {"RateLimit-Limit", "RateLimit-Remaining"}
