"""Issued documents never change, and none stays without its PDF (issue 10):

- an issued invoice's or credit note's lines are fixed at issue (`line_count`): no line is added
  later, by the model or by SQL;
- the PDF is rendered once, at issue, its SHA-256 recorded; a render that would differ is refused,
  and regeneration only writes back the identical bytes (after a storage loss);
- "already emailed" is a column, set in the transaction that queues the email;
- the payer gets a payment receipt, once per payment;
- a sweeper re-queues documents without a PDF, and staff are told once when one fails for good;
- the admin's billing health counts what needs staff."""

import importlib
from typing import cast

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from billing import immutability, services
from billing.models import Invoice, InvoiceLine, IssuedInvoiceChanged
from core.models import OutboundEmail
from subscriptions.models import Charge
from tests.billing_pdf_helpers import issue

MIGRATION = importlib.import_module("billing.migrations.0008_issued_documents_fixed")


@pytest.fixture(autouse=True)
def no_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    # Issuing here runs nothing after commit; each test calls what it checks.
    for name in ("on_invoice_issued", "on_credit_note_issued", "on_invoice_paid"):
        monkeypatch.setattr(services, name, [])


def _sql(statement: str, params: list[int]) -> int:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


def _line(invoice: Invoice, position: int) -> InvoiceLine:
    return InvoiceLine(
        invoice=invoice,
        position=position,
        description="Added after issue",
        unit_price="100.00",
        amount="100.00",
    )


# 1. The lines are fixed at issue


@pytest.mark.django_db
def test_issued_documents_know_their_line_count(tenant):
    invoice = issue(tenant.customer)
    note = issue(
        tenant.customer,
        number="CN-2026-000001",
        kind=Invoice.Kind.CREDIT_NOTE,
        corrects=invoice,
        lines=[("Credit", None, "10.00", "10.00", None, None)],
    )
    assert (invoice.line_count, note.line_count) == (2, 1)
    assert invoice.lines.count() == 2 and note.lines.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("kind", [Invoice.Kind.INVOICE, Invoice.Kind.CREDIT_NOTE])
def test_the_model_refuses_a_line_added_to_an_issued_document(tenant, kind):
    invoice = issue(tenant.customer)
    document = (
        invoice
        if kind == Invoice.Kind.INVOICE
        else issue(tenant.customer, number="CN-2026-000001", kind=kind, corrects=invoice)
    )

    with pytest.raises(IssuedInvoiceChanged, match="lines"):
        _line(document, document.line_count + 1).save()
    with pytest.raises(IssuedInvoiceChanged, match="lines"):
        _line(document, 0).save()
    line = document.lines.get(position=1)
    line.amount = line.amount + 1
    with pytest.raises(IssuedInvoiceChanged, match="lines"):
        line.save()
    with pytest.raises(IssuedInvoiceChanged, match="lines"):
        line.delete()
    assert document.lines.count() == 2


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize("kind", [Invoice.Kind.INVOICE, Invoice.Kind.CREDIT_NOTE])
def test_the_database_refuses_a_line_added_to_an_issued_document(tenant, kind):
    invoice = issue(tenant.customer)
    document = (
        invoice
        if kind == Invoice.Kind.INVOICE
        else issue(tenant.customer, number="CN-2026-000001", kind=kind, corrects=invoice)
    )
    total = document.total

    # The issue's example: a line of 100.00 inserted into an issued document.
    with pytest.raises(IntegrityError, match="lines of an issued document"):
        _sql(
            "INSERT INTO billing_invoiceline (invoice_id, position, description, unit_price,"
            " amount) VALUES (%s, %s, 'Added after issue', 100, 100)",
            [document.pk, document.line_count + 1],
        )
    # bulk_create bypasses save(): the trigger is the guard.
    with pytest.raises(IntegrityError, match="lines of an issued document"), transaction.atomic():
        InvoiceLine.objects.bulk_create([_line(document, 3)])
    with pytest.raises(IntegrityError, match="lines of an issued document"), transaction.atomic():
        InvoiceLine.objects.bulk_create([_line(document, 0)])
    # A position inside the range is taken already: the unique constraint refuses it.
    with pytest.raises(IntegrityError), transaction.atomic():
        InvoiceLine.objects.bulk_create([_line(document, 1)])
    # Nor can the line count itself be raised to make room.
    with pytest.raises(IntegrityError, match="cannot change"):
        _sql("UPDATE billing_invoice SET line_count = 3 WHERE id = %s", [document.pk])

    assert document.lines.count() == 2
    assert sum(line.amount for line in document.lines.all()) == document.subtotal
    assert Invoice.objects.get(pk=document.pk).total == total


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_billing_run_still_issues_its_lines(tenant):
    from tests.billing_factories import ChargeFactory
    from tests.factories import SubscriptionFactory

    charges = [
        cast(Charge, ChargeFactory(subscription=SubscriptionFactory(customer=tenant.customer)))
        for _ in range(3)
    ]

    first = charges[0]
    invoice = services.invoice_issue_for_customer(
        customer=tenant.customer, payer=first.payer, day=timezone.localdate(first.created_at)
    )

    assert invoice is not None
    assert invoice.line_count == 3
    assert list(invoice.lines.values_list("position", flat=True)) == [1, 2, 3]


def _email_queued(filename: str) -> OutboundEmail:
    return OutboundEmail.objects.create(
        to="billing@reseller.example",
        template="invoice_issued",
        language="en",
        subject="Invoice",
        body_text="",
        body_html="",
        attachments=[{"path": "x", "filename": filename, "mimetype": "application/pdf"}],
    )


def _migration_fill_and_install() -> None:
    from django.apps import apps

    with connection.schema_editor() as editor:
        MIGRATION.line_counts_fill(apps, editor)
        MIGRATION.emailed_fill(apps, editor)
        MIGRATION.triggers_install(apps, editor)


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_migration_fixes_the_documents_issued_before_it(tenant):
    # As before 0008: documents without a line count, the triggers 0003 installed (rolled back
    # with the test's transaction, DDL included).
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")  # no triggers
    emailed = issue(tenant.customer)
    waiting = issue(tenant.customer, number="INV-2026-000002", lines=[])
    issue(
        tenant.customer,
        number="CN-2026-000001",
        kind=Invoice.Kind.CREDIT_NOTE,
        corrects=emailed,
        lines=[("Credit", None, "10.00", "10.00", None, None)],
    )
    Invoice.objects.update(line_count=0)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = DEFAULT")
    previous = importlib.import_module("billing.migrations.0003_invoice_immutable")
    immutability.immutability_install(connection, previous.IMMUTABLE_COLUMNS)
    first = _email_queued("INV-2026-000001.pdf")
    _email_queued("CN-2026-000001.pdf")
    _email_queued("INV-2026-000002.txt")  # not a document's PDF

    _migration_fill_and_install()

    rows = {
        number: (line_count, emailed_at)
        for number, line_count, emailed_at in Invoice.objects.values_list(
            "number", "line_count", "pdf_emailed_at"
        )
    }
    assert rows["INV-2026-000001"] == (2, first.created_at)
    assert rows["INV-2026-000002"] == (0, None)
    assert rows["CN-2026-000001"][0] == 1 and rows["CN-2026-000001"][1] is not None
    # From now on the lines are fixed, and so is the count.
    with pytest.raises(IntegrityError, match="lines of an issued document"):
        _sql(
            "INSERT INTO billing_invoiceline (invoice_id, position, description, unit_price,"
            " amount) VALUES (%s, 1, 'Added after issue', 100, 100)",
            [waiting.pk],
        )
    with pytest.raises(IntegrityError, match="cannot change"):
        _sql("UPDATE billing_invoice SET line_count = 5 WHERE id = %s", [waiting.pk])
