"""Every URL of the project that takes an object id answers a member of another reseller with
the same 404 as a missing object. New URLs are swept automatically; a new kind of id must be
taught to OBJECT_IDS below, or this test fails. The REST API's operations are swept the same way,
with another reseller's key, from the API's own schema."""

import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from django.apps import apps
from django.conf import settings
from django.urls import URLPattern, get_resolver
from django.utils import timezone

from api.v1 import api as api_v1
from core.ids import new_public_id
from resellers.models import Membership
from subscriptions.models import CustomerPrice, Order
from tests.factories import (
    InvoiceFactory,
    PlanFactory,
    SubscriptionFactory,
    TeamInvitationFactory,
    Tenant,
    charge_priced,
    invoice_of_charges,
    special_price_for,
    statement_for,
)
from tests.support.api import ApiClient, api_key
from tests.support.url_sweep import keywords, same_page, walk
from webhooks import services as webhooks_services

PROJECT_PACKAGES = (
    "api",
    "config",
    "core",
    "resellers",
    "customers",
    "subscriptions",
    "billing",
    "commissions",
    "webhooks",
    "insights",
)

# Apps of the project whose pages take no tenant's object, and why.
NOT_SWEPT_APPS = {
    "demo": "the development outbox, installed only with DEBUG (config/urls.py); no tenant's data",
}

# For each URL keyword that names a tenant-owned object: how to get one of tenant A's.
OBJECT_IDS: dict[str, Callable[[Tenant], str]] = {
    "membership_id": lambda t: owner_of(t).public_id,
    "team_invitation_id": lambda t: TeamInvitationFactory(reseller=t.reseller).public_id,
    "customer_id": lambda t: t.customer.public_id,
    "subscription_id": lambda t: SubscriptionFactory(customer=t.customer).public_id,
    "order_id": lambda t: order_of(t).public_id,
    "invoice_id": lambda t: InvoiceFactory(customer=t.customer).public_id,
    "statement_id": lambda t: statement_for(t.customer).public_id,
    "api_key_id": lambda t: api_key(owner_of(t))[0].public_id,
    "endpoint_id": lambda t: (
        webhooks_services.endpoint_create(
            membership=owner_of(t), url="https://hooks.example/in", event_types=["invoice.paid"]
        )[0].public_id
    ),
    "event_id": lambda t: (
        webhooks_services.event_record(reseller=t.reseller, type="invoice.paid", data={}).public_id
    ),
}


def owner_of(t: Tenant) -> Membership:
    return Membership.objects.get(user=t.owner, reseller=t.reseller)


def order_of(t: Tenant) -> Order:
    """An order confirmation of tenant `t` (written directly, like SubscriptionFactory)."""
    subscription = SubscriptionFactory(customer=t.customer)
    return Order.objects.create(
        reference=f"ORD-{new_public_id()[:8]}",
        key=new_public_id(),
        customer=t.customer,
        subscription=subscription,
        kind=Order.Kind.ADD,
        licences_before=4,
        licences_after=subscription.licences,
        amount=Decimal("1.00"),
        currency=subscription.currency,
    )


# URL keywords that are not object ids, and the test that covers each instead.
NOT_OBJECT_IDS = {
    "report": "the name of one of the Reports page's reports (insights.views.reports), the same "
    "for every reseller",
    "token": (
        "bearer links: tests/core/test_google_sign_in.py (expired, used, unknown, wrong account)"
    ),
}


# Customer-side pages answer a customer's own administrators, not reseller members; they have
# their own sweep, across customers, in tests/customers/test_customer_side.py. The admin is the
# vendor staff's, behind MFA, not a tenant's (tests/core/test_admin_fields.py,
# test_staff_only_passwords.py).
SWEPT_ELSEWHERE = (
    "customer_side:",
    "my_subscriptions:",
    "my_invoices:",
    "my_payments:",
    "admin:",
    # The REST API answers keys, not signed-in members: swept below with another reseller's key.
    f"{api_v1.urls_namespace}:",
)


def project_patterns() -> list[tuple[str, URLPattern]]:
    patterns = []
    for name, pattern in walk(get_resolver().url_patterns):
        module = getattr(pattern.callback, "__module__", "")
        if module.split(".")[0] in PROJECT_PACKAGES and not name.startswith(SWEPT_ELSEWHERE):
            patterns.append((name, pattern))
    return patterns


def test_every_app_of_the_project_is_swept():
    # A new app's pages are swept only once it is named above.
    local = {
        app.name.split(".")[0]
        for app in apps.get_app_configs()
        if Path(app.path).is_relative_to(settings.BASE_DIR) and "site-packages" not in app.path
    }
    assert local and local <= set(PROJECT_PACKAGES) | NOT_SWEPT_APPS.keys(), local


def test_every_url_keyword_is_known():
    unknown = {
        (name, kw)
        for name, pattern in project_patterns()
        for kw in keywords(pattern)
        if kw not in OBJECT_IDS and kw not in NOT_OBJECT_IDS
    }
    assert not unknown, f"Teach OBJECT_IDS how to make these ids: {sorted(unknown)}"


TENANT_URLS = [
    name for name, pattern in project_patterns() if keywords(pattern) & OBJECT_IDS.keys()
]


def test_the_sweep_covers_urls():
    # Guard against a walk that silently finds nothing.
    assert {
        "customers:detail",
        "resellers:member_role",
        "resellers:invitation_withdraw",
        "subscriptions:special_price_end",
        "statements:detail",
        "api_keys:revoke",
        "webhooks:replay_event",
    } <= set(TENANT_URLS)


@pytest.mark.parametrize("url_name", TENANT_URLS)
def test_another_resellers_object_is_a_404(url_name, tenant, other_tenant, client_for):
    from django.urls import reverse

    pattern = dict(project_patterns())[url_name]
    own_ids = {kw: OBJECT_IDS[kw](tenant) for kw in keywords(pattern)}
    missing_ids = {kw: new_public_id() for kw in keywords(pattern)}
    foreign_url = reverse(url_name, kwargs=own_ids)
    missing_url = reverse(url_name, kwargs=missing_ids)

    outsider = client_for(other_tenant.owner)
    statuses = {}
    for method in ("get", "post"):
        foreign = getattr(outsider, method)(foreign_url)
        missing = getattr(outsider, method)(missing_url)
        assert foreign.status_code == missing.status_code, (method, foreign_url)
        if foreign.status_code == 404:
            assert same_page(
                foreign.content.replace(foreign_url.encode(), b"URL"),
                missing.content.replace(missing_url.encode(), b"URL"),
            )
        statuses[method] = foreign.status_code
    assert 404 in statuses.values(), statuses

    # The same id is found for its own reseller: the 404 above is about the tenant.
    insider = client_for(tenant.owner)
    for method in ("get", "post"):
        assert getattr(insider, method)(foreign_url).status_code != 404, method


# Ids a form posts rather than the URL carries: another reseller's object is the same 404 as a
# missing one there too. Each gives the URL's own ids, the posted data with tenant A's object,
# and which field names that object.
BodyIds = tuple[dict[str, str], dict[str, str], str]
BODY_IDS: dict[str, Callable[[Tenant, Tenant], BodyIds]] = {
    # The Price book's special price: the customer is chosen in the form.
    "subscriptions:special_price_add": lambda mine, _theirs: (
        {},
        {
            "customer": mine.customer.public_id,
            "plan": PlanFactory().public_id,
            "currency": "EUR",
            "price": "4.00",
            "valid_from": timezone.localdate().isoformat(),
        },
        "customer",
    ),
    # Ending one: the outsider's own customer in the URL, tenant A's special price in the form.
    "subscriptions:special_price_end": lambda mine, theirs: (
        {"customer_id": theirs.customer.public_id},
        {"special_price": str(special_price_of(mine).pk)},
        "special_price",
    ),
}


def special_price_of(t: Tenant) -> CustomerPrice:
    return special_price_for(t.customer, PlanFactory(), Decimal("4.00"))


def test_every_posted_id_is_swept():
    # The views that look up an object a form names, by their URL names.
    assert set(BODY_IDS) == {"subscriptions:special_price_add", "subscriptions:special_price_end"}


@pytest.mark.parametrize("url_name", BODY_IDS)
def test_another_resellers_object_posted_in_a_form_is_a_404(
    url_name, tenant, other_tenant, client_for
):
    from django.urls import reverse

    url_kwargs, data, field = BODY_IDS[url_name](tenant, other_tenant)
    url = reverse(url_name, kwargs=url_kwargs)
    missing_id = new_public_id() if field == "customer" else str(10**9)
    outsider = client_for(other_tenant.owner)
    foreign = outsider.post(url, data)
    missing = outsider.post(url, {**data, field: missing_id})
    assert foreign.status_code == missing.status_code == 404
    assert same_page(foreign.content, missing.content)
    # Tenant A's owner reaches it (its own customer in the URL).
    own_kwargs = dict.fromkeys(url_kwargs, tenant.customer.public_id)
    insider = client_for(tenant.owner)
    assert insider.post(reverse(url_name, kwargs=own_kwargs), data).status_code == 302


# Pages without an object id that show the reseller's own money: another reseller's figures
# never appear on them, in the page or its CSV.
def test_the_margin_page_and_its_csv_show_only_the_resellers_own_figures(
    tenant, other_tenant, client_for
):
    now = timezone.now()
    for t, amount in ((tenant, "123.45"), (other_tenant, "678.90")):
        subscription = SubscriptionFactory(customer=t.customer)
        charge = charge_priced(subscription, amount=amount, cost="100.00")
        invoice_of_charges([charge], status="paid", paid_at=now)
        invoice_of_charges([charge_priced(subscription, amount=amount, cost="100.00")])
    month = f"?month={now:%Y-%m}"
    for client, own, theirs in (
        (client_for(tenant.owner), "123.45", "678.90"),
        (client_for(other_tenant.owner), "678.90", "123.45"),
    ):
        page = client.get("/margin/" + month).content.decode()
        csv = b"".join(client.get("/margin/export.csv" + month).streaming_content).decode()
        for body in (page, csv):
            assert own in body and theirs not in body


# The REST API (/api/v1/): every operation whose path takes an object id, called with a key of
# another reseller (made by its owner, with every scope), answers exactly as for a missing id.
# The operations are read from the API's own OpenAPI schema, so routes added to api.v1 are swept
# as they land; a new path parameter must be taught to OBJECT_IDS like a URL keyword.
API_PREFIX = "/api/v1"
METHODS = ("get", "post", "put", "patch", "delete")
PATH_PARAMETER = re.compile(r"{(\w+)}")


# The API's schema, built once for the module (building it takes a sixth of a second).
API_SCHEMA = api_v1.get_openapi_schema(path_prefix=API_PREFIX)


def api_operations() -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path template, operation) for every operation of the API that has an id."""
    return [
        (method, path, operation)
        for path, item in API_SCHEMA["paths"].items()
        for method, operation in item.items()
        if method in METHODS and PATH_PARAMETER.search(path)
    ]


def example_of(schema: dict[str, Any], components: dict[str, Any]) -> Any:
    """A small value the schema accepts (required fields only), so that an operation that
    takes a body reaches its view, and its tenant check, instead of stopping at a 422."""
    if "$ref" in schema:
        return example_of(components["schemas"][schema["$ref"].rsplit("/", 1)[-1]], components)
    for combined in ("anyOf", "oneOf", "allOf"):
        if combined in schema:
            options = [o for o in schema[combined] if o.get("type") != "null"] or [{}]
            return example_of(options[0], components)
    if "default" in schema:
        return schema["default"]
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        return {
            name: example_of(properties[name], components) for name in schema.get("required", [])
        }
    if kind == "array":
        return []
    if kind == "integer":
        return max(int(schema.get("minimum", 1)), 1)
    if kind == "number":
        return 1
    if kind == "boolean":
        return False
    formats = {
        "email": "someone@example.com",
        "date": "2030-01-01",
        "date-time": datetime(2030, 1, 1, tzinfo=UTC).isoformat(),
    }
    return formats.get(schema.get("format", ""), "x" * max(int(schema.get("minLength", 1)), 1))


def api_call(
    client: ApiClient, method: str, path: str, operation: dict[str, Any], ids: dict[str, str]
) -> Any:
    components = API_SCHEMA.get("components", {})
    url = PATH_PARAMETER.sub(lambda m: ids[m.group(1)], path)
    required: dict[str, dict[str, str]] = {"query": {}, "header": {}}
    for parameter in operation.get("parameters", []):
        if parameter["in"] in required and parameter.get("required"):
            value = example_of(parameter.get("schema", {}), components)
            required[parameter["in"]][parameter["name"]] = str(value)
    if required["query"]:
        url += "?" + urlencode(required["query"])
    # A header the operation requires (Idempotency-Key): a new value for each call.
    headers = {name: new_public_id() for name in required["header"]}
    body = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if body is None:
        return getattr(client, method)(url, headers=headers)
    data = example_of(body["schema"], components)
    return getattr(client, method)(url, data, content_type="application/json", headers=headers)


API_OPERATIONS = api_operations()


def test_every_api_path_parameter_is_known():
    unknown = {
        (path, name)
        for _method, path, _operation in API_OPERATIONS
        for name in PATH_PARAMETER.findall(path)
        if name not in OBJECT_IDS
    }
    assert not unknown, f"Teach OBJECT_IDS how to make these ids: {sorted(unknown)}"


def test_every_api_url_with_an_id_is_in_the_schema():
    # An operation left out of the schema would be left out of the sweep.
    namespace = f"{api_v1.urls_namespace}:"
    urls = {
        re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", str(pattern.pattern))
        for name, pattern in walk(get_resolver().url_patterns)
        if name.startswith(namespace) and keywords(pattern)
    }
    swept = {path.removeprefix(f"{API_PREFIX}/") for _method, path, _operation in API_OPERATIONS}
    assert urls and urls <= swept, urls - swept


def test_the_api_sweep_covers_operations():
    assert {
        ("get", "/api/v1/customers/{customer_id}"),
        ("put", "/api/v1/customers/{customer_id}"),
        ("delete", "/api/v1/customers/{customer_id}/invitation"),
    } <= {(method, path) for method, path, _operation in API_OPERATIONS}


@pytest.mark.parametrize(
    ("method", "path"), [(method, path) for method, path, _operation in API_OPERATIONS]
)
def test_another_resellers_object_is_a_404_through_the_api(method, path, tenant, other_tenant):
    operation = {(m, p): o for m, p, o in API_OPERATIONS}[(method, path)]
    names = PATH_PARAMETER.findall(path)
    own_ids = {name: OBJECT_IDS[name](tenant) for name in names}
    missing_ids = {name: new_public_id() for name in names}
    outsider = ApiClient(api_key(owner_of(other_tenant))[1])

    foreign = api_call(outsider, method, path, operation, own_ids)
    missing = api_call(outsider, method, path, operation, missing_ids)
    assert foreign.status_code == missing.status_code == 404, (
        foreign.status_code,
        foreign.content[:300],
    )
    assert foreign.content == missing.content
    assert foreign["Content-Type"] == missing["Content-Type"] == "application/problem+json"

    # The same id is found with a key of its own reseller: the 404 above is about the tenant.
    if method == "get":
        insider = ApiClient(api_key(owner_of(tenant))[1])
        assert api_call(insider, method, path, operation, own_ids).status_code != 404
