"""The PostgreSQL triggers that keep issued invoices, credit notes and their lines unchanged.

`Invoice.save()` guards the ORM; these guard every other way in (raw SQL, `QuerySet.update()`,
`bulk_update`, a psql session). On `billing_invoice` an UPDATE may change only the columns
written after issue (payment status, paid_at, payment attempts, next attempt, the PDF, its
SHA-256 and delivery); a DELETE is refused. On `billing_invoiceline` any UPDATE or DELETE is
refused, and an INSERT is let through only at a position from 1 to the `line_count` its document
was issued with: with the unique (invoice, position) constraint, that is once per position, so
the issuing transaction writes the lines and no line can be added afterwards.

Migration 0003_invoice_immutable installed them first; 0008_issued_documents_fixed installs them
again with the column list frozen in it (adding `line_count`) and the INSERT guard; the test
suite builds its database from the models (`--no-migrations`), so tests/conftest.py installs
them with `invoice_immutable_columns()`, and a test checks that both lists agree. TRUNCATE (how
test teardown and the benchmark empty tables) fires no row trigger.

The errors are SQLSTATE 23000 (integrity_constraint_violation): Django raises IntegrityError.
"""

from django.db.backends.base.base import BaseDatabaseWrapper

INVOICE_TABLE = "billing_invoice"
LINE_TABLE = "billing_invoiceline"


def invoice_immutable_columns() -> list[str]:
    """The database columns of `Invoice.IMMUTABLE_FIELDS` (e.g. customer → customer_id)."""
    from django.db import models

    from billing.models import Invoice

    columns = []
    for name in Invoice.IMMUTABLE_FIELDS:
        field = Invoice._meta.get_field(name)
        assert isinstance(field, models.Field)
        columns.append(str(field.column))
    return columns


def immutability_sql(columns: list[str]) -> list[str]:
    """CREATE OR REPLACE statements for the functions and triggers (safe to run again)."""
    changed = " OR ".join(f'OLD."{column}" IS DISTINCT FROM NEW."{column}"' for column in columns)
    return [
        f"""
        CREATE OR REPLACE FUNCTION billing_invoice_immutable() RETURNS trigger AS $$
        BEGIN
            IF TG_OP = 'DELETE' THEN
                RAISE EXCEPTION 'issued document % cannot be deleted: issue a credit note',
                    OLD.number USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            IF {changed} THEN
                RAISE EXCEPTION 'issued document % cannot change: issue a credit note',
                    OLD.number USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            RETURN NEW;
        END;
        $$ LANGUAGE plpgsql
        """,
        f"DROP TRIGGER IF EXISTS billing_invoice_immutable ON {INVOICE_TABLE}",
        f"""
        CREATE TRIGGER billing_invoice_immutable BEFORE UPDATE OR DELETE ON {INVOICE_TABLE}
        FOR EACH ROW EXECUTE FUNCTION billing_invoice_immutable()
        """,
        f"""
        CREATE OR REPLACE FUNCTION billing_invoiceline_immutable() RETURNS trigger AS $$
        DECLARE
            issued_lines integer;
        BEGIN
            IF TG_OP = 'INSERT' THEN
                -- The document's row, written earlier in the issuing transaction (another
                -- transaction's uncommitted document is not seen: no count, refused).
                SELECT line_count INTO issued_lines FROM {INVOICE_TABLE} WHERE id = NEW.invoice_id;
                IF NEW.position BETWEEN 1 AND issued_lines THEN
                    RETURN NEW;
                END IF;
                RAISE EXCEPTION 'the lines of an issued document cannot change: line % is not '
                    'one of the % it was issued with', NEW.position, coalesce(issued_lines, 0)
                    USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            RAISE EXCEPTION 'the lines of an issued document cannot change: issue a credit note'
                USING ERRCODE = 'integrity_constraint_violation';
        END;
        $$ LANGUAGE plpgsql
        """,  # noqa: S608 (the table name is a constant)
        f"DROP TRIGGER IF EXISTS billing_invoiceline_immutable ON {LINE_TABLE}",
        f"""
        CREATE TRIGGER billing_invoiceline_immutable
        BEFORE INSERT OR UPDATE OR DELETE ON {LINE_TABLE}
        FOR EACH ROW EXECUTE FUNCTION billing_invoiceline_immutable()
        """,
    ]


REMOVE_SQL = [
    f"DROP TRIGGER IF EXISTS billing_invoice_immutable ON {INVOICE_TABLE}",
    f"DROP TRIGGER IF EXISTS billing_invoiceline_immutable ON {LINE_TABLE}",
    "DROP FUNCTION IF EXISTS billing_invoice_immutable()",
    "DROP FUNCTION IF EXISTS billing_invoiceline_immutable()",
]


def immutability_install(connection: BaseDatabaseWrapper, columns: list[str]) -> bool:
    """Create the triggers on PostgreSQL; elsewhere (SQLite: the demo) do nothing and return
    False, leaving the model guard alone in charge."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        for statement in immutability_sql(columns):
            cursor.execute(statement)
    return True


def immutability_remove(connection: BaseDatabaseWrapper) -> None:
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for statement in REMOVE_SQL:
            cursor.execute(statement)
