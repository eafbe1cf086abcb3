"""Import with a transfer token through the API (issue 17): the page's form and service, the
key named in the audit log, the service's refusals as 422 problems naming the field."""

import pytest

from api.models import Scope
from customers.models import Customer
from customers.services import transfer_token_create
from resellers.models import AuditEvent
from tests.factories import Tenant, admin_of, owner_of
from tests.support.api import ApiClient, api_key

IMPORT = "/api/v1/customers/import"


@pytest.fixture
def key(tenant: Tenant, other_tenant: Tenant) -> str:
    return api_key(owner_of(tenant), Scope.CUSTOMERS_WRITE, Scope.READ, name="PSA")[1]


def token_from(customer: Customer, to: Tenant) -> str:
    """A transfer token the customer's own administrator generates for reseller `to`."""
    return transfer_token_create(
        customer=customer, user=admin_of(customer), reseller_public_id=to.reseller.public_id
    )


def test_a_valid_token_moves_the_customer_here(
    tenant, other_tenant, key, django_capture_on_commit_callbacks
):
    leaving = other_tenant.customer
    raw = token_from(leaving, tenant)
    with django_capture_on_commit_callbacks(execute=True):
        response = ApiClient(key).post_json(IMPORT, {"domain": leaving.domain, "token": raw})
    assert response.status_code == 201, response.content
    body = response.json()
    new = Customer.objects.get(public_id=body["id"])
    assert new.reseller == tenant.reseller and new.previous_id == leaving.pk
    assert body["status"] == "active" and body["domain"] == leaving.domain
    leaving.refresh_from_db()
    assert leaving.status == Customer.Status.TRANSFERRED_OUT
    event = AuditEvent.objects.get(reseller=tenant.reseller, action="customer.transferred_in")
    assert event.via == "PSA" and event.actor == tenant.owner
    assert ApiClient(key).get(f"/api/v1/customers/{new.public_id}").status_code == 200

    # A token works once.
    again = ApiClient(key).post_json(IMPORT, {"domain": leaving.domain, "token": raw})
    assert again.status_code == 422
    assert [error["field"] for error in again.json()["errors"]] == ["token"]


def test_an_invalid_token_is_a_422_on_the_token_and_moves_nothing(tenant, other_tenant, key):
    leaving = other_tenant.customer
    token_from(leaving, tenant)
    response = ApiClient(key).post_json(
        IMPORT, {"domain": leaving.domain, "token": "not-the-token"}
    )
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    [error] = response.json()["errors"]
    assert error["field"] == "token" and error["message"]
    leaving.refresh_from_db()
    assert leaving.reseller == other_tenant.reseller
    assert leaving.status == Customer.Status.ACTIVE


def test_a_token_for_another_reseller_is_refused(tenant, other_tenant, key):
    customer = tenant.customer
    raw = token_from(customer, other_tenant)
    # Reseller A's own customer, with a token for reseller B, imported by A: refused.
    response = ApiClient(key).post_json(IMPORT, {"domain": customer.domain, "token": raw})
    assert response.status_code == 422
    assert {error["field"] for error in response.json()["errors"]} == {"token"}


def test_the_pages_form_checks_the_input(tenant, other_tenant, key):
    client = ApiClient(key)
    missing = client.post_json(IMPORT, {"domain": "acme.example"})
    assert missing.status_code == 422
    assert [error["field"] for error in missing.json()["errors"]] == ["token"]
    too_long = client.post_json(IMPORT, {"domain": "a" * 300, "token": "x"})
    assert too_long.status_code == 422
    assert [error["field"] for error in too_long.json()["errors"]] == ["domain"]
    bad_type = client.post_json(IMPORT, {"customer_type": "person", "token": "x"})
    assert [error["field"] for error in bad_type.json()["errors"]] == ["customer_type"]


def test_a_key_without_customers_write_is_refused(tenant, other_tenant):
    leaving = other_tenant.customer
    raw = token_from(leaving, tenant)
    _, key = api_key(owner_of(tenant), Scope.READ)
    response = ApiClient(key).post_json(IMPORT, {"domain": leaving.domain, "token": raw})
    assert response.status_code == 403
    assert "customers:write" in response.json()["detail"]
    leaving.refresh_from_db()
    assert leaving.reseller == other_tenant.reseller
