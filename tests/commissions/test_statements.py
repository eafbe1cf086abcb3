"""Commission statements (issue 16): the monthly issue from the paid invoices' margins (once
per reseller, currency and month, gapless SB- numbers even when runs overlap), the VAT by the
reseller's situation, corrections, payouts, and issued statements that never change."""

import importlib
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, connections, transaction
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from billing.models import DocumentCounter
from billing.vat import vat_rates_seed
from commissions import immutability, margins, statements, tasks
from commissions.models import IssuedStatementChanged, Payout, Statement, StatementLine
from resellers.models import AuditEvent
from tests.factories import (
    CustomerFactory,
    ResellerFactory,
    UserFactory,
    margin_lines,
    statement_for,
)

D = Decimal
MAY = date(2026, 5, 1)
# The run for May, on 1 June (the beat job's day).
JUNE_1 = "2026-06-01 03:00:00+00:00"


@pytest.fixture(autouse=True)
def no_pdf(monkeypatch: pytest.MonkeyPatch) -> None:
    # The PDF is tested in test_statements_documents.py; here nothing is rendered.
    monkeypatch.setattr(tasks.statement_render_pdf, "apply_async", lambda *a, **k: None)


def fake_margins(monkeypatch: pytest.MonkeyPatch, lines_by_reseller: dict[int, list[Any]]) -> None:
    """commissions.margins answers with these lines (EUR) for each reseller."""

    def paid_invoice_margins(
        *, reseller_id: int, currency: str, start: date, end: date
    ) -> list[Any]:
        assert (start, end) == (MAY, date(2026, 6, 1))
        return lines_by_reseller.get(reseller_id, []) if currency == "EUR" else []

    monkeypatch.setattr(margins, "paid_invoice_margins", paid_invoice_margins)


def cents(value: Decimal) -> Decimal:
    return value.quantize(D("0.01"), rounding=ROUND_HALF_UP)


# The totals


SITUATIONS = {
    # country, VAT id -> treatment, rate
    ("IE", ""): ("domestic", D("23.00")),
    ("IE", "IE6388047V"): ("domestic", D("23.00")),
    ("DE", "DE136695976"): ("reverse_charge", D("0.00")),
    # In another member state without a valid VAT id: charged as domestic (the safe side).
    ("DE", "DE136695977"): ("domestic", D("23.00")),
    ("US", "12-3456789"): ("outside_eu", D("0.00")),
    ("GB", "GB123456789"): ("outside_eu", D("0.00")),
}


@pytest.mark.django_db
@hypothesis_settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    amounts=st.lists(
        st.decimals(min_value=D("-300"), max_value=D("5000"), places=2), min_size=1, max_size=6
    ),
    situation=st.sampled_from(sorted(SITUATIONS)),
)
def test_statement_total_is_the_margins_plus_vat(amounts, situation):
    vat_rates_seed()
    country, vat_id = situation
    customer = CustomerFactory(reseller=ResellerFactory(country=country, vat_id=vat_id))

    statement = statements.statement_issue_for_reseller(
        reseller=customer.reseller,
        currency="EUR",
        month=MAY,
        lines=margin_lines(customer, amounts),
        day=date(2026, 6, 1),
    )

    assert statement is not None
    treatment, rate = SITUATIONS[situation]
    assert (statement.vat_treatment, statement.vat_rate) == (treatment, rate)
    margin = sum(amounts, D("0.00"))
    assert statement.subtotal == margin
    assert statement.vat_amount == cents(margin * rate / 100)
    assert statement.total == margin + statement.vat_amount
    stored = Statement.objects.get(pk=statement.pk)
    assert stored.total == sum((line.margin for line in stored.lines.all()), D(0)) + (
        stored.vat_amount
    )
    assert stored.line_count == stored.lines.count() == len(amounts)


@pytest.mark.django_db
def test_a_statement_snapshots_both_parties_and_the_reseller_language(tenant):
    reseller = tenant.reseller
    reseller.country, reseller.vat_id, reseller.language = "DE", "DE 136 695 976", "de"
    reseller.save()

    statement = statement_for(tenant.customer, ("12.00",), month=MAY)

    assert statement.number == f"SB-{statement.issue_date.year}-000001"
    assert statement.language == "de"
    assert (statement.period_start, statement.period_end) == (MAY, date(2026, 6, 1))
    assert statement.seller["name"] == reseller.name
    assert statement.seller["country"] == "DE"
    assert statement.seller["vat_id"] == "DE136695976"
    assert statement.buyer["name"] == settings.VENDOR_NAME
    assert statement.buyer["vat_id"] == settings.VENDOR_VAT_ID
    assert statement.vat_treatment == Statement.VatTreatment.REVERSE_CHARGE
    line = statement.lines.get()
    assert (line.position, line.margin, line.customer_name) == (
        1,
        D("12.00"),
        tenant.customer.organisation,
    )
    assert AuditEvent.objects.filter(action="statement.issued", reseller=reseller).count() == 1


@pytest.mark.django_db
def test_reverse_charge_needs_the_vendors_vat_id_too(tenant, settings):
    settings.VENDOR_VAT_ID = ""
    tenant.reseller.country, tenant.reseller.vat_id = "DE", "DE136695976"
    tenant.reseller.save()
    statement = statement_for(tenant.customer, ("10.00",), month=MAY)
    assert statement.vat_treatment == Statement.VatTreatment.DOMESTIC
    assert statement.vat_rate == D("23.00")


# The monthly run


@pytest.mark.django_db
def test_the_run_issues_one_statement_per_reseller_and_currency_and_running_twice_issues_one(
    tenant, other_tenant, monkeypatch
):
    vat_rates_seed()
    with time_machine.travel(date(2026, 5, 20)):
        mine = margin_lines(tenant.customer, [D("10.00"), D("-2.50")])
        theirs = margin_lines(other_tenant.customer, [D("7.00")])
    fake_margins(monkeypatch, {tenant.reseller.pk: mine, other_tenant.reseller.pk: theirs})

    with time_machine.travel(JUNE_1, tick=False):
        first = statements.statements_issue(month=MAY)
        again = statements.statements_issue(month=date(2026, 5, 31))

    assert sorted(s.number for s in first) == ["SB-2026-000001", "SB-2026-000002"]
    assert again == []
    assert Statement.objects.count() == 2
    own = Statement.objects.get(reseller=tenant.reseller)
    assert own.subtotal == D("7.50")
    assert list(own.lines.values_list("margin", flat=True)) == [D("10.00"), D("-2.50")]
    assert DocumentCounter.objects.get(series="SB", year=2026).last_number == 2


@pytest.mark.django_db
def test_a_reseller_without_paid_invoices_gets_no_statement(tenant, monkeypatch):
    vat_rates_seed()
    with time_machine.travel(date(2026, 5, 20)):
        margin_lines(tenant.customer, [D("1.00")])
    fake_margins(monkeypatch, {})
    with time_machine.travel(JUNE_1, tick=False):
        assert statements.statements_issue(month=MAY) == []
    assert not Statement.objects.exists()


@pytest.mark.django_db
def test_a_month_not_over_is_not_issued(db):
    with (
        time_machine.travel("2026-05-31 23:00:00+00:00", tick=False),
        pytest.raises(ValidationError) as error,
    ):
        statements.statements_issue(month=MAY)
    assert error.value.code == "month_not_over"


@pytest.mark.django_db
def test_the_beat_job_issues_last_months_statements(tenant, monkeypatch):
    vat_rates_seed()
    with time_machine.travel(date(2026, 5, 3)):
        lines = margin_lines(tenant.customer, [D("4.00")])
    fake_margins(monkeypatch, {tenant.reseller.pk: lines})
    entry = settings.CELERY_BEAT_SCHEDULE["commission-statements"]
    assert entry["task"] == "commissions.tasks.statements_issue_monthly"
    schedule: Any = entry["schedule"]
    assert schedule.day_of_month == {1}
    assert schedule.hour == {3}

    with time_machine.travel(JUNE_1, tick=False):
        assert tasks.statements_issue_monthly.delay().get() == 1
        assert tasks.statements_issue_monthly.delay().get() == 0


@pytest.mark.django_db
def test_the_run_reads_the_margins_of_paid_invoices(tenant, monkeypatch):
    """With commissions.margins itself (not a stand-in): an invoice paid in May is on May's
    statement with the margin its charges snapshotted."""
    from tests import factories

    if not hasattr(factories, "invoice_of_charges"):
        pytest.skip("commissions.margins' factories are not there yet")
    vat_rates_seed()
    with time_machine.travel("2026-05-10 10:00:00+00:00", tick=False):
        subscription = factories.SubscriptionFactory(customer=tenant.customer)
        charge = factories.charge_priced(subscription, amount="40.00", cost="30.00")
        invoice = factories.invoice_of_charges([charge])
        invoice.status = "paid"
        invoice.paid_at = invoice.issued_at
        invoice.save(update_fields=["status", "paid_at"])

    with time_machine.travel(JUNE_1, tick=False):
        [statement] = statements.statements_issue(month=MAY)

    line = statement.lines.get()
    assert (line.invoice_id, line.invoice_number, line.margin) == (
        invoice.pk,
        invoice.number,
        D("10.00"),
    )
    assert line.net == invoice.subtotal


# Concurrency (PostgreSQL, one connection per thread)

RUNS = 50
THREADS = 12


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_50_runs_at_once_issue_each_statement_once_with_gapless_numbers(monkeypatch):
    vat_rates_seed()
    resellers = 15
    lines_by_reseller = {}
    with time_machine.travel(date(2026, 5, 20)):
        for _n in range(resellers):
            customer = CustomerFactory(reseller=ResellerFactory(country="IE"))
            lines_by_reseller[customer.reseller_id] = margin_lines(customer, [D("3.00")])
    fake_margins(monkeypatch, lines_by_reseller)
    start = threading.Barrier(THREADS)
    results: list[list[str]] = []

    def run(_n: int) -> list[str]:
        try:
            with time_machine.travel(JUNE_1, tick=False):
                return [s.number for s in statements.statements_issue(month=MAY)]
        finally:
            connections.close_all()

    def worker(runs: list[int]) -> None:
        start.wait()
        for n in runs:
            results.append(run(n))

    with ThreadPoolExecutor(THREADS) as pool:
        shares = [list(range(RUNS))[i::THREADS] for i in range(THREADS)]
        for future in [pool.submit(worker, share) for share in shares]:
            future.result()

    numbers = sorted(number for run_numbers in results for number in run_numbers)
    assert len(results) == RUNS
    assert numbers == [f"SB-2026-{n:06d}" for n in range(1, resellers + 1)]
    assert sorted(Statement.objects.values_list("number", flat=True)) == numbers
    assert DocumentCounter.objects.get(series="SB", year=2026).last_number == resellers
    assert StatementLine.objects.count() == resellers


# Corrections


@pytest.mark.django_db
def test_a_correction_is_a_negative_statement_in_the_same_series(tenant):
    statement = statement_for(tenant.customer, ("10.00", "5.50"), month=MAY)
    staff = UserFactory(is_staff=True)

    correction = statements.statement_correct(statement=statement, actor=staff)

    year = correction.issue_date.year
    assert (statement.number, correction.number) == (f"SB-{year}-000001", f"SB-{year}-000002")
    assert correction.kind == Statement.Kind.CORRECTION
    assert correction.corrects == statement
    assert correction.total == -statement.total
    assert correction.subtotal == D("-15.50")
    assert [line.margin for line in correction.lines.all()] == [D("-10.00"), D("-5.50")]
    with pytest.raises(ValidationError):
        statements.statement_correct(statement=statement, actor=staff)
    with pytest.raises(ValidationError):
        statements.statement_correct(statement=correction, actor=staff)


@pytest.mark.django_db
def test_a_corrected_month_is_issued_again_once_with_its_commission(tenant, monkeypatch):
    """Taking a statement back must not lose the month's commission: staff issue the month
    again (after putting right what was wrong), once, from the margins earned in it."""
    statement = statement_for(tenant.customer, ("10.00", "5.50"), month=MAY)
    staff = UserFactory(is_staff=True)
    with pytest.raises(ValidationError):  # it stands: nothing to issue again
        statements.statement_reissue(statement=statement, actor=staff)
    statements.statement_correct(statement=statement, actor=staff)
    fake_margins(
        monkeypatch,
        {tenant.reseller.pk: margin_lines(tenant.customer, [D("10.00"), D("5.50")])},
    )

    again = statements.statement_reissue(statement=statement, actor=staff)

    assert again.kind == Statement.Kind.STATEMENT
    assert (again.period_start, again.replaces) == (MAY, statement)
    assert again.number.endswith("-000003")
    assert again.subtotal == D("15.50")
    month = Statement.objects.filter(reseller=tenant.reseller, period_start=MAY)
    assert sum(s.subtotal for s in month) == D("15.50")
    assert AuditEvent.objects.filter(action="statement.reissued", object_id=statement.public_id)
    with pytest.raises(ValidationError):  # once
        statements.statement_reissue(statement=statement, actor=staff)
    # The monthly run leaves the month alone, and the new one can be taken back in turn.
    assert (
        statements.statement_issue_for_reseller(
            reseller=tenant.reseller,
            currency="EUR",
            month=MAY,
            lines=margin_lines(tenant.customer, [D("1.00")]),
        )
        is None
    )
    statements.statement_correct(statement=again, actor=staff)
    assert statements.statement_reissue(statement=again, actor=staff).replaces == again


# Payouts


@pytest.mark.django_db
def test_payouts_make_a_statement_paid_without_touching_it(tenant):
    statement = statement_for(tenant.customer, ("100.00",), month=MAY)  # GB: outside the EU
    staff = UserFactory(is_staff=True)
    assert statement.total == D("100.00")
    assert not statements.statement_is_paid(
        total=statement.total, paid=statements.statement_paid_amount(statement)
    )

    statements.payout_record(
        statement=statement,
        amount=D("60.00"),
        paid_on=date(2026, 6, 5),
        method=Payout.Method.BANK_TRANSFER,
        reference="TRF-1",
        actor=staff,
    )
    assert statements.statement_paid_amount(statement) == D("60.00")
    with pytest.raises(ValidationError) as error:
        statements.payout_record(
            statement=statement,
            amount=D("40.01"),
            paid_on=date(2026, 6, 6),
            method=Payout.Method.MANUAL,
            actor=staff,
        )
    assert error.value.code == "overpaid"
    statements.payout_record(
        statement=statement,
        amount=D("40.00"),
        paid_on=date(2026, 6, 6),
        method=Payout.Method.MANUAL,
        actor=staff,
    )

    assert statements.statement_is_paid(
        total=statement.total, paid=statements.statement_paid_amount(statement)
    )
    stored = Statement.objects.get(pk=statement.pk)
    assert (stored.total, stored.number, stored.issued_at) == (
        statement.total,
        statement.number,
        statement.issued_at,
    )
    audit = AuditEvent.objects.filter(action="statement.payout_recorded")
    assert {event.actor for event in audit} == {staff} and audit.count() == 2


# Issued statements never change


@pytest.mark.django_db
def test_the_model_refuses_to_change_or_delete_an_issued_statement(tenant):
    statement = statement_for(tenant.customer, ("10.00",), month=MAY)
    statement.total = D("1.00")
    with pytest.raises(IssuedStatementChanged):
        statement.save()
    statement.refresh_from_db()
    with pytest.raises(IssuedStatementChanged):
        statement.delete()
    line = statement.lines.get()
    line.margin = D("0.00")
    with pytest.raises(IssuedStatementChanged):
        line.save()
    with pytest.raises(IssuedStatementChanged):
        StatementLine(
            statement=statement,
            position=2,
            invoice_number="X",
            customer_name="X",
            invoice_date=MAY,
            net=D(1),
            margin=D(1),
        ).save()
    # The PDF is written after issue.
    statement.pdf_sha256 = "a" * 64
    statement.save(update_fields=["pdf_sha256"])


@pytest.mark.postgres
def test_the_migration_freezes_the_models_immutable_columns():
    migration = importlib.import_module("commissions.migrations.0003_statement_replaces")
    assert immutability.statement_immutable_columns() == migration.IMMUTABLE_COLUMNS


def sql(statement: str, params: list[Any]) -> int:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_database_refuses_what_bypasses_the_model(tenant):
    statement = statement_for(tenant.customer, ("10.00",), month=MAY)
    with pytest.raises(IntegrityError, match="cannot change"):
        sql(
            "UPDATE commissions_statement SET total = 0, subtotal = 0 WHERE id = %s", [statement.pk]
        )
    with pytest.raises(IntegrityError, match="cannot change"), transaction.atomic():
        Statement.objects.filter(pk=statement.pk).update(number="SB-1999-000001")
    with pytest.raises(IntegrityError, match="cannot be deleted"):
        sql("DELETE FROM commissions_statement WHERE id = %s", [statement.pk])
    with pytest.raises(IntegrityError, match="lines of an issued statement"):
        sql(
            "UPDATE commissions_statementline SET margin = 0 WHERE statement_id = %s",
            [statement.pk],
        )
    with pytest.raises(IntegrityError, match="lines of an issued statement"):
        sql("DELETE FROM commissions_statementline WHERE statement_id = %s", [statement.pk])
    with pytest.raises(IntegrityError, match="lines of an issued statement"), transaction.atomic():
        StatementLine.objects.bulk_create(
            [
                StatementLine(
                    statement=statement,
                    position=2,
                    invoice_number="X",
                    customer_name="X",
                    invoice_date=MAY,
                    net=D(1),
                    margin=D(1),
                )
            ]
        )
    assert (
        sql(
            "UPDATE commissions_statement SET pdf_sha256 = %s WHERE id = %s",
            ["b" * 64, statement.pk],
        )
        == 1
    )
    assert Statement.objects.get(pk=statement.pk).lines.get().margin == D("10.00")


@pytest.mark.django_db
def test_the_database_refuses_a_second_statement_for_the_month(tenant):
    statement_for(tenant.customer, ("10.00",), month=MAY)
    again = statements.statement_issue_for_reseller(
        reseller=tenant.reseller,
        currency="EUR",
        month=MAY,
        lines=margin_lines(tenant.customer, [D("1.00")]),
    )
    assert again is None
    assert Statement.objects.count() == 1
    # Its number was given back: the next statement takes it.
    other = statement_for(tenant.customer, ("1.00",), month=date(2026, 4, 1))
    assert other.number.endswith("-000002")
