"""Stripe webhooks at /billing/stripe/webhook/: signatures verified by the library with a real
HMAC (signed here exactly as Stripe signs), each event stored once by id and processed once,
and handled correctly in any order. Stripe's API is the fake HTTP server of
tests/support/fake_stripe.py.
"""

import itertools
import json
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from billing.models import GatewayCustomer, Invoice, Payment, PaymentCard, StripeEvent
from billing.payments import services, tasks
from billing.payments.gateways import GatewayUnavailable
from resellers.models import AuditEvent
from subscriptions.models import Subscription
from tests.factories import InvoiceFactory, SubscriptionFactory, Tenant
from tests.support.concurrency import in_parallel
from tests.support.fake_stripe import WEBHOOK_SECRET, FakeStripe, event, sign
from tests.support.sessions import client_signed_in

WEBHOOK = "/billing/stripe/webhook/"


def deliver(client: Client, payload: str, signature: str | None = None) -> Any:
    headers: dict[str, Any] = {} if signature is None else {"HTTP_STRIPE_SIGNATURE": signature}
    return client.post(WEBHOOK, payload, content_type="application/json", **headers)


def signed(client: Client, payload: str) -> Any:
    return deliver(client, payload, sign(payload))


def test_the_webhook_url():
    assert reverse("payments:stripe_webhook") == WEBHOOK


# Signatures


def _payload() -> str:
    return event("charge.refunded", {"id": "ch_1", "object": "charge"}, event_id="evt_sig")


@pytest.mark.parametrize(
    "make_signature",
    [
        pytest.param(lambda payload: None, id="missing"),
        pytest.param(lambda payload: "", id="empty"),
        pytest.param(lambda payload: "garbage", id="garbage"),
        pytest.param(lambda payload: sign(payload, secret="whsec_someone_else"), id="wrong-secret"),
        pytest.param(lambda payload: sign(payload.replace("ch_1", "ch_2")), id="other-body"),
        pytest.param(lambda payload: sign(payload, timestamp=int(time.time()) - 301), id="stale"),
        pytest.param(lambda payload: sign(payload).replace("v1=", "v0="), id="other-scheme"),
    ],
)
def test_a_bad_missing_or_stale_signature_is_400_and_nothing_is_written(
    db, fake_stripe, client, make_signature: Callable[[str], str | None]
):
    payload = _payload()
    response = deliver(client, payload, make_signature(payload))
    assert response.status_code == 400
    assert not StripeEvent.objects.exists()
    assert not AuditEvent.objects.exists()
    assert fake_stripe.requests == []


def test_a_fresh_signature_is_accepted_and_a_signed_non_event_is_not(db, fake_stripe, client):
    payload = _payload()
    assert (
        deliver(client, payload, sign(payload, timestamp=int(time.time()) - 200)).status_code == 200
    )
    assert StripeEvent.objects.count() == 1
    assert signed(client, '{"hello": "world"}').status_code == 400
    assert signed(client, "not json").status_code == 400
    assert StripeEvent.objects.count() == 1


def test_without_stripe_keys_every_webhook_is_refused(db, client, settings):
    assert settings.STRIPE_WEBHOOK_SECRET == ""
    payload = _payload()
    assert deliver(client, payload, sign(payload)).status_code == 400
    assert deliver(client, payload, sign(payload, secret="")).status_code == 400
    assert not StripeEvent.objects.exists()


def test_only_post(db, fake_stripe, client):
    assert client.get(WEBHOOK).status_code == 405


def test_an_event_is_stored_once_and_a_repeat_is_acknowledged(db, fake_stripe, client):
    payload = _payload()
    assert signed(client, payload).status_code == 200
    assert signed(client, payload).status_code == 200
    stored = StripeEvent.objects.get()
    assert (stored.event_id, stored.type) == ("evt_sig", "charge.refunded")
    assert stored.payload["data"]["object"]["id"] == "ch_1"
    assert stored.processed_at is not None  # kept only: refunds are credit notes, by staff


# Scenarios: the objects at the fake Stripe and the matching rows in the portal


def card_setup(client: Client, fake: FakeStripe, **card: Any) -> str:
    """The card page made a SetupIntent and the browser confirmed it; nothing posted back."""
    page = client.get(reverse("payments:card_change"))
    return fake.card_confirmed(page.context["setup"].client_secret, **card)


def setup_object(fake: FakeStripe, setup_id: str) -> dict[str, Any]:
    return dict(fake.setup_intents[setup_id])


def payment_intent(
    fake: FakeStripe, *, payment_key: str, status: str, customer: str, payment_method: str
) -> dict[str, Any]:
    """A PaymentIntent at Stripe whose answer the portal never recorded."""
    payment_intent_id = f"pi_{payment_key.replace(':', '_').replace('-', '_')}"
    failed = status != "succeeded"
    fake.payment_intents[payment_intent_id] = {
        "id": payment_intent_id,
        "object": "payment_intent",
        "status": status,
        "customer": customer,
        "payment_method": payment_method,
        "metadata": {"payment_key": payment_key},
        "created": int(time.time()),
        "last_payment_error": {"message": "Your card was declined."} if failed else None,
    }
    return fake.payment_intents[payment_intent_id]


def unpaid_invoice(tenant: Tenant, subscription: Subscription, attempts: int) -> Invoice:
    return InvoiceFactory(
        subscription=subscription,
        status=Invoice.Status.PAYMENT_FAILED,
        payment_attempts=attempts,
    )


def pending_payment(invoice: Invoice, attempt: int, **fields: Any) -> Payment:
    return Payment.objects.create(
        invoice=invoice,
        attempt=attempt,
        gateway="stripe",
        idempotency_key=f"{invoice.number}:{attempt}",
        amount=invoice.total,
        currency=invoice.currency,
        **fields,
    )


# Each event delivered ten times at once: stored once, processed once


def scenario_payment_succeeded(tenant: Tenant, fake: FakeStripe) -> tuple[str, Callable[[], None]]:
    subscription = SubscriptionFactory(
        customer=tenant.customer,
        status=Subscription.Status.SUSPENDED,
        suspension_reason=Subscription.SuspensionReason.PENDING_PAYMENT,
    )
    invoice = unpaid_invoice(tenant, subscription, attempts=5)
    payment = pending_payment(invoice, 5)
    obj = payment_intent(
        fake,
        payment_key=payment.idempotency_key,
        status="succeeded",
        customer="cus_x",
        payment_method="pm_x",
    )

    def check() -> None:
        invoice.refresh_from_db()
        subscription.refresh_from_db()
        assert invoice.status == Invoice.Status.PAID
        assert Payment.objects.get(pk=payment.pk).status == Payment.Status.SUCCEEDED
        assert subscription.status == Subscription.Status.ACTIVE
        assert AuditEvent.objects.filter(action="invoice.paid").count() == 1
        assert AuditEvent.objects.filter(action="subscription.reactivated").count() == 1
        assert fake.count("GET", f"/v1/payment_intents/{obj['id']}") == 1

    return event("payment_intent.succeeded", obj, event_id="evt_pi_succeeded"), check


def scenario_setup_succeeded(tenant: Tenant, fake: FakeStripe) -> tuple[str, Callable[[], None]]:
    setup_id = card_setup(client_signed_in(tenant.owner), fake, last4="4000")

    def check() -> None:
        card = PaymentCard.objects.get(reseller=tenant.reseller)
        assert (card.last4, card.is_default) == ("4000", True)
        assert AuditEvent.objects.filter(action="payment_card.saved").count() == 1
        assert fake.count("GET", f"/v1/setup_intents/{setup_id}") == 1

    return event("setup_intent.succeeded", setup_object(fake, setup_id), event_id="evt_seti"), check


def scenario_card_detached(tenant: Tenant, fake: FakeStripe) -> tuple[str, Callable[[], None]]:
    client = client_signed_in(tenant.owner)
    setup_id = card_setup(client, fake)
    client.post(reverse("payments:card_change"), {"setup_intent": setup_id})
    card = PaymentCard.objects.get(reseller=tenant.reseller)
    payment_method = fake.payment_methods[card.gateway_payment_method_id]
    payment_method["customer"] = None  # removed in Stripe's dashboard

    def check() -> None:
        assert not PaymentCard.objects.exists()
        assert AuditEvent.objects.filter(action="payment_card.removed").count() == 1
        assert fake.count("GET", f"/v1/payment_methods/{payment_method['id']}") == 1

    return event("payment_method.detached", dict(payment_method), event_id="evt_pm_detached"), check


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "scenario",
    [scenario_payment_succeeded, scenario_setup_succeeded, scenario_card_detached],
    ids=["payment_intent.succeeded", "setup_intent.succeeded", "payment_method.detached"],
)
def test_each_event_delivered_ten_times_at_once_is_stored_once_and_processed_once(
    tenant, other_tenant, fake_stripe, scenario
):
    payload, check = scenario(tenant, fake_stripe)
    signature = sign(payload)

    results, errors = in_parallel(10, lambda n: deliver(Client(), payload, signature).status_code)
    assert errors == []
    assert results == [200] * 10
    stored = StripeEvent.objects.get()
    assert stored.processed_at is not None and stored.error == ""
    check()


# Any order: a subscription's events shuffled end in the same state


def test_a_subscriptions_events_in_any_order_end_in_the_same_state(
    tenant, other_tenant, fake_stripe
):
    """The reseller changed its card (A → B; A detached at Stripe), its unpaid invoice's 4th
    attempt failed and the 5th, on card B, succeeded; the portal recorded none of it but card A.
    Stripe then delivers the five events in every order."""
    client = client_signed_in(tenant.owner)
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False) as traveller:
        setup_a = card_setup(client, fake_stripe, last4="1111")
        client.post(reverse("payments:card_change"), {"setup_intent": setup_a})
        card_a = PaymentCard.objects.get()
        traveller.shift(timedelta(minutes=5))
        setup_b = card_setup(client, fake_stripe, last4="2222")
    pm_a = card_a.gateway_payment_method_id
    pm_b = fake_stripe.setup_intents[setup_b]["payment_method"]
    fake_stripe.payment_methods[pm_a]["customer"] = None  # card A detached at Stripe
    cus = GatewayCustomer.objects.get().gateway_customer_id

    subscription = SubscriptionFactory(
        customer=tenant.customer,
        status=Subscription.Status.SUSPENDED,
        suspension_reason=Subscription.SuspensionReason.PENDING_PAYMENT,
    )
    invoice = unpaid_invoice(tenant, subscription, attempts=5)
    for attempt in (1, 2, 3):
        pending_payment(invoice, attempt, status=Payment.Status.FAILED)
    fourth = pending_payment(invoice, 4)
    fifth = pending_payment(invoice, 5)
    pi_4 = payment_intent(
        fake_stripe,
        payment_key=fourth.idempotency_key,
        status="requires_payment_method",
        customer=cus,
        payment_method=pm_a,
    )
    pi_5 = payment_intent(
        fake_stripe,
        payment_key=fifth.idempotency_key,
        status="succeeded",
        customer=cus,
        payment_method=pm_b,
    )
    events = [
        event("setup_intent.succeeded", setup_object(fake_stripe, setup_a), event_id="evt_1"),
        event("setup_intent.succeeded", setup_object(fake_stripe, setup_b), event_id="evt_2"),
        event("payment_method.detached", dict(fake_stripe.payment_methods[pm_a]), event_id="evt_3"),
        event("payment_intent.payment_failed", pi_4, event_id="evt_4"),
        event("payment_intent.succeeded", pi_5, event_id="evt_5"),
    ]

    def state() -> tuple[Any, ...]:
        invoice.refresh_from_db()
        subscription.refresh_from_db()
        return (
            sorted(
                PaymentCard.objects.values_list("gateway_payment_method_id", "last4", "is_default")
            ),
            invoice.status,
            list(invoice.payments.order_by("attempt").values_list("status", flat=True)),
            subscription.status,
            subscription.suspension_reason,
        )

    expected = (
        [(pm_b, "2222", True)],
        Invoice.Status.PAID,
        ["failed", "failed", "failed", "failed", "succeeded"],
        Subscription.Status.ACTIVE,
        "",
    )
    webhook = Client()
    # Every event in every position, every pair both ways (the rotations of the order and of
    # its reverse), and more of the 120 orders picked at random (~50 ms a delivery here).
    forward = list(range(len(events)))
    orders = {tuple(forward[k:] + forward[:k]) for k in range(len(forward))}
    orders |= {tuple(order[::-1]) for order in orders}
    rest = sorted(set(itertools.permutations(forward)) - orders)
    orders |= set(random.Random(5).sample(rest, 10))
    assert len(orders) == 20
    for order in sorted(orders):
        with transaction.atomic():
            for index in order:
                assert signed(webhook, events[index]).status_code == 200
            assert StripeEvent.objects.filter(processed_at__isnull=False).count() == 5, order
            assert state() == expected, order
            transaction.set_rollback(True)


def test_a_late_setup_never_replaces_a_newer_card(tenant, other_tenant, fake_stripe):
    """Card A's setup was reported late, after card B was saved, and card A is still attached
    at Stripe (its detach failed): B stays the card."""
    client = client_signed_in(tenant.owner)
    with time_machine.travel(datetime(2026, 3, 2, 9, 0, tzinfo=UTC), tick=False) as traveller:
        setup_a = card_setup(client, fake_stripe, last4="1111")
        traveller.shift(timedelta(minutes=5))
        setup_b = card_setup(client, fake_stripe, last4="2222")
        client.post(reverse("payments:card_change"), {"setup_intent": setup_b})
    payload = event("setup_intent.succeeded", setup_object(fake_stripe, setup_a), event_id="evt_a")
    assert signed(Client(), payload).status_code == 200
    assert list(PaymentCard.objects.values_list("last4", flat=True)) == ["2222"]
    # A setup started after the saved card did replace it.
    with time_machine.travel(timezone.now() + timedelta(minutes=1)):
        setup_c = card_setup(client, fake_stripe, last4="3333")
    payload = event("setup_intent.succeeded", setup_object(fake_stripe, setup_c), event_id="evt_c")
    assert signed(Client(), payload).status_code == 200
    assert list(PaymentCard.objects.values_list("last4", "is_default")) == [("3333", True)]


def test_a_renewed_card_shows_its_newest_expiry_whatever_the_order(
    tenant, other_tenant, fake_stripe
):
    client = client_signed_in(tenant.owner)
    setup_id = card_setup(client, fake_stripe, exp_year=2026)
    client.post(reverse("payments:card_change"), {"setup_intent": setup_id})
    card = PaymentCard.objects.get()
    payment_method = fake_stripe.payment_methods[card.gateway_payment_method_id]
    payment_method["card"] = {**payment_method["card"], "exp_year": 2028}
    older = event("payment_method.automatically_updated", dict(payment_method), event_id="evt_1")
    payment_method["card"] = {**payment_method["card"], "exp_year": 2030}
    newer = event("payment_method.automatically_updated", dict(payment_method), event_id="evt_2")
    # The newer update arrives first; the older one, late, must not bring 2028 back.
    for payload in (newer, older):
        assert signed(Client(), payload).status_code == 200
    card.refresh_from_db()
    assert card.exp_year == 2030


def test_a_setup_whose_card_was_detached_since_saves_nothing(tenant, other_tenant, fake_stripe):
    setup_id = card_setup(client_signed_in(tenant.owner), fake_stripe)
    obj = setup_object(fake_stripe, setup_id)
    fake_stripe.payment_methods[obj["payment_method"]]["customer"] = None
    assert (
        signed(Client(), event("setup_intent.succeeded", obj, event_id="evt_d")).status_code == 200
    )
    assert StripeEvent.objects.get().processed_at is not None
    assert not PaymentCard.objects.exists()


def test_an_event_left_unprocessed_is_processed_by_the_daily_job(tenant, other_tenant, fake_stripe):
    setup_id = card_setup(client_signed_in(tenant.owner), fake_stripe)
    payload = event("setup_intent.succeeded", setup_object(fake_stripe, setup_id), event_id="evt_x")
    fake_stripe.unreachable = True
    stored, created = services.stripe_event_store(event=json.loads(payload))
    assert created
    with pytest.raises(GatewayUnavailable):
        services.stripe_event_process(stripe_event_id=stored.pk)
    stored.refresh_from_db()
    assert stored.processed_at is None and not PaymentCard.objects.exists()
    fake_stripe.unreachable = False
    assert tasks.payments_retry_due() == 0  # received just now: its own task may still run
    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        assert tasks.payments_retry_due() == 1
    stored.refresh_from_db()
    assert stored.processed_at is not None
    assert PaymentCard.objects.get(reseller=tenant.reseller).is_default


def test_an_event_about_something_else_is_kept_and_ignored(tenant, other_tenant, fake_stripe):
    payload = event(
        "payment_intent.succeeded",
        {"id": "pi_elsewhere", "object": "payment_intent", "metadata": {}},
        event_id="evt_other",
    )
    assert signed(Client(), payload).status_code == 200
    assert StripeEvent.objects.get().processed_at is not None
    assert fake_stripe.requests == []
    assert WEBHOOK_SECRET  # the fixture configured Stripe
