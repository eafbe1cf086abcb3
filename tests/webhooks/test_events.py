"""Each change the issue lists becomes one webhook event of the right reseller, written by the
service that makes the change in its transaction: public ids (never primary keys), amounts as
strings with their currency."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from billing import services as billing_services
from billing.models import Invoice, Payment
from billing.payments.gateways import ChargeOutcome
from billing.payments.services.charging import payment_record
from customers import services as customer_services
from subscriptions import services as subscription_services
from tests.factories import InvoiceFactory, UserFactory, admin_of, buy, change, owner_of
from webhooks import services
from webhooks.models import EventType, WebhookDelivery, WebhookEvent


@pytest.fixture(autouse=True)
def _local_receivers_allowed(settings: Any) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True


@pytest.fixture
def endpoints(tenant, other_tenant):
    """An endpoint listening to every type, for each reseller."""
    return [
        services.endpoint_create(
            membership=owner_of(t), url="http://127.0.0.1:9/hooks", event_types=EventType.values
        )[0]
        for t in (tenant, other_tenant)
    ]


def events_of(reseller: Any) -> list[tuple[str, dict[str, Any]]]:
    return [
        (event.type, event.payload["data"])
        for event in WebhookEvent.objects.filter(reseller=reseller).order_by("pk")
    ]


def test_the_subscription_and_invoice_services_record_their_events(
    tenant, other_tenant, plans, endpoints
):
    owner = owner_of(tenant)
    subscription = buy(owner, plans["flexible"], licences=5, customer=tenant.customer)
    change(owner, subscription, 7)
    subscription_services.subscription_suspend(membership=owner, subscription=subscription)
    subscription_services.subscription_reactivate(membership=owner, subscription=subscription)
    subscription_services.subscription_cancel(membership=owner, subscription=subscription)
    (invoice,) = billing_services.billing_run(day=timezone.localdate())
    billing_services.invoice_mark_paid(invoice=invoice, by=None)

    recorded = events_of(tenant.reseller)
    assert [kind for kind, _data in recorded] == [
        "subscription.created",
        "subscription.licences_changed",
        "subscription.suspended",
        "subscription.reactivated",
        "subscription.cancelled",
        "invoice.issued",
        "invoice.paid",
    ]
    created = recorded[0][1]["subscription"]
    assert created["id"] == subscription.public_id
    assert created["customer_id"] == tenant.customer.public_id
    assert created["licences"] == 5
    assert created["monthly_price"] == {"amount": "4.00", "currency": "EUR"}
    assert recorded[1][1]["subscription"]["licences"] == 7
    assert recorded[2][1]["subscription"]["status"] == "suspended"
    issued = recorded[5][1]["invoice"]
    assert issued["id"] == invoice.public_id
    assert issued["total"] == {"amount": str(invoice.total), "currency": "EUR"}
    assert recorded[6][1]["invoice"]["status"] == "paid"
    # The change's transaction wrote the events only; their deliveries are made after the
    # commit: one pending delivery per event to the tenant's endpoint, none to the other's.
    assert not WebhookDelivery.objects.exists()
    assert services.events_fan_out(now=timezone.now()) == 7
    assert WebhookDelivery.objects.filter(endpoint=endpoints[0]).count() == 7
    assert events_of(other_tenant.reseller) == []
    assert not WebhookDelivery.objects.filter(endpoint=endpoints[1]).exists()


def test_credit_notes_payment_failures_and_overdue_invoices(tenant, other_tenant, endpoints):
    today = timezone.localdate()
    overdue = InvoiceFactory(customer=tenant.customer, due_date=today - timedelta(days=2))
    InvoiceFactory(customer=tenant.customer, due_date=today + timedelta(days=2))
    theirs = InvoiceFactory(customer=other_tenant.customer, due_date=today - timedelta(days=1))

    assert services.invoices_overdue_announce(today=today) == 2
    assert services.invoices_overdue_announce(today=today) == 0  # once per invoice

    Invoice.objects.filter(pk=overdue.pk).update(payment_attempts=1)
    payment = Payment.objects.create(
        invoice=overdue,
        attempt=1,
        gateway="stripe",
        idempotency_key=f"{overdue.number}:1",
        amount=overdue.total,
        currency=overdue.currency,
    )
    payment_record(payment_id=payment.pk, outcome=ChargeOutcome(status="failed", error="declined"))
    note = billing_services.credit_note_issue(
        invoice=overdue, reason="Goodwill", by=UserFactory(is_staff=True), amount=Decimal("10.00")
    )

    recorded = events_of(tenant.reseller)
    assert [kind for kind, _data in recorded] == [
        "invoice.overdue",
        "payment.failed",
        "invoice.credited",
    ]
    assert recorded[0][1]["invoice"]["id"] == overdue.public_id
    assert recorded[1][1]["invoice"]["status"] == "payment_failed"
    credited = recorded[2][1]["invoice"]
    assert credited["id"] == note.public_id
    assert credited["kind"] == "credit_note"
    assert credited["corrects"] == overdue.public_id
    assert events_of(other_tenant.reseller) == [
        ("invoice.overdue", events_of(other_tenant.reseller)[0][1])
    ]
    assert events_of(other_tenant.reseller)[0][1]["invoice"]["id"] == theirs.public_id


def test_the_customer_services_record_their_events(tenant, other_tenant, endpoints):
    customer = tenant.customer
    admin = admin_of(customer)
    customer_services.customer_access_revoke(customer=customer, user=admin)
    new = customer_services.customer_transfer(
        customer=customer,
        to_reseller=other_tenant.reseller,
        actor=UserFactory(is_staff=True),
        via="staff",
    )
    mine = events_of(tenant.reseller)
    assert [kind for kind, _data in mine] == ["customer.revoked", "customer.transferred"]
    assert mine[0][1]["customer"]["id"] == customer.public_id
    assert mine[1][1]["direction"] == "out"
    theirs = events_of(other_tenant.reseller)
    assert [kind for kind, _data in theirs] == ["customer.transferred"]
    assert theirs[0][1]["direction"] == "in"
    assert theirs[0][1]["customer"]["id"] == new.public_id
    assert theirs[0][1]["customer"]["status"] == "active"


def test_an_event_rolls_back_with_its_change(tenant, other_tenant, endpoints):
    """The outbox row is in the change's transaction: a refused change leaves no event."""
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        customer_services.customer_invite(
            membership=owner_of(tenant),
            contact_name="Marta",
            contact_email="not an email",
            customer_type="domain",
            domain="acme-iberia.es",
            organisation="Acme Iberia",
        )
    assert not WebhookEvent.objects.exists()
    assert not WebhookDelivery.objects.exists()


def test_an_unknown_event_type_is_a_programming_error(tenant, other_tenant):
    with pytest.raises(ValueError, match="Unknown webhook event type"):
        services.event_record(reseller=tenant.reseller, type="customer.deleted", data={})


def test_plan_changes_and_renewals_record_their_events(tenant, other_tenant, plans, endpoints):
    owner = owner_of(tenant)
    start = date(2026, 1, 10)
    with time_machine.travel(datetime(2026, 1, 10, 9, tzinfo=UTC), tick=False) as clock:
        subscription = buy(owner, plans["flexible"], licences=3, customer=tenant.customer)
        subscription_services.subscription_change_plan(
            membership=owner, subscription=subscription, plan=plans["annual_yearly"]
        )
        subscription.refresh_from_db()
        term_end = subscription.term_end
        assert term_end is not None and term_end > start
        clock.move_to(datetime.combine(term_end, datetime.min.time(), tzinfo=UTC))
        assert subscription_services.subscription_renew_due(
            subscription_id=subscription.pk, today=term_end
        )
    kinds = [kind for kind, _data in events_of(tenant.reseller)]
    assert kinds == ["subscription.created", "subscription.plan_changed", "subscription.renewed"]
    renewed = events_of(tenant.reseller)[-1][1]["subscription"]
    assert renewed["plan"]["kind"] == "annual_yearly"
    assert renewed["period_start"] == term_end.isoformat()
