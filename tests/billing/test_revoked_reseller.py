"""A customer that revoked its reseller's access: its subscriptions keep running, billed to its
own card, and what follows is the customer's and the vendor's, not the reseller's. "X can no
longer see or manage Y", the revoke page says: the reseller does not see the invoices issued
after it (list, CSV, page, PDF, API), nor their webhook events, audit entries or margin; what
its own card still pays for stays its own."""

from datetime import UTC, date

import pytest
import time_machine
from django.urls import reverse

from billing.services import billing_run
from customers.services.customer_side import customer_access_revoke
from insights.reports.forecast import forecast_report
from insights.reports.unbilled import unbilled_report
from resellers.models import AuditEvent
from subscriptions.models import Payer
from subscriptions.services.jobs import subscription_renew_due
from tests.factories import admin_of, buy, catalogue, owner_of
from tests.support.api import ApiClient, api_key
from webhooks.models import WebhookEvent

REVOKED_ON = date(2026, 11, 3)
RENEWED_ON = date(2026, 12, 3)


@pytest.fixture
def revoked(tenant, other_tenant, settings, django_capture_on_commit_callbacks):
    """A customer that bought a subscription paid with its own card on 2 November, was
    invoiced on 3 November, revoked its reseller that day and renewed on 3 December."""
    settings.STRIPE_SECRET_KEY = ""
    plans = catalogue()
    customer = tenant.customer
    customer_admin = admin_of(customer)
    with time_machine.travel(date(2026, 11, 2), tick=False):
        subscription = buy(owner_of(tenant), plans["flexible"], 4, payer="customer_card")
    with (
        time_machine.travel(REVOKED_ON, tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        (before,) = billing_run(day=REVOKED_ON)
        customer_access_revoke(customer=customer, user=customer_admin)
    events_before = WebhookEvent.objects.filter(reseller=tenant.reseller).count()
    audits_before = AuditEvent.objects.filter(reseller=tenant.reseller).count()
    with (
        time_machine.travel(RENEWED_ON, tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert subscription_renew_due(subscription_id=subscription.pk, today=RENEWED_ON)
        (after,) = billing_run(day=RENEWED_ON)
    return {
        "customer": customer,
        "customer_admin": customer_admin,
        "before": before,
        "after": after,
        "events_before": events_before,
        "audits_before": audits_before,
    }


def test_an_invoice_issued_after_the_revoke_is_not_the_resellers(tenant, revoked, client_for):
    before, after = revoked["before"], revoked["after"]
    assert before.reseller == tenant.reseller
    assert after.reseller is None
    assert after.payer == Payer.CUSTOMER_CARD

    client = client_for(tenant.owner)
    listing = client.get(reverse("billing:invoice_list")).content.decode()
    assert before.number in listing and after.number not in listing
    export = b"".join(client.get(reverse("billing:invoice_export")).streaming_content).decode()
    assert before.number in export and after.number not in export
    for name in ("billing:invoice_detail", "billing:invoice_pdf"):
        response = client.get(reverse(name, kwargs={"invoice_id": after.public_id}))
        assert response.status_code == 404
    _key, secret = api_key(owner_of(tenant))
    api = ApiClient(secret)
    assert api.get(f"/api/v1/invoices/{after.public_id}").status_code == 404
    assert api.get(f"/api/v1/invoices/{before.public_id}").status_code == 200
    numbers = [row["number"] for row in api.get("/api/v1/invoices/").json()["items"]]
    assert numbers == [before.number]


def test_the_customer_still_sees_every_invoice(revoked, client_for):
    customer = revoked["customer"]
    client = client_for(revoked["customer_admin"])
    page = client.get(
        reverse("my_invoices:list", kwargs={"customer_id": customer.public_id})
    ).content.decode()
    assert revoked["before"].number in page and revoked["after"].number in page
    response = client.get(
        reverse(
            "my_invoices:detail",
            kwargs={"customer_id": customer.public_id, "invoice_id": revoked["after"].public_id},
        )
    )
    assert response.status_code == 200


def test_no_webhook_event_or_audit_entry_of_the_renewal_reaches_the_reseller(tenant, revoked):
    events = WebhookEvent.objects.filter(reseller=tenant.reseller).order_by("pk")
    assert list(events[revoked["events_before"] :].values_list("type", flat=True)) == []
    audits = AuditEvent.objects.filter(reseller=tenant.reseller).order_by("pk")
    assert list(audits[revoked["audits_before"] :].values_list("action", flat=True)) == []
    # Staff still see what happened, with no reseller.
    actions = set(AuditEvent.objects.filter(reseller=None).values_list("action", flat=True))
    assert {"subscription.period_started", "invoice.issued"} <= actions


def test_what_the_resellers_card_still_pays_after_the_revoke_stays_its_own(
    tenant, other_tenant, settings, django_capture_on_commit_callbacks, client_for
):
    """Charges made before the revoke on the reseller's card, invoiced after it: the reseller
    pays that invoice, so it sees it."""
    settings.STRIPE_SECRET_KEY = ""
    plans = catalogue()
    customer_admin = admin_of(tenant.customer)
    with time_machine.travel(date(2026, 11, 2), tick=False):
        buy(owner_of(tenant), plans["flexible"], 4)
        customer_access_revoke(customer=tenant.customer, user=customer_admin)
    with (
        time_machine.travel(REVOKED_ON, tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        (invoice,) = billing_run(day=REVOKED_ON)
    assert invoice.payer == Payer.RESELLER_CARD
    assert invoice.reseller == tenant.reseller
    page = client_for(tenant.owner).get(reverse("billing:invoice_list")).content.decode()
    assert invoice.number in page


def test_the_reports_leave_out_what_the_customer_will_pay_itself(tenant, other_tenant, settings):
    """Unbilled charges and the forecast: the revoked customer's are no longer the reseller's
    (their invoices will go through no reseller)."""
    settings.STRIPE_SECRET_KEY = ""
    plans = catalogue()
    customer_admin = admin_of(tenant.customer)
    with time_machine.travel(date(2026, 11, 2), tick=False):
        buy(owner_of(tenant), plans["flexible"], 4, payer="customer_card")
        assert unbilled_report(reseller=tenant.reseller, currency="EUR", zone=UTC).by_customer
        assert forecast_report(reseller=tenant.reseller, currency="EUR", today=REVOKED_ON).charges
        customer_access_revoke(customer=tenant.customer, user=customer_admin)
    assert not unbilled_report(reseller=tenant.reseller, currency="EUR", zone=UTC).by_customer
    assert not forecast_report(reseller=tenant.reseller, currency="EUR", today=REVOKED_ON).charges
