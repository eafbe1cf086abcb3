"""A customer's country is required: its invoice must name the buyer's country (Factur-X BT-55,
EN 16931 rule BR-11), or its PDF cannot be made.

Customers saved without one get their reseller's country (the default NEW CUSTOMER has always
offered), each change audited as `customer.country_defaulted` with no actor, as
resellers.services.audit_record would write it. A customer whose reseller has no country either
is left without one: no country is invented for it. The billing run then holds its charges
with a reason staff see (billing.models.BillingHold) until someone sets the country.

The field change itself (blank=False) is a validation rule only: no SQL.
"""

import django_countries.fields
from django.db import migrations

ACTION = "customer.country_defaulted"
BATCH = 2000


def _repr(organisation: str, domain: str) -> str:
    # customers.models.Customer.__str__ (historical models have no methods of their own).
    return (f"{organisation} ({domain})" if domain else organisation)[:255]


def customer_country_default(apps, schema_editor):
    Customer = apps.get_model("customers", "Customer")
    AuditEvent = apps.get_model("resellers", "AuditEvent")
    missing = (
        Customer.objects.filter(country="")
        .exclude(reseller__country="")
        .order_by("pk")
        .values_list(
            "pk", "public_id", "organisation", "domain", "reseller_id", "reseller__country"
        )
    )
    rows = list(missing)
    for start in range(0, len(rows), BATCH):
        batch = rows[start : start + BATCH]
        by_country: dict[str, list[int]] = {}
        for pk, _public_id, _organisation, _domain, _reseller_id, country in batch:
            by_country.setdefault(str(country), []).append(pk)
        for country, pks in by_country.items():
            Customer.objects.filter(pk__in=pks).update(country=country)
        AuditEvent.objects.bulk_create(
            AuditEvent(
                actor=None,
                actor_email="",
                reseller_id=reseller_id,
                customer_public_id=public_id,
                action=ACTION,
                object_type="customers.customer",
                object_id=public_id,
                object_repr=_repr(organisation, domain),
                before={"country": ""},
                after={"country": str(country)},
                ip=None,
            )
            for _pk, public_id, organisation, domain, reseller_id, country in batch
        )


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0005_customer_search_text"),
        ("resellers", "0002_reseller_customers_version"),
    ]

    operations = [
        migrations.RunPython(customer_country_default, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="customer",
            name="country",
            field=django_countries.fields.CountryField(
                error_messages={
                    "blank": "Choose the country where the organisation is established: its "
                    "invoices need it."
                },
                max_length=2,
                verbose_name="country",
            ),
        ),
    ]
