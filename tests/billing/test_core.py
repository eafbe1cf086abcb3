"""Invoicing core: the billing run (grouping, lines, snapshots, idempotence), VAT, numbering,
credit notes, marking paid, what issuing and paying set off, the daily task, and the demo's
invoices."""

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone, translation
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from billing import selectors, services, tasks, vat
from billing.models import DocumentCounter, Invoice, VatRate
from billing.payments import services as payment_services
from customers.models import Customer
from resellers.models import AuditEvent
from resellers.validators import EU_COUNTRIES
from subscriptions.models import Charge
from subscriptions.periods import money_round
from tests.factories import ChargeFactory, CustomerFactory, SubscriptionFactory, Tenant, UserFactory

D = Decimal
TODAY = date(2026, 11, 23)


@pytest.fixture
def vat_rates(db: None) -> None:
    vat.vat_rates_seed()


class SideEffects:
    """Stands in for what issuing and paying set off (the PDF, the card charge, the lifted
    suspensions): records what each was called with, and when."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: dict[str, list[Invoice]] = defaultdict(list)
        for module, name in (
            (services, "invoice_pdf_enqueue"),
            (services, "invoice_pdf_regenerate"),
            (payment_services, "invoice_charge_enqueue"),
            (payment_services, "suspensions_lift_after_payment"),
        ):
            monkeypatch.setattr(module, name, self._recorder(name))

    def _recorder(self, name: str):
        def record(document: Invoice) -> None:
            self.calls[name].append(document)

        return record


@pytest.fixture(autouse=True)
def side_effects(monkeypatch: pytest.MonkeyPatch) -> SideEffects:
    # These tests are about when billing.services sets them off, not about what they do.
    return SideEffects(monkeypatch)


def charge_for(customer: Customer, **kwargs: object) -> Charge:
    currency = kwargs.pop("currency", "EUR")
    subscription = SubscriptionFactory(
        customer=customer, payer=kwargs.pop("payer", "reseller_card"), currency=currency
    )
    return ChargeFactory(subscription=subscription, **kwargs)


def run(day: date = TODAY) -> list[Invoice]:
    return services.billing_run(day=day)


@pytest.fixture
def irish_customer(tenant: Tenant) -> Customer:
    customer = tenant.customer
    customer.country = "IE"
    customer.admin_address = "5 Harbour Road\nCork"
    customer.language = "es"
    customer.save()
    return customer


# The run


@time_machine.travel(datetime(2026, 11, 23, 9, tzinfo=UTC), tick=False)
def test_run_issues_one_invoice_per_customer_and_payer(vat_rates, tenant, other_tenant):
    mine = tenant.customer
    reseller_card = [
        charge_for(mine, licences=5, unit_price=D("4.00")),
        charge_for(mine, licences=2, unit_price=D("3.20")),
    ]
    customer_card = charge_for(mine, payer="customer_card", licences=10, unit_price=D("4.00"))
    theirs = charge_for(other_tenant.customer, licences=1, unit_price=D("4.00"))

    issued = run()

    # At most one invoice per customer per day, and one card pays one invoice: the payer of
    # the oldest charge today, the other card's charges tomorrow.
    assert len(issued) == 2
    assert run() == []
    assert not Charge.objects.filter(pk=customer_card.pk, invoiced_at__isnull=False).exists()
    with time_machine.travel(datetime(2026, 11, 24, 9, tzinfo=UTC), tick=False):
        issued += run(date(2026, 11, 24))
    assert len(issued) == 3
    by_payer = {i.payer: i for i in issued if i.customer_id == mine.pk}
    assert set(by_payer) == {"reseller_card", "customer_card"}
    assert by_payer["customer_card"].issue_date == date(2026, 11, 24)
    rc = by_payer["reseller_card"]
    lines = list(rc.lines.order_by("position"))
    assert [line.charge_id for line in lines] == [c.pk for c in reseller_card]
    assert [line.position for line in lines] == [1, 2]
    first = lines[0]
    assert (first.description, first.licences, first.unit_price, first.amount) == (
        reseller_card[0].description,
        5,
        D("4.00"),
        D("20.00"),
    )
    assert (first.period_start, first.period_end) == (
        reseller_card[0].period_start,
        reseller_card[0].period_end,
    )
    assert first.subscription_id == reseller_card[0].subscription_id
    assert rc.subtotal == D("26.40")
    assert by_payer["customer_card"].lines.get().charge_id == customer_card.pk
    other = next(i for i in issued if i.customer_id == other_tenant.customer.pk)
    assert other.reseller == other_tenant.reseller and other.lines.get().charge == theirs
    # Every charge is marked invoiced, in the same transaction.
    assert not Charge.objects.filter(invoiced_at__isnull=True).exists()
    numbers = sorted(i.number for i in issued)
    assert numbers == ["INV-2026-000001", "INV-2026-000002", "INV-2026-000003"]


@time_machine.travel(datetime(2026, 11, 23, 9, tzinfo=UTC), tick=False)
def test_invoice_snapshots_seller_and_buyer(vat_rates, tenant, other_tenant, irish_customer):
    charge_for(irish_customer, payer="reseller_card")
    charge_for(irish_customer, payer="customer_card")

    # One invoice per customer per day: the other card's the next day.
    invoices = {i.payer: i for i in [*run(), *run(TODAY + timedelta(days=1))]}

    invoice = invoices["reseller_card"]
    assert invoice.seller == {
        "name": settings.VENDOR_NAME,
        "address": settings.VENDOR_ADDRESS,
        "country": "IE",
        "vat_id": settings.VENDOR_VAT_ID,
        "email": settings.VENDOR_EMAIL,
        "iban": settings.VENDOR_BANK_IBAN,
        "bic": settings.VENDOR_BANK_BIC,
        "payment_means": "transfer",  # no Stripe keys: the manual gateway
    }
    assert invoice.buyer == {
        "organisation": irish_customer.organisation,
        "address": "5 Harbour Road\nCork",
        "country": "IE",
        "vat_id": "",
        "email": irish_customer.contact_email,
        "contact_name": irish_customer.contact_name,
        "domain": irish_customer.domain,
        "payer_name": tenant.reseller.name,
    }
    assert invoices["customer_card"].buyer["payer_name"] == irish_customer.organisation
    assert invoice.language == "es"
    assert invoice.reseller == tenant.reseller
    assert invoice.issue_date == TODAY
    assert invoice.due_date == TODAY + timedelta(days=14)
    assert (invoice.status, invoice.kind, invoice.corrects) == ("open", "invoice", None)
    # The snapshot stays when the customer changes afterwards.
    Customer.objects.filter(pk=irish_customer.pk).update(organisation="Renamed")
    invoice.refresh_from_db()
    assert invoice.buyer["organisation"] == irish_customer.organisation
    event = AuditEvent.objects.get(action="invoice.issued", object_id=invoice.public_id)
    assert event.customer_public_id == irish_customer.public_id
    assert event.after is not None
    assert event.reseller == tenant.reseller and event.after["number"] == invoice.number


@time_machine.travel(datetime(2026, 11, 23, 9, tzinfo=UTC), tick=False)
def test_run_is_idempotent_and_issues_at_most_one_invoice_a_day(vat_rates, tenant, other_tenant):
    charge_for(tenant.customer)
    assert len(run()) == 1
    assert run() == []  # the same day again: nothing new

    late = charge_for(tenant.customer)  # bought after today's run
    assert run() == []  # this customer already has today's invoice
    late.refresh_from_db()
    assert late.invoiced_at is None
    tomorrow = run(TODAY + timedelta(days=1))
    assert [i.lines.get().charge for i in tomorrow] == [late]
    assert Invoice.objects.count() == 2
    assert DocumentCounter.objects.get(series="INV", year=2026).last_number == 2


def test_run_takes_only_charges_created_up_to_the_day(vat_rates, tenant, other_tenant):
    with time_machine.travel(datetime(2026, 11, 23, 23, 59, tzinfo=UTC), tick=False):
        on_the_day = charge_for(tenant.customer)
    with time_machine.travel(datetime(2026, 11, 24, 0, 1, tzinfo=UTC), tick=False):
        next_day = charge_for(tenant.customer)
        (invoice,) = run(TODAY)
    assert [line.charge for line in invoice.lines.all()] == [on_the_day]
    assert selectors.billing_due(day=TODAY) == []
    assert selectors.billing_due(day=TODAY + timedelta(days=1)) == [
        (tenant.customer.pk, "reseller_card", "EUR")
    ]
    next_day.refresh_from_db()
    assert next_day.invoiced_at is None


def test_run_splits_currencies(vat_rates, tenant, other_tenant):
    charge_for(tenant.customer, currency="EUR")
    charge_for(tenant.customer, currency="USD")
    today = timezone.localdate()
    first = run(today)
    assert [i.currency for i in first] == ["EUR"]  # the oldest charge's; one invoice a day
    assert [i.currency for i in run(today + timedelta(days=1))] == ["USD"]


def test_run_skips_a_customer_it_cannot_invoice_and_goes_on(vat_rates, tenant, other_tenant):
    VatRate.objects.filter(country="IE").delete()  # the vendor's own rate is missing
    irish = CustomerFactory(reseller=tenant.reseller, country="IE")
    charge_for(irish)
    german = CustomerFactory(reseller=tenant.reseller, country="DE")
    charge_for(german)
    invoices = run(timezone.localdate())
    assert [i.customer for i in invoices] == [german]
    assert Charge.objects.get(customer=irish).invoiced_at is None


@time_machine.travel(datetime(2026, 11, 23, 9, tzinfo=UTC), tick=False)
def test_issuing_renders_the_pdf_and_charges_the_card_after_commit(
    vat_rates, tenant, other_tenant, side_effects, django_capture_on_commit_callbacks
):
    charge_for(tenant.customer)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        (invoice,) = run()
    assert side_effects.calls == {}  # not before the commit
    for callback in callbacks:
        callback()
    assert side_effects.calls["invoice_pdf_enqueue"] == [invoice]
    assert side_effects.calls["invoice_charge_enqueue"] == [invoice]


def test_a_failing_pdf_does_not_stop_the_charge(
    vat_rates, tenant, other_tenant, side_effects, monkeypatch, django_capture_on_commit_callbacks
):
    def broken(invoice: Invoice) -> None:
        raise RuntimeError("the broker is down")

    monkeypatch.setattr(services, "invoice_pdf_enqueue", broken)
    charge_for(tenant.customer)
    with django_capture_on_commit_callbacks(execute=True):
        (invoice,) = run(timezone.localdate())
    assert side_effects.calls["invoice_charge_enqueue"] == [invoice]
    assert Invoice.objects.filter(pk=invoice.pk).exists()


def test_daily_task_queues_and_issues(vat_rates, tenant, other_tenant):
    charge_for(tenant.customer)
    charge_for(other_tenant.customer)
    assert tasks.billing_run_daily.delay().get() == 2  # eager in tests
    assert Invoice.objects.count() == 2
    assert tasks.billing_run_daily.delay().get() == 0
    assert Invoice.objects.count() == 2


# Numbering


def test_numbers_restart_each_year(vat_rates, tenant, other_tenant):
    customers = [CustomerFactory(reseller=tenant.reseller) for _ in range(4)]
    for customer in customers:
        charge_for(customer)
    # Dates after the charges' (real) creation time, so that the run takes them.
    last_day = date(2099, 12, 31)

    def issue(customer: Customer, day: date) -> Invoice:
        invoice = services.invoice_issue_for_customer(
            customer=customer, payer="reseller_card", day=day
        )
        assert invoice is not None
        return invoice

    first = issue(customers[0], last_day)
    second = issue(customers[1], last_day)
    new_year = [issue(customer, date(2100, 1, 1)) for customer in customers[2:]]
    assert [first.number, second.number] == ["INV-2099-000001", "INV-2099-000002"]
    assert [i.number for i in new_year] == ["INV-2100-000001", "INV-2100-000002"]
    note = services.credit_note_issue(
        invoice=first, reason="Goodwill", by=None, day=date(2100, 1, 2)
    )
    assert note.number == "CN-2100-000001"  # its own series


# VAT

VAT_CASES = [
    # buyer country, VAT id as typed, treatment, rate, VAT id on the invoice
    ("IE", "", "domestic", "23.00", ""),
    ("IE", "IE6388047V", "domestic", "23.00", "IE6388047V"),  # in the vendor's country
    ("DE", "DE 136 695 976", "reverse_charge", "0.00", "DE136695976"),
    ("GR", "EL094259216", "reverse_charge", "0.00", "EL094259216"),
    ("DE", "DE136695977", "eu_consumer", "19.00", ""),  # wrong check digit: a consumer
    ("DE", "FR40303265045", "eu_consumer", "19.00", ""),  # another country's id
    ("DE", "", "eu_consumer", "19.00", ""),
    ("FR", "", "eu_consumer", "20.00", ""),
    ("FI", "", "eu_consumer", "25.50", ""),
    ("US", "", "outside_eu", "0.00", ""),
    ("GB", "GB980780684", "outside_eu", "0.00", "GB980780684"),
    ("CH", "CHE-116.281.710 MWST", "outside_eu", "0.00", "CHE-116.281.710 MWST"),
    ("", "", "domestic", "23.00", ""),  # no country: the vendor's VAT, the safe side
]


@pytest.mark.parametrize(("country", "vat_id", "treatment", "rate", "printed_id"), VAT_CASES)
def test_vat_decision(vat_rates, country, vat_id, treatment, rate, printed_id):
    decision = vat.vat_decide(buyer_country=country, buyer_vat_id=vat_id, day=TODAY)
    assert (decision.treatment, decision.rate, decision.buyer_vat_id) == (
        treatment,
        D(rate),
        printed_id,
    )


def test_vat_decision_for_another_vendor_country(vat_rates, settings):
    settings.VENDOR_COUNTRY = "NL"
    decision = vat.vat_decide(buyer_country="NL", buyer_vat_id="NL004495445B01", day=TODAY)
    assert (decision.treatment, decision.rate) == ("domestic", D("21.00"))
    decision = vat.vat_decide(buyer_country="IE", buyer_vat_id="IE6388047V", day=TODAY)
    assert decision.treatment == "reverse_charge"


def test_vat_rate_is_the_latest_valid_on_the_issue_date(vat_rates):
    assert vat.vat_rate(country="EE", day=date(2025, 6, 30)) == D("22.00")
    assert vat.vat_rate(country="EE", day=date(2025, 7, 1)) == D("24.00")
    VatRate.objects.create(country="EE", rate=D("25.00"), valid_from=date(2027, 1, 1))
    assert vat.vat_rate(country="EE", day=date(2026, 12, 31)) == D("24.00")
    assert vat.vat_rate(country="EE", day=date(2027, 1, 1)) == D("25.00")
    with pytest.raises(ValidationError) as error:
        vat.vat_rate(country="DE", day=date(2024, 12, 31))
    assert error.value.code == "no_vat_rate"


def test_seeded_rates_cover_the_27_member_states(vat_rates):
    assert set(VatRate.objects.values_list("country", flat=True)) == EU_COUNTRIES
    assert len(EU_COUNTRIES) == 27
    assert vat.vat_rates_seed() == 0  # loaded once


def test_vat_is_rounded_half_up_on_the_subtotal():
    assert vat.vat_amount(subtotal=D("0.50"), rate=D("21.00")) == D("0.11")  # 0.105
    assert vat.vat_amount(subtotal=D("0.50"), rate=D("19.00")) == D("0.10")  # 0.095 -> 0.10
    assert vat.vat_amount(subtotal=D("10.00"), rate=D("25.50")) == D("2.55")
    assert vat.vat_amount(subtotal=D("99.99"), rate=D("0.00")) == D("0.00")


@time_machine.travel(datetime(2026, 11, 23, 9, tzinfo=UTC), tick=False)
def test_reverse_charge_invoice_names_the_buyer_vat_id(vat_rates, tenant, other_tenant):
    customer = tenant.customer
    customer.country, customer.vat_id = "DE", "de136695976"
    customer.save()
    charge_for(customer)
    (invoice,) = run()
    assert (invoice.vat_treatment, invoice.vat_rate, invoice.vat_amount) == (
        "reverse_charge",
        D("0.00"),
        D("0.00"),
    )
    assert invoice.total == invoice.subtotal
    assert invoice.buyer["vat_id"] == "DE136695976"
    with translation.override("en"):
        mention = vat.vat_legal_mention(
            treatment=invoice.vat_treatment, buyer_vat_id=invoice.buyer["vat_id"]
        )
    assert "Reverse charge" in mention and "DE136695976" in mention
    with translation.override("en"):
        assert vat.vat_legal_mention(treatment="outside_eu", buyer_vat_id="") == (
            "Outside the scope of EU VAT."
        )


@time_machine.travel(datetime(2026, 11, 23, 9, tzinfo=UTC), tick=False)
def test_eu_consumer_pays_its_own_countrys_rate(vat_rates, tenant, other_tenant):
    customer = tenant.customer
    customer.country = "FR"
    customer.save()
    charge_for(customer, licences=3, unit_price=D("3.33"))  # 9.99
    (invoice,) = run()
    assert (invoice.vat_treatment, invoice.vat_rate) == ("eu_consumer", D("20.00"))
    assert (invoice.subtotal, invoice.vat_amount, invoice.total) == (
        D("9.99"),
        D("2.00"),
        D("11.99"),
    )


AMOUNTS = st.decimals(min_value=D("0.01"), max_value=D("99999.99"), places=2)
CHARGE = st.tuples(st.sampled_from(["EUR", "USD", "GBP"]), AMOUNTS)


@hypothesis_settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    charges=st.lists(CHARGE, min_size=1, max_size=6),
    country=st.sampled_from(["IE", "DE", "FR", "HU", "FI", "US"]),
)
def test_lines_plus_vat_make_the_total_in_every_currency(vat_rates, tenant, charges, country):
    customer = CustomerFactory(reseller=tenant.reseller, country=country)
    for currency, amount in charges:
        charge_for(customer, currency=currency, licences=1, unit_price=amount)
    # One invoice per customer per day, one currency each: at most three days.
    today = timezone.localdate()
    invoices = [
        invoice
        for offset in range(3)
        for invoice in services.billing_run(day=today + timedelta(days=offset))
        if invoice.customer_id == customer.pk
    ]
    expected: dict[str, Decimal] = defaultdict(Decimal)
    for currency, amount in charges:
        expected[currency] += amount
    assert {i.currency for i in invoices} == set(expected)
    for invoice in invoices:
        lines = sum(line.amount for line in invoice.lines.all())
        assert lines == invoice.subtotal == expected[invoice.currency]
        assert invoice.vat_amount == money_round(invoice.subtotal * invoice.vat_rate / 100)
        assert lines + invoice.vat_amount == invoice.total
        invoice.refresh_from_db()  # as stored
        assert invoice.subtotal + invoice.vat_amount == invoice.total


# Credit notes


@pytest.fixture
def invoice(vat_rates, tenant: Tenant, other_tenant: Tenant) -> Invoice:
    customer = tenant.customer
    customer.country = "ES"  # 21 %
    customer.save()
    charge_for(customer, licences=10, unit_price=D("4.00"))
    charge_for(customer, licences=3, unit_price=D("3.33"))
    (issued,) = run(timezone.localdate())
    return issued  # 49.99 + 10.50 = 60.49


def test_full_credit_note_mirrors_the_invoice(invoice, side_effects):
    staff = UserFactory(is_staff=True)
    note = services.credit_note_issue(invoice=invoice, reason="Ordered by mistake", by=staff)
    assert note.kind == "credit_note" and note.corrects == invoice
    assert note.number == f"CN-{timezone.localdate().year}-000001"
    # Stored as positive amounts: the kind says it is a credit.
    assert (note.subtotal, note.vat_amount, note.total) == (
        invoice.subtotal,
        invoice.vat_amount,
        invoice.total,
    )
    assert note.total > 0
    assert [(line.description, line.amount) for line in note.lines.order_by("position")] == [
        (line.description, line.amount) for line in invoice.lines.order_by("position")
    ]
    assert (note.vat_treatment, note.vat_rate) == (invoice.vat_treatment, invoice.vat_rate)
    assert (note.buyer, note.seller) == (invoice.buyer, invoice.seller)
    assert note.status == "credited"
    invoice.refresh_from_db()
    assert invoice.status == "credited"
    event = AuditEvent.objects.get(action="credit_note.issued")
    assert event.after is not None
    assert event.actor == staff and event.after["reason"] == "Ordered by mistake"
    assert event.after["corrects"] == invoice.number
    assert event.customer_public_id == invoice.customer.public_id
    assert AuditEvent.objects.filter(action="invoice.credited").count() == 1
    with pytest.raises(ValidationError, match="already credited in full"):
        services.credit_note_issue(invoice=invoice, reason="Again", by=staff)


def test_partial_credit_notes_add_up_to_the_invoice_to_the_cent(invoice):
    first = services.credit_note_issue(
        invoice=invoice, reason="Discount", by=None, amount=D("0.50")
    )
    assert (first.subtotal, first.vat_amount) == (D("0.50"), D("0.11"))  # 0.105 half-up
    assert first.lines.get().description == f"Credit on {invoice.number}: Discount"
    second = services.credit_note_issue(invoice=invoice, reason="Fix", by=None, amount=D("0.50"))
    invoice.refresh_from_db()
    assert invoice.status == "open"  # partly credited: still to be paid
    with pytest.raises(ValidationError) as error:
        services.credit_note_issue(invoice=invoice, reason="Too much", by=None, amount=D("49.00"))
    assert error.value.error_dict["amount"][0].code == "too_much"
    rest = services.credit_note_issue(invoice=invoice, reason="Cancelled", by=None)
    notes = [first, second, rest]
    assert sum(n.subtotal for n in notes) == invoice.subtotal
    assert sum(n.vat_amount for n in notes) == invoice.vat_amount  # the last takes the rest
    assert sum(n.total for n in notes) == invoice.total
    invoice.refresh_from_db()
    assert invoice.status == "credited"
    assert [n.number[-6:] for n in notes] == ["000001", "000002", "000003"]


def test_credit_lines_and_refusals(invoice):
    line = invoice.lines.get(position=2)
    note = services.credit_note_issue(invoice=invoice, reason="Removed", by=None, lines=[line])
    assert (note.subtotal, note.vat_amount) == (D("9.99"), D("2.10"))
    with pytest.raises(ValidationError):
        services.credit_note_issue(invoice=note, reason="A credit of a credit", by=None)
    with pytest.raises(ValidationError):
        services.credit_note_issue(invoice=invoice, reason="  ", by=None)
    # Amounts as a form could hand them over, one not even a number.
    bad_amounts: list[Any] = ["0", "-5", "1.005", "abc"]
    for bad in bad_amounts:
        with pytest.raises(ValidationError):
            services.credit_note_issue(invoice=invoice, reason="x", by=None, amount=bad)


def test_the_admins_credit_form_takes_a_credit_of_one_cent():
    """The smallest credit is a cent: the form's minimum is the Decimal 0.01 (a float 0.01 is
    a little more than a cent, and refused one)."""
    from billing.admin import CreditNoteForm

    form = CreditNoteForm({"reason": "Goodwill", "amount": "0.01"})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["amount"] == D("0.01")
    assert not CreditNoteForm({"reason": "Goodwill", "amount": "0.00"}).is_valid()


# Paid, and the PDF


def test_mark_paid_lifts_the_suspensions_in_the_transaction(invoice, side_effects):
    staff = UserFactory(is_staff=True)
    paid = services.invoice_mark_paid(invoice=invoice, by=staff)
    assert paid.status == "paid" and paid.paid_at is not None
    assert side_effects.calls["suspensions_lift_after_payment"] == [paid]
    event = AuditEvent.objects.get(action="invoice.paid")
    assert event.actor == staff and event.before == {"status": "open"}
    with pytest.raises(ValidationError):
        services.invoice_mark_paid(invoice=invoice, by=staff)
    note = services.credit_note_issue(invoice=invoice, reason="Refund", by=staff)
    with pytest.raises(ValidationError):
        services.invoice_mark_paid(invoice=note, by=staff)


def test_failing_to_lift_the_suspensions_undoes_the_payment(invoice, monkeypatch):
    def broken(invoice: Invoice) -> None:
        raise RuntimeError("cannot reactivate")

    monkeypatch.setattr(payment_services, "suspensions_lift_after_payment", broken)
    with pytest.raises(RuntimeError):
        services.invoice_mark_paid(invoice=invoice, by=None)
    invoice.refresh_from_db()
    assert invoice.status == "open"
    assert not AuditEvent.objects.filter(action="invoice.paid").exists()


def test_pdf_request_renders_it_again_after_commit(
    invoice, side_effects, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.invoice_pdf_request(invoice=invoice)
    assert "invoice_pdf_regenerate" not in side_effects.calls  # not before the commit
    for callback in callbacks:
        callback()
    assert side_effects.calls["invoice_pdf_regenerate"] == [invoice]
