"""The PostgreSQL triggers that keep an issued document and its lines unchanged: invoices and
credit notes (billing/immutability.py), commission statements (commissions/immutability.py).

The model's `save()` guards the ORM; these guard every other way in (raw SQL,
`QuerySet.update()`, `bulk_update`, a psql session). On the document's table an UPDATE may
change only the columns not listed (those written after issue); a DELETE is refused. On its
lines' table any UPDATE or DELETE is refused, and an INSERT is let through only at a position
from 1 to the `line_count` its document was issued with: with a unique (document, position)
constraint, that is once per position, so the issuing transaction writes the lines and no line
can be added afterwards. TRUNCATE (how test teardown and the benchmarks empty tables) fires no
row trigger.

Each app's migrations install the triggers with the column list frozen in them; the test suite
builds its database from the models (`--no-migrations`), so tests/conftest.py installs them with
the models' lists, and a test per app checks that both lists agree.

The models guard the ORM the same way (IssuedDocument, IssuedDocumentLine). The errors are
SQLSTATE 23000 (integrity_constraint_violation): Django raises IntegrityError.
"""

from dataclasses import dataclass
from typing import Any, ClassVar, cast

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper


@dataclass(frozen=True)
class IssuedDocuments:
    """Where an app keeps its issued documents, and what the refusals tell the reader."""

    table: str  # e.g. billing_invoice; the trigger and its function are named <table>_immutable
    line_table: str  # e.g. billing_invoiceline
    line_key: str  # the lines' column naming their document, e.g. invoice_id
    noun: str  # "document", "statement"
    correction: str  # what to issue instead: "a credit note", "a correction"


def immutable_columns(model: type[models.Model], names: tuple[str, ...]) -> list[str]:
    """The database columns of the fields `names` of `model` (e.g. customer → customer_id)."""
    columns = []
    for name in names:
        field = model._meta.get_field(name)
        assert isinstance(field, models.Field)
        columns.append(str(field.column))
    return columns


def immutability_sql(documents: IssuedDocuments, columns: list[str]) -> list[str]:
    """CREATE OR REPLACE statements for the functions and triggers (safe to run again)."""
    table, line_table = documents.table, documents.line_table
    noun, correction = documents.noun, documents.correction
    changed = " OR ".join(f'OLD."{column}" IS DISTINCT FROM NEW."{column}"' for column in columns)
    return [
        f"""
        CREATE OR REPLACE FUNCTION {table}_immutable() RETURNS trigger AS $$
        BEGIN
            IF TG_OP = 'DELETE' THEN
                RAISE EXCEPTION 'issued {noun} % cannot be deleted: issue {correction}',
                    OLD.number USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            IF {changed} THEN
                RAISE EXCEPTION 'issued {noun} % cannot change: issue {correction}',
                    OLD.number USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            RETURN NEW;
        END;
        $$ LANGUAGE plpgsql
        """,
        f"DROP TRIGGER IF EXISTS {table}_immutable ON {table}",
        f"""
        CREATE TRIGGER {table}_immutable BEFORE UPDATE OR DELETE ON {table}
        FOR EACH ROW EXECUTE FUNCTION {table}_immutable()
        """,
        f"""
        CREATE OR REPLACE FUNCTION {line_table}_immutable() RETURNS trigger AS $$
        DECLARE
            issued_lines integer;
        BEGIN
            IF TG_OP = 'INSERT' THEN
                -- The document's row, written earlier in the issuing transaction (another
                -- transaction's uncommitted document is not seen: no count, refused).
                SELECT line_count INTO issued_lines FROM {table}
                    WHERE id = NEW.{documents.line_key};
                IF NEW.position BETWEEN 1 AND issued_lines THEN
                    RETURN NEW;
                END IF;
                RAISE EXCEPTION 'the lines of an issued {noun} cannot change: line % is not '
                    'one of the % it was issued with', NEW.position, coalesce(issued_lines, 0)
                    USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            RAISE EXCEPTION 'the lines of an issued {noun} cannot change: issue {correction}'
                USING ERRCODE = 'integrity_constraint_violation';
        END;
        $$ LANGUAGE plpgsql
        """,  # noqa: S608 (the names are constants)
        f"DROP TRIGGER IF EXISTS {line_table}_immutable ON {line_table}",
        f"""
        CREATE TRIGGER {line_table}_immutable
        BEFORE INSERT OR UPDATE OR DELETE ON {line_table}
        FOR EACH ROW EXECUTE FUNCTION {line_table}_immutable()
        """,
    ]


def _remove_sql(documents: IssuedDocuments) -> list[str]:
    table, line_table = documents.table, documents.line_table
    return [
        f"DROP TRIGGER IF EXISTS {table}_immutable ON {table}",
        f"DROP TRIGGER IF EXISTS {line_table}_immutable ON {line_table}",
        f"DROP FUNCTION IF EXISTS {table}_immutable()",
        f"DROP FUNCTION IF EXISTS {line_table}_immutable()",
    ]


def immutability_install(
    connection: BaseDatabaseWrapper, documents: IssuedDocuments, columns: list[str]
) -> bool:
    """Create the triggers on PostgreSQL; elsewhere (SQLite: the demo) do nothing and return
    False, leaving the model guard alone in charge."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        for statement in immutability_sql(documents, columns):
            cursor.execute(statement)
    return True


def immutability_remove(connection: BaseDatabaseWrapper, documents: IssuedDocuments) -> None:
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for statement in _remove_sql(documents):
            cursor.execute(statement)


class IssuedDocument(models.Model):
    """An issued document (abstract): its IMMUTABLE_FIELDS are written once, when it is issued,
    and it is never deleted; `Changed(number, what)` is raised instead. (PostgreSQL enforces
    the same with the triggers above, for writes that bypass the model.)"""

    IMMUTABLE_FIELDS: ClassVar[tuple[str, ...]] = ()
    Changed: ClassVar[type[Exception]]
    number: str

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            update_fields = kwargs.get("update_fields")
            touched = set(update_fields) if update_fields is not None else None
            if touched is None or touched & set(self.IMMUTABLE_FIELDS):
                stored = type(self)._default_manager.filter(pk=self.pk)
                values = stored.values(*self.IMMUTABLE_FIELDS).get()
                for field in self.IMMUTABLE_FIELDS:
                    attname = cast(models.Field, self._meta.get_field(field)).attname
                    if values[field] != getattr(self, attname):
                        raise self.Changed(self.number, field)
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise self.Changed(self.number, "delete")


class IssuedDocumentLine(models.Model):
    """A line of an issued document (abstract), named by DOCUMENT_FIELD (its foreign key): lines
    are written once, in the issuing transaction, at positions 1..line_count, and never
    changed or deleted; the document's `Changed(number, "lines")` is raised instead.
    (Bulk-created lines bypass this: PostgreSQL's trigger is the guard that counts.)"""

    DOCUMENT_FIELD: ClassVar[str]
    position: int

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        document = cast(
            type[IssuedDocument], self._meta.get_field(self.DOCUMENT_FIELD).related_model
        )
        # `number` and `line_count` are fields of the concrete document model.
        documents: Any = document._default_manager
        number, line_count = (
            documents.filter(pk=getattr(self, f"{self.DOCUMENT_FIELD}_id"))
            .values_list("number", "line_count")
            .get()
        )
        if not self._state.adding or not 1 <= self.position <= line_count:
            raise document.Changed(number, "lines")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        document = getattr(self, self.DOCUMENT_FIELD)
        raise document.Changed(document.number, "lines")
