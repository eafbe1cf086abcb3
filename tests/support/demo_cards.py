"""Stripe's test cards as the demo card gateway takes them (billing.payments.demo_gateway), and
what a person does on the demo's card page."""

VISA = "4242 4242 4242 4242"
CHARGES_DECLINED = "4000 0000 0000 0341"
DECLINED = "4000000000000002"
AUTHENTICATE = "4000 0025 0000 3155"


def card_form(client, url: str, card_number: str, **fields):
    """Type a card on the demo's card page and submit it."""
    page = client.get(url)
    assert page.status_code == 200
    data = {
        "setup": page.context["demo_form"]["setup"].value(),
        "number": card_number,
        "expiry": "12 / 34",
        "cvc": "123",
        **fields,
    }
    return client.post(url, data)
