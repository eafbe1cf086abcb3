"""The reseller's margin on its customers' invoices (commissions.margins, issue 16): an invoice's
margin from its charges, credit notes taking it back in proportion, nothing earned on a refunded
or written-off invoice, earned (paid) apart from expected (issued, unpaid), and the rows the
commission statements are made of."""

from datetime import UTC, date, datetime
from decimal import Decimal

from billing import services as billing_services
from billing.models import Invoice
from commissions.margins import (
    InvoiceMargin,
    credit_note_margin,
    invoice_margin,
    margin_report,
    paid_invoice_margins,
)
from tests.factories import (
    InvoiceFactory,
    SubscriptionFactory,
    Tenant,
    charge_priced,
    credit_note_of,
    invoice_of_charges,
)

PAID = Invoice.Status.PAID
D = Decimal


def at(year: int, month: int, day: int, hour: int = 12) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def invoice_for(
    tenant: Tenant, *amounts: tuple[str, str], currency: str = "EUR", **fields
) -> Invoice:
    """An invoice of tenant's customer with a charge per (amount, cost)."""
    subscription = SubscriptionFactory(
        customer=fields.pop("customer", tenant.customer), currency=currency
    )
    charges = [charge_priced(subscription, amount=a, cost=c) for a, c in amounts]
    return invoice_of_charges(charges, **fields)


def earned(tenant: Tenant, start: date, end: date, currency: str = "EUR") -> list[InvoiceMargin]:
    return paid_invoice_margins(
        reseller_id=tenant.reseller.pk, currency=currency, start=start, end=end
    )


def test_an_invoice_earns_the_sum_of_its_charges_margins(tenant, other_tenant):
    invoice = invoice_for(tenant, ("40.00", "32.00"), ("10.00", "8.75"))
    assert invoice.subtotal == D("50.00")
    assert invoice_margin(invoice) == D("9.25")


def test_a_line_without_a_charge_earns_nothing(tenant, other_tenant):
    assert invoice_margin(InvoiceFactory(customer=tenant.customer)) == D("0.00")


def test_a_credit_note_takes_back_margin_in_proportion_rounded_half_up(tenant, other_tenant):
    invoice = invoice_for(tenant, ("100.00", "80.00"))
    assert credit_note_margin(credit_note_of(invoice, "30.00")) == D("-6.00")
    # 15 / 30 x 10.01 = 5.005: half-up, away from zero.
    other = invoice_for(tenant, ("30.00", "19.99"))
    assert credit_note_margin(credit_note_of(other, "15.00")) == D("-5.01")


def test_credit_notes_crediting_the_whole_invoice_take_back_all_its_margin(tenant, other_tenant):
    invoice = invoice_for(tenant, ("30.00", "20.00"))
    notes = [credit_note_of(invoice, "10.00", issue_date=date(2026, 3, day)) for day in (1, 2, 3)]
    margins = [credit_note_margin(note) for note in notes]
    # Each a third of 10.00, rounded cumulatively: 3.33, 6.67 - 3.33, 10.00 - 6.67.
    assert margins == [D("-3.33"), D("-3.34"), D("-3.33")]
    assert sum(margins) == -invoice_margin(invoice)


def test_paid_invoice_margins_lists_the_paid_invoices_of_the_period_by_date_and_number(
    tenant, other_tenant
):
    march = (date(2026, 3, 1), date(2026, 4, 1))
    first = invoice_for(
        tenant,
        ("50.00", "40.00"),
        issue_date=date(2026, 2, 20),
        status=PAID,
        paid_at=at(2026, 3, 31, 23),
    )
    second = invoice_for(
        tenant,
        ("20.00", "15.00"),
        issue_date=date(2026, 3, 2),
        status=PAID,
        paid_at=at(2026, 3, 3),
    )
    # Not in March: paid the day before, the day after, unpaid, another currency, another
    # reseller's customer.
    invoice_for(tenant, ("9.00", "1.00"), status=PAID, paid_at=at(2026, 2, 28, 23))
    invoice_for(tenant, ("9.00", "1.00"), status=PAID, paid_at=datetime(2026, 4, 1, tzinfo=UTC))
    invoice_for(tenant, ("9.00", "1.00"), issue_date=date(2026, 3, 5))
    dollars = invoice_for(
        tenant, ("9.00", "1.00"), currency="USD", status=PAID, paid_at=at(2026, 3, 5)
    )
    invoice_for(
        other_tenant,
        ("9.00", "1.00"),
        customer=other_tenant.customer,
        status=PAID,
        paid_at=at(2026, 3, 5),
    )
    rows = earned(tenant, *march)
    name = tenant.customer.organisation
    assert rows == [
        InvoiceMargin(
            first.pk,
            first.number,
            tenant.customer.pk,
            name,
            date(2026, 2, 20),
            D("50.00"),
            D("10.00"),
        ),
        InvoiceMargin(
            second.pk,
            second.number,
            tenant.customer.pk,
            name,
            date(2026, 3, 2),
            D("20.00"),
            D("5.00"),
        ),
    ]
    # The same month in dollars: the dollar invoice alone.
    usd = earned(tenant, *march, currency="USD")
    assert [(row.invoice_id, row.net, row.margin) for row in usd] == [
        (dollars.pk, D("9.00"), D("8.00"))
    ]
    assert earned(other_tenant, *march)[0].customer_id == other_tenant.customer.pk


def test_whoever_paid_the_invoice_the_reseller_earns_its_margin(tenant, other_tenant):
    subscription = SubscriptionFactory(customer=tenant.customer, payer="customer_card")
    invoice = invoice_of_charges(
        [charge_priced(subscription, amount="12.00", cost="10.00")],
        status=PAID,
        paid_at=at(2026, 5, 10),
    )
    assert invoice.payer == "customer_card"
    assert [(r.number, r.margin) for r in earned(tenant, date(2026, 5, 1), date(2026, 6, 1))] == [
        (invoice.number, D("2.00"))
    ]


def test_a_credit_note_of_a_paid_invoice_is_earned_negative_on_its_issue_date(tenant, other_tenant):
    invoice = invoice_for(tenant, ("100.00", "80.00"), status=PAID, paid_at=at(2026, 3, 10))
    note = credit_note_of(invoice, "25.00", issue_date=date(2026, 4, 15))
    april = earned(tenant, date(2026, 4, 1), date(2026, 5, 1))
    assert [(r.invoice_id, r.issued_on, r.net, r.margin) for r in april] == [
        (note.pk, date(2026, 4, 15), D("-25.00"), D("-5.00"))
    ]
    # March keeps what it earned: the invoice, whole.
    assert [
        (r.invoice_id, r.margin) for r in earned(tenant, date(2026, 3, 1), date(2026, 4, 1))
    ] == [(invoice.pk, D("20.00"))]


def test_a_credit_note_issued_before_the_payment_counts_when_the_invoice_is_paid(
    tenant, other_tenant
):
    invoice = invoice_for(tenant, ("100.00", "80.00"), issue_date=date(2026, 3, 1))
    note = credit_note_of(invoice, "40.00", issue_date=date(2026, 3, 5))
    assert earned(tenant, date(2026, 3, 1), date(2026, 4, 1)) == []  # unpaid in March
    Invoice.objects.filter(pk=invoice.pk).update(status=PAID, paid_at=at(2026, 4, 2))
    april = earned(tenant, date(2026, 4, 1), date(2026, 5, 1))
    assert [(r.invoice_id, r.net, r.margin) for r in april] == [
        (invoice.pk, D("100.00"), D("20.00")),
        (note.pk, D("-40.00"), D("-8.00")),
    ]
    assert earned(tenant, date(2026, 3, 1), date(2026, 4, 1)) == []


def test_a_refunded_invoice_earns_nothing_in_total(tenant, other_tenant, time_machine):
    """Paid, then credited in full by the billing services (a refund owed): its margin is earned
    the month it was paid and taken back, to the cent, the month of its credit notes."""
    time_machine.move_to(at(2026, 6, 3), tick=False)
    invoice = invoice_for(
        tenant, ("33.33", "22.22"), ("16.67", "10.00"), issue_date=date(2026, 6, 3)
    )
    billing_services.invoice_mark_paid(invoice=invoice, by=None)
    time_machine.move_to(at(2026, 7, 8), tick=False)
    billing_services.credit_note_issue(
        invoice=invoice, reason="Refund", by=None, amount=D("20.00"), day=date(2026, 7, 8)
    )
    billing_services.credit_note_issue(invoice=invoice, reason="Refund", by=None)
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.CREDITED and invoice.paid_at is not None
    june = earned(tenant, date(2026, 6, 1), date(2026, 7, 1))
    july = earned(tenant, date(2026, 7, 1), date(2026, 8, 1))
    assert [r.margin for r in june] == [D("17.78")]
    assert [r.net for r in july] == [D("-20.00"), D("-30.00")]
    assert sum(r.margin for r in june + july) == 0
    assert sum(r.net for r in june + july) == 0


def test_a_written_off_invoice_earns_nothing(tenant, other_tenant, time_machine):
    """Credited in full while unpaid: never paid, neither it nor its credit note earns."""
    time_machine.move_to(at(2026, 6, 3), tick=False)
    invoice = invoice_for(tenant, ("50.00", "40.00"), issue_date=date(2026, 6, 3))
    billing_services.credit_note_issue(invoice=invoice, reason="Write-off", by=None)
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.CREDITED and invoice.paid_at is None
    assert earned(tenant, date(2000, 1, 1), date(2100, 1, 1)) == []
    report = margin_report(reseller=tenant.reseller, month=date(2026, 6, 1))
    assert report.earned == [] and report.expected == []
