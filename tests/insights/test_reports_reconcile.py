"""The Reports page's figures over random histories made through the real services: purchases,
licences added and removed, the daily renewals and billing runs on the days time moves to,
credit notes of some of the invoices, another reseller's business beside. Whatever happened,
for any range:

- revenue by month, by customer and by product each add up, to the cent, to the invoices'
  subtotals less the credit notes' subtotals issued in the range (and their margins agree);
- what is not invoiced yet is the sum of the charges not invoiced;
- each customer's net licence change is the sum of its ledger entries' after - before.
"""

import contextlib
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from hypothesis import HealthCheck, event, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from billing import services as billing_services
from billing import vat
from billing.models import Invoice
from insights import reports
from insights.reports import ReportFilters
from resellers.models import Membership
from subscriptions import services as subscription_services
from subscriptions.models import Charge, LicenceChange, Plan, Subscription
from subscriptions.periods import money_round
from tests.factories import CustomerFactory, Tenant, buy, catalogue, change, owner_of

pytestmark = pytest.mark.django_db

START = datetime(2026, 1, 5, 9, tzinfo=UTC)
ZERO = Decimal("0.00")
KINDS = [Plan.Kind.FLEXIBLE, Plan.Kind.ANNUAL_MONTHLY, Plan.Kind.ANNUAL_YEARLY]

CUSTOMER = st.integers(min_value=0, max_value=2)
CREDIT = st.tuples(
    st.just("credit"),
    st.integers(min_value=0, max_value=9),  # which invoice: the reseller's, or 8-9 the other's
    st.one_of(st.none(), st.integers(min_value=1, max_value=100)),  # % of it, or all
)
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(
            st.just("buy"),
            CUSTOMER,
            st.integers(min_value=0, max_value=1),  # which product
            st.sampled_from(KINDS),
            st.integers(min_value=1, max_value=6),
        ),
        st.tuples(st.just("add"), CUSTOMER, st.integers(min_value=1, max_value=4)),
        st.tuples(st.just("remove"), CUSTOMER, st.integers(min_value=1, max_value=3)),
        st.tuples(st.just("wait"), st.integers(min_value=1, max_value=45)),
        CREDIT,
        CREDIT,  # twice as often as the others: most histories have a credit note then
    ),
    min_size=3,
    max_size=9,
)


@pytest.fixture
def vat_rates(db: None) -> None:
    vat.vat_rates_seed()


@hypothesis_settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    operations=OPERATIONS,
    range_offsets=st.tuples(
        st.integers(min_value=0, max_value=200), st.integers(min_value=0, max_value=200)
    ),
)
# Two products on one invoice credited in part, then in full; licences added and removed over a
# month's billing runs.
@example(
    operations=[
        ("buy", 1, 1, Plan.Kind.ANNUAL_YEARLY, 4),
        ("buy", 1, 0, Plan.Kind.FLEXIBLE, 3),
        ("wait", 1),
        ("credit", 2, 37),
        ("credit", 2, None),
        ("add", 0, 2),
        ("wait", 31),
        ("remove", 0, 1),
        ("credit", 1, 50),
    ],
    range_offsets=(1, 40),
)
def test_the_reports_add_up_to_the_documents_charges_and_ledger(
    vat_rates, tenant, other_tenant, operations, range_offsets
):
    # Each example in its own transaction, rolled back: the next starts from the fixtures.
    with transaction.atomic(), time_machine.travel(START, tick=False) as traveller:
        _run(tenant, other_tenant, traveller, operations, range_offsets)
        transaction.set_rollback(True)


def _run(
    tenant: Tenant,
    other_tenant: Tenant,
    traveller: time_machine.Traveller,
    operations: list[tuple],
    range_offsets: tuple[int, int],
) -> None:
    products = [
        catalogue(name="Contacts", sku="contacts"),
        catalogue(name="Calendar", sku="calendar", currencies=("EUR",)),
    ]
    owner = owner_of(tenant)
    customers = [
        tenant.customer,
        CustomerFactory(reseller=tenant.reseller, organisation="Beta Ltd"),
        CustomerFactory(reseller=tenant.reseller, organisation="Gamma BV"),
    ]
    held: dict[int, list[Subscription]] = defaultdict(list)
    # Another reseller's business, billed on the same days; and a first invoice of the
    # reseller's, for the credit notes to have something to correct from the start.
    buy(owner_of(other_tenant), products[0][Plan.Kind.FLEXIBLE], 30, other_tenant.customer)
    held[0].append(buy(owner, products[0][Plan.Kind.FLEXIBLE], 3, customers[0]))
    _day_passes()

    for operation in operations:
        if operation[0] == "buy":
            _, which, product, kind, licences = operation
            # Refused when the customer holds the product already (one live subscription each).
            with contextlib.suppress(ValidationError):
                held[which].append(buy(owner, products[product][kind], licences, customers[which]))
        elif operation[0] in ("add", "remove") and held[operation[1]]:
            _, which, count = operation
            _change(owner, held[which][-1], count if operation[0] == "add" else -count)
        elif operation[0] == "wait":
            traveller.shift(timedelta(days=operation[1]))
            _day_passes()
        elif operation[0] == "credit":
            _, which, percent = operation
            # Mostly the reseller's invoices, sometimes the other's (whose notes never count).
            reseller = tenant.reseller if which < 8 else other_tenant.reseller
            invoices = list(
                Invoice.objects.filter(kind=Invoice.Kind.INVOICE, reseller=reseller).order_by(
                    "issue_date", "id"
                )
            )
            if invoices:
                _credit(invoices[which % len(invoices)], percent)
    _day_passes()

    today = timezone.localdate()
    first = START.date() + timedelta(days=min(range_offsets))
    last = START.date() + timedelta(days=max(range_offsets))
    for start, end in ((START.date(), today), (first, last)):
        _check(tenant, ReportFilters(start=start, end=end, currency="EUR"))


def _change(owner: Membership, subscription: Subscription, by: int) -> None:
    subscription.refresh_from_db()
    # Refused e.g. for licences removed from an annual plan, or no change.
    with contextlib.suppress(ValidationError):
        change(owner, subscription, max(subscription.licences + by, 1))


def _day_passes() -> None:
    """The day's jobs: the renewals, then the billing run."""
    today = timezone.localdate()
    for subscription_id in Subscription.objects.values_list("pk", flat=True):
        subscription_services.subscription_renew_due(subscription_id=subscription_id, today=today)
    billing_services.billing_run(day=today)


def _credit(invoice: Invoice, percent: int | None) -> None:
    amount = None
    if percent is not None:
        amount = max(money_round(invoice.subtotal * percent / 100), Decimal("0.01"))
    try:
        billing_services.credit_note_issue(
            invoice=invoice, reason="Goodwill", by=None, amount=amount
        )
    except ValidationError as error:
        # Refused when credited in full already, or for more than is left.
        event(f"credit note refused: {error.messages[0][:30]}")
    else:
        event("credit note issued")


def _check(tenant: Tenant, filters: ReportFilters) -> None:
    reseller = tenant.reseller
    documents = Invoice.objects.filter(
        reseller=reseller,
        currency="EUR",
        issue_date__gte=filters.start,
        issue_date__lte=filters.end,
    )

    def subtotals(kind: str) -> Decimal:
        return documents.filter(kind=kind).aggregate(sum=Sum("subtotal"))["sum"] or ZERO

    expected = subtotals(Invoice.Kind.INVOICE) - subtotals(Invoice.Kind.CREDIT_NOTE)
    for kind in Invoice.Kind:
        event(f"{kind.label} in the range: {min(documents.filter(kind=kind).count(), 3)}+")
    revenue = reports.revenue_report(reseller=reseller, filters=filters)
    assert revenue.total.revenue == expected
    for lines in (revenue.by_month, revenue.by_customer, revenue.by_product):
        assert sum((line.revenue for line in lines), ZERO) == expected
        assert sum((line.margin for line in lines), ZERO) == revenue.total.margin
        assert sum((line.credited for line in lines), ZERO) == subtotals(Invoice.Kind.CREDIT_NOTE)
    assert revenue.documents == documents.count()

    zone = timezone.get_default_timezone()
    unbilled = reports.unbilled_report(reseller=reseller, currency="EUR", zone=zone)
    waiting = Charge.objects.filter(customer__reseller=reseller, invoiced_at__isnull=True)
    assert unbilled.total.amount == (waiting.aggregate(sum=Sum("amount"))["sum"] or ZERO)
    assert unbilled.total.charges == waiting.count()

    start_at, end_at = filters.instants(zone)
    ledger: dict[str, int] = defaultdict(int)
    entries: dict[str, int] = defaultdict(int)
    for public_id, before, after in LicenceChange.objects.filter(
        subscription__customer__reseller=reseller, created_at__gte=start_at, created_at__lt=end_at
    ).values_list("subscription__customer__public_id", "licences_before", "licences_after"):
        ledger[public_id] += after - before
        entries[public_id] += 1
    licences = reports.licence_report(reseller=reseller, filters=filters, zone=zone)
    assert {line.key: line.net for line in licences.by_customer} == ledger
    assert {line.key: line.changes for line in licences.by_customer} == entries
    assert licences.total.net == sum(ledger.values())
