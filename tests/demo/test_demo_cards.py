"""The demo card gateway (billing.payments.demo_gateway): in development without Stripe keys,
Stripe's test cards work offline through the same gateway interface, so the whole card section
of seed 003 can be tried on `make demo`: the reseller card, the customer card by consent,
change card, a declined card with its retries and suspension, and paying restores service."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.contrib.auth.models import Permission
from django.core import mail
from django.urls import reverse

from billing import services as billing_services
from billing.models import Invoice, PaymentCard, Refund
from billing.payments import services
from billing.payments.demo_gateway import DemoGateway
from billing.payments.gateways import ManualGateway, StripeGateway, gateway
from billing.selectors import PAYMENT_BY_CARD, payment_means_now
from billing.vat import vat_rates_seed
from core.models import OutboundEmail
from subscriptions.models import Payer, Subscription
from tests.factories import (
    ChargeFactory,
    InvoiceFactory,
    SubscriptionFactory,
    UserFactory,
    admin_of,
)
from tests.support.demo_cards import AUTHENTICATE, CHARGES_DECLINED, DECLINED, VISA, card_form
from tests.support.fake_stripe import API_KEY, PUBLISHABLE_KEY, WEBHOOK_SECRET


def reseller_client(tenant, client_for):
    return client_for(tenant.owner)


def test_development_without_stripe_keys_uses_the_demo_gateway(settings):
    settings.STRIPE_SECRET_KEY = settings.STRIPE_PUBLISHABLE_KEY = ""
    settings.STRIPE_WEBHOOK_SECRET = ""
    settings.DEBUG = False
    assert isinstance(gateway(), ManualGateway)
    settings.DEBUG = True
    assert isinstance(gateway(), DemoGateway)
    assert payment_means_now() == PAYMENT_BY_CARD
    settings.STRIPE_SECRET_KEY, settings.STRIPE_PUBLISHABLE_KEY = API_KEY, PUBLISHABLE_KEY
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    assert isinstance(gateway(), StripeGateway)


def test_reseller_saves_a_test_card_and_the_pages_say_it_is_a_demo(
    demo, tenant, other_tenant, client_for
):
    client = reseller_client(tenant, client_for)
    page = client.get(reverse("payments:card_change"))
    html = page.content.decode()
    assert 'id="demo-cards"' in html and "4242 4242 4242 4242" in html
    assert "js.stripe.com" not in html  # the portal's own form, no Stripe script
    response = card_form(client, reverse("payments:card_change"), VISA)
    assert response.status_code == 302 and response["Location"] == reverse("payments:card")
    card = PaymentCard.objects.get(reseller=tenant.reseller)
    assert (card.gateway, card.brand, card.last4) == ("demo", "visa", "4242")
    assert (card.exp_month, card.exp_year) == (12, 2034)
    shown = client.get(reverse("payments:card")).content.decode()
    assert "•••• 4242" in shown and 'id="demo-cards"' in shown
    # The page choosing who pays a subscription says it too.
    subscription = SubscriptionFactory(customer=tenant.customer)
    payer = client.get(reverse("payments:subscription_payer", args=[subscription.public_id]))
    assert 'id="demo-cards"' in payer.content.decode()


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"number": "4111 1111 1111 1112"}, "number", "Enter a valid card number."),
        (
            {"number": "5105 1051 0510 5100"},
            "number",
            "The demo takes only the test card numbers listed on this page.",
        ),
        ({"expiry": "13/30"}, "expiry", "Enter the expiry date as MM / YY."),
        ({"expiry": "01 / 20"}, "expiry", "This expiry date is in the past."),
        ({"cvc": "12"}, "cvc", "Enter the card's 3-digit security code."),
        (
            {"number": "3782 822463 10005", "cvc": "123"},
            "cvc",
            "Enter the card's 4-digit security code.",
        ),
        ({"number": DECLINED}, "number", "Your card was declined."),
        ({"number": "4000000000009995"}, "number", "Your card has insufficient funds."),
    ],
)
def test_bad_or_declined_cards_are_refused_next_to_the_field_and_keep_what_was_typed(
    demo, tenant, other_tenant, client_for, fields, field, message
):
    client = reseller_client(tenant, client_for)
    response = card_form(client, reverse("payments:card_change"), VISA, **fields)
    assert response.status_code == 400
    form = response.context["demo_form"]
    assert message in form.errors[field]
    for value in fields.values():
        assert f'value="{value}"' in response.content.decode()
    assert not PaymentCard.objects.exists()
    # The form comes back on a new setup, ready to try again.
    again = client.post(
        reverse("payments:card_change"),
        {"setup": form["setup"].value(), "number": VISA, "expiry": "12/34", "cvc": "123"},
    )
    assert again.status_code == 302


def test_declined_messages_are_shown_in_the_readers_language(
    demo, tenant, other_tenant, client_for
):
    client = reseller_client(tenant, client_for)
    url = reverse("payments:card_change")
    page = client.get(url, HTTP_ACCEPT_LANGUAGE="es")
    response = client.post(
        url,
        {
            "setup": page.context["demo_form"]["setup"].value(),
            "number": DECLINED,
            "expiry": "12/34",
            "cvc": "123",
        },
        HTTP_ACCEPT_LANGUAGE="es",
    )
    assert "Your card was declined." not in response.content.decode()
    assert response.context["demo_form"].errors["number"] == ["Su tarjeta ha sido rechazada."]


def test_a_card_that_asks_for_authentication_is_saved_only_once_authenticated(
    demo, tenant, other_tenant, client_for
):
    client = reseller_client(tenant, client_for)
    url = reverse("payments:card_change")
    asked = card_form(client, url, AUTHENTICATE)
    assert asked.status_code == 200 and 'id="demo-authentication"' in asked.content.decode()
    assert not PaymentCard.objects.exists()
    setup = asked.context["authentication"]["setup"].value()
    failed = client.post(url, {"setup": setup, "authenticate": "fail"})
    assert failed.status_code == 400
    assert "unable to authenticate" in " ".join(failed.context["errors"])
    assert not PaymentCard.objects.exists()
    # An unauthenticated setup posted as if confirmed saves nothing either.
    assert card_form(client, url, AUTHENTICATE).status_code == 200
    done = client.post(url, {"setup": setup, "authenticate": "complete"})
    assert done.status_code == 302
    assert PaymentCard.objects.get(reseller=tenant.reseller).last4 == "3155"


def test_a_forged_setup_saves_nothing(demo, tenant, other_tenant, client_for):
    client = reseller_client(tenant, client_for)
    response = client.post(
        reverse("payments:card_change"),
        {"setup": "forged", "number": VISA, "expiry": "12/34", "cvc": "123"},
    )
    assert response.status_code == 400
    assert not PaymentCard.objects.exists()
    # Another reseller's setup cannot save a card for this one.
    other_page = client_for(other_tenant.owner).get(reverse("payments:card_change"))
    theirs = other_page.context["demo_form"]["setup"].value()
    stolen = client.post(
        reverse("payments:card_change"),
        {"setup": theirs, "number": VISA, "expiry": "12/34", "cvc": "123"},
    )
    assert stolen.status_code == 400
    assert not PaymentCard.objects.exists()


def test_invoices_are_charged_to_the_reseller_card_and_refunds_go_back_to_it(
    demo, tenant, other_tenant, client_for, django_capture_on_commit_callbacks, admin_user
):
    card_form(reseller_client(tenant, client_for), reverse("payments:card_change"), VISA)
    invoice = InvoiceFactory(subscription=SubscriptionFactory(customer=tenant.customer))
    with django_capture_on_commit_callbacks(execute=True):
        services.invoice_charge_enqueue(invoice)
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    payment = invoice.payments.get()
    assert payment.gateway == "demo" and payment.card_label == "Visa •••• 4242"
    # Charged again with the same key: the same answer, nothing recorded twice.
    assert services.invoice_charge(invoice_id=invoice.pk, attempt=1) == "succeeded"
    assert invoice.payments.count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        billing_services.credit_note_issue(
            invoice=invoice, reason="Too many licences", amount=Decimal("1.00"), by=admin_user
        )
    refund = Refund.objects.get(invoice=invoice)
    assert refund.method == Refund.Method.CARD and refund.status == Refund.Status.SUCCEEDED


def test_a_declined_card_retries_then_suspends_and_a_new_card_restores_service(
    demo, tenant, other_tenant, client_for, django_capture_on_commit_callbacks, retry_day
):
    client = reseller_client(tenant, client_for)
    day0 = date(2026, 3, 2)
    with time_machine.travel(datetime(2026, 3, 2, 9, 0, tzinfo=UTC), tick=False) as traveller:
        card_form(client, reverse("payments:card_change"), CHARGES_DECLINED)
        subscription = SubscriptionFactory(customer=tenant.customer)
        invoice = InvoiceFactory(subscription=subscription)
        with django_capture_on_commit_callbacks(execute=True):
            services.invoice_charge_enqueue(invoice)
        invoice.refresh_from_db()
        assert invoice.status == Invoice.Status.PAYMENT_FAILED
        assert invoice.next_payment_attempt == day0 + timedelta(days=1)
        email = OutboundEmail.objects.get(template="payment_failed")
        assert "Your card was declined." in email.body_text
        for offset in (1, 3, 5):
            with django_capture_on_commit_callbacks(execute=True):
                assert retry_day(traveller, day0 + timedelta(days=offset)) == 1
        subscription.refresh_from_db()
        invoice.refresh_from_db()
        assert subscription.status == Subscription.Status.SUSPENDED
        assert (
            list(invoice.payments.values_list("status", flat=True).order_by("attempt"))
            == ["failed"] * 4
        )
        # A card that pays: the invoice is tried again at once, paid, and service restored.
        with django_capture_on_commit_callbacks(execute=True):
            card_form(client, reverse("payments:card_change"), VISA)
        invoice.refresh_from_db()
        subscription.refresh_from_db()
        assert invoice.status == Invoice.Status.PAID
        assert subscription.status == Subscription.Status.ACTIVE


def test_the_customer_agrees_to_pay_with_a_card_it_adds_on_the_demo_page(
    demo, tenant, other_tenant, client_for, django_capture_on_commit_callbacks
):
    card_form(reseller_client(tenant, client_for), reverse("payments:card_change"), VISA)
    customer = tenant.customer
    admin = admin_of(customer)
    subscription = SubscriptionFactory(customer=customer)
    with django_capture_on_commit_callbacks(execute=True):
        asked = reseller_client(tenant, client_for).post(
            reverse("payments:subscription_payer", args=[subscription.public_id]),
            {"use_customer_card": "on"},
        )
    assert asked.status_code == 302
    body = next(m.body for m in reversed(mail.outbox) if "/billing/card-consent/" in m.body)
    link_path = body[body.index("/billing/card-consent/") :].split()[0]
    client = client_for(admin)
    page = client.get(link_path)
    assert 'id="demo-cards"' in page.content.decode()
    add_url = page.context["add_card_url"]
    back = card_form(client, add_url, "5555 5555 5555 4444", next=link_path)
    assert back.status_code == 302 and back["Location"] == link_path
    assert "•••• 4444" in client.get(link_path).content.decode()
    assert client.post(link_path).status_code == 302
    subscription.refresh_from_db()
    assert subscription.payer == Payer.CUSTOMER_CARD
    invoice = InvoiceFactory(subscription=subscription)
    with django_capture_on_commit_callbacks(execute=True):
        services.invoice_charge_enqueue(invoice)
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    assert invoice.payments.get().card_label == "Mastercard •••• 4444"


INVOICE_NOW = "/admin/billing/invoice/invoice-now/"


def test_staff_invoice_todays_charges_now_and_by_card_they_are_charged_at_once(
    demo, tenant, other_tenant, client_for, staff_client, django_capture_on_commit_callbacks
):
    """The demo has no scheduler for the nightly billing run: staff run it from the admin's
    "Billing health" box, and the demo card pays the invoice at once."""
    vat_rates_seed()
    card_form(reseller_client(tenant, client_for), reverse("payments:card_change"), VISA)
    ChargeFactory(subscription=SubscriptionFactory(customer=tenant.customer))
    page = staff_client.get("/admin/").content.decode()
    assert 'data-count="customers-to-invoice">1<' in page and INVOICE_NOW in page
    assert staff_client.get(INVOICE_NOW).status_code == 405
    with django_capture_on_commit_callbacks(execute=True):
        done = staff_client.post(INVOICE_NOW, follow=True)
    assert "1 invoice queued to be issued." in done.content.decode()
    invoice = Invoice.objects.get(customer=tenant.customer)
    assert invoice.status == Invoice.Status.PAID and invoice.payments.get().gateway == "demo"
    again = staff_client.post(INVOICE_NOW, follow=True).content.decode()
    assert "No charges are waiting to be invoiced today." in again
    assert INVOICE_NOW not in again  # nothing to invoice: no button


def test_staff_who_may_not_change_invoices_cannot_invoice_now(tenant, client_for):
    reader = UserFactory(is_staff=True)
    reader.user_permissions.set([Permission.objects.get(codename="view_invoice")])
    TOTP.activate(reader, generate_totp_secret())
    ChargeFactory(subscription=SubscriptionFactory(customer=tenant.customer))
    client = client_for(reader)
    assert INVOICE_NOW not in client.get("/admin/").content.decode()
    assert client.post(INVOICE_NOW).status_code == 403
    assert not Invoice.objects.exists()


def test_the_card_pages_say_which_payment_failed_why_and_what_comes_next(
    demo, tenant, other_tenant, client_for, django_capture_on_commit_callbacks
):
    client = reseller_client(tenant, client_for)
    card_form(client, reverse("payments:card_change"), CHARGES_DECLINED)
    invoice = InvoiceFactory(subscription=SubscriptionFactory(customer=tenant.customer))
    with django_capture_on_commit_callbacks(execute=True):
        services.invoice_charge_enqueue(invoice)
    invoice.refresh_from_db()
    page = client.get(reverse("payments:card"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'id="payments-failed"' in page
    assert f"The card payment of invoice {invoice.number} failed." in page
    assert "The card's answer: Your card was declined." in page
    assert "It is tried again on" in page
    # Another reseller's failures are not shown.
    other = client_for(other_tenant.owner).get(reverse("payments:card")).content.decode()
    assert invoice.number not in other
    with django_capture_on_commit_callbacks(execute=True):
        card_form(client, reverse("payments:card_change"), VISA)
    assert 'id="payments-failed"' not in client.get(reverse("payments:card")).content.decode()
