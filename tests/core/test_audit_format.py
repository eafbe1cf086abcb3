"""Audit changes read the same on every page: money with its currency, dates and times in the
reader's language and time zone, codes by their label, labels translated (core.audit_format)."""

from datetime import UTC, datetime

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from core.audit_format import Kind, audit_changes, field_describe, value_format
from customers.models import CustomerMember
from resellers.models import AuditEvent
from resellers.services import audit_record
from tests.factories import ResellerFactory, SubscriptionFactory, Tenant, UserFactory


def event(object_type: str, before: dict | None, after: dict | None, **fields) -> AuditEvent:
    return AuditEvent(object_type=object_type, before=before, after=after, **fields)


def test_money_carries_the_recorded_currency_in_the_readers_notation():
    row = event("billing.invoice", {"balance": "8.00"}, {"balance": "0.00", "currency": "EUR"})
    with translation.override("de"):
        [change] = audit_changes(row)
    assert (change.before, change.after) == ("8,00\xa0€", "0,00\xa0€")
    with translation.override("en"):
        [change] = audit_changes(row)
    assert (change.label, change.before, change.after) == ("Balance", "€8.00", "€0.00")


@pytest.mark.django_db
def test_an_amount_without_a_recorded_currency_is_in_the_resellers_currency():
    reseller = ResellerFactory(currency="GBP")
    row = event(
        "subscriptions.subscription",
        {"licences": 82, "order": None, "amount": None},
        {"licences": 83, "order": "ORD-X6LAPV76", "amount": "8.00"},
        reseller=reseller,
    )
    with translation.override("en"):
        rows = [(c.label, c.before, c.after) for c in audit_changes(row)]
    assert rows == [
        ("Licences", "82", "83"),
        ("Order", "", "ORD-X6LAPV76"),
        ("Amount", "", "£8.00"),
    ]


def test_codes_read_as_their_labels():
    payer = event("billing.invoice", {"payer": "reseller_card"}, {"payer": "customer_card"})
    status = event("billing.invoice", {"status": "open"}, {"status": "paid"})
    with translation.override("en"):
        [change] = audit_changes(payer)
        [paid] = audit_changes(status)
    assert (change.label, change.before, change.after) == (
        "Paid with",
        "Reseller card",
        "Customer card",
    )
    assert (paid.label, paid.before, paid.after) == ("Payment status", "Open", "Paid")


def test_dates_follow_the_language_and_times_the_active_zone():
    assert value_format("2026-12-06", Kind.DATE, currency="") != "2026-12-06"
    with translation.override("de"):
        assert value_format("2026-12-06", Kind.DATE, currency="") == "06.12.2026"
    moment = datetime(2026, 12, 6, 6, 46, tzinfo=UTC).isoformat()
    with translation.override("en"), timezone.override("Europe/Madrid"):
        assert "7:46" in value_format(moment, Kind.DATETIME, currency="")


def test_labels_come_from_the_models_verbose_names_capitalised():
    with translation.override("es"):
        label, kind, _field = field_describe("subscriptions.subscription", "period_end")
    assert kind is Kind.DATE
    assert label[0].isupper() and label != "Period end"


@pytest.mark.django_db
def test_the_customer_side_activity_shows_no_raw_codes_amounts_or_dates(tenant: Tenant, client_for):
    customer = tenant.customer
    customer.time_zone = "Europe/Madrid"
    customer.save()
    subscription = SubscriptionFactory(customer=customer)
    admin = UserFactory()
    CustomerMember.objects.create(customer=customer, user=admin, terms_accepted_at=timezone.now())
    audit_record(
        actor=None,
        reseller=tenant.reseller,
        action="subscription.licences_added",
        obj=subscription,
        before={"licences": 2, "amount": None, "renewal_setting": "auto_renew"},
        after={"licences": 3, "amount": "8.00", "renewal_setting": "cancel_at_term_end"},
        customer_public_id=customer.public_id,
    )
    audit_record(
        actor=None,
        reseller=tenant.reseller,
        action="subscription.licences_added",
        obj=subscription,
        before={"period_end": "2026-12-06"},
        after={"period_end": "2027-01-06"},
        customer_public_id=customer.public_id,
    )
    url = reverse("customer_side:organisation", kwargs={"customer_id": customer.public_id})
    page = client_for(admin).get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    activity = page[page.index('id="activity"') :]
    assert "€8.00" in activity
    assert "auto_renew" not in activity and "cancel_at_term_end" not in activity
    assert "Cancel at the end of the term" in activity
    assert "2027-01-06" not in activity and "01/06/2027" in activity
    assert "Times in Europe/Madrid" in activity


@pytest.mark.django_db
def test_the_admin_shows_the_changes_as_the_portal_does(tenant: Tenant, staff_client):
    audit_record(
        actor=None,
        reseller=tenant.reseller,
        action="customer.accepted",
        obj=tenant.customer,
        before={"status": "invited"},
        after={"status": "active"},
        customer_public_id=tenant.customer.public_id,
    )
    event_id = AuditEvent.objects.get(action="customer.accepted").pk
    url = reverse("admin:resellers_auditevent_change", args=[event_id])
    page = staff_client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Invited → Active" in page


@pytest.mark.django_db
def test_the_german_dashboard_names_the_plan_in_german(tenant: Tenant, owner_client):
    subscription = SubscriptionFactory(customer=tenant.customer, plan__kind="flexible")
    with translation.override("en"):
        audit_record(
            actor=None,
            reseller=tenant.reseller,
            action="subscription.licences_added",
            obj=subscription,
            before={"licences": 1},
            after={"licences": 2},
            customer_public_id=tenant.customer.public_id,
        )
    assert "Flexible" in AuditEvent.objects.get(action="subscription.licences_added").object_repr
    page = owner_client.get(reverse("dashboard"), HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "Flexibel" in page and "Flexible" not in page


@pytest.mark.django_db
def test_the_same_event_shows_at_the_same_time_on_both_sides_with_the_zone_named(
    tenant: Tenant, owner_client, client_for
):
    """Both sides read the time in the viewer's zone (the reseller's for its team, the
    customer's for its administrators) and say which zone that is."""
    tenant.reseller.time_zone = "Europe/Madrid"
    tenant.reseller.save()
    customer = tenant.customer
    customer.time_zone = "Europe/Madrid"
    customer.save()
    admin = UserFactory()
    CustomerMember.objects.create(customer=customer, user=admin, terms_accepted_at=timezone.now())
    audit_record(
        actor=None,
        reseller=tenant.reseller,
        action="customer.accepted",
        obj=customer,
        before={"status": "invited"},
        after={"status": "active"},
        customer_public_id=customer.public_id,
    )
    AuditEvent.objects.update(created_at=datetime(2026, 12, 6, 6, 46, tzinfo=UTC))
    reseller_side = reverse("customers:detail", kwargs={"customer_id": customer.public_id})
    customer_side = reverse(
        "customer_side:organisation", kwargs={"customer_id": customer.public_id}
    )
    for page in (
        owner_client.get(reseller_side, HTTP_ACCEPT_LANGUAGE="en").content.decode(),
        client_for(admin).get(customer_side, HTTP_ACCEPT_LANGUAGE="en").content.decode(),
    ):
        activity = page[page.index('id="activity"') :]
        assert "7:46" in activity and "6:46" not in activity
        assert "Times in Europe/Madrid" in activity
    dashboard = owner_client.get(reverse("dashboard"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "7:46" in dashboard and "Times in Europe/Madrid" in dashboard


def test_a_gateways_answer_reads_in_the_readers_language_where_known():
    """A failed card payment's audit keeps the gateway's English answer; the demo gateway's
    are Stripe's messages, which the catalogue translates. An unknown answer reads as it is."""
    row = event(
        "billing.invoice",
        {"status": "open"},
        {"status": "payment_failed", "error": "Your card was declined."},
    )
    with translation.override("es"):
        status, error = audit_changes(row)
    assert (status.before, status.after) == ("Pendiente", "Pago fallido")
    assert error.after == "Su tarjeta ha sido rechazada."
    unknown = event("billing.invoice", None, {"error": "Gateway said no (code 7)"})
    with translation.override("es"):
        assert [c.after for c in audit_changes(unknown)] == ["Gateway said no (code 7)"]


@pytest.mark.django_db
def test_a_refund_made_reads_as_the_refunds_status_without_its_gateway_key(tenant: Tenant):
    """The Audit log showed "Payment status: pending → —" and "Refund: — →
    INV-2026-000148:refund:1" for a refund the card gateway made: the invoice's label for the
    refund's status, which was not recorded after, and the idempotency key meant for the
    gateway."""
    from billing import services as billing_services
    from billing.models import Refund
    from tests.factories import InvoiceFactory

    invoice = InvoiceFactory(customer=tenant.customer)
    refund = Refund.objects.create(
        invoice=invoice,
        method=Refund.Method.TRANSFER,
        gateway="manual",
        amount="6.05",
        currency="EUR",
        idempotency_key=f"{invoice.number}:refund:1",
    )
    billing_services.refund_record(refund=refund, status=Refund.Status.SUCCEEDED)
    row = AuditEvent.objects.get(action="refund.succeeded")
    with translation.override("en"):
        changes = {change.label: (change.before, change.after) for change in audit_changes(row)}
    assert changes["Refund status"] == ("To be refunded", "Refunded")
    assert changes["Amount"][1] == "€6.05"
    assert "Payment status" not in changes
    assert not any(refund.idempotency_key in " ".join(pair) for pair in changes.values())
