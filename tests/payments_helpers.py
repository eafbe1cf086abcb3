"""What a person does on the card pages, against the fake Stripe server (tests/fake_stripe.py):
shared by the payments, balance and refund tests."""

from django.urls import reverse

from billing.models import PaymentCard
from tests.conftest import Tenant


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
