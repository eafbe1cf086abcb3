"""The API's audit log (issue 17): the reseller's own events, newest first, with the key that
made each change; filters through a form, keyset cursors, owners and admins only."""

from datetime import UTC, date, datetime

import pytest
import time_machine
from django.utils import timezone

from api.models import ApiKey, Scope
from customers import services as customer_services
from resellers.models import AuditEvent
from resellers.roles import Role
from resellers.services import audit_record
from tests.factories import CustomerFactory, Tenant, member_of, owner_of
from tests.support.api import ApiClient, api_key

LIST = "/api/v1/audit-events/"


@pytest.fixture
def key(tenant: Tenant, other_tenant: Tenant) -> str:
    return api_key(owner_of(tenant), Scope.READ)[1]


def contact(**fields: object) -> dict[str, object]:
    return {
        "organisation": "Acme Holdings",
        "contact_name": "Ada Lovelace",
        "contact_email": "ada@acme.example",
        "country": "NL",
        **fields,
    }


def test_the_log_says_who_did_what_before_and_after_and_through_which_key(
    tenant, other_tenant, key, django_capture_on_commit_callbacks
):
    owner = owner_of(tenant)
    _, writer = api_key(owner, Scope.CUSTOMERS_WRITE, name="PSA sync")
    api_key(owner_of(other_tenant), name="Theirs")  # another reseller's event
    with django_capture_on_commit_callbacks(execute=True):
        created = ApiClient(writer).post_json(
            "/api/v1/customers/", contact(customer_type="domain", domain="acme.example")
        )
    assert created.status_code == 201, created.content
    customer_id = created.json()["id"]
    customer = tenant.reseller.customers.get(public_id=customer_id)
    # Then on the pages: no key.
    customer_services.customer_update_contact(
        membership=owner,
        customer=customer,
        **{**contact(organisation="Acme Group"), "language": "en", "time_zone": "UTC"},
    )

    response = ApiClient(key).get(LIST)
    assert response.status_code == 200
    body = response.json()
    events = AuditEvent.objects.filter(reseller=tenant.reseller)
    assert body["count"] == events.count() == len(body["items"])
    assert "Theirs" not in response.text
    newest, invited = body["items"][0], body["items"][1]
    assert newest["action"] == "customer.updated" and newest["via"] == ""
    assert newest["before"]["organisation"] == "Acme Holdings"
    assert newest["after"]["organisation"] == "Acme Group"
    assert invited == {
        "actor_email": tenant.owner.email,
        "action": "customer.invited",
        "action_label": AuditEvent(action="customer.invited").action_label,
        "object_type": "customers.customer",
        "object_id": customer_id,
        "object_repr": invited["object_repr"],
        "customer_id": customer_id,
        "before": invited["before"],
        "after": invited["after"],
        "ip": "127.0.0.1",
        "via": "PSA sync",
        "created_at": invited["created_at"],
    }
    times = [item["created_at"] for item in body["items"]]
    assert times == sorted(times, reverse=True)


def test_filters_by_actor_customer_action_and_days(tenant, other_tenant, key):
    admin = member_of(tenant.reseller, Role.ADMIN)
    acme = CustomerFactory(reseller=tenant.reseller)
    other = CustomerFactory(reseller=tenant.reseller)
    with time_machine.travel(datetime(2026, 11, 2, 10, tzinfo=UTC), tick=False):
        audit_record(
            actor=tenant.owner,
            reseller=tenant.reseller,
            action="customer.invited",
            obj=acme,
            customer_public_id=acme.public_id,
        )
    with time_machine.travel(datetime(2026, 11, 5, 10, tzinfo=UTC), tick=False):
        audit_record(
            actor=admin.user,
            reseller=tenant.reseller,
            action="customer.updated",
            obj=acme,
            customer_public_id=acme.public_id,
        )
        audit_record(
            actor=admin.user,
            reseller=tenant.reseller,
            action="subscription.suspended",
            obj=other,
            customer_public_id=other.public_id,
        )
    audit_record(  # the same actor, action and customer id, for another reseller
        actor=admin.user,
        reseller=other_tenant.reseller,
        action="customer.updated",
        obj=acme,
        customer_public_id=acme.public_id,
    )
    AuditEvent.objects.filter(action="api_key.created").delete()
    client = ApiClient(key)

    def actions(**query: str) -> list[str]:
        response = client.get(LIST, query)
        assert response.status_code == 200, response.content
        return [item["action"] for item in response.json()["items"]]

    assert actions() == ["subscription.suspended", "customer.updated", "customer.invited"]
    assert actions(actor=admin.user.email.upper()) == [
        "subscription.suspended",
        "customer.updated",
    ]
    assert actions(customer=acme.public_id) == ["customer.updated", "customer.invited"]
    assert actions(action="customer.updated") == ["customer.updated"]
    assert actions(action="customer.") == ["customer.updated", "customer.invited"]
    assert actions(date_from="2026-11-03") == ["subscription.suspended", "customer.updated"]
    assert actions(date_to="2026-11-02") == ["customer.invited"]
    assert actions(date_from="2026-11-02", date_to="2026-11-02") == ["customer.invited"]
    assert actions(date_from="2026-11-06") == []


def test_keyset_cursors_walk_every_event_once_newest_first(tenant, other_tenant, key):
    customer = tenant.customer
    with time_machine.travel(datetime(2026, 11, 2, 10, tzinfo=UTC), tick=False):
        # Many events in one instant, as one request writes them: the id breaks the tie.
        for n in range(60):
            audit_record(
                actor=tenant.owner,
                reseller=tenant.reseller,
                action="customer.updated",
                obj=customer,
                after={"n": n},
            )
    client, seen, cursor = ApiClient(key), [], ""
    while True:
        body = client.get(LIST, {"cursor": cursor, "action": "customer.updated"}).json()
        assert body["count"] == 60
        seen += [item["after"]["n"] for item in body["items"]]
        if not body["next_cursor"]:
            break
        cursor = body["next_cursor"]
    assert seen == list(reversed(range(60)))


def test_bad_filters_are_a_422_naming_each_field(tenant, other_tenant, key):
    client = ApiClient(key)
    response = client.get(LIST, {"customer": "x", "action": "DROP TABLE", "date_from": "soon"})
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    fields = {error["field"] for error in response.json()["errors"]}
    assert fields == {"customer", "action", "date_from"}
    # A NUL is refused before anything else reads the request (api.middleware).
    nul = client.get(LIST, {"actor": "a\x00", "action": "customer."})
    assert nul.status_code == 422
    assert [error["field"] for error in nul.json()["errors"]] == ["actor"]
    reversed_range = client.get(LIST, {"date_from": "2026-11-05", "date_to": "2026-11-01"})
    assert reversed_range.status_code == 422
    assert [error["field"] for error in reversed_range.json()["errors"]] == ["date_to"]
    # Any text is an actor to look for; one that never acted finds nothing.
    assert client.get(LIST, {"actor": "nobody"}).json()["items"] == []


def test_a_key_without_the_read_scope_is_refused_with_403(tenant, other_tenant):
    _, key = api_key(owner_of(tenant), Scope.BILLING_READ)
    response = ApiClient(key).get(LIST)
    assert response.status_code == 403
    assert "read" in response.json()["detail"]


def test_owners_and_admins_only(tenant, other_tenant):
    """Only owners and admins make keys today; were a billing or sales member's key to exist,
    its role would still be refused the log."""
    admin = member_of(tenant.reseller, Role.ADMIN)
    made, key = api_key(admin, Scope.READ)
    client = ApiClient(key)
    assert client.get(LIST).status_code == 200
    for role in (Role.BILLING, Role.SALES):
        admin.role = role
        admin.save()
        ApiKey.objects.filter(pk=made.pk).update(role=role)
        response = client.get(LIST)
        assert response.status_code == 403, role
        assert response["Content-Type"] == "application/problem+json"


def test_days_are_the_portals_days(tenant, other_tenant, key, settings):
    """Half past midnight in the portal's time zone is that day, though still the day before
    in UTC."""
    settings.TIME_ZONE = "Europe/Amsterdam"
    early = timezone.make_aware(datetime(2026, 11, 3, 0, 30))
    assert early.astimezone(UTC).date() == date(2026, 11, 2)
    with time_machine.travel(early, tick=False):
        audit_record(
            actor=tenant.owner,
            reseller=tenant.reseller,
            action="customer.updated",
            obj=tenant.customer,
        )
    client = ApiClient(key)

    def actions(**query: str) -> list[str]:
        return [item["action"] for item in client.get(LIST, query).json()["items"]]

    assert actions(date_from="2026-11-03", date_to="2026-11-03") == ["customer.updated"]
    assert actions(date_to="2026-11-02", action="customer.updated") == []
