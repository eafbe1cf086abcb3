"""The monthly commission statement run for 1,000 resellers, on PostgreSQL, against its floor.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/partner_portal_bench_statements \\
        .venv/bin/python -m benchmarks.statements_run       # or: make bench-statements
    .venv/bin/python -m benchmarks.statements_run --smoke   # CI: 12 resellers, correctness only

Creates the database if it is missing and migrates it (so the VAT rates and the immutability
triggers are the real ones). Empties it (it refuses a database holding resellers it did not
make), then loads `--resellers` resellers, a third each domestic (IE), in another member state
with a VAT id (DE: reverse charge) and outside the EU (US), each with `--customers` customers
whose one invoice was paid in May 2026 (its charge's margin snapshotted), and one more customer
whose May invoice is still open (it earns nothing yet); bulk inserts. Two more resellers have an
invoice paid in April: `statements_issue(month=April)` for them, not timed, warms the run up.

Then, timed: the floor, `commissions.statements.statements_issue(month=May 2026)`, the floor
again. The floor is the run's work with Django left out: the candidates read once, then for each
reseller, in one transaction through psycopg directly, its paid invoices with their margins, its
credit notes (none here), the reseller, the VAT rate (domestic only), the number (UPDATE ...
RETURNING on a counter row), the statement, its lines (one INSERT ... unnest) and the audit row:
the same rows, with no Factur-X check, no full_clean, no savepoint. Its statements go in a series
of their own (FLR-YYYY-NNNNNN), dated to months of 2025 (one per pass), so that the run's month
and series hold only the run's. The yardstick is the mean of the two floors' time per statement
(the two are printed: far apart, the machine's load moved during the run). The PDF render queued
after commit is switched off: the workers' time is not the run's.

Then the checks, which make the script exit non-zero when the run is wrong: one statement per
reseller that earned something, none for the others; SB numbers gapless from SB-YYYY-000001 (the
warm-up's then the run's), the counter at the last one; each statement's lines exactly the
invoices its customers paid in May, each line's margin its charge's; its subtotal the sum of the
margins, its VAT the rate (by the reseller's situation: domestic 23 %, reverse charge or outside
the EU 0 %) on it by the one rounding rule, its total subtotal + VAT; one "statement.issued"
audit row each; a second run issues nothing; the floor's statements equal the run's, reseller by
reseller (subtotal, VAT, total, lines), so the yardstick wrote what the run wrote.

Targets (the full run only; `--smoke` checks correctness and prints the figures without holding
them to a target): at least 20 statements per second, and per statement at most 8x the floor.
"""

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
os.environ.setdefault(
    "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/partner_portal_bench_statements"
)

RATE_TARGET = 20.0  # statements per second, at least
FLOOR_TARGET = 8.0  # per statement, the run against the floor, at most
SMOKE_RESELLERS = 12
APRIL, MAY = date(2026, 4, 1), date(2026, 5, 1)
WARM_UP_RESELLERS = 2  # paid in April: their statements warm the run up
BENCH_DOMAIN = "statements-bench.example"
# (country, VAT id, expected treatment, rate): domestic, reverse charge, outside the EU.
RESELLERS = [
    ("IE", "", "domestic", Decimal("23.00")),
    ("DE", "DE136695976", "reverse_charge", Decimal("0.00")),
    ("US", "", "outside_eu", Decimal("0.00")),
]
FLOOR_SERIES = "FLR"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resellers", type=int, default=1_000)
    parser.add_argument("--customers", type=int, default=3, help="paid invoices per reseller")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help=f"{SMOKE_RESELLERS} resellers: correctness, no targets",
    )
    args = parser.parse_args()
    if args.smoke:
        args.resellers = SMOKE_RESELLERS

    started = time.perf_counter()
    setup()
    print(header())
    print(
        f"database ready (created and migrated if needed) in {time.perf_counter() - started:.1f} s"
    )
    started = time.perf_counter()
    load(args.resellers, args.customers)
    loaded = time.perf_counter() - started
    result = measure(args.resellers, args.customers)
    result.seconds_to_load = loaded
    return report(result, smoke=args.smoke)


def setup() -> None:
    """Create and migrate the database, set Django up, switch the PDF render off."""
    from benchmarks.customer_list import database_ensure

    database_ensure(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor != "postgresql":
        raise SystemExit("This benchmark needs PostgreSQL (DATABASE_URL).")
    call_command("migrate", verbosity=0)
    from commissions import statements

    # Only the run is timed: the PDF render after commit is queued work.
    statements.task_enqueue_on_commit = lambda *args, **kwargs: None


def header() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
    name = urlsplit(os.environ["DATABASE_URL"]).path.lstrip("/")
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    return (
        f"PostgreSQL {version} (database {name}); Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs; load average {load}\n"
    )


def load(resellers: int, customers: int) -> None:
    """Empty the database's resellers, customers and documents, then load `resellers` resellers
    (and the warm-up's), each with `customers` invoices paid in May and one open."""
    from django.conf import settings
    from django.db import connection, transaction

    from billing.models import Invoice, InvoiceLine
    from customers.models import Customer
    from resellers.models import Reseller
    from subscriptions.models import Charge, Plan, Product, Subscription

    if Reseller.objects.exclude(billing_email__endswith=f"@{BENCH_DOMAIN}").exists():
        raise SystemExit(
            "DATABASE_URL holds resellers the benchmark did not make: point it at a database of "
            "its own (it empties the reseller, customer, invoice and statement tables)."
        )
    with connection.cursor() as cursor:
        # TRUNCATE, not DELETE: the triggers refuse to delete issued documents, row by row.
        cursor.execute(
            "TRUNCATE resellers_reseller, customers_customer, billing_invoice,"
            " commissions_statement, billing_documentcounter, resellers_auditevent CASCADE"
        )
    product, _ = Product.objects.get_or_create(sku="bench-statements", defaults={"name": "Bench"})
    plan, _ = Plan.objects.get_or_create(product=product, kind=Plan.Kind.FLEXIBLE)
    seller_snapshot = {
        "name": settings.VENDOR_NAME,
        "address": settings.VENDOR_ADDRESS,
        "country": settings.VENDOR_COUNTRY,
        "vat_id": settings.VENDOR_VAT_ID,
        "email": settings.VENDOR_EMAIL,
    }
    # (reseller index, customer index, month issued, paid at or None)
    total = resellers + WARM_UP_RESELLERS
    documents: list[tuple[int, int, date, datetime | None]] = [
        (r, c, MAY, datetime(2026, 5, 2 + c % 27, 10, tzinfo=UTC))
        for r in range(resellers)
        for c in range(customers)
    ]
    documents += [(r, customers, MAY, None) for r in range(resellers)]  # open: earns nothing
    documents += [
        (r, 0, APRIL, datetime(2026, 4, 15, 10, tzinfo=UTC)) for r in range(resellers, total)
    ]
    with transaction.atomic():
        sellers = Reseller.objects.bulk_create(
            Reseller(
                name=f"Bench Reseller {n}",
                country=RESELLERS[n % 3][0],
                vat_id=RESELLERS[n % 3][1],
                billing_email=f"billing{n}@{BENCH_DOMAIN}",
                status="active",
            )
            for n in range(total)
        )
        buyers = Customer.objects.bulk_create(
            (
                Customer(
                    reseller=sellers[r],
                    organisation=f"Bench Customer {r}-{c}",
                    domain=f"bench{r}-{c}.example",
                    contact_name="Pat",
                    contact_email=f"pat@bench{r}-{c}.example",
                    country="IE",
                    status=Customer.Status.ACTIVE,
                )
                for r, c, _month, _paid in documents
            ),
            batch_size=2000,
        )
        subscriptions = Subscription.objects.bulk_create(
            (
                Subscription(
                    customer=customer,
                    product=product,
                    plan=plan,
                    currency="EUR",
                    licences=1 + n % 20,
                    status=Subscription.Status.ACTIVE,
                    payer="reseller_card",
                    anchor_day=1,
                    anchor_month=month.month,
                    monthly_price=Decimal("4.00"),
                    period_start=month,
                    period_end=date(2026, month.month + 1, 1),
                )
                for n, (customer, (_r, _c, month, _paid)) in enumerate(
                    zip(buyers, documents, strict=True)
                )
            ),
            batch_size=2000,
        )
        charges = Charge.objects.bulk_create(
            (
                Charge(
                    subscription=s,
                    customer=s.customer,
                    kind=Charge.Kind.PERIOD,
                    description=f"{s.licences} licences",
                    payer="reseller_card",
                    period_start=s.period_start,
                    period_end=s.period_end,
                    licences=s.licences,
                    unit_price=Decimal("4.00"),
                    amount=Decimal("4.00") * s.licences,
                    currency="EUR",
                    # The list price, a 20 % discount: the margin the statements pay.
                    list_unit_price=Decimal("4.00"),
                    unit_cost=Decimal("3.20"),
                    unit_margin=Decimal("0.80"),
                    cost_amount=Decimal("3.20") * s.licences,
                    margin_amount=Decimal("0.80") * s.licences,
                    monthly_list_price=Decimal("4.00"),
                    monthly_price=Decimal("4.00"),
                    monthly_cost=Decimal("3.20"),
                    price_source="list_price",
                    invoiced_at=datetime.combine(s.period_start, datetime.min.time(), UTC),
                )
                for s in subscriptions
            ),
            batch_size=2000,
        )
        invoices = Invoice.objects.bulk_create(
            (
                Invoice(
                    number=f"INV-2026-{n + 1:06d}",
                    customer_id=charge.customer_id,
                    reseller_id=charge.customer.reseller_id,
                    payer="reseller_card",
                    currency="EUR",
                    language="en",
                    issue_date=month,
                    due_date=month.replace(day=15),
                    seller=seller_snapshot,
                    buyer={"organisation": charge.customer.organisation, "country": "IE"},
                    vat_treatment="domestic",
                    vat_rate=Decimal("23.00"),
                    subtotal=charge.amount,
                    vat_amount=(charge.amount * Decimal("0.23")).quantize(Decimal("0.01")),
                    total=charge.amount
                    + (charge.amount * Decimal("0.23")).quantize(Decimal("0.01")),
                    status="paid" if paid else "open",
                    paid_at=paid,
                    line_count=1,
                )
                for n, (charge, (_r, _c, month, paid)) in enumerate(
                    zip(charges, documents, strict=True)
                )
            ),
            batch_size=2000,
        )
        InvoiceLine.objects.bulk_create(
            (
                InvoiceLine(
                    invoice=invoice,
                    position=1,
                    charge=charge,
                    subscription_id=charge.subscription_id,
                    description=charge.description,
                    period_start=charge.period_start,
                    period_end=charge.period_end,
                    licences=charge.licences,
                    unit_price=charge.unit_price,
                    amount=charge.amount,
                )
                for invoice, charge in zip(invoices, charges, strict=True)
            ),
            batch_size=2000,
        )
    with connection.cursor() as cursor:
        for table in (
            "resellers_reseller",
            "customers_customer",
            "billing_invoice",
            "billing_invoiceline",
            "subscriptions_charge",
        ):
            cursor.execute(f"VACUUM ANALYZE {table}")


@dataclass
class Timing:
    """One pass: wall and CPU seconds (this process's: Python and psycopg, not PostgreSQL's),
    statements issued, and SQL statements sent besides BEGIN and COMMIT."""

    seconds: float = 0.0
    cpu_seconds: float = 0.0
    issued: int = 0
    sent: int = 0

    @property
    def ms(self) -> float:
        return 1000 * self.seconds / max(self.issued, 1)

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu_seconds / max(self.issued, 1)

    @property
    def per_second(self) -> float:
        return self.issued / self.seconds if self.seconds else 0.0

    @property
    def sent_per_statement(self) -> float:
        return self.sent / max(self.issued, 1)


@dataclass
class Result:
    resellers: int
    customers: int
    timings: dict[str, Timing]
    seconds_to_load: float = 0.0
    load_average: tuple[float, float] = (0.0, 0.0)
    problems: list[str] = field(default_factory=list)

    @property
    def floor_ms(self) -> float:
        floors = [t.ms for name, t in self.timings.items() if name.startswith("floor")]
        return sum(floors) / len(floors)


def timed(timing: Timing, work: Callable[[], int]) -> None:
    """Run `work` (it returns how many statements it issued), recording its wall and CPU time."""
    started, cpu = time.perf_counter(), time.process_time()
    timing.issued = work()
    timing.seconds = time.perf_counter() - started
    timing.cpu_seconds = time.process_time() - cpu


def measure(resellers: int, customers: int) -> Result:
    """The warm-up (April), then floor, run, floor for May, timed; then the checks."""
    import psycopg
    from django.db import connection

    from commissions import statements

    result = Result(
        resellers,
        customers,
        {"floor before": Timing(), "run": Timing(), "floor after": Timing()},
    )
    floor = Floor(psycopg.connect(os.environ["DATABASE_URL"]))
    # Not timed: the run's first statements (the counter row, the Factur-X schema loaded) and
    # the floor's (its statements prepared after their fifth use).
    warm_up = statements.statements_issue(month=APRIL)
    floor.issue(month=APRIL, label=date(2025, 1, 1))
    result.load_average = (os.getloadavg()[0], 0.0)

    before = result.timings["floor before"]
    timed(before, lambda: floor.issue(month=MAY, label=date(2025, 2, 1)))
    before.sent = floor.sent

    sent = [0]

    def counting(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        sent[0] += 1
        return execute(sql, params, many, context)

    run = result.timings["run"]
    with connection.execute_wrapper(counting):
        timed(run, lambda: len(statements.statements_issue(month=MAY)))
    run.sent = sent[0]

    after = result.timings["floor after"]
    timed(after, lambda: floor.issue(month=MAY, label=date(2025, 3, 1)))
    after.sent = floor.sent
    result.load_average = (result.load_average[0], os.getloadavg()[0])

    if statements.statements_issue(month=MAY):
        result.problems.append("a second run issued statements")
    if len(warm_up) != WARM_UP_RESELLERS:
        result.problems.append(f"the warm-up issued {len(warm_up)} statements")
    result.problems += statements_check(resellers, customers)
    result.problems += floor_check()
    for problem in result.problems:
        print(f"!! {resellers:,} resellers: the run is wrong: {problem}", file=sys.stderr)
    return result


class Floor:
    """The run's work for each reseller, in one transaction, through psycopg directly: what a
    statement costs the database and the round trips, with Django left out. It writes the same
    rows (checked against the run's) but checks nothing the database does not: no Factur-X
    check, no full_clean; the benchmark's VAT ids are valid and it has no credit notes."""

    def __init__(self, conn: Any) -> None:
        from django.conf import settings

        from billing.models import DocumentCounter, Invoice, InvoiceLine, VatRate
        from commissions.models import Statement, StatementLine
        from customers.models import Customer
        from resellers.models import AuditEvent, Reseller
        from subscriptions.models import Charge

        self.conn = conn
        self.sent = 0
        self.vendor_country = settings.VENDOR_COUNTRY
        self.buyer = json.dumps(
            {
                "name": settings.VENDOR_NAME,
                "address": settings.VENDOR_ADDRESS,
                "country": settings.VENDOR_COUNTRY,
                "vat_id": settings.VENDOR_VAT_ID,
                "email": settings.VENDOR_EMAIL,
            }
        )
        tables = {
            "invoice": Invoice._meta.db_table,
            "line": InvoiceLine._meta.db_table,
            "charge": Charge._meta.db_table,
            "customer": Customer._meta.db_table,
            "reseller": Reseller._meta.db_table,
            "rate": VatRate._meta.db_table,
            "counter": DocumentCounter._meta.db_table,
            "statement": Statement._meta.db_table,
            "statementline": StatementLine._meta.db_table,
            "audit": AuditEvent._meta.db_table,
        }
        sql = {
            "candidates": (
                "SELECT DISTINCT reseller_id, currency FROM {invoice} WHERE issue_date < %s "
                "ORDER BY 1, 2"
            ),
            "invoices": (
                "SELECT i.id, i.number, c.organisation, i.issue_date, i.subtotal, "
                "COALESCE(SUM(ch.margin_amount), 0) FROM {invoice} i "
                "JOIN {customer} c ON c.id = i.customer_id "
                "LEFT JOIN {line} l ON l.invoice_id = i.id "
                "LEFT JOIN {charge} ch ON ch.id = l.charge_id "
                "WHERE i.reseller_id = %s AND i.currency = %s AND i.kind = 'invoice' "
                "AND i.paid_at >= %s AND i.paid_at < %s "
                "GROUP BY i.id, c.organisation ORDER BY i.issue_date, i.number"
            ),
            "notes": (
                "SELECT n.id FROM {invoice} n JOIN {invoice} i ON i.id = n.corrects_id "
                "WHERE n.reseller_id = %s AND n.currency = %s AND n.kind = 'credit_note' "
                "AND (n.issue_date >= %s OR i.paid_at >= %s) AND n.issue_date < %s "
                "AND i.paid_at < %s"
            ),
            "reseller": (
                "SELECT name, country, vat_id, billing_email, language FROM {reseller} "
                "WHERE id = %s"
            ),
            "rate": (
                "SELECT rate FROM {rate} WHERE country = %s AND valid_from <= %s "
                "ORDER BY valid_from DESC LIMIT 1"
            ),
            "counter": (
                "INSERT INTO {counter} (series, year, last_number) VALUES (%s, %s, 0) "
                "ON CONFLICT DO NOTHING"
            ),
            "number": (
                "UPDATE {counter} SET last_number = last_number + 1 "
                "WHERE series = %s AND year = %s RETURNING last_number"
            ),
            "statement": (
                "INSERT INTO {statement} (public_id, kind, number, reseller_id, currency, "
                "language, period_start, period_end, issue_date, seller, buyer, vat_treatment, "
                "vat_rate, subtotal, vat_amount, total, issued_at, line_count, pdf, pdf_sha256) "
                "VALUES (%s, 'statement', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
                "%s, now(), %s, '', '') RETURNING id"
            ),
            "lines": (
                "INSERT INTO {statementline} (statement_id, position, invoice_id, "
                "invoice_number, customer_name, invoice_date, net, margin) "
                "SELECT %s, * FROM unnest(%s::integer[], %s::bigint[], %s::text[], %s::text[], "
                "%s::date[], %s::numeric[], %s::numeric[])"
            ),
            "audit": (
                "INSERT INTO {audit} (actor_email, reseller_id, customer_public_id, action, "
                "object_type, object_id, object_repr, after, created_at) VALUES ('', %s, '', "
                "'statement.issued', 'commissions.statement', %s, %s, %s, now())"
            ),
        }
        self.sql = {name: text.format(**tables) for name, text in sql.items()}

    def execute(self, cursor: Any, name: str, params: list[Any]) -> Any:
        self.sent += 1
        return cursor.execute(self.sql[name], params)

    def issue(self, *, month: date, label: date) -> int:
        """Issue a statement for every reseller that earned something in `month`, each dated
        to the month of `label`; returns how many. `sent` counts the SQL statements."""
        from django.utils import timezone

        from billing.vat import vat_amount
        from commissions.statements import month_bounds
        from core.ids import new_public_id
        from resellers.validators import EU_COUNTRIES

        start, end = month_bounds(month)
        period = month_bounds(label)
        day = timezone.localdate()
        tz = timezone.get_default_timezone()
        start_at = datetime.combine(start, datetime.min.time(), tz)
        end_at = datetime.combine(end, datetime.min.time(), tz)
        self.sent = 0
        issued = 0
        with self.conn.cursor() as cursor:
            # The year's counter row of the floor's series (the run's first number makes its own).
            self.execute(cursor, "counter", [FLOOR_SERIES, day.year])
            self.conn.commit()
            candidates = self.execute(cursor, "candidates", [end]).fetchall()
            self.conn.commit()
            for reseller_id, currency in candidates:
                rows = self.execute(
                    cursor, "invoices", [reseller_id, currency, start_at, end_at]
                ).fetchall()
                notes = self.execute(
                    cursor, "notes", [reseller_id, currency, start, start_at, end, end_at]
                ).fetchall()
                if notes:
                    raise SystemExit("the floor does not take credit notes back")
                if not rows:
                    self.conn.rollback()
                    continue
                name, country, vat_id, email, language = self.execute(
                    cursor, "reseller", [reseller_id]
                ).fetchone()
                if country == self.vendor_country or (country in EU_COUNTRIES and not vat_id):
                    treatment = "domestic"
                    rate = self.execute(cursor, "rate", [self.vendor_country, day]).fetchone()[0]
                else:
                    treatment = "reverse_charge" if country in EU_COUNTRIES else "outside_eu"
                    rate = Decimal("0.00")
                subtotal = sum((row[5] for row in rows), Decimal("0.00"))
                vat = vat_amount(subtotal=subtotal, rate=rate)
                seller = {
                    "name": name,
                    "address": "",
                    "country": country,
                    "vat_id": vat_id,
                    "email": email,
                }
                last = self.execute(cursor, "number", [FLOOR_SERIES, day.year]).fetchone()[0]
                number = f"{FLOOR_SERIES}-{day.year}-{last:06d}"
                statement_id = self.execute(
                    cursor,
                    "statement",
                    [
                        new_public_id(),
                        number,
                        reseller_id,
                        currency,
                        language,
                        period[0],
                        period[1],
                        day,
                        json.dumps(seller),
                        self.buyer,
                        treatment,
                        rate,
                        subtotal,
                        vat,
                        subtotal + vat,
                        len(rows),
                    ],
                ).fetchone()[0]
                # The lines' columns: invoice, number, customer, date, net, margin.
                columns = [list(column) for column in zip(*rows, strict=True)]
                positions = list(range(1, len(rows) + 1))
                self.execute(cursor, "lines", [statement_id, positions, *columns])
                after = {"number": number, "total": str(subtotal + vat), "currency": currency}
                self.execute(
                    cursor, "audit", [reseller_id, statement_id, number, json.dumps(after)]
                )
                self.conn.commit()
                issued += 1
        return issued


def statements_check(resellers: int, customers: int) -> list[str]:
    """The run's statements, May's and the warm-up's, against the loaded data."""
    from django.db.models import Count, Sum

    from billing.models import DocumentCounter, InvoiceLine
    from billing.vat import vat_amount
    from commissions.models import Statement, StatementLine
    from resellers.models import AuditEvent

    problems = []
    run = Statement.objects.filter(number__startswith="SB-")
    numbers = sorted(run.values_list("number", flat=True))
    year = int(numbers[0].split("-")[1]) if numbers else 0
    expected = resellers + WARM_UP_RESELLERS
    if len(numbers) != expected:
        problems.append(f"{len(numbers)} statements for {expected} resellers that earned")
    if numbers != [f"SB-{year}-{n:06d}" for n in range(1, len(numbers) + 1)]:
        problems.append("the SB numbers are not gapless from 000001")
    counter = DocumentCounter.objects.filter(series="SB", year=year).first()
    if counter is None or counter.last_number != len(numbers):
        problems.append(f"the SB counter is not at the last number ({len(numbers)})")
    if run.values("reseller_id", "currency", "period_start").distinct().count() != len(numbers):
        problems.append("a reseller has two statements for a month")
    if run.filter(period_start=MAY).count() != resellers:
        problems.append("not one May statement per reseller that earned in May")
    # What each statement should hold: the invoices paid in its month, by reseller.
    paid: dict[tuple[int, date], dict[int, Decimal]] = {}
    rows = InvoiceLine.objects.filter(invoice__paid_at__isnull=False).values_list(
        "invoice__reseller_id", "invoice__issue_date", "invoice_id", "charge__margin_amount"
    )
    for reseller_id, issued_on, invoice_id, margin in rows:
        paid.setdefault((reseller_id, issued_on.replace(day=1)), {})[invoice_id] = margin
    lines: dict[int, dict[int, Decimal]] = {}
    for statement_id, invoice_id, margin in StatementLine.objects.filter(
        statement__in=run
    ).values_list("statement_id", "invoice_id", "margin"):
        lines.setdefault(statement_id, {})[invoice_id] = margin
    situation = {(country, vat_id): (t, r) for country, vat_id, t, r in RESELLERS}
    for s in run.select_related("reseller").annotate(n=Count("lines"), m=Sum("lines__margin")):
        if lines.get(s.pk) != paid.get((s.reseller_id, s.period_start)):
            problems.append(f"{s.number}: its lines are not the invoices paid in the month")
        treatment, rate = situation[(str(s.reseller.country), s.reseller.vat_id)]
        if (s.vat_treatment, s.vat_rate) != (treatment, rate):
            problems.append(f"{s.number}: VAT {s.vat_treatment} {s.vat_rate} %")
        if not (
            s.subtotal == s.m
            and s.n == s.line_count
            and s.vat_amount == vat_amount(subtotal=s.subtotal, rate=s.vat_rate)
            and s.total == s.subtotal + s.vat_amount
        ):
            problems.append(f"{s.number}: total is not the margins + VAT")
        if len(problems) > 20:
            break
    audited = AuditEvent.objects.filter(action="statement.issued", object_repr__startswith="SB-")
    if sorted(audited.values_list("object_repr", flat=True)) != numbers:
        problems.append("not one statement.issued audit row per statement")
    return problems


def floor_check() -> list[str]:
    """Each floor pass wrote, for each reseller, what the run wrote for May."""
    from commissions.models import Statement, StatementLine

    def written(**scope: Any) -> dict[int, tuple[Any, ...]]:
        statements = Statement.objects.filter(**scope)
        lines: dict[int, list[tuple[Any, ...]]] = {}
        for row in (
            StatementLine.objects.filter(statement__in=statements)
            .order_by("statement_id", "position")
            .values_list("statement__reseller_id", "invoice_id", "net", "margin")
        ):
            lines.setdefault(row[0], []).append(row[1:])
        return {
            reseller_id: (treatment, subtotal, vat, total, tuple(lines.get(reseller_id, ())))
            for reseller_id, treatment, subtotal, vat, total in statements.values_list(
                "reseller_id", "vat_treatment", "subtotal", "vat_amount", "total"
            )
        }

    run = written(number__startswith="SB-", period_start=MAY)
    problems = []
    for label in (date(2025, 2, 1), date(2025, 3, 1)):
        if written(number__startswith=f"{FLOOR_SERIES}-", period_start=label) != run:
            problems.append(f"the floor's statements dated {label:%Y-%m} are not the run's")
    return problems


def report(result: Result, *, smoke: bool) -> int:
    rows = [
        (
            "issued by",
            "statements",
            "seconds",
            "statements/s",
            "ms/statement",
            "x floor",
            "CPU ms/statement",
            "queries/statement",
        )
    ]
    for name, t in result.timings.items():
        rows.append(
            (
                name,
                f"{t.issued:,}",
                f"{t.seconds:.2f}",
                f"{t.per_second:.0f}",
                f"{t.ms:.2f}",
                f"{t.ms / result.floor_ms:.2f}",
                f"{t.cpu_ms:.2f}",
                f"{t.sent_per_statement:.2f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print(
        f"{result.resellers:,} resellers x {result.customers} paid invoices (and one open), "
        f"loaded in {result.seconds_to_load:.1f} s; load average "
        f"{result.load_average[0]:.2f} -> {result.load_average[1]:.2f}\n"
    )
    for row in rows:
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))
    run = result.timings["run"]
    ratio = run.ms / result.floor_ms
    verdict = "not held to it (smoke)" if smoke else None
    print(
        f"\nthe run: {run.per_second:.1f} statements/s (target >= {RATE_TARGET:.0f}): "
        f"{verdict or ('met' if run.per_second >= RATE_TARGET else 'MISSED')}."
    )
    print(
        f"per statement, the run against the floor (the two floors' mean): {ratio:.2f}x "
        f"(target <= {FLOOR_TARGET}x): "
        f"{verdict or ('met' if ratio <= FLOOR_TARGET else 'MISSED')}."
    )
    if result.problems:
        return 1
    if smoke:
        print("smoke: the run is right.")
        return 0
    return 0 if run.per_second >= RATE_TARGET and ratio <= FLOOR_TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
