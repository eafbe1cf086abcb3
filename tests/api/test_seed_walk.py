"""The issue's walk (17), as a reseller's script does it: the owner makes a key in Settings and
registers an endpoint; through the API it invites a customer, the customer accepts on its side,
the script previews and buys, previews and adds licences, lists the invoices and downloads the
PDF; the endpoint receives each matching event, signed (verified with the standardwebhooks
library), once each."""

import re
from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from billing.services import billing_run
from billing.vat import vat_rates_seed
from resellers.models import AuditEvent
from tests.factories import UserFactory, owner_of
from tests.support.api import ApiClient
from tests.support.webhook_receiver import webhook_receiver
from webhooks import services as webhooks
from webhooks.models import EventType

pytestmark = pytest.mark.postgres

START = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
EVENTS = [
    EventType.CUSTOMER_INVITED,
    EventType.CUSTOMER_ACCEPTED,
    EventType.SUBSCRIPTION_CREATED,
    EventType.SUBSCRIPTION_LICENCES_CHANGED,
    EventType.INVOICE_ISSUED,
]


def key_made_in_settings(client: Any) -> str:
    page = client.post(
        "/settings/api-keys/",
        {
            "name": "PSA sync",
            "scopes": ["read", "customers:write", "subscriptions:write", "billing:read"],
        },
    )
    assert page.status_code == 200, page.content.decode()
    found = re.search(r'id="api-key-value" value="(ppk_[^"]+)"', page.content.decode())
    assert found is not None, "the new key is shown once, on the page that made it"
    return found[1]


def test_a_script_walks_the_seed_flows_and_hears_each_event_signed(
    tenant,
    other_tenant,
    plans,
    client_for,
    settings,
    django_capture_on_commit_callbacks,
    mailoutbox,
):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True  # the receiver listens on 127.0.0.1
    vat_rates_seed()
    with webhook_receiver([200]) as receiver, time_machine.travel(START, tick=False):
        key = key_made_in_settings(client_for(tenant.owner))
        _, secret = webhooks.endpoint_create(
            membership=owner_of(tenant), url=receiver.url, event_types=EVENTS, description="PSA"
        )
        api = ApiClient(key)
        with django_capture_on_commit_callbacks(execute=True):
            created = api.post_json(
                "/api/v1/customers/",
                {
                    "organisation": "Acme Iberia",
                    "contact_name": "Marta Ruiz",
                    "contact_email": "marta@acme-iberia.es",
                    "domain": "acme-iberia.es",
                    "country": "ES",
                },
            )
        assert created.status_code == 201, created.content
        customer_id = created.json()["id"]

        # The customer accepts on its side, from the link in the email.
        token = mailoutbox[-1].body.split("/invitation/")[1].split("/")[0]
        contact = client_for(UserFactory(email="marta@acme-iberia.es"))
        with django_capture_on_commit_callbacks(execute=True):
            assert contact.post(f"/invitation/{token}/", {"terms": "on"}).status_code == 302
        assert api.get(f"/api/v1/customers/{customer_id}").json()["status"] == "active"

        plan = next(
            p for p in api.get("/api/v1/subscriptions/plans").json() if p["kind"] == "flexible"
        )
        preview = api.get(
            "/api/v1/subscriptions/preview",
            {"customer": customer_id, "plan": plan["id"], "licences": 5},
        )
        assert preview.status_code == 200, preview.content
        with django_capture_on_commit_callbacks(execute=True):
            bought = api.post_json(
                "/api/v1/subscriptions/",
                {
                    "customer": customer_id,
                    "plan": plan["id"],
                    "licences": 5,
                    "payer": "reseller_card",
                },
                headers={"Idempotency-Key": "buy-acme-1"},
            )
        assert bought.status_code == 201, bought.content
        subscription = bought.json()["subscription"]

        more = api.get(
            f"/api/v1/subscriptions/{subscription['id']}/licences/preview", {"licences": 8}
        )
        assert more.status_code == 200, more.content
        with django_capture_on_commit_callbacks(execute=True):
            added = api.post_json(
                f"/api/v1/subscriptions/{subscription['id']}/licences",
                {"licences": 8, "expected_licences": 5},
                headers={"Idempotency-Key": "add-acme-1"},
            )
        assert added.status_code == 200, added.content

        with django_capture_on_commit_callbacks(execute=True):
            billing_run(day=timezone.localdate())
        invoices = api.get("/api/v1/invoices/", {"customer": customer_id}).json()["items"]
        assert len(invoices) == 1
        pdf = api.get(f"/api/v1/invoices/{invoices[0]['id']}/pdf")
        assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
        assert pdf.getvalue().startswith(b"%PDF")

        received = [Webhook(secret).verify(r.body, r.headers) for r in receiver.received]
    assert [event["type"] for event in received] == [str(t) for t in EVENTS]
    assert len({r.headers["webhook-id"] for r in receiver.received}) == len(EVENTS)
    assert received[0]["data"]["customer"]["id"] == customer_id
    # The key's writes are audited under its name.
    assert set(
        AuditEvent.objects.filter(reseller=tenant.reseller, via="PSA sync").values_list(
            "action", flat=True
        )
    ) >= {"customer.invited", "subscription.bought", "subscription.licences_added"}
