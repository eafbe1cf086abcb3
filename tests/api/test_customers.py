"""The API's customers (issue 17): the pages' services and rules, keys, scopes, tenancy,
problem details in the caller's language, rate limits and the audit trail."""

import pytest

from api.models import Scope
from api.services import api_key_revoke
from customers.models import Customer
from resellers.models import AuditEvent, Membership
from resellers.roles import Role
from tests.factories import CustomerFactory, Tenant, member_of
from tests.support.api import ApiClient, api_key

LIST = "/api/v1/customers/"


def owner_membership(tenant: Tenant) -> Membership:
    return Membership.objects.get(reseller=tenant.reseller, user=tenant.owner)


@pytest.fixture
def key(tenant: Tenant, other_tenant: Tenant) -> str:
    return api_key(owner_membership(tenant))[1]


def new_customer(**fields: object) -> dict[str, object]:
    return {
        "organisation": "Acme Holdings",
        "contact_name": "Ada Lovelace",
        "contact_email": "ada@acme.example",
        "customer_type": "domain",
        "domain": "acme.example",
        "country": "NL",
        **fields,
    }


def test_the_list_is_the_resellers_own_with_its_rate_limit(tenant, other_tenant, key):
    CustomerFactory.create_batch(3, reseller=tenant.reseller)
    response = ApiClient(key).get(LIST)
    assert response.status_code == 200
    body = response.json()
    ids = {item["id"] for item in body["items"]}
    assert tenant.customer.public_id in ids and other_tenant.customer.public_id not in ids
    assert body["count"] == 4 == len(body["items"])
    assert response["RateLimit-Limit"] == "600"
    assert int(response["RateLimit-Remaining"]) == 599
    assert response["RateLimit-Policy"] == "600;w=60"


def test_keyset_cursors_walk_every_customer_once(tenant, other_tenant, key):
    CustomerFactory.create_batch(30, reseller=tenant.reseller)
    client, seen, cursor = ApiClient(key), [], ""
    while True:
        body = client.get(LIST, {"cursor": cursor, "sort": "organisation"}).json()
        seen += [item["id"] for item in body["items"]]
        if not body["next_cursor"]:
            break
        cursor = body["next_cursor"]
    assert len(seen) == len(set(seen)) == 31


def test_another_resellers_customer_is_a_404_exactly_like_a_missing_one(tenant, other_tenant, key):
    client = ApiClient(key)
    theirs = client.get(f"{LIST}{other_tenant.customer.public_id}")
    missing = client.get(f"{LIST}AAAAAAAAAAAAAAAA")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.content == missing.content
    assert theirs["Content-Type"] == "application/problem+json"
    assert client.get(f"{LIST}{tenant.customer.public_id}").json()["id"] == (
        tenant.customer.public_id
    )


def test_invite_through_the_api_sends_the_invitation_and_audits_the_key(
    tenant, other_tenant, django_capture_on_commit_callbacks, mailoutbox
):
    _, key = api_key(owner_membership(tenant), Scope.CUSTOMERS_WRITE, Scope.READ, name="PSA")
    with django_capture_on_commit_callbacks(execute=True):
        response = ApiClient(key).post_json(LIST, new_customer())
    assert response.status_code == 201, response.content
    body = response.json()
    customer = Customer.objects.get(public_id=body["id"], reseller=tenant.reseller)
    assert body["status"] == "invited" and body["invitation"]["state"] == "valid"
    assert customer.language == tenant.reseller.language
    assert [m.to for m in mailoutbox] == [["ada@acme.example"]]
    event = AuditEvent.objects.get(action="customer.invited", object_id=customer.public_id)
    assert event.via == "PSA" and event.actor == tenant.owner


def test_bad_input_names_each_field_in_the_callers_language(tenant, other_tenant, key):
    response = ApiClient(key).post_json(
        LIST,
        new_customer(contact_email="not an email", organisation=""),
        headers={"Accept-Language": "es"},
    )
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    fields = {error["field"]: error["message"] for error in problem["errors"]}
    assert set(fields) == {"contact_email", "organisation"}
    assert fields["organisation"] == "Este campo es obligatorio."
    assert problem["title"] != "The request is not valid."
    assert not Customer.objects.filter(organisation="Acme Holdings").exists()


def test_a_missing_field_is_named_too(tenant, other_tenant, key):
    response = ApiClient(key).post_json(LIST, {"organisation": "Acme"})
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} >= {"contact_name", "contact_email"}


def test_without_a_good_key_nothing_is_answered(tenant, other_tenant, key):
    assert ApiClient().get(LIST).status_code == 401
    assert ApiClient("ppk_not-a-key").get(LIST).status_code == 401
    response = ApiClient("ppk_not-a-key").get(LIST)
    assert response["WWW-Authenticate"] == "Bearer"
    assert response["Content-Type"] == "application/problem+json"


def test_a_revoked_key_stops_at_once(tenant, other_tenant):
    membership = owner_membership(tenant)
    made, key = api_key(membership)
    assert ApiClient(key).get(LIST).status_code == 200
    api_key_revoke(membership=membership, key=made)
    assert ApiClient(key).get(LIST).status_code == 401


def test_a_key_without_the_scope_is_refused_with_403(tenant, other_tenant):
    _, key = api_key(owner_membership(tenant), Scope.READ)
    response = ApiClient(key).post_json(LIST, new_customer())
    assert response.status_code == 403
    assert "customers:write" in response.json()["detail"]
    assert not Customer.objects.filter(organisation="Acme Holdings").exists()


def test_a_key_stops_when_its_member_leaves_or_changes_role(tenant, other_tenant):
    admin = member_of(tenant.reseller, Role.ADMIN)
    _, key = api_key(admin)
    assert ApiClient(key).get(LIST).status_code == 200
    admin.role = Role.SALES
    admin.save()
    assert ApiClient(key).get(LIST).status_code == 401
    admin.role = Role.ADMIN
    admin.save()
    assert ApiClient(key).get(LIST).status_code == 200
    admin.delete()
    assert ApiClient(key).get(LIST).status_code == 401


def test_only_owners_and_admins_make_keys(tenant, other_tenant):
    from django.core.exceptions import PermissionDenied

    for role in (Role.SALES, Role.BILLING):
        with pytest.raises(PermissionDenied):
            api_key(member_of(tenant.reseller, role))


def test_past_the_limit_the_answer_is_429_with_retry_after(tenant, other_tenant, key, settings):
    settings.API_RATE_LIMIT = 2
    client = ApiClient(key)
    assert [client.get(LIST).status_code for _ in range(2)] == [200, 200]
    refused = client.get(LIST)
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1
    assert refused["RateLimit-Remaining"] == "0"


def test_the_schema_is_openapi_3_1_and_the_docs_need_no_cdn(client):
    schema = client.get("/api/v1/openapi.json")
    assert schema.status_code == 200 and schema.json()["openapi"].startswith("3.1")
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200
    assert b"cdn" not in docs.content.lower()


@pytest.mark.parametrize("path", ["AAAA%00", "x" * 17, "%2e%2e", "AAAAAAAAAAAAAAA%00"])
def test_an_id_that_cannot_be_one_is_the_same_404_as_a_missing_one(tenant, other_tenant, key, path):
    client = ApiClient(key)
    missing = client.get(f"{LIST}AAAAAAAAAAAAAAAA")
    for url in (f"{LIST}{path}", f"/api/v1/subscriptions/{path}", f"/api/v1/invoices/{path}"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert response.content == missing.content, url
        assert response["Content-Type"] == "application/problem+json"


def test_a_method_a_route_does_not_take_is_a_405_problem(tenant, other_tenant, key):
    response = ApiClient(key).delete(LIST)
    assert response.status_code == 405
    assert response["Content-Type"] == "application/problem+json"
