"""The Margin page's figures (commissions.margins.margin_report): a month's revenue, cost and
margin by customer and by product per currency, earned (paid in the month) apart from expected
(issued in the month, unpaid), and the issue's property: for each month and currency, the margin
is the sum of customer price less cost over the lines paid."""

from datetime import UTC, date, datetime
from decimal import Decimal

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from billing.models import Invoice
from commissions.margins import MarginLine, margin_report, paid_invoice_margins
from tests.factories import (
    CustomerFactory,
    InvoiceFactory,
    PlanFactory,
    ResellerFactory,
    SubscriptionFactory,
    charge_priced,
    credit_note_of,
    invoice_of_charges,
)

PAID = Invoice.Status.PAID
D = Decimal


def at(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, 12, tzinfo=UTC)


def figures(lines: list[MarginLine]) -> list[tuple[str, Decimal, Decimal, Decimal]]:
    return [(line.name, line.revenue, line.cost, line.margin) for line in lines]


def test_a_month_earns_what_was_paid_in_it_and_expects_what_was_issued_unpaid(tenant, other_tenant):
    subscription = SubscriptionFactory(customer=tenant.customer)
    # Issued in January, paid in February: earned in February, expected nowhere (it is paid).
    late = invoice_of_charges(
        [charge_priced(subscription, amount="50.00", cost="40.00")],
        issue_date=date(2026, 1, 20),
        status=PAID,
        paid_at=at(2026, 2, 3),
    )
    # Issued in February, unpaid (one open, one whose payment failed): expected in February.
    invoice_of_charges(
        [charge_priced(subscription, amount="30.00", cost="21.00")], issue_date=date(2026, 2, 10)
    )
    invoice_of_charges(
        [charge_priced(subscription, amount="10.00", cost="9.00")],
        issue_date=date(2026, 2, 11),
        status=Invoice.Status.PAYMENT_FAILED,
    )
    january = margin_report(reseller=tenant.reseller, month=date(2026, 1, 15))
    assert january.month == date(2026, 1, 1)
    assert january.earned == [] and january.expected == []

    february = margin_report(reseller=tenant.reseller, month=date(2026, 2, 1))
    [earned] = february.earned
    assert earned.currency == "EUR"
    assert figures([earned.total]) == [("Total", D("50.00"), D("40.00"), D("10.00"))]
    [expected] = february.expected
    assert figures([expected.total]) == [("Total", D("40.00"), D("30.00"), D("10.00"))]
    assert late.paid_at is not None


def test_figures_by_customer_and_by_product_with_a_credit_note_shared_out(tenant, other_tenant):
    """A credit note of half a paid invoice takes half its margin back, from each product in
    proportion; by customer, by product and the total agree to the cent."""
    mail = PlanFactory(product__name="Mail")
    drive = PlanFactory(product__name="Drive")
    customer = tenant.customer
    second = CustomerFactory(reseller=tenant.reseller, organisation="Beta Ltd")
    invoice = invoice_of_charges(
        [
            charge_priced(
                SubscriptionFactory(customer=customer, plan=mail), amount="60.00", cost="45.00"
            ),
            charge_priced(
                SubscriptionFactory(customer=customer, plan=drive), amount="40.00", cost="30.00"
            ),
        ],
        status=PAID,
        paid_at=at(2026, 3, 2),
    )
    credit_note_of(invoice, "50.00", issue_date=date(2026, 3, 20))
    invoice_of_charges(
        [
            charge_priced(
                SubscriptionFactory(customer=second, plan=mail), amount="10.00", cost="7.00"
            )
        ],
        status=PAID,
        paid_at=at(2026, 3, 31),
    )
    [eur] = margin_report(reseller=tenant.reseller, month=date(2026, 3, 1)).earned
    assert figures(eur.by_customer) == [
        ("Beta Ltd", D("10.00"), D("7.00"), D("3.00")),
        (customer.organisation, D("50.00"), D("37.50"), D("12.50")),
    ]
    assert figures(eur.by_product) == [
        ("Drive", D("20.00"), D("15.00"), D("5.00")),
        ("Mail", D("40.00"), D("29.50"), D("10.50")),
    ]
    assert figures([eur.total]) == [("Total", D("60.00"), D("44.50"), D("15.50"))]
    assert eur.total.margin_percent == D("25.8")


def test_a_credit_note_shared_over_products_adds_up_to_the_cent(tenant, other_tenant):
    """Shared out over three equal products, a third of 10.00 each: the shares are rounded and
    the largest weight takes the cent left, so the products add up to the credit note."""
    charges = [
        charge_priced(
            SubscriptionFactory(customer=tenant.customer, plan=PlanFactory(product__name=name)),
            amount="10.00",
            cost="8.00",
        )
        for name in ("A", "B", "C")
    ]
    invoice = invoice_of_charges(charges, status=PAID, paid_at=at(2026, 2, 1))
    credit_note_of(invoice, "10.00", issue_date=date(2026, 3, 3))
    [eur] = margin_report(reseller=tenant.reseller, month=date(2026, 3, 1)).earned
    assert figures([eur.total]) == [("Total", D("-10.00"), D("-8.00"), D("-2.00"))]
    nets = sorted(line.revenue for line in eur.by_product)
    margins = sorted(line.margin for line in eur.by_product)
    assert nets == [D("-3.34"), D("-3.33"), D("-3.33")]
    assert margins == [D("-0.67"), D("-0.67"), D("-0.66")]
    assert sum(nets) == D("-10.00") and sum(margins) == D("-2.00")


def test_a_line_without_a_product_is_counted_as_other(tenant, other_tenant):
    InvoiceFactory(customer=tenant.customer, status=PAID, paid_at=at(2026, 3, 4))
    [eur] = margin_report(reseller=tenant.reseller, month=date(2026, 3, 1)).earned
    assert figures(eur.by_product) == [("Other", D("100.00"), D("100.00"), D("0.00"))]


def test_totals_are_per_currency_and_other_resellers_are_not_counted(tenant, other_tenant):
    for currency, amount in (("EUR", "20.00"), ("USD", "30.00"), ("GBP", "5.00")):
        invoice_of_charges(
            [
                charge_priced(
                    SubscriptionFactory(customer=tenant.customer, currency=currency),
                    amount=amount,
                    cost="1.00",
                )
            ],
            status=PAID,
            paid_at=at(2026, 3, 9),
        )
    invoice_of_charges(
        [
            charge_priced(
                SubscriptionFactory(customer=other_tenant.customer), amount="99.00", cost="1.00"
            )
        ],
        status=PAID,
        paid_at=at(2026, 3, 9),
    )
    report = margin_report(reseller=tenant.reseller, month=date(2026, 3, 1))
    assert [(s.currency, s.total.revenue, s.total.margin) for s in report.earned] == [
        ("EUR", D("20.00"), D("19.00")),
        ("GBP", D("5.00"), D("4.00")),
        ("USD", D("30.00"), D("29.00")),
    ]


def test_an_expected_invoice_counts_net_of_its_credit_notes(tenant, other_tenant):
    invoice = invoice_of_charges(
        [
            charge_priced(
                SubscriptionFactory(customer=tenant.customer), amount="100.00", cost="75.00"
            )
        ],
        issue_date=date(2026, 4, 2),
    )
    credit_note_of(invoice, "20.00", issue_date=date(2026, 5, 1))
    [expected] = margin_report(reseller=tenant.reseller, month=date(2026, 4, 1)).expected
    assert figures([expected.total]) == [("Total", D("80.00"), D("60.00"), D("20.00"))]


# The issue's property: over random prices, costs, currencies and payment months, each month's
# earned margin per currency is the sum of (customer price - cost) over the lines of the
# invoices paid in it, whichever way it is added up.
MONTHS = [date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)]
LINE = st.tuples(
    st.integers(min_value=0, max_value=100_000),  # customer price, in cents
    st.integers(min_value=0, max_value=100),  # discount of the cost on it, in %
)
INVOICE = st.tuples(
    st.sampled_from(["EUR", "USD"]),
    st.sampled_from([None, *range(len(MONTHS))]),  # the month paid in (None: unpaid)
    st.integers(min_value=1, max_value=28),  # the day
    st.integers(min_value=0, max_value=2),  # the customer
    st.lists(LINE, min_size=1, max_size=3),
)


@hypothesis_settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(invoices=st.lists(INVOICE, min_size=1, max_size=6))
def test_each_months_margin_is_price_less_cost_over_the_lines_paid(db, invoices):
    reseller = ResellerFactory()  # a new one per example: the others' rows do not count
    customers = [CustomerFactory(reseller=reseller) for _n in range(3)]
    expected: dict[tuple[date, str], Decimal] = {}
    for currency, paid_month, day, customer, lines in invoices:
        subscription = SubscriptionFactory(customer=customers[customer], currency=currency)
        charges = []
        for price_cents, discount in lines:
            price = D(price_cents) / 100
            cost = (price * (100 - discount) / 100).quantize(D("0.01"))
            charges.append(charge_priced(subscription, amount=price, cost=cost))
        paid = {}
        if paid_month is not None:
            month = MONTHS[paid_month]
            paid = {"status": PAID, "paid_at": at(month.year, month.month, day)}
            key = (month, currency)
            expected[key] = expected.get(key, D(0)) + sum(
                (charge.amount - charge.cost_amount for charge in charges), D(0)
            )
        invoice_of_charges(charges, **paid)
    for month in MONTHS:
        report = margin_report(reseller=reseller, month=month)
        earned = {section.currency: section for section in report.earned}
        for currency in ("EUR", "USD"):
            want = expected.get((month, currency))
            if want is None:
                assert currency not in earned
                continue
            section = earned[currency]
            assert section.total.margin == want
            assert sum(line.margin for line in section.by_customer) == want
            assert sum(line.margin for line in section.by_product) == want
            assert section.total.revenue - section.total.cost == want
            rows = paid_invoice_margins(
                reseller_id=reseller.pk,
                currency=currency,
                start=month,
                end=MONTHS[MONTHS.index(month) + 1] if month != MONTHS[-1] else date(2026, 4, 1),
            )
            assert sum(row.margin for row in rows) == want
