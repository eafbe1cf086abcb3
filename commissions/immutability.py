"""The PostgreSQL triggers that keep issued commission statements and their lines unchanged,
as billing/immutability.py does for invoices.

`Statement.save()` guards the ORM; these guard every other way in (raw SQL, `QuerySet.update()`,
`bulk_update`, a psql session). On `commissions_statement` an UPDATE may change only the
columns written after issue (the PDF and its SHA-256); a DELETE is refused. On
`commissions_statementline` any UPDATE or DELETE is refused, and an INSERT is let through only at
a position from 1 to the `line_count` its statement was issued with.

Migration 0002_statement_immutable installs them with the column list frozen in it; the test
suite builds its database from the models (`--no-migrations`), so the statement tests install
them with `statement_immutable_columns()`, and a test checks that both lists agree.

The errors are SQLSTATE 23000 (integrity_constraint_violation): Django raises IntegrityError.
"""

from django.db.backends.base.base import BaseDatabaseWrapper

STATEMENT_TABLE = "commissions_statement"
LINE_TABLE = "commissions_statementline"


def statement_immutable_columns() -> list[str]:
    """The database columns of `Statement.IMMUTABLE_FIELDS` (e.g. reseller → reseller_id)."""
    from django.db import models

    from commissions.models import Statement

    columns = []
    for name in Statement.IMMUTABLE_FIELDS:
        field = Statement._meta.get_field(name)
        assert isinstance(field, models.Field)
        columns.append(str(field.column))
    return columns


def immutability_sql(columns: list[str]) -> list[str]:
    """CREATE OR REPLACE statements for the functions and triggers (safe to run again)."""
    changed = " OR ".join(f'OLD."{column}" IS DISTINCT FROM NEW."{column}"' for column in columns)
    return [
        f"""
        CREATE OR REPLACE FUNCTION commissions_statement_immutable() RETURNS trigger AS $$
        BEGIN
            IF TG_OP = 'DELETE' THEN
                RAISE EXCEPTION 'issued statement % cannot be deleted: issue a correction',
                    OLD.number USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            IF {changed} THEN
                RAISE EXCEPTION 'issued statement % cannot change: issue a correction',
                    OLD.number USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            RETURN NEW;
        END;
        $$ LANGUAGE plpgsql
        """,
        f"DROP TRIGGER IF EXISTS commissions_statement_immutable ON {STATEMENT_TABLE}",
        f"""
        CREATE TRIGGER commissions_statement_immutable
        BEFORE UPDATE OR DELETE ON {STATEMENT_TABLE}
        FOR EACH ROW EXECUTE FUNCTION commissions_statement_immutable()
        """,
        f"""
        CREATE OR REPLACE FUNCTION commissions_statementline_immutable() RETURNS trigger AS $$
        DECLARE
            issued_lines integer;
        BEGIN
            IF TG_OP = 'INSERT' THEN
                SELECT line_count INTO issued_lines FROM {STATEMENT_TABLE}
                    WHERE id = NEW.statement_id;
                IF NEW.position BETWEEN 1 AND issued_lines THEN
                    RETURN NEW;
                END IF;
                RAISE EXCEPTION 'the lines of an issued statement cannot change: line % is not '
                    'one of the % it was issued with', NEW.position, coalesce(issued_lines, 0)
                    USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            RAISE EXCEPTION 'the lines of an issued statement cannot change: issue a correction'
                USING ERRCODE = 'integrity_constraint_violation';
        END;
        $$ LANGUAGE plpgsql
        """,  # noqa: S608 (the table name is a constant)
        f"DROP TRIGGER IF EXISTS commissions_statementline_immutable ON {LINE_TABLE}",
        f"""
        CREATE TRIGGER commissions_statementline_immutable
        BEFORE INSERT OR UPDATE OR DELETE ON {LINE_TABLE}
        FOR EACH ROW EXECUTE FUNCTION commissions_statementline_immutable()
        """,
    ]


REMOVE_SQL = [
    f"DROP TRIGGER IF EXISTS commissions_statement_immutable ON {STATEMENT_TABLE}",
    f"DROP TRIGGER IF EXISTS commissions_statementline_immutable ON {LINE_TABLE}",
    "DROP FUNCTION IF EXISTS commissions_statement_immutable()",
    "DROP FUNCTION IF EXISTS commissions_statementline_immutable()",
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
