"""What a person does on the card pages, against the fake Stripe server (tests/support/fake_stripe.py),
and the invoices and retry days the payment tests share: used by the payments, balance, refund
and demo card tests."""

from datetime import UTC, date, datetime, timedelta

from django.urls import reverse
from django.utils import timezone

from billing.models import Invoice, PaymentCard
from billing.payments import tasks
from core.models import User
from customers.models import Customer, CustomerMember
from subscriptions.models import Subscription
from tests.billing_factories import InvoiceFactory, InvoiceLineFactory
from tests.conftest import Tenant
from tests.factories import UserFactory


def save_card(client, fake, change_url: str, **card) -> PaymentCard:
    """What a person does on the card page: Stripe Elements confirms, the page posts the id."""
    page = client.get(change_url)
    assert page.status_code == 200
    setup_id = fake.card_confirmed(page.context["setup"].client_secret, **card)
    response = client.post(change_url, {"setup_intent": setup_id})
    assert response.status_code == 302, response.content.decode()
    return PaymentCard.objects.get(
        gateway_payment_method_id=fake.setup_intents[setup_id]["payment_method"]
    )


def reseller_card(tenant: Tenant, client_for, fake, **card) -> PaymentCard:
    """The reseller's owner saves a card on the reseller's card page."""
    return save_card(client_for(tenant.owner), fake, reverse("payments:card_change"), **card)


def admin_of(customer: Customer) -> User:
    """A new administrator of the customer (who accepted its terms)."""
    user = UserFactory()
    CustomerMember.objects.create(customer=customer, user=user, terms_accepted_at=timezone.now())
    return user


def invoice_for(subscription: Subscription, **fields) -> Invoice:
    """An issued invoice of one line for the subscription, paid the way it is."""
    fields.setdefault("payer", subscription.payer)
    invoice = InvoiceFactory(customer=subscription.customer, **fields)
    InvoiceLineFactory(invoice=invoice, position=1, subscription=subscription)
    return invoice


def retry_day(traveller, day: date) -> int:
    """Travel to 06:00 UTC of `day` and run the daily retry job; how many it queued."""
    traveller.move_to(datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=6))
    return tasks.payments_retry_due()
