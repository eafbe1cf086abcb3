"""The billing run's cost per invoice, held where it was brought (docs/benchmarks.md, Billing
run): the statements an invoice takes, counted, and the SQL the run writes itself kept to the
rules it stands for."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing import selectors, services, vat
from billing.models import BillingHold, DocumentCounter, Invoice
from subscriptions.models import Charge
from tests.factories import ChargeFactory, CustomerFactory, SubscriptionFactory, Tenant

# Locking the customer's due charges; today's invoice and an open hold (one read); the VAT rate
# (for domestic VAT and EU consumers); the number; the invoice; its lines; the charges marked
# invoiced; the audit row; the webhook event (the outbox row: its deliveries are made after the
# commit). Besides BEGIN and COMMIT, which a test's transaction turns into a savepoint and its
# release.
STATEMENTS_WITH_A_RATE = 9


@pytest.fixture
def vat_rates(db: None) -> None:
    vat.vat_rates_seed()


def statements(context: CaptureQueriesContext) -> list[str]:
    return [
        query["sql"]
        for query in context.captured_queries
        if not query["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))
    ]


def issue(customer, *, payer: str = "reseller_card") -> Invoice | None:
    return services.invoice_issue_for_customer(
        customer=customer, payer=payer, day=timezone.localdate()
    )


def charges_for(customer, count: int) -> list[Charge]:
    """`count` charges of the customer due today, each of a subscription of its own."""
    return [
        ChargeFactory(subscription=SubscriptionFactory(customer=customer)) for _ in range(count)
    ]


def test_an_invoice_takes_nine_statements_whatever_its_lines(vat_rates, tenant: Tenant):
    # The year's first number creates the counter row (two statements more, once a year).
    DocumentCounter.objects.create(series="INV", year=timezone.localdate().year)
    for lines in (1, 2, 7):
        customer = CustomerFactory(reseller=tenant.reseller, country="IE")  # domestic VAT
        charges_for(customer, lines)
        with CaptureQueriesContext(connection) as context:
            invoice = issue(customer)
        assert invoice is not None and invoice.line_count == lines
        assert len(statements(context)) == STATEMENTS_WITH_A_RATE, statements(context)


def test_reverse_charge_reads_no_rate(vat_rates, tenant: Tenant):
    DocumentCounter.objects.create(series="INV", year=timezone.localdate().year)
    customer = CustomerFactory(reseller=tenant.reseller, country="ES", vat_id="ESB70000005")
    charges_for(customer, 2)
    with CaptureQueriesContext(connection) as context:
        invoice = issue(customer)
    assert invoice is not None and invoice.vat_treatment == Invoice.VatTreatment.REVERSE_CHARGE
    assert len(statements(context)) == STATEMENTS_WITH_A_RATE - 1
    assert not any("vatrate" in sql for sql in statements(context))


def test_an_open_hold_costs_one_statement_more_and_is_closed(vat_rates, tenant: Tenant):
    DocumentCounter.objects.create(series="INV", year=timezone.localdate().year)
    customer = CustomerFactory(reseller=tenant.reseller, country="IE")
    charges_for(customer, 1)
    day = timezone.localdate()
    held = BillingHold.objects.create(
        customer=customer, reason="No country.", first_seen_on=day, last_seen_on=day
    )
    with CaptureQueriesContext(connection) as context:
        assert issue(customer) is not None
    assert len(statements(context)) == STATEMENTS_WITH_A_RATE + 1
    held.refresh_from_db()
    assert held.resolved_on == day


def test_the_runs_charge_lock_reads_what_charges_due_says(tenant: Tenant, other_tenant: Tenant):
    day = timezone.localdate()
    customer = CustomerFactory(reseller=tenant.reseller)
    due = charges_for(customer, 3)
    # Not due: invoiced already, created after the day, another customer's.
    Charge.objects.filter(pk=due[0].pk).update(invoiced_at=timezone.now())
    later = charges_for(customer, 1)[0]
    Charge.objects.filter(pk=later.pk).update(created_at=timezone.now() + timedelta(days=1))
    charges_for(other_tenant.customer, 2)
    # Oldest first, ties by id: one of them older than its id says.
    Charge.objects.filter(pk=due[2].pk).update(created_at=timezone.now() - timedelta(hours=1))

    locked = services._charges_lock(customer_id=customer.pk, day=day)

    expected = selectors.charges_due(day).filter(customer=customer).order_by("created_at", "id")
    assert [charge.id for charge in locked] == [charge.pk for charge in expected]
    assert [charge.id for charge in locked] == [due[2].pk, due[1].pk]
    first = Charge.objects.get(pk=due[2].pk)
    assert locked[0] == services._DueCharge(
        id=first.pk,
        subscription_id=first.subscription_id,
        payer=first.payer,
        currency=first.currency,
        description=first.description,
        period_start=first.period_start,
        period_end=first.period_end,
        licences=first.licences,
        unit_price=first.unit_price,
        amount=first.amount,
    )
    assert isinstance(locked[0].amount, Decimal)


def test_numbers_follow_the_counter_and_a_rolled_back_issue_gives_its_number_back(
    vat_rates, tenant: Tenant
):
    year = timezone.localdate().year
    DocumentCounter.objects.create(series="INV", year=year, last_number=41)
    first, second = (CustomerFactory(reseller=tenant.reseller) for _ in range(2))
    charges_for(first, 1)
    charges_for(second, 1)

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        assert issue(first).number == f"INV-{year}-000042"  # type: ignore[union-attr]
        raise Boom
    assert issue(second).number == f"INV-{year}-000042"  # type: ignore[union-attr]
    assert issue(first).number == f"INV-{year}-000043"  # type: ignore[union-attr]
    assert DocumentCounter.objects.get(series="INV", year=year).last_number == 43
