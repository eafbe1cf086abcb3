# Issued invoices and credit notes cannot change or be deleted, nor can their lines: triggers on
# PostgreSQL (billing/immutability.py); on SQLite (the demo) the model guard alone.

from django.db import migrations

# Invoice.IMMUTABLE_FIELDS as columns when this migration was written (a test compares them
# with the model's: a change there needs a new migration that installs the triggers again).
IMMUTABLE_COLUMNS = [
    "public_id",
    "kind",
    "number",
    "corrects_id",
    "customer_id",
    "reseller_id",
    "payer",
    "currency",
    "language",
    "issue_date",
    "due_date",
    "seller",
    "buyer",
    "vat_treatment",
    "vat_rate",
    "subtotal",
    "vat_amount",
    "total",
    "issued_at",
]


def triggers_install(apps, schema_editor):
    from billing.immutability import immutability_install

    immutability_install(schema_editor.connection, IMMUTABLE_COLUMNS)


def triggers_remove(apps, schema_editor):
    from billing.immutability import immutability_remove

    immutability_remove(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0002_vat_rates"),
    ]

    operations = [
        migrations.RunPython(triggers_install, triggers_remove),
    ]
