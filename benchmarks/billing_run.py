"""The daily billing run at 1,000 and 10,000 subscriptions, on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/partner_portal_bench_billing \\
        .venv/bin/python -m benchmarks.billing_run          # or: make bench-billing

Creates the database if it is missing and migrates it (so the VAT rates and the immutability
triggers are the real ones). For each size it empties the benchmark's tables, loads that many
subscriptions, each with one charge not invoiced yet (bulk inserts), and times
`billing.services.billing_run` for today: one transaction per invoice, each locking its
charges and the number counter, writing the invoice, its lines and an audit row, and marking
the charges invoiced. The after-commit hooks (PDF, payment) are switched off: they only queue
tasks, and the workers' time is not the run's. Then it times the same run again, which must
issue nothing.

The subscriptions: 3 in 4 customers hold one, the others two (two products); one in three is
paid with the customer's card, so some customers get two invoices; buyers in six countries
cover every VAT treatment. Reports seconds, invoices per second and milliseconds per invoice,
and the ratio of the two sizes' times. The target: 10,000 subscriptions take at most 11x as
long as 1,000 (linear). Exits non-zero when it is missed or the run is wrong.
"""

import argparse
import os
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlsplit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
os.environ.setdefault(
    "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/partner_portal_bench_billing"
)

TARGET_RATIO = 11.0
BENCHMARK_RESELLER_EMAIL = "billing@billing-benchmark.example"
# (country, VAT id): domestic, reverse charge, EU consumers, outside the EU.
BUYERS = [
    ("IE", ""),
    ("ES", "ESB70000005"),
    ("ES", ""),
    ("DE", ""),
    ("FR", ""),
    ("GB", ""),
    ("US", ""),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", type=int, nargs=2, default=[1_000, 10_000], help="subscriptions, small large"
    )
    args = parser.parse_args()

    from benchmarks.customer_list import database_ensure

    database_ensure(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor != "postgresql":
        print("This benchmark needs PostgreSQL (DATABASE_URL).", file=sys.stderr)
        return 2
    call_command("migrate", verbosity=0)
    from billing import services

    # Only the run is timed: the PDF and the card charge after commit are queued work.
    from billing.payments import services as payment_services

    services.invoice_pdf_enqueue = lambda invoice: None
    payment_services.invoice_charge_enqueue = lambda invoice: None

    print(header())
    results = [measure(size) for size in args.sizes]
    return report(results)


@dataclass
class Result:
    subscriptions: int
    customers: int
    charges: int
    invoices: int
    seconds_to_load: float
    seconds: float
    seconds_again: float
    ok: bool


def measure(size: int) -> Result:
    from django.db.models import F
    from django.utils import timezone

    from billing import selectors, services
    from billing.models import Invoice, InvoiceLine
    from subscriptions.models import Charge

    started = time.perf_counter()
    customers = load(size)
    loaded = time.perf_counter() - started
    expected = len(selectors.billing_due(day=timezone.localdate()))

    started = time.perf_counter()
    issued = services.billing_run(day=timezone.localdate())
    seconds = time.perf_counter() - started
    started = time.perf_counter()
    again = services.billing_run(day=timezone.localdate())
    seconds_again = time.perf_counter() - started

    charges = Charge.objects.count()
    # One invoice per customer per day: a customer whose subscriptions two payers pay keeps
    # the other payer's charges for the next day's run, and only those.
    today = timezone.localdate()
    waiting = Charge.objects.filter(invoiced_at__isnull=True)
    ok = (
        len(issued) == expected == Invoice.objects.count()
        and not again
        and not waiting.exclude(customer__invoices__issue_date=today).exists()
        and not waiting.filter(
            customer__invoices__issue_date=today, customer__invoices__payer=F("payer")
        ).exists()
        and InvoiceLine.objects.count() == charges - waiting.count()
    )
    if not ok:
        print(f"!! {size:,} subscriptions: the run is wrong", file=sys.stderr)
    return Result(size, customers, charges, len(issued), loaded, seconds, seconds_again, ok)


def load(size: int) -> int:
    """Empty the benchmark's tables, then load `size` subscriptions with one charge each.
    Returns the number of customers."""
    from django.db import connection, transaction
    from django.utils import timezone

    from customers.models import Customer
    from resellers.models import Reseller
    from subscriptions.models import Charge, Plan, PlanPrice, Product, Subscription

    domain = BENCHMARK_RESELLER_EMAIL.partition("@")[2]
    if Customer.objects.exclude(reseller__billing_email__endswith=domain).exists():
        raise SystemExit(
            "DATABASE_URL holds customers of resellers the benchmark did not make: point it at "
            "a database of its own (it empties the customer, invoice and audit tables)."
        )
    with connection.cursor() as cursor:
        # TRUNCATE, not DELETE: the triggers refuse to delete issued invoices, row by row.
        cursor.execute(
            "TRUNCATE customers_customer, resellers_auditevent, billing_documentcounter CASCADE"
        )
    reseller, _ = Reseller.objects.get_or_create(
        billing_email=BENCHMARK_RESELLER_EMAIL,
        defaults={"name": "Billing Benchmark", "country": "IE", "status": "active"},
    )
    products = []
    for sku in ("bench-contacts", "bench-calendar"):
        product, _ = Product.objects.get_or_create(sku=sku, defaults={"name": sku})
        plan, _ = Plan.objects.get_or_create(product=product, kind=Plan.Kind.FLEXIBLE)
        PlanPrice.objects.get_or_create(
            plan=plan, currency="EUR", defaults={"monthly_price": Decimal("4.00")}
        )
        products.append((product, plan))

    today = timezone.localdate()
    second = size // 5  # customers that hold a second subscription
    customer_count = size - second
    with transaction.atomic():
        customers = Customer.objects.bulk_create(
            (
                Customer(
                    reseller=reseller,
                    organisation=f"Benchmark Customer {n}",
                    domain=f"bench{n}.example",
                    contact_name="Pat Example",
                    contact_email=f"pat@bench{n}.example",
                    country=BUYERS[n % len(BUYERS)][0],
                    vat_id=BUYERS[n % len(BUYERS)][1],
                    admin_address=f"{n} Example Street",
                    status=Customer.Status.ACTIVE,
                )
                for n in range(customer_count)
            ),
            batch_size=2000,
        )
        holdings = [(customer, 0) for customer in customers] + [
            (customer, 1) for customer in customers[:second]
        ]
        subscriptions = Subscription.objects.bulk_create(
            (
                Subscription(
                    customer=customer,
                    product=products[which][0],
                    plan=products[which][1],
                    currency="EUR",
                    licences=1 + n % 50,
                    status=Subscription.Status.ACTIVE,
                    payer="customer_card" if n % 3 == 2 else "reseller_card",
                    anchor_day=today.day,
                    anchor_month=today.month,
                    monthly_price=Decimal("4.00"),
                    period_start=today,
                    period_end=today + timedelta(days=30),
                )
                for n, (customer, which) in enumerate(holdings)
            ),
            batch_size=2000,
        )
        Charge.objects.bulk_create(
            (
                Charge(
                    subscription=subscription,
                    customer=subscription.customer,
                    kind=Charge.Kind.PERIOD,
                    description=f"Benchmark: {subscription.licences} licences",
                    payer=subscription.payer,
                    period_start=subscription.period_start,
                    period_end=subscription.period_end,
                    licences=subscription.licences,
                    unit_price=Decimal("4.00"),
                    amount=Decimal("4.00") * subscription.licences,
                    currency="EUR",
                )
                for subscription in subscriptions
            ),
            batch_size=2000,
        )
    with connection.cursor() as cursor:
        for table in ("customers_customer", "subscriptions_subscription", "subscriptions_charge"):
            cursor.execute(f"VACUUM ANALYZE {table}")
    return customer_count


def header() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
    name = urlsplit(os.environ["DATABASE_URL"]).path.lstrip("/")
    return (
        f"PostgreSQL {version} (database {name}); Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs\n"
    )


def report(results: list[Result]) -> int:
    rows = [
        (
            "subscriptions",
            "customers",
            "invoices",
            "load s",
            "run s",
            "invoices/s",
            "ms/invoice",
            "rerun s",
        )
    ]
    for r in results:
        rows.append(
            (
                f"{r.subscriptions:,}",
                f"{r.customers:,}",
                f"{r.invoices:,}",
                f"{r.seconds_to_load:.1f}",
                f"{r.seconds:.2f}",
                f"{r.invoices / r.seconds:.0f}",
                f"{1000 * r.seconds / r.invoices:.2f}",
                f"{r.seconds_again:.3f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))
    small, large = results[0], results[-1]
    ratio = large.seconds / small.seconds
    scale = large.subscriptions / small.subscriptions
    met = ratio <= TARGET_RATIO * scale / 10
    print(
        f"\n{large.subscriptions:,} vs {small.subscriptions:,} subscriptions: {ratio:.2f}x the "
        f"time (target <= {TARGET_RATIO * scale / 10:g}x): {'met' if met else 'MISSED'}."
    )
    return 0 if met and all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
