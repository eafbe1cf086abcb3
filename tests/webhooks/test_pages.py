"""Settings → Webhooks: owners and admins register an endpoint (its secret shown once), choose
its events, read its delivery log, disable, enable, delete it and replay events; other roles
are refused, and another reseller's endpoint or event is the same 404 as a missing one."""

from typing import Any

import pytest
from django.utils import timezone

from resellers.roles import Role
from tests.factories import owner_of
from tests.support.url_sweep import same_page
from webhooks import services
from webhooks.models import EventType, WebhookDelivery, WebhookEndpoint

LIST = "/settings/webhooks/"


@pytest.fixture(autouse=True)
def _local_receivers_allowed(settings: Any) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True


def endpoint_of(tenant: Any) -> WebhookEndpoint:
    return services.endpoint_create(
        membership=owner_of(tenant), url="http://127.0.0.1:9/in", event_types=["invoice.paid"]
    )[0]


def test_an_owner_registers_an_endpoint_and_sees_its_secret_once(tenant, other_tenant, client_for):
    client = client_for(tenant.owner)
    assert client.get(LIST).status_code == 200
    response = client.post(
        LIST,
        {
            "url": "http://127.0.0.1:9/in",
            "description": "CRM",
            "event_types": [EventType.INVOICE_PAID, EventType.CUSTOMER_INVITED],
        },
    )
    assert response.status_code == 200
    endpoint = WebhookEndpoint.objects.get(reseller=tenant.reseller)
    assert endpoint.event_types == ["customer.invited", "invoice.paid"]
    secret = response.context["secret"]
    assert secret.startswith("whsec_") and secret in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    # Never again: not on the list, not on the endpoint's page.
    for url in (LIST, f"{LIST}{endpoint.public_id}/"):
        assert secret not in client.get(url).content.decode()


def test_a_bad_url_is_refused_with_its_message(tenant, other_tenant, client_for, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    response = client_for(tenant.owner).post(
        LIST, {"url": "https://169.254.169.254/latest", "event_types": ["invoice.paid"]}
    )
    assert response.status_code == 400
    assert "private or reserved address" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize("role", [Role.SALES, Role.BILLING])
def test_other_roles_are_refused(role, tenant, other_tenant, client_for):
    endpoint = endpoint_of(tenant)
    client = client_for(tenant.member(role))
    assert client.get(LIST).status_code == 403
    assert client.get(f"{LIST}{endpoint.public_id}/").status_code == 403


def test_an_admin_changes_disables_enables_and_deletes_an_endpoint(
    tenant, other_tenant, client_for
):
    endpoint = endpoint_of(tenant)
    client = client_for(tenant.member(Role.ADMIN))
    page = f"{LIST}{endpoint.public_id}/"
    response = client.post(page, {"types-event_types": ["subscription.created"]})
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.event_types == ["subscription.created"]
    client.post(f"{page}disable/")
    endpoint.refresh_from_db()
    assert endpoint.disabled_reason == WebhookEndpoint.DisabledReason.BY_MEMBER
    client.post(f"{page}enable/")
    endpoint.refresh_from_db()
    assert endpoint.disabled_at is None
    assert client.get(f"{page}delete/").status_code == 200
    assert client.post(f"{page}delete/").status_code == 302
    assert not WebhookEndpoint.objects.exists()


def test_the_delivery_log_and_replays(
    tenant, other_tenant, client_for, django_capture_on_commit_callbacks
):
    endpoint = endpoint_of(tenant)
    event = services.event_record(reseller=tenant.reseller, type="invoice.paid", data={})
    services.events_fan_out(now=timezone.now())
    client = client_for(tenant.owner)
    page = client.get(f"{LIST}{endpoint.public_id}/")
    assert event.public_id in page.content.decode()
    assert [d.event for d in page.context["deliveries"]] == [event]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"{LIST}{endpoint.public_id}/events/{event.public_id}/replay/")
    assert response.status_code == 302
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert delivery.attempt_log.count() == 1  # sent (nothing listens on port 9: a failure)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"{LIST}{endpoint.public_id}/replay/",
            {"replay-start": "2000-01-01T00:00", "replay-end": "2000-01-02T00:00"},
        )
    assert response.status_code == 302
    assert delivery.attempt_log.count() == 1  # nothing in that range


def test_another_resellers_endpoint_and_event_are_the_same_404_as_missing_ones(
    tenant, other_tenant, client_for
):
    theirs = endpoint_of(other_tenant)
    their_event = services.event_record(
        reseller=other_tenant.reseller, type="invoice.paid", data={}
    )
    mine = endpoint_of(tenant)
    client = client_for(tenant.owner)
    for path, method in [
        ("{e}/", "get"),
        ("{e}/delete/", "get"),
        ("{e}/delete/", "post"),
        ("{e}/disable/", "post"),
        ("{e}/enable/", "post"),
        ("{e}/replay/", "post"),
    ]:
        other = getattr(client, method)(LIST + path.format(e=theirs.public_id))
        missing = getattr(client, method)(LIST + path.format(e="A" * 16))
        assert other.status_code == missing.status_code == 404, path
        # The same page but for the address it was asked at (the language form's `next`).
        their_page = other.content.replace(theirs.public_id.encode(), b"A" * 16)
        assert same_page(their_page, missing.content), path
    replay = f"{LIST}{mine.public_id}/events/{{}}/replay/"
    other = client.post(replay.format(their_event.public_id))
    missing = client.post(replay.format("evt_missing"))
    assert other.status_code == missing.status_code == 404
    their_page = other.content.replace(their_event.public_id.encode(), b"evt_missing")
    assert same_page(their_page, missing.content)
    theirs.refresh_from_db()
    assert theirs.disabled_at is None


def test_endpoint_changes_are_audited(tenant, other_tenant):
    from resellers.models import AuditEvent
    from tests.factories import owner_of
    from webhooks import services

    membership = owner_of(tenant)
    endpoint, _secret = services.endpoint_create(
        membership=membership, url="https://hooks.example.com/in", event_types=["customer.invited"]
    )
    services.endpoint_update(
        membership=membership, endpoint=endpoint, event_types=["invoice.issued"]
    )
    services.endpoint_disable(membership=membership, endpoint=endpoint)
    services.endpoint_enable(membership=membership, endpoint=endpoint)
    services.endpoint_delete(membership=membership, endpoint=endpoint)
    actions = list(
        AuditEvent.objects.filter(reseller=tenant.reseller, object_id=endpoint.public_id)
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == [
        "webhook_endpoint.created",
        "webhook_endpoint.updated",
        "webhook_endpoint.disabled",
        "webhook_endpoint.enabled",
        "webhook_endpoint.deleted",
    ]
