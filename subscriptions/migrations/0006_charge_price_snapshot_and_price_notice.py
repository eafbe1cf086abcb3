"""Issue 16, stage 2: every Charge keeps what it was priced from (list price, the reseller's
cost and margin, per licence for the period and in total, the monthly prices, the price source
and the tier, discount, price book and special price rows), and PriceNotice records a price
increase announced to a customer.

Charges made before this migration were all charged at the catalogue price, with no record of
the reseller's cost: they are filled with what is known. The list price is the unit price
(and the monthly list and customer price the unit price over the period's months), the price
source is the list price, and the cost is taken to be the price itself: a margin of 0. That
understates what resellers earned before issue 16; it is accepted for history, which no
commission statement covers.
"""

from decimal import Decimal

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import F, Q, Value

# The fields filled from the unit price, and made NOT NULL once filled.
MONEY_FIELDS = [
    ("list_unit_price", "list price per licence for the period", 12),
    ("unit_cost", "reseller cost per licence for the period", 12),
    ("unit_margin", "margin per licence for the period", 12),
    ("cost_amount", "reseller cost", 12),
    ("margin_amount", "margin", 12),
    ("monthly_list_price", "list price per licence per month", 10),
    ("monthly_price", "customer price per licence per month", 10),
    ("monthly_cost", "reseller cost per licence per month", 10),
]


def fill_history(apps, schema_editor):
    """List = cost = the price charged; margin 0 (see the module's docstring). A yearly period
    (annual, paid yearly) is billed for 12 months at once, or 11 for the rest of a term after a
    plan change: its monthly price is the unit price over those months (the column's numeric
    rounds it half-up to the cent)."""
    Charge = apps.get_model("subscriptions", "Charge")
    snapshot = {
        "list_unit_price": F("unit_price"),
        "unit_cost": F("unit_price"),
        "unit_margin": Value(0),
        "cost_amount": F("amount"),
        "margin_amount": Value(0),
        "price_source": Value("list_price"),
    }
    yearly = Q(subscription__plan__kind="annual_yearly")
    for rows, months in (
        (Charge.objects.filter(yearly, kind="plan_change"), 11),
        (Charge.objects.filter(yearly).exclude(kind="plan_change"), 12),
        (Charge.objects.exclude(yearly), 1),
    ):
        monthly = F("unit_price") / Value(Decimal(months))
        rows.update(
            **snapshot, monthly_list_price=monthly, monthly_price=monthly, monthly_cost=monthly
        )


class Migration(migrations.Migration):
    dependencies = [
        ("subscriptions", "0005_pricing"),
    ]

    operations = [
        *[
            migrations.AddField(
                model_name="charge",
                name=name,
                field=models.DecimalField(
                    decimal_places=2, max_digits=digits, null=True, verbose_name=label
                ),
            )
            for name, label, digits in MONEY_FIELDS
        ],
        migrations.AddField(
            model_name="charge",
            name="price_source",
            field=models.CharField(
                choices=[
                    ("special_price", "Special customer price"),
                    ("price_rule", "Price book"),
                    ("list_price", "List price"),
                    ("period_price", "Price kept for the period"),
                ],
                default="list_price",
                max_length=16,
                verbose_name="price source",
            ),
            preserve_default=False,
        ),
        migrations.RunPython(fill_history, migrations.RunPython.noop),
        *[
            migrations.AlterField(
                model_name="charge",
                name=name,
                field=models.DecimalField(decimal_places=2, max_digits=digits, verbose_name=label),
            )
            for name, label, digits in MONEY_FIELDS
        ],
        migrations.AddField(
            model_name="charge",
            name="tier",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="subscriptions.tier",
                verbose_name="tier",
            ),
        ),
        migrations.AddField(
            model_name="charge",
            name="tier_discount",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="subscriptions.tierdiscount",
                verbose_name="tier discount",
            ),
        ),
        migrations.AddField(
            model_name="charge",
            name="reseller_discount",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="subscriptions.resellerdiscount",
                verbose_name="reseller discount",
            ),
        ),
        migrations.AddField(
            model_name="charge",
            name="price_rule",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="subscriptions.pricerule",
                verbose_name="price book entry",
            ),
        ),
        migrations.AddField(
            model_name="charge",
            name="customer_price",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="subscriptions.customerprice",
                verbose_name="special customer price",
            ),
        ),
        migrations.AddConstraint(
            model_name="charge",
            constraint=models.CheckConstraint(
                condition=models.Q(cost_amount__gte=0, unit_cost__gte=0, monthly_cost__gte=0),
                name="charge_cost_not_negative",
            ),
        ),
        migrations.AddConstraint(
            model_name="charge",
            constraint=models.CheckConstraint(
                condition=models.Q(margin_amount=models.F("amount") - models.F("cost_amount"))
                & models.Q(unit_margin=models.F("unit_price") - models.F("unit_cost")),
                name="charge_margin_is_amount_less_cost",
            ),
        ),
        migrations.CreateModel(
            name="PriceNotice",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "old_monthly_price",
                    models.DecimalField(
                        decimal_places=2,
                        max_digits=10,
                        verbose_name="price per licence per month until then",
                    ),
                ),
                (
                    "new_monthly_price",
                    models.DecimalField(
                        decimal_places=2,
                        max_digits=10,
                        verbose_name="new price per licence per month",
                    ),
                ),
                (
                    "currency",
                    models.CharField(
                        choices=[("EUR", "EUR"), ("USD", "USD"), ("GBP", "GBP")],
                        max_length=3,
                        verbose_name="currency",
                    ),
                ),
                ("applies_from", models.DateField(verbose_name="applies from")),
                ("sent_at", models.DateTimeField(verbose_name="sent")),
                (
                    "subscription",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="price_notices",
                        to="subscriptions.subscription",
                        verbose_name="subscription",
                    ),
                ),
            ],
            options={
                "verbose_name": "price increase notice",
                "verbose_name_plural": "price increase notices",
                "ordering": ["-sent_at", "-id"],
                "indexes": [
                    models.Index(
                        fields=["subscription", "applies_from"],
                        name="subscriptio_subscri_96694c_idx",
                    )
                ],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(
                            ("new_monthly_price__gt", models.F("old_monthly_price")),
                            ("old_monthly_price__gte", 0),
                        ),
                        name="pricenotice_is_an_increase",
                    ),
                    models.UniqueConstraint(
                        fields=("subscription", "applies_from", "new_monthly_price"),
                        name="pricenotice_once",
                    ),
                ],
            },
        ),
    ]
