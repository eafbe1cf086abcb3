"""The PostgreSQL triggers that keep issued commission statements and their lines unchanged,
as invoices are kept (core.immutability: the triggers themselves).

On `commissions_statement` an UPDATE may change only the columns written after issue (the PDF
and its SHA-256); a DELETE is refused. The lines of `commissions_statementline` are written
once, in the issuing transaction.

Migration 0002_statement_immutable installs them with the column list frozen in it; the test
suite installs them with `statement_immutable_columns()` (tests/conftest.py), and a test checks
that both lists agree.
"""

from django.db.backends.base.base import BaseDatabaseWrapper

from core import immutability

STATEMENTS = immutability.IssuedDocuments(
    table="commissions_statement",
    line_table="commissions_statementline",
    line_key="statement_id",
    noun="statement",
    correction="a correction",
)


def statement_immutable_columns() -> list[str]:
    """The database columns of `Statement.IMMUTABLE_FIELDS` (e.g. reseller → reseller_id)."""
    from commissions.models import Statement

    return immutability.immutable_columns(Statement, Statement.IMMUTABLE_FIELDS)


def immutability_install(connection: BaseDatabaseWrapper, columns: list[str]) -> bool:
    return immutability.immutability_install(connection, STATEMENTS, columns)


def immutability_remove(connection: BaseDatabaseWrapper) -> None:
    immutability.immutability_remove(connection, STATEMENTS)
