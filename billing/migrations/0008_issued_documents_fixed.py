# Issued documents never change (issue 10): their lines are fixed at issue by line_count, and
# "already emailed" is a column instead of a search through the queued emails' attachments.
#
# 1. line_count of the documents issued before it existed: the lines they have. (The trigger
#    installed by 0003 does not freeze line_count, so this UPDATE passes.)
# 2. pdf_emailed_at of the documents whose "invoice issued" email was queued: when it was first
#    queued. The same test as the search it replaces (billing.notifications before this
#    migration): an "invoice_issued" email with the attachment "<number>.pdf".
# 3. The triggers again (billing/immutability.py), with line_count frozen and the INSERT guard
#    on the lines: from here on no line can be added to an issued document.

from datetime import datetime

from django.db import migrations
from django.db.models import Count, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce

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
    "line_count",
]
# The columns 0003_invoice_immutable froze, for going back.
PREVIOUS_IMMUTABLE_COLUMNS = IMMUTABLE_COLUMNS[:-1]

INVOICE_ISSUED_TEMPLATE = "invoice_issued"
BATCH = 1000


def line_counts_fill(apps, schema_editor):
    Invoice = apps.get_model("billing", "Invoice")
    InvoiceLine = apps.get_model("billing", "InvoiceLine")
    lines = (
        InvoiceLine.objects.filter(invoice_id=OuterRef("pk"))
        .order_by()
        .values("invoice_id")
        .annotate(count=Count("id"))
        .values("count")
    )
    Invoice.objects.filter(line_count=0).update(line_count=Coalesce(Subquery(lines), Value(0)))


def emailed_fill(apps, schema_editor):
    Invoice = apps.get_model("billing", "Invoice")
    OutboundEmail = apps.get_model("core", "OutboundEmail")
    first_queued: dict[str, datetime] = {}
    emails = OutboundEmail.objects.filter(template=INVOICE_ISSUED_TEMPLATE).values_list(
        "attachments", "created_at"
    )
    for attachments, created_at in emails.iterator(chunk_size=BATCH):
        for attachment in attachments or []:
            filename = str(attachment.get("filename", "")) if isinstance(attachment, dict) else ""
            if not filename.endswith(".pdf"):
                continue
            number = filename.removesuffix(".pdf")
            if number not in first_queued or created_at < first_queued[number]:
                first_queued[number] = created_at
    numbers = sorted(first_queued)
    for start in range(0, len(numbers), BATCH):
        invoices = list(
            Invoice.objects.filter(
                number__in=numbers[start : start + BATCH], pdf_emailed_at__isnull=True
            ).only("pk", "number")
        )
        for invoice in invoices:
            invoice.pdf_emailed_at = first_queued[invoice.number]
        Invoice.objects.bulk_update(invoices, ["pdf_emailed_at"])


def triggers_install(apps, schema_editor):
    from billing.immutability import immutability_install

    immutability_install(schema_editor.connection, IMMUTABLE_COLUMNS)


def triggers_install_previous(apps, schema_editor):
    from billing.immutability import immutability_install

    immutability_install(schema_editor.connection, PREVIOUS_IMMUTABLE_COLUMNS)


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0007_money_records"),
        ("core", "0002_outboundemail_attachments"),
    ]

    operations = [
        migrations.RunPython(line_counts_fill, migrations.RunPython.noop),
        migrations.RunPython(emailed_fill, migrations.RunPython.noop),
        migrations.RunPython(triggers_install, triggers_install_previous),
    ]
