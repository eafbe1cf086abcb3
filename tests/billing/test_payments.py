"""Payments: the gateway choice, saved cards, who pays a subscription (with the customer's
consent), charging issued invoices off-session, retries on days 1, 3 and 5, suspension and
reactivation. Stripe is the fake HTTP server of tests/support/fake_stripe.py: everything above HTTP
is the real code."""

import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import TestCase
from django.urls import reverse
from django.utils import timezone

from billing import services as billing_services
from billing.models import CustomerCardConsent, GatewayCustomer, Invoice, Payment, PaymentCard
from billing.payments import services, tasks
from billing.payments.gateways import GatewayUnavailable, ManualGateway, StripeGateway, gateway
from core.models import OutboundEmail
from customers.models import Customer
from resellers.models import AuditEvent
from resellers.roles import Role
from subscriptions.models import Payer, Subscription
from tests.factories import (
    ChargeFactory,
    InvoiceFactory,
    SubscriptionFactory,
    Tenant,
    admin_of,
    member_of,
)
from tests.support.fake_stripe import (
    API_KEY,
    PUBLISHABLE_KEY,
    WEBHOOK_SECRET,
    reseller_card,
    save_card,
)


def customer_card(customer: Customer, client_for, fake, **card) -> PaymentCard:
    url = reverse("my_payments:card_change", args=[customer.public_id])
    return save_card(client_for(admin_of(customer)), fake, url, **card)


# The gateway


def test_the_manual_gateway_is_the_default(settings):
    assert isinstance(gateway(), ManualGateway)
    assert not gateway().uses_cards
    # Two keys of three are not enough: the webhook could not be verified.
    settings.STRIPE_SECRET_KEY, settings.STRIPE_PUBLISHABLE_KEY = API_KEY, PUBLISHABLE_KEY
    assert isinstance(gateway(), ManualGateway)
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    assert isinstance(gateway(), StripeGateway)


def _csp(env: dict[str, str]) -> dict[str, list[str]]:
    script = (
        "import json, os; os.environ.update(json.loads(os.sys.argv[1]));"
        "from config.settings import base;"
        "print(json.dumps({k: [str(v) for v in vs] for k, vs in base.SECURE_CSP.items()}))"
    )
    import json

    clean = {"STRIPE_SECRET_KEY": "", "STRIPE_PUBLISHABLE_KEY": "", "STRIPE_WEBHOOK_SECRET": ""}
    output = subprocess.run(
        [sys.executable, "-c", script, json.dumps({**clean, **env})],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output)


def test_stripe_js_is_allowed_by_the_csp_only_when_stripe_is_configured():
    manual = _csp({})
    assert not any("stripe" in source for sources in manual.values() for source in sources)
    stripe_on = _csp(
        {
            "STRIPE_SECRET_KEY": API_KEY,
            "STRIPE_PUBLISHABLE_KEY": PUBLISHABLE_KEY,
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        }
    )
    assert "https://js.stripe.com" in stripe_on["script-src"]
    assert {"https://js.stripe.com", "https://hooks.stripe.com"} <= set(stripe_on["frame-src"])
    assert "https://api.stripe.com" in stripe_on["connect-src"]


def test_the_daily_retry_job_is_scheduled(settings):
    # Charging at issue and lifting suspensions when paid: the charging tests below, and
    # test_manual_gateway_leaves_invoices_for_staff.
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert tasks.payments_retry_due.name in scheduled


def test_only_the_customers_administrators_manage_its_card(tenant, other_tenant):
    # The customer side's one check (customers.selectors.customer_admin_check), as for
    # revoking or transfer tokens: a reseller's owner is not the organisation's administrator.
    with pytest.raises(PermissionDenied, match="You do not administer this organisation"):
        services.customer_card_setup_start(customer=tenant.customer, user=tenant.owner)
    with pytest.raises(PermissionDenied, match="You do not administer this organisation"):
        services.customer_card_save(customer=tenant.customer, user=tenant.owner, setup_id="x")
    assert not PaymentCard.objects.exists()


# Card pages


def test_manual_gateway_card_pages_say_invoices_are_paid_by_bank_transfer(
    tenant, other_tenant, client_for
):
    owner = client_for(tenant.owner)
    for url in (reverse("payments:card"), reverse("payments:card_change")):
        page = owner.get(url)
        assert page.status_code == 200
        assert "Cards are not used: invoices are paid by bank transfer" in page.content.decode()
        assert "js.stripe.com" not in page.content.decode()
    admin = client_for(admin_of(tenant.customer))
    for name in ("my_payments:card", "my_payments:card_change"):
        page = admin.get(reverse(name, args=[tenant.customer.public_id]))
        assert "Cards are not used" in page.content.decode()
    assert not GatewayCustomer.objects.exists()


def test_manual_gateway_refuses_to_ask_for_the_customer_card(tenant, other_tenant, client_for):
    subscription = SubscriptionFactory(customer=tenant.customer)
    url = reverse("payments:subscription_payer", args=[subscription.public_id])
    page = client_for(tenant.owner).get(url)
    assert "Cards are not used" in page.content.decode()
    response = client_for(tenant.owner).post(url, {"use_customer_card": "on"})
    assert response.status_code == 400
    assert not CustomerCardConsent.objects.exists()


def test_settings_link_the_payment_card_for_owners_and_billing_only(
    tenant, other_tenant, client_for
):
    card_url = reverse("payments:card")
    for role, allowed in (
        (Role.OWNER, True),
        (Role.BILLING, True),
        (Role.ADMIN, False),
        (Role.SALES, False),
    ):
        client = client_for(member_of(tenant.reseller, role).user)
        settings_page = client.get(reverse("resellers:settings")).content.decode()
        assert (card_url in settings_page) is allowed, role
        assert client.get(card_url).status_code == (200 if allowed else 403), role


def test_reseller_saves_its_card_with_a_setup_intent(tenant, other_tenant, client_for, fake_stripe):
    owner = client_for(tenant.owner)
    page = owner.get(reverse("payments:card_change"))
    html = page.content.decode()
    assert 'src="https://js.stripe.com/v3/"' in html
    assert page.context["setup"].publishable_key == PUBLISHABLE_KEY
    # One Stripe customer for the reseller, made idempotently; a SetupIntent for off-session use.
    ((_params, customer_headers),) = fake_stripe.posts("/v1/customers")
    assert (
        customer_headers["Idempotency-Key"]
        == f"portal-customer:reseller:{tenant.reseller.public_id}"
    )
    ((setup_params, _headers),) = fake_stripe.posts("/v1/setup_intents")
    assert setup_params["usage"] == "off_session"
    assert (
        setup_params["customer"]
        == GatewayCustomer.objects.get(reseller=tenant.reseller).gateway_customer_id
    )
    assert page.context["setup"].client_secret in html

    setup_id = fake_stripe.card_confirmed(
        page.context["setup"].client_secret,
        brand="mastercard",
        last4="4444",
        exp_month=3,
        exp_year=2031,
    )
    response = owner.post(reverse("payments:card_change"), {"setup_intent": setup_id})
    assert response.status_code == 302 and response["Location"] == reverse("payments:card")
    card = PaymentCard.objects.get(reseller=tenant.reseller)
    assert (card.brand, card.last4, card.exp_month, card.exp_year) == (
        "mastercard",
        "4444",
        3,
        2031,
    )
    assert card.is_default and card.gateway_payment_method_id.startswith("pm_")
    assert "•••• 4444" in owner.get(reverse("payments:card")).content.decode()
    assert (
        AuditEvent.objects.filter(action="payment_card.saved", reseller=tenant.reseller).count()
        == 1
    )
    # The same setup posted twice (a double click) saves one card.
    owner.post(reverse("payments:card_change"), {"setup_intent": setup_id})
    assert PaymentCard.objects.count() == 1


def test_change_card_replaces_the_default_and_detaches_the_old_card(
    tenant, other_tenant, client_for, fake_stripe
):
    reseller_card(tenant, client_for, fake_stripe, last4="1111")
    second = reseller_card(tenant, client_for, fake_stripe, last4="2222")
    assert list(PaymentCard.objects.filter(reseller=tenant.reseller)) == [second]
    assert second.is_default
    # One Stripe customer for both setups.
    assert len(fake_stripe.customers) == 1
    assert GatewayCustomer.objects.count() == 1
    page = client_for(tenant.owner).get(reverse("payments:card")).content.decode()
    assert "•••• 2222" in page and "•••• 1111" not in page


def test_replaced_card_is_detached_at_stripe(
    tenant, other_tenant, client_for, fake_stripe, django_capture_on_commit_callbacks
):
    first = reseller_card(tenant, client_for, fake_stripe, last4="1111")
    with django_capture_on_commit_callbacks(execute=True):
        reseller_card(tenant, client_for, fake_stripe, last4="2222")
    assert fake_stripe.payment_methods[first.gateway_payment_method_id]["customer"] is None
    assert (
        fake_stripe.count("POST", f"/v1/payment_methods/{first.gateway_payment_method_id}/detach")
        == 1
    )


def test_a_setup_of_another_owner_is_refused(tenant, other_tenant, client_for, fake_stripe):
    page = client_for(tenant.owner).get(reverse("payments:card_change"))
    setup_id = fake_stripe.card_confirmed(page.context["setup"].client_secret)
    response = client_for(other_tenant.owner).post(
        reverse("payments:card_change"), {"setup_intent": setup_id}
    )
    assert response.status_code == 400
    assert "belongs to someone else" in response.content.decode()
    assert not PaymentCard.objects.exists()


def test_an_unconfirmed_setup_saves_nothing(tenant, other_tenant, client_for, fake_stripe):
    owner = client_for(tenant.owner)
    owner.get(reverse("payments:card_change"))
    (setup_id,) = fake_stripe.setup_intents
    response = owner.post(reverse("payments:card_change"), {"setup_intent": setup_id})
    assert response.status_code == 400
    assert "The card was not saved" in response.content.decode()
    assert not PaymentCard.objects.exists()


def test_stripe_redirect_back_saves_the_card_and_follows_a_safe_next(
    tenant, other_tenant, client_for, fake_stripe
):
    customer = tenant.customer
    client = client_for(admin_of(customer))
    url = reverse("my_payments:card_change", args=[customer.public_id])
    page = client.get(url, {"next": "/billing/card-consent/abc/"})
    assert "next=%2Fbilling%2Fcard-consent%2Fabc%2F" in page.context["return_url"]
    setup_id = fake_stripe.card_confirmed(page.context["setup"].client_secret)
    response = client.get(url, {"setup_intent": setup_id, "next": "/billing/card-consent/abc/"})
    assert response["Location"] == "/billing/card-consent/abc/"
    assert PaymentCard.objects.get(customer=customer).is_default
    page = client.get(url)
    setup_id = fake_stripe.card_confirmed(page.context["setup"].client_secret, last4="9999")
    response = client.get(url, {"setup_intent": setup_id, "next": "https://evil.example/"})
    assert response["Location"] == reverse("my_payments:card", args=[customer.public_id])


def test_customer_saves_its_own_card_on_its_side(tenant, other_tenant, client_for, fake_stripe):
    customer = tenant.customer
    card = customer_card(customer, client_for, fake_stripe, last4="5556")
    assert card.customer == customer and card.reseller is None
    admin = client_for(customer.members.get().user)
    assert (
        "•••• 5556"
        in admin.get(reverse("my_payments:card", args=[customer.public_id])).content.decode()
    )
    # The organisation page shows it too.
    organisation = admin.get(reverse("customer_side:organisation", args=[customer.public_id]))
    assert "•••• 5556" in organisation.content.decode()
    # The reseller is not one of the customer's administrators.
    assert (
        client_for(tenant.owner)
        .get(reverse("my_payments:card", args=[customer.public_id]))
        .status_code
        == 404
    )


# Who pays: the reseller card, or the customer card after the customer agrees


def ask_customer_card(tenant: Tenant, client_for, subscription: Subscription):
    """Ask, and send the consent email (its on-commit task runs)."""
    url = reverse("payments:subscription_payer", args=[subscription.public_id])
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client_for(tenant.owner).post(url, {"use_customer_card": "on"})


def consent_link() -> str:
    """The link in the latest consent email sent: the stored email does not keep it."""
    body = next(m.body for m in reversed(mail.outbox) if "/billing/card-consent/" in m.body)
    start = body.index("/billing/card-consent/")
    return body[start:].split()[0]


def test_subscription_page_links_the_payer_change(tenant, other_tenant, client_for):
    subscription = SubscriptionFactory(customer=tenant.customer)
    url = reverse("payments:subscription_payer", args=[subscription.public_id])
    detail = reverse("subscriptions:detail", args=[subscription.public_id])
    assert url in client_for(tenant.owner).get(detail).content.decode()
    sales = client_for(member_of(tenant.reseller, Role.SALES).user)
    assert url not in sales.get(detail).content.decode()
    assert sales.get(url).status_code == 403


def test_asking_for_the_customer_card_sends_a_consent_link_and_keeps_the_reseller_card(
    tenant, other_tenant, client_for, fake_stripe
):
    customer = tenant.customer
    customer.language = "de"
    customer.save()
    admin_of(customer)
    subscription = SubscriptionFactory(customer=customer)
    response = ask_customer_card(tenant, client_for, subscription)
    assert response.status_code == 302
    subscription.refresh_from_db()
    assert subscription.payer == Payer.RESELLER_CARD  # until the customer agrees
    consent = CustomerCardConsent.objects.get(subscription=subscription)
    assert consent.email == customer.contact_email and consent.requested_by == tenant.owner
    email = OutboundEmail.objects.get(template="customer_card_consent")
    assert (email.to, email.language) == (customer.contact_email, "de")
    assert subscription.product.name in email.subject
    assert "/billing/card-consent/" not in email.body_html  # a placeholder, not the link
    assert "[consent_url sent by email]" in email.body_html
    assert consent_link().startswith("/billing/card-consent/")
    page = client_for(tenant.owner).get(response["Location"]).content.decode()
    assert "Waiting for the customer to agree" in page
    assert AuditEvent.objects.filter(
        action="card_consent.requested", customer_public_id=customer.public_id
    ).exists()


def test_a_customer_that_has_not_accepted_cannot_be_asked(
    tenant, other_tenant, client_for, fake_stripe
):
    subscription = SubscriptionFactory(customer=tenant.customer)  # no administrator yet
    response = ask_customer_card(tenant, client_for, subscription)
    assert response.status_code == 400
    assert "has to accept your invitation" in response.content.decode()
    assert not CustomerCardConsent.objects.exists()


def test_consent_link_needs_an_administrator_of_the_customer(
    tenant, other_tenant, client, client_for, fake_stripe
):
    admin_of(tenant.customer)
    subscription = SubscriptionFactory(customer=tenant.customer)
    ask_customer_card(tenant, client_for, subscription)
    link = consent_link()
    page = client.get(link)
    assert page.status_code == 200 and "Sign in as an administrator" in page.content.decode()
    assert client.post(link).status_code == 200  # anonymous: nothing happens
    for outsider in (tenant.owner, admin_of(other_tenant.customer)):
        assert client_for(outsider).get(link).status_code == 403
        assert client_for(outsider).post(link).status_code == 403
    subscription.refresh_from_db()
    assert subscription.payer == Payer.RESELLER_CARD
    assert client.get("/billing/card-consent/not-a-token/").status_code == 404


def test_customer_adds_a_card_then_agrees(tenant, other_tenant, client_for, fake_stripe):
    customer = tenant.customer
    admin = admin_of(customer)
    subscription = SubscriptionFactory(customer=customer)
    ask_customer_card(tenant, client_for, subscription)
    link = consent_link()
    client = client_for(admin)
    page = client.get(link)
    add_url = page.context["add_card_url"]
    assert add_url.startswith(reverse("my_payments:card_change", args=[customer.public_id]))
    refused = client.post(link)
    assert (
        refused.status_code == 400
        and refused.context["error"] == "Add your organisation's card first."
    )

    # Add a card (the card page brings the admin back to the link), then agree.
    card_page = client.get(add_url)
    setup_id = fake_stripe.card_confirmed(card_page.context["setup"].client_secret, last4="1881")
    back = client.post(add_url, {"setup_intent": setup_id, "next": link})
    assert back["Location"] == link
    assert "•••• 1881" in client.get(link).content.decode()
    done = client.post(link)
    assert done.status_code == 302
    subscription.refresh_from_db()
    assert subscription.payer == Payer.CUSTOMER_CARD
    assert AuditEvent.objects.filter(action="card_consent.given").count() == 1
    assert AuditEvent.objects.filter(action="subscription.payer_changed", actor=admin).count() == 1
    again = client.get(link)
    assert again.status_code == 410 and "already used" in again.content.decode()


def test_asking_again_or_switching_back_withdraws_the_link(
    tenant, other_tenant, client_for, fake_stripe
):
    customer = tenant.customer
    admin = admin_of(customer)
    customer_card(customer, client_for, fake_stripe)
    subscription = SubscriptionFactory(customer=customer)
    ask_customer_card(tenant, client_for, subscription)
    first = consent_link()
    ask_customer_card(tenant, client_for, subscription)
    second = consent_link()
    assert client_for(admin).get(first).status_code == 410
    # Untick "Use a customer card?": the reseller card pays, the open link is withdrawn.
    url = reverse("payments:subscription_payer", args=[subscription.public_id])
    client_for(tenant.owner).post(url, {})
    withdrawn = client_for(admin).get(second)
    assert withdrawn.status_code == 410 and "withdrawn" in withdrawn.content.decode()
    assert AuditEvent.objects.filter(action="card_consent.withdrawn").count() == 1


def test_a_consent_link_expires(tenant, other_tenant, client_for, fake_stripe, settings):
    admin = admin_of(tenant.customer)
    customer_card(tenant.customer, client_for, fake_stripe)
    subscription = SubscriptionFactory(customer=tenant.customer)
    ask_customer_card(tenant, client_for, subscription)
    link = consent_link()
    later = timezone.now() + timedelta(days=settings.INVITATION_VALID_DAYS, minutes=1)
    with time_machine.travel(later):
        assert client_for(admin).post(link).status_code == 410
    subscription.refresh_from_db()
    assert subscription.payer == Payer.RESELLER_CARD


def test_switching_back_to_the_reseller_card_needs_no_consent(
    tenant, other_tenant, client_for, fake_stripe
):
    subscription = SubscriptionFactory(customer=tenant.customer, payer=Payer.CUSTOMER_CARD)
    url = reverse("payments:subscription_payer", args=[subscription.public_id])
    assert client_for(tenant.owner).post(url, {}).status_code == 302
    subscription.refresh_from_db()
    assert subscription.payer == Payer.RESELLER_CARD
    event = AuditEvent.objects.get(action="subscription.payer_changed_to_reseller_card")
    assert (event.before, event.after) == ({"payer": "customer_card"}, {"payer": "reseller_card"})


# Charging


def test_an_issued_invoice_is_charged_off_session_with_an_idempotency_key(
    tenant, other_tenant, client_for, fake_stripe, django_capture_on_commit_callbacks
):
    card = reseller_card(tenant, client_for, fake_stripe)
    subscription = SubscriptionFactory(customer=tenant.customer)
    ChargeFactory(subscription=subscription)
    with django_capture_on_commit_callbacks(execute=True):
        invoice = billing_services.invoice_issue_for_customer(
            customer=tenant.customer, payer=Payer.RESELLER_CARD, day=timezone.localdate()
        )
    assert invoice is not None
    ((params, headers),) = fake_stripe.posts("/v1/payment_intents")
    assert headers["Idempotency-Key"] == f"{invoice.number}:1"
    assert params["off_session"] == "true" and params["confirm"] == "true"
    assert params["amount"] == str(int(invoice.total * 100)) and params["currency"] == "eur"
    assert params["payment_method"] == card.gateway_payment_method_id
    assert params["customer"] == card.gateway_customer_id
    assert params["metadata"] == {"invoice": invoice.number, "payment_key": f"{invoice.number}:1"}
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID and invoice.paid_at is not None
    payment = Payment.objects.get(invoice=invoice)
    assert (payment.attempt, payment.status, payment.amount) == (1, "succeeded", invoice.total)
    assert payment.gateway_reference in fake_stripe.payment_intents
    # Running the task again charges nothing: it answers where that attempt stands.
    assert tasks.invoice_charge(invoice.pk, 1) == "succeeded"
    assert len(fake_stripe.posts("/v1/payment_intents")) == 1


def test_a_lost_answer_is_asked_again_with_the_same_key_and_charges_once(
    tenant, other_tenant, client_for, fake_stripe
):
    reseller_card(tenant, client_for, fake_stripe)
    invoice = InvoiceFactory(subscription=SubscriptionFactory(customer=tenant.customer))
    fake_stripe.lose_answers = 1  # Stripe charges, the answer never arrives
    with pytest.raises(GatewayUnavailable):
        services.invoice_charge(invoice_id=invoice.pk, attempt=1)
    payment = Payment.objects.get(invoice=invoice)
    assert payment.status == Payment.Status.PENDING and not payment.gateway_reference
    # A new attempt is not made while this one may have succeeded.
    assert services.invoice_charge(invoice_id=invoice.pk, attempt=2) == "pending"
    # The task's retry: the same attempt, the same key; Stripe replays its first answer.
    assert services.invoice_charge(invoice_id=invoice.pk, attempt=1) == "succeeded"
    keys = [
        headers["Idempotency-Key"] for _params, headers in fake_stripe.posts("/v1/payment_intents")
    ]
    assert keys == [f"{invoice.number}:1", f"{invoice.number}:1"]
    assert len(fake_stripe.payment_intents) == 1
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID


def test_an_attempt_lost_for_a_day_is_looked_up_not_sent_again(
    tenant, other_tenant, client_for, fake_stripe
):
    """Stripe forgets an idempotency key after 24 hours: an attempt left unanswered that long
    is found by its key in the charge's metadata, and charged only if Stripe has no charge."""
    reseller_card(tenant, client_for, fake_stripe)
    invoice = InvoiceFactory(subscription=SubscriptionFactory(customer=tenant.customer))
    fake_stripe.lose_answers = 1  # Stripe charges, the answer never arrives
    with pytest.raises(GatewayUnavailable):
        services.invoice_charge(invoice_id=invoice.pk, attempt=1)
    fake_stripe.forget_idempotency_keys()
    with time_machine.travel(timezone.now() + timedelta(hours=30)):
        assert services.invoice_charge(invoice_id=invoice.pk, attempt=1) == "succeeded"
    assert len(fake_stripe.posts("/v1/payment_intents")) == 1  # never sent again
    assert len(fake_stripe.payment_intents) == 1
    payment = Payment.objects.get(invoice=invoice)
    assert payment.gateway_reference in fake_stripe.payment_intents

    # Never reached Stripe at all: after the day, nothing is found, and it is charged once.
    other = InvoiceFactory(subscription=SubscriptionFactory(customer=tenant.customer))
    fake_stripe.unreachable = True
    with pytest.raises(GatewayUnavailable):
        services.invoice_charge(invoice_id=other.pk, attempt=1)
    fake_stripe.unreachable = False
    with time_machine.travel(timezone.now() + timedelta(hours=30)):
        assert services.invoice_charge(invoice_id=other.pk, attempt=1) == "succeeded"
    assert len(fake_stripe.payment_intents) == 2


def test_the_daily_job_asks_again_about_an_attempt_whose_answer_was_lost(
    tenant, other_tenant, client_for, fake_stripe
):
    reseller_card(tenant, client_for, fake_stripe)
    invoice = InvoiceFactory(subscription=SubscriptionFactory(customer=tenant.customer))
    fake_stripe.lose_answers = 1
    with pytest.raises(GatewayUnavailable):
        services.invoice_charge(invoice_id=invoice.pk, attempt=1)
    assert tasks.payments_retry_due() == 0  # its own task retries first
    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        assert tasks.payments_retry_due() == 1
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    assert len(fake_stripe.payment_intents) == 1


def test_customer_card_invoices_are_charged_to_the_customer_card(
    tenant, other_tenant, client_for, fake_stripe
):
    reseller_card(tenant, client_for, fake_stripe)
    card = customer_card(tenant.customer, client_for, fake_stripe)
    invoice = InvoiceFactory(
        subscription=SubscriptionFactory(customer=tenant.customer, payer=Payer.CUSTOMER_CARD)
    )
    assert services.invoice_charge(invoice_id=invoice.pk, attempt=1) == "succeeded"
    ((params, _headers),) = fake_stripe.posts("/v1/payment_intents")
    assert params["payment_method"] == card.gateway_payment_method_id


def test_manual_gateway_leaves_invoices_for_staff(tenant, other_tenant, admin_user):
    subscription = SubscriptionFactory(
        customer=tenant.customer,
        status=Subscription.Status.SUSPENDED,
        suspension_reason=Subscription.SuspensionReason.PENDING_PAYMENT,
    )
    invoice = InvoiceFactory(subscription=subscription)
    services.invoice_charge_enqueue(invoice)
    assert tasks.invoice_charge(invoice.pk, 1) == "manual"
    assert not Payment.objects.exists()
    # Staff mark it paid (the bank transfer arrived): its subscription is reactivated.
    billing_services.invoice_mark_paid(invoice=invoice, by=admin_user)
    subscription.refresh_from_db()
    assert (
        subscription.status == Subscription.Status.ACTIVE and subscription.suspension_reason == ""
    )
    assert AuditEvent.objects.filter(action="subscription.reactivated").count() == 1


# Retries on days 1, 3 and 5 after the first failure, then suspension


def test_failed_payments_retry_on_days_1_3_5_then_suspend_and_a_new_card_reactivates(
    tenant, other_tenant, client_for, fake_stripe, django_capture_on_commit_callbacks, retry_day
):
    day0 = date(2026, 3, 2)
    with time_machine.travel(datetime(2026, 3, 2, 9, 0, tzinfo=UTC), tick=False) as traveller:
        reseller_card(tenant, client_for, fake_stripe, declines=True)
        subscription = SubscriptionFactory(customer=tenant.customer)
        invoice = InvoiceFactory(subscription=subscription)
        with django_capture_on_commit_callbacks(execute=True):
            services.invoice_charge_enqueue(invoice)
        invoice.refresh_from_db()
        assert invoice.status == Invoice.Status.PAYMENT_FAILED
        assert invoice.next_payment_attempt == day0 + timedelta(days=1)
        email = OutboundEmail.objects.get(template="payment_failed")
        assert email.to == tenant.reseller.billing_email
        assert invoice.number in email.subject and "insufficient funds" in email.body_text
        assert retry_day(traveller, day0) == 0  # not yet

        expected_next = {1: day0 + timedelta(days=3), 3: day0 + timedelta(days=5)}
        for offset in range(1, 6):
            queued = retry_day(traveller, day0 + timedelta(days=offset))
            invoice.refresh_from_db()
            if offset in (1, 3):
                assert queued == 1
                assert invoice.next_payment_attempt == expected_next[offset]
            elif offset == 5:
                assert queued == 1
                assert invoice.next_payment_attempt is None
            else:
                assert queued == 0
            subscription.refresh_from_db()
            assert subscription.status == (
                Subscription.Status.SUSPENDED if offset == 5 else Subscription.Status.ACTIVE
            )
        assert subscription.suspension_reason == Subscription.SuspensionReason.PENDING_PAYMENT
        keys = [h["Idempotency-Key"] for _p, h in fake_stripe.posts("/v1/payment_intents")]
        assert keys == [f"{invoice.number}:{attempt}" for attempt in (1, 2, 3, 4)]
        assert (
            list(invoice.payments.order_by("attempt").values_list("status", flat=True))
            == ["failed"] * 4
        )
        assert invoice.payment_attempts == 4
        last = OutboundEmail.objects.filter(template="payment_failed").latest("id")
        assert "subscriptions on this invoice are suspended" in last.body_text
        assert OutboundEmail.objects.filter(template="payment_failed").count() == 4
        assert retry_day(traveller, day0 + timedelta(days=9)) == 0  # no more tries

        # A new card: the invoice is charged at once; paid, it reactivates the subscription.
        with django_capture_on_commit_callbacks(execute=True):
            reseller_card(tenant, client_for, fake_stripe, last4="0005")
        invoice.refresh_from_db()
        assert invoice.status == Invoice.Status.PAID
        assert invoice.payments.get(attempt=5).status == Payment.Status.SUCCEEDED
        subscription.refresh_from_db()
        assert subscription.status == Subscription.Status.ACTIVE
        assert subscription.suspension_reason == ""


def test_no_card_is_a_failed_attempt_and_says_so(tenant, other_tenant, fake_stripe):
    tenant.reseller.language = "fr"
    tenant.reseller.save()
    invoice = InvoiceFactory(subscription=SubscriptionFactory(customer=tenant.customer))
    assert services.invoice_charge(invoice_id=invoice.pk, attempt=1) == "failed"
    assert Payment.objects.get(invoice=invoice).error == services.NO_CARD_ERROR
    assert not fake_stripe.posts("/v1/payment_intents")
    email = OutboundEmail.objects.get(template="payment_failed")
    assert email.language == "fr"
    assert reverse("payments:card") in email.body_text


def test_payment_failed_email_goes_to_the_customer_when_its_card_pays(
    tenant, other_tenant, fake_stripe
):
    tenant.customer.language = "es"
    tenant.customer.save()
    invoice = InvoiceFactory(
        subscription=SubscriptionFactory(customer=tenant.customer, payer=Payer.CUSTOMER_CARD)
    )
    services.invoice_charge(invoice_id=invoice.pk, attempt=1)
    email = OutboundEmail.objects.get(template="payment_failed")
    assert (email.to, email.language) == (tenant.customer.contact_email, "es")
    assert reverse("my_payments:card", args=[tenant.customer.public_id]) in email.body_text


def test_paying_one_invoice_keeps_a_suspension_another_unpaid_invoice_caused(
    tenant, other_tenant, admin_user
):
    subscription = SubscriptionFactory(
        customer=tenant.customer,
        status=Subscription.Status.SUSPENDED,
        suspension_reason=Subscription.SuspensionReason.PENDING_PAYMENT,
    )
    InvoiceFactory(
        subscription=subscription, status=Invoice.Status.PAYMENT_FAILED, payment_attempts=4
    )
    newer = InvoiceFactory(subscription=subscription)
    billing_services.invoice_mark_paid(invoice=newer, by=admin_user)
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.SUSPENDED


def test_a_payment_never_reactivates_a_suspension_by_the_reseller(tenant, other_tenant, admin_user):
    subscription = SubscriptionFactory(
        customer=tenant.customer,
        status=Subscription.Status.SUSPENDED,
        suspension_reason=Subscription.SuspensionReason.RESELLER_INITIATED,
    )
    billing_services.invoice_mark_paid(
        invoice=InvoiceFactory(subscription=subscription), by=admin_user
    )
    subscription.refresh_from_db()
    assert subscription.suspension_reason == Subscription.SuspensionReason.RESELLER_INITIATED


def test_a_credit_note_or_zero_invoice_is_never_charged(
    tenant, other_tenant, client_for, fake_stripe
):
    reseller_card(tenant, client_for, fake_stripe)
    subscription = SubscriptionFactory(customer=tenant.customer)
    zero = InvoiceFactory(
        subscription=subscription,
        subtotal=Decimal("0.00"),
        vat_amount=Decimal("0.00"),
        total=Decimal("0.00"),
    )
    assert services.invoice_charge(invoice_id=zero.pk, attempt=1) == "nothing_to_pay"
    zero.refresh_from_db()
    assert zero.status == Invoice.Status.PAID
    assert not fake_stripe.posts("/v1/payment_intents")


def test_an_invoice_below_the_card_minimum_is_not_charged_and_never_suspends(
    tenant, other_tenant, client_for, fake_stripe
):
    """Stripe refuses charges under €0.50 (amount_too_small): a small proration stays open
    for staff, with no failed attempt behind it to suspend the subscription."""
    reseller_card(tenant, client_for, fake_stripe)
    subscription = SubscriptionFactory(customer=tenant.customer)
    small = InvoiceFactory(
        subscription=subscription,
        subtotal=Decimal("0.40"),
        vat_amount=Decimal("0.09"),
        total=Decimal("0.49"),
    )
    assert services.invoice_charge(invoice_id=small.pk, attempt=1) == "below_card_minimum"
    small.refresh_from_db()
    assert small.status == Invoice.Status.OPEN and small.payment_attempts == 0
    assert not Payment.objects.filter(invoice=small).exists()
    assert not fake_stripe.posts("/v1/payment_intents")
    at_minimum = InvoiceFactory(
        subscription=subscription,
        subtotal=Decimal("0.41"),
        vat_amount=Decimal("0.09"),
        total=Decimal("0.50"),
    )
    services.invoice_charge(invoice_id=at_minimum.pk, attempt=1)
    assert len(fake_stripe.posts("/v1/payment_intents")) == 1


def test_subscription_set_payer_refuses_a_cancelled_subscription(tenant, other_tenant):
    from subscriptions.services import subscription_set_payer

    subscription = SubscriptionFactory(
        customer=tenant.customer, status=Subscription.Status.CANCELLED, cancelled_at=timezone.now()
    )
    with pytest.raises(ValidationError):
        subscription_set_payer(subscription=subscription, payer=Payer.CUSTOMER_CARD, actor=None)
