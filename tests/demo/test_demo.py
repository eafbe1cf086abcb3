"""The demo data `make demo` loads: every state a reseller and a customer can see, paid by the
demo's test cards, and loaded twice without growing.

`demo_seed` takes seconds, so it runs once for this module, as on `make demo` (the demo card
gateway, on-commit work done), in a transaction rolled back after the module's last test; each
test runs inside it and is rolled back to it."""

from collections.abc import Iterator
from datetime import timedelta
from io import StringIO
from itertools import pairwise

import pytest
import time_machine
from django.core.management import call_command
from django.db import transaction
from django.test import TestCase, override_settings
from django.urls import reverse
from django.utils import timezone

from api.models import ApiKey, Scope
from billing import selectors
from billing.models import Invoice, Payment, PaymentCard, Refund
from commissions.margins import margin_report, month_start, next_month, previous_month
from commissions.models import Statement
from commissions.statements import statement_paid_amount
from core.models import User
from customers.models import Customer, CustomerMember
from demo.history import at
from demo.management.commands.demo_seed import WEBHOOK_ENDPOINTS
from insights.models import DailySnapshot
from insights.selectors import dashboard_figures, renewals_due
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
from subscriptions.selectors import subscription_ids_due_for_renewal
from tests.support.demo_cards import VISA, card_form
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent

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
    assert invoices.filter(selectors.invoices_overdue_q(today=today)).exists()
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
    marta = CustomerMember.objects.get(user__email="marta@acme-studio.es")
    # The other declined today, at its annual renewal (on 29 February, whose renewal fell the
    # day before, at its second attempt): its next retry is ahead.
    waiting = Invoice.objects.exclude(customer=marta.customer).get(
        status=Invoice.Status.PAYMENT_FAILED
    )
    assert waiting.payment_attempts < 4
    assert waiting.next_payment_attempt and waiting.next_payment_attempt > timezone.localdate()
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
    cost and margin; its Margin page has earned figures this month and in the two before; the
    statements of every month of the history are issued, all paid out but last month's."""
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
    statements = list(
        Statement.objects.filter(reseller=nimbus, kind=Statement.Kind.STATEMENT).order_by(
            "period_start"
        )
    )
    # One a month, every month of the year's history, up to last month's.
    starts = [statement.period_start for statement in statements]
    assert len(starts) >= 12 and starts[-2:] == months[:2]
    assert all(next_month(a) == b for a, b in pairwise(starts))
    *older, newer = statements
    assert all(s.total > 0 and statement_paid_amount(s) == s.total for s in older)
    assert newer.total > 0 and statement_paid_amount(newer) == 0


def test_the_demo_lived_a_year_so_the_dashboard_shows_something_real(seeded, db, client_for):
    """Issue 18: the demo's year was lived day by day through the services and the nightly
    jobs (demo.history). Every month of the dashboard's charts has its figures: a book already
    held a year ago that grew since, invoices issued and paid each month. The renewals desk has
    annual terms ending soon (one set to cancel), a trial ends within the week, an annual
    customer left at the end of its term, and every date follows the one before it: invoice
    numbers by issue day, payments on the day the run charged the card."""
    nimbus = Reseller.objects.get(name="Nimbus Cloud Partners")
    today = timezone.localdate()
    figures = dashboard_figures(reseller=nimbus, today=today)
    (euros,) = figures.currencies
    months = euros.months
    assert len(months) == 12 and all(point.mrr > 0 and point.licences > 0 for point in months)
    assert months[-1].mrr > months[0].mrr and len({point.mrr for point in months}) >= 8
    assert all(point.invoiced > 0 and point.paid > 0 for point in months)
    assert euros.mrr_before is not None and euros.mrr_before != euros.mrr

    desk = renewals_due(reseller=nimbus, today=today, days=90)
    settings = {row.renewal_setting for row in desk}
    assert {"auto_renew", "cancel_at_term_end"} <= settings
    assert figures.trials_ending >= 1
    left = Subscription.objects.get(customer__reseller=nimbus, status=Subscription.Status.CANCELLED)
    assert left.plan.is_annual and left.term_end is not None and left.term_end <= today

    for series in (Invoice.objects.filter(number__startswith=prefix) for prefix in ("INV-", "CN-")):
        numbers = list(series.order_by("issue_date", "pk").values_list("number", flat=True))
        assert numbers == sorted(numbers)
    card_paid = Payment.objects.filter(status=Payment.Status.SUCCEEDED, attempt=1)
    assert card_paid.count() > 100
    assert all(
        timezone.localdate(payment.created_at) == payment.invoice.issue_date
        for payment in card_paid.select_related("invoice")
    )
    ana = User.objects.get(email="ana@nimbus.example")
    assert client_for(ana).get(reverse("dashboard")).status_code == 200


def test_loaded_again_a_week_later_the_demo_lives_the_days_between(seeded, db, demo):
    """`make demo` runs no scheduler: loaded again on a later day, the seed runs the nightly
    jobs of each day since (demo.history), so the demo moves on as a live portal would. A week
    on, every renewal due has been charged and invoiced, and the card waiting for its retry was
    tried on each retry day until the last one suspended its subscription. Loaded again that
    day, nothing changes."""
    today = timezone.localdate()
    later = today + timedelta(days=7)
    waiting = Invoice.objects.get(
        status=Invoice.Status.PAYMENT_FAILED, next_payment_attempt__gt=today
    )
    with time_machine.travel(at(later, 10), tick=False):
        call_command("demo_seed", stdout=StringIO())
        assert subscription_ids_due_for_renewal(today=later) == []
        assert not Charge.objects.filter(invoiced_at__isnull=True).exists()
        waiting.refresh_from_db()
        assert waiting.payment_attempts == 4 and waiting.next_payment_attempt is None
        renewed = Subscription.objects.get(customer=waiting.customer)
        assert renewed.status == Subscription.Status.SUSPENDED
        assert DailySnapshot.objects.filter(day=later).exists()
        after = counts()
        call_command("demo_seed", stdout=StringIO())
        assert counts() == after


def test_the_demo_has_api_keys_and_webhook_endpoints_with_a_delivery_log(seeded, db):
    """Issue 17 on Nimbus: its owner made two keys (one used a few hours ago) and revoked a
    third, all through the services (audited, dated back); an endpoint listens to a handful of
    events and a trial one was disabled by a member. Their delivery logs are crafted on the
    events the seed's service calls recorded: delivered, once after a retry, and one still
    failing with its next retry ahead; the seed's own on-commit work sent nothing, to no host."""
    nimbus = Reseller.objects.get(name="Nimbus Cloud Partners")
    now = timezone.now()
    keys = {key.name: key for key in ApiKey.objects.filter(reseller=nimbus)}
    assert set(keys) == {"PSA sync", "Accounting export", "Reporting trial"}
    assert not ApiKey.objects.exclude(reseller=nimbus).exists()
    psa, accounting, trial = keys["PSA sync"], keys["Accounting export"], keys["Reporting trial"]
    assert psa.scopes == sorted([Scope.READ, Scope.CUSTOMERS_WRITE, Scope.SUBSCRIPTIONS_WRITE])
    assert accounting.scopes == sorted([Scope.READ, Scope.BILLING_READ])
    assert psa.is_usable and accounting.is_usable and not trial.is_usable
    assert psa.last_used_at is not None and now - timedelta(days=1) < psa.last_used_at < now
    assert accounting.last_used_at is None
    assert trial.revoked_at is not None and trial.created_at < trial.revoked_at < now
    assert all(key.created_by_email == "ana@nimbus.example" for key in keys.values())
    made = AuditEvent.objects.filter(reseller=nimbus, action="api_key.created")
    assert made.count() == 3 and all(event.created_at < now - timedelta(days=1) for event in made)
    assert AuditEvent.objects.filter(action="api_key.revoked", object_id=trial.public_id).exists()

    endpoints = list(WebhookEndpoint.objects.filter(reseller=nimbus).order_by("created_at"))
    assert [endpoint.url for endpoint in endpoints] == [
        "https://staging.hooks.nimbus.example/portal",
        "https://hooks.nimbus.example/portal",
    ]
    trial_endpoint, endpoint = endpoints
    assert endpoint.is_enabled and len(endpoint.event_types) >= 5
    assert trial_endpoint.disabled_reason == WebhookEndpoint.DisabledReason.BY_MEMBER
    disabled = AuditEvent.objects.get(
        action="webhook_endpoint.disabled", object_id=trial_endpoint.public_id
    )
    assert disabled.actor_email == "luis@nimbus.example"

    deliveries = WebhookDelivery.objects.filter(endpoint=endpoint).select_related("event")
    delivered = deliveries.filter(status=WebhookDelivery.Status.DELIVERED)
    assert delivered.count() >= 4
    assert all(d.response_status == 200 and d.response_body == "ok" for d in delivered)
    assert delivered.filter(attempts=2).exists()  # one after a retry
    failing = deliveries.get(status=WebhookDelivery.Status.PENDING)
    assert failing.response_status == 500
    assert failing.next_attempt_at is not None and failing.next_attempt_at > now
    assert failing.attempt_log.filter(response_status=500).count() == failing.attempts
    assert endpoint.failing_since == failing.attempt_log.earliest("attempted_at").attempted_at
    for delivery in deliveries:
        assert endpoint.created_at < delivery.event.created_at == delivery.started_at < now
        assert delivery.event.type in endpoint.event_types
    assert WebhookDelivery.objects.filter(endpoint=trial_endpoint).exists()
    # Only the crafted attempts: every event the seed recorded is fanned out, none was sent.
    assert WebhookAttempt.objects.count() == sum(
        len(answers) for spec in WEBHOOK_ENDPOINTS for _type, _ago, answers in spec["history"]
    )
    assert not WebhookEvent.objects.filter(reseller=nimbus, fanned_out_at__isnull=True).exists()
    assert not WebhookDelivery.objects.filter(
        status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now
    ).exists()


def test_the_nimbus_owner_finds_the_keys_endpoints_and_delivery_log_in_settings(seeded, client_for):
    """What a never-seen user signed in as Nimbus's owner finds under Settings: the API keys
    page lists the three keys (never a secret), the Webhooks page both endpoints, and the
    endpoint's page its delivery log with each attempt."""
    ana = User.objects.get(email="ana@nimbus.example")
    client = client_for(ana)
    page = client.get(reverse("resellers:settings"))
    assert page.status_code == 200
    assert reverse("api_keys:list") in page.text and reverse("webhooks:list") in page.text

    page = client.get(reverse("api_keys:list"))
    assert page.status_code == 200
    for key in ApiKey.objects.filter(reseller__name="Nimbus Cloud Partners"):
        assert key.name in page.text and f"{key.prefix}…" in page.text
        assert key.key_hash not in page.text
        # Revoked, a key has no Revoke button any more.
        revoke = reverse("api_keys:revoke", args=[key.public_id])
        assert (revoke in page.text) == (key.revoked_at is None)

    page = client.get(reverse("webhooks:list"))
    assert page.status_code == 200
    endpoints = WebhookEndpoint.objects.filter(reseller__name="Nimbus Cloud Partners")
    for endpoint in endpoints:
        assert endpoint.url in page.text
        assert reverse("webhooks:detail", args=[endpoint.public_id]) in page.text

    endpoint = endpoints.get(disabled_at__isnull=True)
    page = client.get(reverse("webhooks:detail", args=[endpoint.public_id]))
    assert page.status_code == 200
    deliveries = endpoint.deliveries.select_related("event")
    for delivery in deliveries:
        assert f'id="delivery-{delivery.event.public_id}"' in page.text
    attempts = WebhookAttempt.objects.filter(delivery__endpoint=endpoint)
    delivered = attempts.filter(response_status=200).count()
    assert delivered >= 4
    assert page.text.count("— 200 (") == page.text.count("<pre>ok</pre>") == delivered
    assert page.text.count("— 500 (") == attempts.filter(response_status=500).count() == 4
    failing = page.context["deliveries"][0]  # the newest first
    assert failing.status == WebhookDelivery.Status.PENDING and failing.next_attempt_at
