# The standard VAT rates of the 27 EU member states, from 1 January 2025 (see billing/vat.py).

from decimal import Decimal

from django.db import migrations


def rates_load(apps, schema_editor):
    from billing.vat import EU_STANDARD_RATES

    VatRate = apps.get_model("billing", "VatRate")
    for country, rate, valid_from in EU_STANDARD_RATES:
        VatRate.objects.get_or_create(
            country=country, valid_from=valid_from, defaults={"rate": Decimal(rate)}
        )


def rates_unload(apps, schema_editor):
    from billing.vat import EU_STANDARD_RATES

    VatRate = apps.get_model("billing", "VatRate")
    for country, rate, valid_from in EU_STANDARD_RATES:
        VatRate.objects.filter(country=country, valid_from=valid_from, rate=Decimal(rate)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0001_billing"),
    ]

    operations = [
        migrations.RunPython(rates_load, rates_unload),
    ]
