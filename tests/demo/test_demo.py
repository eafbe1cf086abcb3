"""The demo data `make demo` loads: every state a reseller and a customer can see, paid by the
demo's test cards, and loaded twice without growing.

`demo_seed` takes seconds, so it runs once for this module, as on `make demo` (the demo card
gateway, on-commit work done), in a transaction rolled back after the module's last test; each
test runs inside it and is rolled back to it."""

from collections.abc import Iterator
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction
from django.test import TestCase, override_settings
from django.urls import reverse
from django.utils import timezone

from billing import selectors
from billing import services as billing_services
from billing.models import Invoice, Payment, PaymentCard, Refund
from commissions.margins import margin_report, month_start, previous_month
from commissions.models import Statement
from commissions.statements import statement_paid_amount
from customers.models import Customer, CustomerMember
from resellers.models import AuditEvent, Reseller
from subscriptions.models import (
    Charge,
    LicenceChange,
    Payer,
    PriceRule,
    PriceSource,
    ResellerTier,
    Subscription,
    Tier,
    TierDiscount,
)
from tests.support.demo_cards import VISA, card_form

MAKE_DEMO = {
    "DEBUG": True,
    "STRIPE_SECRET_KEY": "",
    "STRIPE_PUBLISHABLE_KEY": "",
    "STRIPE_WEBHOOK_SECRET": "",
}


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker) -> Iterator[str]:
    """What `demo_seed` printed; its data stays until the module's last test is done."""
    out = StringIO()
    with django_db_blocker.unblock(), transaction.atomic():
        with override_settings(**MAKE_DEMO), TestCase.captureOnCommitCallbacks(execute=True):
            call_command("demo_seed", stdout=out)
        yield out.getvalue()
        transaction.set_rollback(True)


def counts() -> tuple[int, ...]:
    return (
        Reseller.objects.count(),
        Customer.objects.count(),
        Subscription.objects.count(),
        LicenceChange.objects.count(),
        AuditEvent.objects.count(),
    )


def test_demo_data_covers_every_state_and_loads_once(seeded, db, demo):
    first = counts()
    call_command("demo_seed", stdout=StringIO())
    assert counts() == first
    statuses = set(Customer.objects.values_list("status", flat=True))
    assert statuses == set(Customer.Status.values)
    # Every invoice can name its buyer's country (Factur-X BT-55): none is held by the run.
    assert not Customer.objects.filter(country="").exists()
    active = Customer.objects.filter(status=Customer.Status.ACTIVE)
    assert Subscription.objects.filter(customer__in=active).count() == active.count()
    assert LicenceChange.objects.count() > Subscription.objects.count()  # some grew
    members = CustomerMember.objects.select_related("customer")
    assert members.exists()
    assert all(member.user.email == member.customer.contact_email for member in members)
    member = members.get(user__email="marta@acme-studio.es")
    assert AuditEvent.objects.filter(customer_public_id=member.customer.public_id).count() >= 3


def test_demo_has_paid_declined_and_overdue_invoices(seeded, db):
    """Every charge is invoiced; paid by the demo cards, but for a decline waiting for its retry
    (not due yet) and one past its due date."""
    today = timezone.localdate()
    invoices = Invoice.objects.filter(kind=Invoice.Kind.INVOICE)
    assert invoices.filter(status=Invoice.Status.PAID).exists()
    assert invoices.filter(status=Invoice.Status.PAYMENT_FAILED, due_date__gte=today).exists()
    assert invoices.filter(billing_services.invoices_overdue_q(today=today)).exists()
    assert not Charge.objects.filter(invoiced_at__isnull=True).exists()


def test_the_seed_leaves_the_demo_users_to_demo_serve(seeded, db, demo):
    """`make demo` lists the demo users once the server is up (demo_serve), not among the
    seed's emails; the seed prints them when run on its own."""
    assert "Demo users" in seeded
    call_command("demo_seed", "--no-users", stdout=(out := StringIO()))
    assert "Demo users" not in out.getvalue()


def test_demo_invoices_show_balances_payments_and_refunds(seeded, db):
    assert Payment.objects.filter(status=Payment.Status.SUCCEEDED).exists()
    # Refunds go back to the test card the invoice was paid with, at once.
    assert Refund.objects.filter(status=Refund.Status.SUCCEEDED).exists()
    partly = Invoice.objects.filter(
        kind=Invoice.Kind.INVOICE,
        status__in=[Invoice.Status.OPEN, Invoice.Status.PAYMENT_FAILED],
        credit_notes__isnull=False,
    ).first()
    assert partly is not None
    assert 0 < selectors.invoice_balance(partly) < partly.total


def test_the_demo_data_pays_by_card_and_shows_a_decline_that_a_new_card_mends(
    seeded, demo, client_for, django_capture_on_commit_callbacks
):
    """`make demo` (the demo gateway): the resellers' and customers' test cards are saved,
    invoices are paid by card, one customer waits for its first retry, and Acme Studio's card
    declined until its last retry suspended its subscription; Marta changes the card, and the
    invoice is paid and the subscription active again."""
    assert "4242 4242 4242 4242 pays" in seeded
    assert "Acme Studio's card declines" in seeded
    assert PaymentCard.objects.filter(reseller__isnull=False).count() == 2
    assert Invoice.objects.filter(status=Invoice.Status.PAID).exists()
    assert Invoice.objects.get(
        status=Invoice.Status.PAYMENT_FAILED, payment_attempts=1
    ).next_payment_attempt == timezone.localdate() + timedelta(days=1)
    marta = CustomerMember.objects.get(user__email="marta@acme-studio.es")
    suspended = Subscription.objects.get(status=Subscription.Status.SUSPENDED)
    assert suspended.customer == marta.customer and suspended.payer == Payer.CUSTOMER_CARD
    failed = Invoice.objects.get(customer=marta.customer, status=Invoice.Status.PAYMENT_FAILED)
    assert failed.payment_attempts == 4 and failed.next_payment_attempt is None
    with django_capture_on_commit_callbacks(execute=True):
        response = card_form(
            client_for(marta.user),
            reverse("my_payments:card_change", args=[marta.customer.public_id]),
            VISA,
        )
    assert response.status_code == 302
    failed.refresh_from_db()
    suspended.refresh_from_db()
    assert failed.status == Invoice.Status.PAID
    assert suspended.status == Subscription.Status.ACTIVE


def test_the_demo_shows_tiers_prices_margins_and_statements(seeded, db):
    """Issue 16's loop: three tiers (one with a rate for one product), every reseller in one;
    Nimbus's markup and two special prices (one ending) priced its charges, which keep their
    cost and margin; its Margin page has earned figures this month and in the two before, whose
    statements are issued: the earlier one paid out, the later one open."""
    assert Tier.objects.count() == 3
    assert TierDiscount.objects.filter(product__isnull=False).exists()
    assert ResellerTier.objects.count() == Reseller.objects.count()
    # Each reseller has its postal address, which its statements print as the supplier's.
    assert not Reseller.objects.filter(address="").exists()
    assert all("\n" in statement.seller["address"] for statement in Statement.objects.all())
    assert "Tiers: Brightside IT Silver, Nimbus Cloud Partners Gold" in seeded
    nimbus = Reseller.objects.get(name="Nimbus Cloud Partners")
    assert nimbus.price_rules.filter(kind=PriceRule.Kind.MARKUP).exists()
    specials = nimbus.customer_prices.all()
    assert sorted(special.ends_on is None for special in specials) == [False, True]
    charges = Charge.objects.filter(customer__reseller=nimbus)
    assert not charges.filter(margin_amount__lte=0).exists()
    assert charges.filter(price_source=PriceSource.PRICE_RULE).exists()
    assert charges.filter(price_source=PriceSource.SPECIAL_PRICE).exists()

    this_month = month_start(timezone.localdate())
    last_month = previous_month(this_month)
    months = [previous_month(last_month), last_month, this_month]
    for month in months:
        (earned,) = margin_report(reseller=nimbus, month=month).earned
        assert earned.total.margin > 0
    older, newer = Statement.objects.filter(
        reseller=nimbus, kind=Statement.Kind.STATEMENT
    ).order_by("period_start")
    assert [older.period_start, newer.period_start] == months[:2]
    assert older.total > 0 and statement_paid_amount(older) == older.total
    assert newer.total > 0 and statement_paid_amount(newer) == 0
