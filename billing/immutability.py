"""The PostgreSQL triggers that keep issued invoices, credit notes and their lines unchanged
(core.immutability: the triggers themselves, shared with commission statements).

On `billing_invoice` an UPDATE may change only the columns written after issue (payment status,
paid_at, payment attempts, next attempt, the PDF, its SHA-256 and delivery); a DELETE is
refused. The lines of `billing_invoiceline` are written once, in the issuing transaction.

Migration 0003_invoice_immutable installed them first; 0008_issued_documents_fixed installs them
again with the column list frozen in it (adding `line_count`) and the INSERT guard; the test
suite installs them with `invoice_immutable_columns()` (tests/conftest.py), and a test checks
that both lists agree.
"""

from django.db.backends.base.base import BaseDatabaseWrapper

from core import immutability

INVOICES = immutability.IssuedDocuments(
    table="billing_invoice",
    line_table="billing_invoiceline",
    line_key="invoice_id",
    noun="document",
    correction="a credit note",
)


def invoice_immutable_columns() -> list[str]:
    """The database columns of `Invoice.IMMUTABLE_FIELDS` (e.g. customer → customer_id)."""
    from billing.models import Invoice

    return immutability.immutable_columns(Invoice, Invoice.IMMUTABLE_FIELDS)


def immutability_install(connection: BaseDatabaseWrapper, columns: list[str]) -> bool:
    return immutability.immutability_install(connection, INVOICES, columns)


def immutability_remove(connection: BaseDatabaseWrapper) -> None:
    immutability.immutability_remove(connection, INVOICES)
