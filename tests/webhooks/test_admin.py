"""Staff see webhooks read-only: endpoints without their secret, events, and deliveries with
their attempts (the failed ones by filter)."""

from typing import Any

import pytest

from tests.factories import owner_of
from webhooks import services, transport
from webhooks.models import WebhookDelivery, WebhookEndpoint


@pytest.fixture(autouse=True)
def _local_receivers_allowed(settings: Any) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True


def test_staff_read_endpoints_events_and_failed_deliveries_without_the_secret(
    staff_client, tenant, other_tenant
):
    endpoint, secret = services.endpoint_create(
        membership=owner_of(tenant), url="http://127.0.0.1:9/in", event_types=["invoice.paid"]
    )
    event = services.event_record(reseller=tenant.reseller, type="invoice.paid", data={})
    services.events_fan_out(now=event.created_at)
    delivery = WebhookDelivery.objects.get()
    services._attempt_record(
        delivery.pk,
        attempted_at=event.created_at,
        answer=transport.Answer(status=503, body="down", error="", duration_ms=12),
    )
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="failed")
    sealed = WebhookEndpoint.objects.values_list("secret_sealed", flat=True).get()
    pages = {
        "/admin/webhooks/webhookendpoint/": 200,
        f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/": 200,
        "/admin/webhooks/webhookevent/": 200,
        f"/admin/webhooks/webhookevent/{event.pk}/change/": 200,
        "/admin/webhooks/webhookdelivery/?status__exact=failed": 200,
        f"/admin/webhooks/webhookdelivery/{delivery.pk}/change/": 200,
        "/admin/webhooks/webhookendpoint/add/": 403,
        f"/admin/webhooks/webhookendpoint/{endpoint.pk}/delete/": 403,
    }
    for url, status in pages.items():
        response = staff_client.get(url)
        assert response.status_code == status, url
        assert secret not in response.content.decode(), url
        assert sealed not in response.content.decode(), url
    failed = staff_client.get("/admin/webhooks/webhookdelivery/?status__exact=failed")
    assert event.public_id in failed.content.decode()
    detail = staff_client.get(f"/admin/webhooks/webhookdelivery/{delivery.pk}/change/")
    assert "503" in detail.content.decode() and "down" in detail.content.decode()
    # Nothing changes through a POST either.
    staff_client.post(
        f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/", {"url": "https://evil.example"}
    )
    endpoint.refresh_from_db()
    assert endpoint.url == "http://127.0.0.1:9/in"
