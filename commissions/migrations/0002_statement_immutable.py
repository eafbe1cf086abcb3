# Issued commission statements cannot change or be deleted, nor can their lines: triggers on
# PostgreSQL (commissions/immutability.py); on SQLite (the demo) the model guard alone.

from django.db import migrations

# Statement.IMMUTABLE_FIELDS as columns when this migration was written (a test compares them
# with the model's: a change there needs a new migration that installs the triggers again).
IMMUTABLE_COLUMNS = [
    "public_id",
    "kind",
    "number",
    "corrects_id",
    "reseller_id",
    "currency",
    "language",
    "period_start",
    "period_end",
    "issue_date",
    "seller",
    "buyer",
    "vat_treatment",
    "vat_rate",
    "subtotal",
    "vat_amount",
    "total",
    "issued_at",
    "line_count",
]


def triggers_install(apps, schema_editor):
    from commissions.immutability import immutability_install

    immutability_install(schema_editor.connection, IMMUTABLE_COLUMNS)


def triggers_remove(apps, schema_editor):
    from commissions.immutability import immutability_remove

    immutability_remove(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("commissions", "0001_statements"),
    ]

    operations = [
        migrations.RunPython(triggers_install, triggers_remove),
    ]
