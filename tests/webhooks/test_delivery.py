"""Webhook deliveries to a real HTTP receiver (issue 17): signed with the Standard Webhooks
scheme and verified with its library, retried with backoff after a 500 or a timeout, the same
webhook-id on every try, the endpoint disabled after three days of failures (its owners and
admins emailed once), nothing lost when the broker is down at commit, and another reseller's
endpoints never called."""

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from standardwebhooks.webhooks import Webhook

import core.queue
from core.models import OutboundEmail
from core.sweeper import work_sweep
from customers.services import customer_invite
from resellers.roles import Role
from tests.factories import MembershipFactory, Tenant, owner_of
from tests.support.webhook_receiver import Receiver, webhook_receiver
from webhooks import services, tasks, transport
from webhooks.models import (
    EventType,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)

pytestmark = pytest.mark.postgres

NEW = {
    "contact_name": "Marta Ruiz",
    "contact_email": "marta@acme-iberia.es",
    "customer_type": "domain",
    "domain": "acme-iberia.es",
    "organisation": "Acme Iberia",
    "language": "es",
    "time_zone": "Europe/Madrid",
    "country": "ES",
}
SECOND = {"domain": "b.example", "contact_email": "b@b.example"}
START = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _local_receivers_allowed(settings: Any) -> None:
    """The receiver listens on 127.0.0.1: allowed here explicitly (production refuses it;
    test_ssrf.py covers the refusals with this off)."""
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True


def endpoint_for(tenant: Tenant, url: str, types: list[str] | None = None) -> tuple[Any, str]:
    return services.endpoint_create(
        membership=owner_of(tenant),
        url=url,
        event_types=types or [EventType.CUSTOMER_INVITED],
        description="CRM",
    )


def invite(tenant: Tenant, capture: Any, **fields: Any) -> Any:
    with capture(execute=True):
        return customer_invite(membership=owner_of(tenant), **{**NEW, **fields})


def verified(receiver: Receiver, secret: str, since: int = 0) -> list[dict[str, Any]]:
    """Every request the receiver got (from the `since`-th), verified with the library at the
    current time (raises if one is not)."""
    return [Webhook(secret).verify(r.body, r.headers) for r in receiver.received[since:]]


def run_due_job() -> int:
    return tasks.webhook_deliveries_send_due.run()


def test_an_invitation_is_delivered_signed(
    tenant, other_tenant, django_capture_on_commit_callbacks
):
    with webhook_receiver([200]) as receiver, time_machine.travel(START, tick=False):
        endpoint, secret = endpoint_for(tenant, receiver.url)
        assert secret.startswith("whsec_")
        customer = invite(tenant, django_capture_on_commit_callbacks)

        assert len(receiver.received) == 1
        (payload,) = verified(receiver, secret)
    request = receiver.received[0]
    assert request.headers["Content-Type"] == "application/json"
    assert payload["type"] == "customer.invited"
    assert payload["timestamp"] == START.isoformat()
    assert payload["data"]["customer"]["id"] == customer.public_id
    assert customer.public_id != str(customer.pk)  # a public id, never the primary key
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert request.headers["webhook-id"] == delivery.event.public_id
    assert request.headers["webhook-timestamp"] == str(int(START.timestamp()))
    assert delivery.status == WebhookDelivery.Status.DELIVERED
    assert (delivery.attempts, delivery.response_status, delivery.response_body) == (1, 200, "ok")
    # A wrong secret does not verify.
    with pytest.raises(Exception, match="signature"), time_machine.travel(START, tick=False):
        Webhook(transport.secret_new()).verify(request.body, request.headers)


def test_the_secret_is_stored_encrypted(tenant, other_tenant):
    endpoint, secret = endpoint_for(tenant, "http://127.0.0.1:9/hooks")
    stored = WebhookEndpoint.objects.values_list("secret_sealed", flat=True).get(pk=endpoint.pk)
    assert secret not in stored
    assert secret.removeprefix("whsec_") not in stored
    assert transport.secret_open(stored) == secret


def test_a_500_then_a_200_is_retried_with_backoff_under_one_id(
    tenant, other_tenant, django_capture_on_commit_callbacks
):
    with webhook_receiver([500, 200]) as receiver, time_machine.travel(START, tick=False) as clock:
        endpoint, secret = endpoint_for(tenant, receiver.url)
        invite(tenant, django_capture_on_commit_callbacks)
        delivery = WebhookDelivery.objects.get(endpoint=endpoint)
        assert delivery.status == WebhookDelivery.Status.PENDING
        assert delivery.response_status == 500
        assert len(delivery.response_body) == 1024  # the first 1 KB of 3000 bytes
        assert delivery.next_attempt_at == START + timedelta(seconds=5)

        clock.move_to(START + timedelta(seconds=4))
        assert run_due_job() == 0  # not due yet
        assert len(receiver.received) == 1

        clock.move_to(START + timedelta(seconds=5))
        assert run_due_job() == 1
        verified(receiver, secret)
    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (WebhookDelivery.Status.DELIVERED, 2)
    log = list(delivery.attempt_log.order_by("attempted_at"))
    assert [(a.response_status, a.attempted_at) for a in log] == [
        (500, START),
        (200, START + timedelta(seconds=5)),
    ]
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).failing_since is None


def test_a_timeout_is_retried(
    tenant, other_tenant, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(transport, "READ_TIMEOUT", 0.3)
    answers: list[Any] = [("sleep", 1.0, 200), 200]
    with webhook_receiver(answers) as receiver, time_machine.travel(START, tick=False) as clock:
        endpoint, secret = endpoint_for(tenant, receiver.url)
        invite(tenant, django_capture_on_commit_callbacks)
        delivery = WebhookDelivery.objects.get(endpoint=endpoint)
        assert delivery.status == WebhookDelivery.Status.PENDING
        assert delivery.response_status is None
        assert delivery.error == "Timed out."

        clock.move_to(delivery.next_attempt_at)
        assert run_due_job() == 1
        verified(receiver, secret)
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.DELIVERED
    ids = {request.headers["webhook-id"] for request in receiver.received}
    assert ids == {delivery.event.public_id}


def test_three_days_of_failures_disable_the_endpoint_and_email_its_owners_once(
    tenant, other_tenant, django_capture_on_commit_callbacks
):
    admin = MembershipFactory(reseller=tenant.reseller, role=Role.ADMIN).user
    MembershipFactory(reseller=tenant.reseller, role=Role.SALES)
    with webhook_receiver([500]) as receiver, time_machine.travel(START, tick=False) as clock:
        endpoint, _secret = endpoint_for(tenant, receiver.url)
        invite(tenant, django_capture_on_commit_callbacks)
        delivery = WebhookDelivery.objects.get(endpoint=endpoint)
        times = [START]
        while True:
            delivery.refresh_from_db()
            if delivery.status != WebhookDelivery.Status.PENDING:
                break
            assert delivery.next_attempt_at is not None
            clock.move_to(delivery.next_attempt_at)
            times.append(delivery.next_attempt_at)
            # Just before the end the endpoint is still enabled.
            endpoint.refresh_from_db()
            assert endpoint.disabled_at is None
            with django_capture_on_commit_callbacks(execute=True):
                assert run_due_job() == 1
        # A later event finds it disabled: not sent, and no second email.
        invite(
            tenant,
            django_capture_on_commit_callbacks,
            domain="b.example",
            contact_email="b@b.example",
        )
        with django_capture_on_commit_callbacks(execute=True):
            assert run_due_job() == 0
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert gaps[:6] == [
        timedelta(seconds=5),
        timedelta(minutes=5),
        timedelta(minutes=30),
        timedelta(hours=2),
        timedelta(hours=5),
        timedelta(hours=10),
    ]
    assert times[-1] == START + timedelta(days=3)  # the last try on the third day
    assert len(receiver.received) == len(times) == delivery.attempts
    assert delivery.status == WebhookDelivery.Status.FAILED
    endpoint.refresh_from_db()
    assert endpoint.disabled_at == START + timedelta(days=3)
    assert endpoint.disabled_reason == WebhookEndpoint.DisabledReason.FAILING
    emails = OutboundEmail.objects.filter(template="webhook_endpoint_disabled")
    assert sorted(emails.values_list("to", flat=True)) == sorted([tenant.owner.email, admin.email])
    assert all(receiver.url in email.body_text for email in emails)
    assert not WebhookDelivery.objects.filter(endpoint=endpoint, status="pending").exists()


def test_the_event_waits_in_the_outbox_while_the_broker_is_down(
    tenant, other_tenant, django_capture_on_commit_callbacks, monkeypatch
):
    def refuse(self: Any, *args: Any, **kwargs: Any) -> None:
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    with webhook_receiver([200]) as receiver, time_machine.travel(START, tick=False) as clock:
        endpoint, secret = endpoint_for(tenant, receiver.url)
        with monkeypatch.context() as broker_down:
            broker_down.setattr("celery.app.task.Task.apply_async", refuse)
            broker_down.setattr(core.queue._Broker, "retry_at", 0.0)
            customer = invite(tenant, django_capture_on_commit_callbacks)
            assert customer.pk  # the change itself succeeded
        assert receiver.received == []
        event = WebhookEvent.objects.get()
        assert event.fanned_out_at is None  # in the outbox, waiting

        # Redis is back: beat's work sweep, a minute later, sends it; again, nothing more.
        clock.shift(60)
        assert work_sweep()["webhooks"] == 1
        assert work_sweep()["webhooks"] == 0
        assert run_due_job() == 0
        (payload,) = verified(receiver, secret)
    assert payload["data"]["customer"]["id"] == customer.public_id
    assert receiver.received[0].headers["webhook-id"] == event.public_id
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert (delivery.status, delivery.attempts) == (WebhookDelivery.Status.DELIVERED, 1)


def test_another_resellers_endpoint_never_receives_the_event(
    tenant, other_tenant, django_capture_on_commit_callbacks
):
    with (
        webhook_receiver([200]) as mine,
        webhook_receiver([200]) as theirs,
        time_machine.travel(START, tick=False),
    ):
        endpoint_for(tenant, mine.url)
        other_endpoint, _ = endpoint_for(other_tenant, theirs.url)
        invite(tenant, django_capture_on_commit_callbacks)
        run_due_job()
    assert len(mine.received) == 1
    assert theirs.received == []
    assert not WebhookDelivery.objects.filter(endpoint=other_endpoint).exists()


def test_only_the_subscribed_types_and_enabled_endpoints_get_deliveries(
    tenant, other_tenant, django_capture_on_commit_callbacks
):
    with webhook_receiver([200]) as receiver, time_machine.travel(START, tick=False):
        listening, _ = endpoint_for(tenant, receiver.url, [EventType.CUSTOMER_INVITED])
        _deaf, _ = endpoint_for(tenant, receiver.url, [EventType.INVOICE_PAID])
        off, _ = endpoint_for(tenant, receiver.url, [EventType.CUSTOMER_INVITED])
        services.endpoint_disable(membership=owner_of(tenant), endpoint=off)
        invite(tenant, django_capture_on_commit_callbacks)
    assert list(WebhookDelivery.objects.values_list("endpoint", flat=True)) == [listening.pk]
    assert len(receiver.received) == 1


def test_replay_sends_the_same_event_again_with_its_id(
    tenant, other_tenant, django_capture_on_commit_callbacks
):
    with webhook_receiver([200]) as receiver, time_machine.travel(START, tick=False) as clock:
        endpoint, secret = endpoint_for(tenant, receiver.url)
        invite(tenant, django_capture_on_commit_callbacks)
        invite(
            tenant,
            django_capture_on_commit_callbacks,
            domain="b.example",
            contact_email="b@b.example",
        )
        first = WebhookDelivery.objects.order_by("pk")[0]
        verified(receiver, secret)
        clock.shift(3600)
        with django_capture_on_commit_callbacks(execute=True):
            services.event_replay(membership=owner_of(tenant), endpoint=endpoint, event=first.event)
        assert len(receiver.received) == 3
        with django_capture_on_commit_callbacks(execute=True):
            replayed = services.events_replay_range(
                membership=owner_of(tenant),
                endpoint=endpoint,
                start=START,
                end=START + timedelta(minutes=1),
            )
        assert replayed == 2
        verified(receiver, secret, since=2)
    ids = [request.headers["webhook-id"] for request in receiver.received]
    assert ids[2] == ids[0] == first.event.public_id
    assert sorted(ids[3:]) == sorted(ids[:2])
    assert WebhookAttempt.objects.count() == 5
