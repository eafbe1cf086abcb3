"""The money invariant, over random histories of one invoice on PostgreSQL: whatever the order
of partial credit notes, failed and successful card charges and refunds, what Stripe charged
less what it refunded never exceeds what the invoice is worth after its credit notes (total -
credits), the portal's balance always agrees with Stripe's own records, and once the refunds
are made and the card has paid, charged - refunded = total - credits to the cent.

Stripe is the fake HTTP server of tests/support/fake_stripe.py; everything above HTTP is the real
code. The refund tasks that run after commit in production are run here by the "worker" step."""

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from billing import selectors
from billing import services as billing_services
from billing.models import Invoice, Refund
from billing.payments import services
from tests.factories import InvoiceFactory, SubscriptionFactory
from tests.support.fake_stripe import reseller_card

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

CENT = Decimal("0.01")
RATE = Decimal("21.00")


@pytest.fixture
def card(tenant, client_for, fake_stripe):
    return reseller_card(tenant, client_for, fake_stripe)


def _cents(fake, number: str) -> tuple[int, int]:
    """(charged, refunded) at Stripe for one invoice, in cents, from Stripe's own objects."""
    intents = {
        intent["id"]: intent
        for intent in fake.payment_intents.values()
        if intent["metadata"].get("invoice") == number and intent["status"] == "succeeded"
    }
    charged = sum(intent["amount"] for intent in intents.values())
    refunded = sum(
        refund["amount"]
        for refund in fake.refunds.values()
        if refund["payment_intent"] in intents and refund["status"] == "succeeded"
    )
    return charged, refunded


def _worth(invoice: Invoice) -> Decimal:
    """Total - credit notes."""
    credited = sum((note.total for note in invoice.credit_notes.all()), Decimal("0.00"))
    return invoice.total - credited


def _pending_card_refunds(invoice: Invoice) -> Decimal:
    pending = Refund.objects.filter(
        invoice=invoice, method=Refund.Method.CARD, status=Refund.Status.PENDING
    )
    return sum((refund.amount for refund in pending), Decimal("0.00"))


def _check(invoice: Invoice, fake) -> None:
    invoice.refresh_from_db()
    charged, refunded = (Decimal(cents) * CENT for cents in _cents(fake, invoice.number))
    worth = _worth(invoice)
    # Stripe never keeps more than the invoice is worth, once the refunds on their way are
    # made; and never gives back more than it took.
    assert charged - refunded - _pending_card_refunds(invoice) <= worth
    assert refunded <= charged
    # The portal's balance is what Stripe says is still to be collected (or given back).
    assert selectors.invoice_balance(invoice) == worth - (charged - refunded)


OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("credit"), st.integers(min_value=1, max_value=20000)),
        st.tuples(st.just("credit_rest"), st.just(0)),
        st.tuples(st.just("charge"), st.booleans()),  # True: the card pays, False: declined
        st.tuples(st.just("worker"), st.just(0)),  # the refund tasks run
    ),
    max_size=8,
)


@hypothesis_settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(subtotal_cents=st.integers(min_value=100, max_value=500000), operations=OPERATIONS)
def test_charged_less_refunded_never_exceeds_total_less_credits(
    tenant, other_tenant, admin_user, card, fake_stripe, subtotal_cents, operations
):
    subscription = SubscriptionFactory(customer=tenant.customer)
    subtotal = Decimal(subtotal_cents) * CENT
    vat = (subtotal * RATE / 100).quantize(CENT)
    invoice = InvoiceFactory(
        subscription=subscription,
        subtotal=subtotal,
        vat_rate=RATE,
        vat_amount=vat,
        total=subtotal + vat,
    )

    def worker() -> None:
        for refund in Refund.objects.filter(invoice=invoice, status=Refund.Status.PENDING):
            services.refund_process(refund_id=refund.pk)

    def charge(pays: bool) -> None:
        invoice.refresh_from_db()
        if pays:
            fake_stripe.declining.discard(card.gateway_payment_method_id)
        else:
            fake_stripe.declining.add(card.gateway_payment_method_id)
        services.invoice_charge(invoice_id=invoice.pk, attempt=invoice.payment_attempts + 1)

    for operation, value in operations:
        invoice.refresh_from_db()
        left = invoice.subtotal - sum(
            (note.subtotal for note in invoice.credit_notes.all()), Decimal("0.00")
        )
        if operation in ("credit", "credit_rest") and left > 0:
            amount = None if operation == "credit_rest" else min(Decimal(value) * CENT, left)
            billing_services.credit_note_issue(
                invoice=invoice, reason="Property test", by=admin_user, amount=amount
            )
        elif operation == "charge":
            charge(value)
        elif operation == "worker":
            worker()
        _check(invoice, fake_stripe)

    # Then everything settles: the refunds are made, the card pays what is left.
    worker()
    charge(True)
    worker()
    _check(invoice, fake_stripe)
    invoice.refresh_from_db()
    balance = selectors.invoice_balance(invoice)
    charged, refunded = (Decimal(cents) * CENT for cents in _cents(fake_stripe, invoice.number))
    # Settled to the cent, unless what is left is below the card minimum (left for staff).
    assert Decimal("0.00") <= balance < Decimal("0.50")
    assert charged - refunded == _worth(invoice) - balance
    assert invoice.status in (
        (Invoice.Status.PAID, Invoice.Status.CREDITED)
        if balance == 0
        else (Invoice.Status.OPEN, Invoice.Status.PAYMENT_FAILED)
    )
