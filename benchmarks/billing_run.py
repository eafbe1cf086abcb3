"""The daily billing run at 1,000 and 10,000 subscriptions, on PostgreSQL, against its floor.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/partner_portal_bench_billing \\
        .venv/bin/python -m benchmarks.billing_run          # or: make bench-billing
    .venv/bin/python -m benchmarks.billing_run --smoke      # CI: tiny sizes, correctness only

Creates the database if it is missing and migrates it (so the VAT rates and the immutability
triggers are the real ones). For each size it empties the benchmark's tables and loads that many
subscriptions, each with one charge not invoiced yet (bulk inserts): 3 in 4 customers hold one,
the others two (two products); one in three is paid with the customer's card, so a customer
whose two subscriptions have two payers is due two invoices, one today and one tomorrow (one
invoice per customer per day); buyers in six countries cover every VAT treatment.

Then it issues the day's invoices (billing.selectors.billing_due) in chunks of customers, each
chunk either through `billing.services.invoice_issue_for_customer`, as `billing_run` does, or
through the floor: the same statements, in one transaction per invoice, sent through psycopg
directly (`floor_issue`), with as little Python as writing the same rows needs. The two
alternate chunk by chunk (and which goes first alternates), so a change in the machine's load
hits both alike; both take their numbers from the same counter row. The first chunk of each is
not timed: the run's is where its statements are counted, which must be as many as the floor's.
The after-commit hooks (PDF, payment) are switched off: they only queue tasks, and the workers'
time is not the run's.

Then the checks, which make the script exit non-zero when the run is wrong:
- the day: every (customer, payer, currency) due got its invoice of the day, with exactly its
  due charges, and the rest waits; `billing_run` again the same day issues nothing;
- the next day: `billing_run` for tomorrow issues exactly the waiting charges (one invoice per
  customer that had a second payer), then nothing again;
- every charge invoiced exactly once, on one line; the numbers gapless from INV-YYYY-000001,
  the counter at the last one; every invoice's lines, subtotal, VAT (the one rounding rule)
  and total reconcile; one "invoice.issued" audit row per invoice.

Reports milliseconds per invoice of the run and of the floor, their ratio (target: at most
1.5x), statements per invoice, and the ratio of the two sizes' per-invoice times (target: 10x
the subscriptions in at most 11x the time, i.e. per invoice at most 1.1x). `--smoke` (60 and
300 subscriptions) checks correctness and prints the ratios without holding them to a target.
"""

import argparse
import json
import os
import sys
import time as timer
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
os.environ.setdefault(
    "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/partner_portal_bench_billing"
)

LINEAR_TARGET = 1.1  # per invoice, the large size against the small one (10x in <= 11x)
FLOOR_TARGET = 1.5  # per invoice, the run against the floor
SMOKE_SIZES = [50, 250]
WARM_UP_CHUNKS = 2  # not timed
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
    parser.add_argument("--chunk", type=int, default=50, help="customers per timed chunk")
    parser.add_argument(
        "--smoke", action="store_true", help=f"sizes {SMOKE_SIZES}: correctness, no targets"
    )
    args = parser.parse_args()
    if args.smoke:
        args.sizes = SMOKE_SIZES

    setup()
    print(header())
    results = [measure(size, chunk=args.chunk) for size in args.sizes]
    return report(results, smoke=args.smoke)


def setup() -> None:
    """Create and migrate the database, set Django up, switch the after-commit hooks off."""
    from benchmarks.customer_list import database_ensure

    database_ensure(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor != "postgresql":
        raise SystemExit("This benchmark needs PostgreSQL (DATABASE_URL).")
    call_command("migrate", verbosity=0)
    from billing import services

    # Only the run is timed: the PDF and the card charge after commit are queued work.
    from billing.payments import services as payment_services

    services.invoice_pdf_enqueue = lambda invoice: None
    payment_services.invoice_charge_enqueue = lambda invoice: None


# An issuer issues the invoices of a list of groups; it returns, for each invoice it issued,
# its VAT treatment and the statements it sent (besides BEGIN and COMMIT).
Issued = list[tuple[str, int]]
Issuer = Callable[[list[tuple[int, str, str]]], Issued]


@dataclass
class Timing:
    """One issuer's timed chunks: wall and CPU seconds (this process's: Python and psycopg,
    not PostgreSQL's), invoices; and the statements of all its invoices, counted."""

    seconds: float = 0.0
    cpu_seconds: float = 0.0
    invoices: int = 0
    statements: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))

    @property
    def ms(self) -> float:
        return 1000 * self.seconds / self.invoices

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu_seconds / self.invoices

    @property
    def statements_per_invoice(self) -> float:
        total = sum(self.statements.values(), Counter[int]())
        return sum(n * k for n, k in total.items()) / max(total.total(), 1)


@dataclass
class Result:
    subscriptions: int
    customers: int
    invoices_today: int
    invoices_tomorrow: int
    seconds_to_load: float
    timings: dict[str, Timing]
    load_average: tuple[float, float] = (0.0, 0.0)
    problems: list[str] = field(default_factory=list)


def measure(size: int, *, chunk: int, more: dict[str, Issuer] | None = None) -> Result:
    """Load `size` subscriptions, issue the day's invoices by chunks, each chunk through one
    issuer in turn (the run, the floor, and `more`), then check the day and the next."""
    from django.utils import timezone

    from billing import selectors, services

    today = timezone.localdate()
    started = timer.perf_counter()
    customer_count = load(size)
    loaded = timer.perf_counter() - started
    due = selectors.billing_due(day=today)
    due_charges = charge_groups(today)

    issuers = issuers_make(today) | (more or {})
    names = list(issuers)
    result = Result(size, customer_count, len(due), 0, loaded, {name: Timing() for name in names})
    load_before = os.getloadavg()[0]
    rounds = WARM_UP_CHUNKS + 8  # 8 timed chunks of each or more
    chunk = max(1, min(chunk, len(due) // (len(names) * rounds)))
    chunks = [due[i : i + chunk] for i in range(0, len(due), chunk)]
    for number, groups in enumerate(chunks):
        # Rounds of one chunk each, in an order turned by one each round (A B, B A; A B C,
        # B C A, ...): each goes first as often.
        turn, place = divmod(number, len(names))
        name = names[(turn + place) % len(names)]
        timing = result.timings[name]
        started, cpu = timer.perf_counter(), timer.process_time()
        issued = issuers[name](groups)
        seconds, cpu = timer.perf_counter() - started, timer.process_time() - cpu
        for treatment, sent in issued:
            timing.statements[treatment][sent] += 1
        if turn >= WARM_UP_CHUNKS:
            timing.seconds += seconds
            timing.cpu_seconds += cpu
            timing.invoices += len(issued)
    # Per VAT treatment (some read a rate, some do not), the same statements for each invoice:
    # the year's first number (which creates the counter row) aside.
    run, floor = result.timings["run"].statements, result.timings["floor"].statements
    for treatment in run.keys() & floor.keys():
        if len(floor[treatment]) != 1 or not set(run[treatment]) <= {
            *floor[treatment],
            next(iter(floor[treatment])) + 2,
        }:
            result.problems.append(
                f"statements per {treatment} invoice: run {sorted(run[treatment])}, "
                f"floor {sorted(floor[treatment])}"
            )
    result.load_average = (load_before, os.getloadavg()[0])

    result.problems += day_check(today, due=due, due_charges=due_charges)
    if services.billing_run(day=today):
        result.problems.append("billing_run again the same day issued invoices")
    waiting = charge_groups(today + timedelta(days=1))
    tomorrow = services.billing_run(day=today + timedelta(days=1))
    result.invoices_tomorrow = len(tomorrow)
    result.problems += day_check(
        today + timedelta(days=1),
        due=[(c, p, cur) for (c, p, cur) in waiting],
        due_charges=waiting,
    )
    if services.billing_run(day=today + timedelta(days=1)):
        result.problems.append("billing_run again the next day issued invoices")
    result.problems += ledger_check()
    for problem in result.problems:
        print(f"!! {size:,} subscriptions: the run is wrong: {problem}", file=sys.stderr)
    return result


def issuers_make(day: date) -> dict[str, Issuer]:
    """The run's way (billing_run's loop) and the floor's, each for a list of groups."""
    import psycopg
    from django.db import connection

    from billing import services
    from customers.models import Customer

    def customers_of(groups: list[tuple[int, str, str]]) -> dict[int, Any]:
        # As billing_run reads them: once, with their resellers.
        return Customer.objects.select_related("reseller").in_bulk([g[0] for g in groups])

    sent = [0]

    def counting(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        sent[0] += 1
        return execute(sql, params, many, context)

    def run(groups: list[tuple[int, str, str]]) -> Issued:
        customers = customers_of(groups)
        issued = []
        with connection.execute_wrapper(counting):
            for customer_id, payer, currency in groups:
                sent[0] = 0
                invoice = services.invoice_issue_for_customer(
                    customer=customers[customer_id], payer=payer, currency=currency, day=day
                )
                if invoice is not None:
                    issued.append((invoice.vat_treatment, sent[0]))
        return issued

    floor = Floor(psycopg.connect(os.environ["DATABASE_URL"]), day)

    def floor_run(groups: list[tuple[int, str, str]]) -> Issued:
        customers = customers_of(groups)
        issued = []
        for customer_id, payer, currency in groups:
            floor.statements = 0
            treatment = floor.issue(customers[customer_id], payer, currency)
            if treatment:
                issued.append((treatment, floor.statements))
        return issued

    return {"run": run, "floor": floor_run}


class Floor:
    """The run's statements for one invoice, in one transaction, through psycopg directly:
    what the invoice costs the database and the round trips, with Django left out. It writes
    the same rows (the checks run on the floor's invoices too) but checks nothing the database
    does not: no Factur-X render check, no full_clean, no hold for a customer it cannot invoice.
    """

    def __init__(self, conn: Any, day: date) -> None:
        from django.conf import settings
        from django.utils import timezone

        from billing.models import BillingHold, DocumentCounter, Invoice, InvoiceLine, VatRate
        from billing.selectors import payment_means_now
        from resellers.models import AuditEvent
        from subscriptions.models import Charge
        from webhooks.models import WebhookEvent

        self.conn = conn
        self.day = day
        self.statements = 0
        # billing.selectors.charges_due: created before the next day began.
        self.cutoff = timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min))
        self.due_date = day + timedelta(days=settings.INVOICE_PAYMENT_TERMS_DAYS)
        self.seller = json.dumps(
            {
                "name": settings.VENDOR_NAME,
                "address": settings.VENDOR_ADDRESS,
                "country": settings.VENDOR_COUNTRY,
                "vat_id": settings.VENDOR_VAT_ID,
                "email": settings.VENDOR_EMAIL,
                "iban": settings.VENDOR_BANK_IBAN,
                "bic": settings.VENDOR_BANK_BIC,
                "payment_means": payment_means_now(),
            }
        )
        self.vendor_country = settings.VENDOR_COUNTRY
        tables = {
            "charge": Charge._meta.db_table,
            "invoice": Invoice._meta.db_table,
            "line": InvoiceLine._meta.db_table,
            "counter": DocumentCounter._meta.db_table,
            "hold": BillingHold._meta.db_table,
            "audit": AuditEvent._meta.db_table,
            "rate": VatRate._meta.db_table,
            "event": WebhookEvent._meta.db_table,
        }
        self.sql = {
            "charges": (
                "SELECT id, subscription_id, payer, currency, description, period_start, "
                "period_end, licences, unit_price, amount FROM {charge} WHERE customer_id = %s "
                "AND invoiced_at IS NULL AND created_at < %s ORDER BY created_at, id FOR UPDATE"
            ),
            "flags": (
                "SELECT EXISTS (SELECT 1 FROM {invoice} WHERE kind = 'invoice' "
                "AND customer_id = %s AND issue_date = %s), EXISTS (SELECT 1 FROM {hold} "
                "WHERE customer_id = %s AND resolved_on IS NULL)"
            ),
            "rate": (
                "SELECT rate FROM {rate} WHERE country = %s AND valid_from <= %s "
                "ORDER BY valid_from DESC LIMIT 1"
            ),
            "number": (
                "UPDATE {counter} SET last_number = last_number + 1 "
                "WHERE series = 'INV' AND year = %s RETURNING last_number"
            ),
            "invoice": (
                "INSERT INTO {invoice} (public_id, kind, number, customer_id, reseller_id, payer, "
                "currency, language, issue_date, due_date, seller, buyer, vat_treatment, "
                "vat_rate, subtotal, vat_amount, total, issued_at, status, payment_attempts, "
                "pdf, pdf_sha256, pdf_attempts, pdf_error, line_count) VALUES (%s, 'invoice', "
                "%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now(), 'open', 0, "
                "'', '', 0, '', %s) RETURNING id"
            ),
            "lines": (
                "INSERT INTO {line} (invoice_id, position, charge_id, subscription_id, "
                "description, period_start, period_end, licences, unit_price, amount) "
                "SELECT %s, * FROM unnest(%s::smallint[], %s::bigint[], %s::bigint[], "
                "%s::text[], %s::date[], %s::date[], %s::integer[], %s::numeric[], "
                "%s::numeric[])"
            ),
            "hold": (
                "UPDATE {hold} SET resolved_on = %s WHERE customer_id = %s AND resolved_on IS NULL"
            ),
            "mark": (
                "UPDATE {charge} SET invoiced_at = now() WHERE id = ANY(%s) AND invoiced_at IS NULL"
            ),
            "audit": (
                "INSERT INTO {audit} (actor_email, reseller_id, customer_public_id, action, "
                "object_type, object_id, object_repr, after, created_at) VALUES ('', %s, %s, "
                "'invoice.issued', 'billing.invoice', %s, %s, %s, now())"
            ),
            # The webhooks' outbox row (webhooks.services.event_record), written by every issue.
            "event": (
                "INSERT INTO {event} (public_id, reseller_id, type, payload, created_at) "
                "VALUES (%s, %s, 'invoice.issued', %s, now())"
            ),
        }
        self.sql = {name: sql.format(**tables) for name, sql in self.sql.items()}

    def execute(self, cursor: Any, name: str, params: list[Any]) -> Any:
        self.statements += 1
        return cursor.execute(self.sql[name], params)

    def issue(self, customer: Any, payer: str, currency: str) -> str:
        """The invoice's VAT treatment if one was issued, else ""."""
        from billing.vat import vat_amount
        from core.ids import new_public_id
        from resellers.validators import EU_COUNTRIES
        from subscriptions.models import Payer
        from webhooks.models import event_id_new

        day = self.day
        with self.conn.cursor() as cursor:
            due = self.execute(cursor, "charges", [customer.pk, self.cutoff]).fetchall()
            charges = [c for c in due if c[2] == payer and c[3] == currency]
            if not charges:
                self.conn.rollback()
                return ""
            already, held = self.execute(
                cursor, "flags", [customer.pk, day, customer.pk]
            ).fetchone()
            if already:
                self.conn.rollback()
                return ""
            country = str(customer.country or "") or self.vendor_country
            treatment, buyer_vat_id = "outside_eu", customer.vat_id
            rate = Decimal("0.00")
            if country == self.vendor_country or (country in EU_COUNTRIES and not customer.vat_id):
                treatment = "domestic" if country == self.vendor_country else "eu_consumer"
                buyer_vat_id = buyer_vat_id if treatment == "domestic" else ""
                rate = self.execute(cursor, "rate", [country, day]).fetchone()[0]
            elif country in EU_COUNTRIES:
                treatment = "reverse_charge"  # the benchmark's VAT ids are valid
            subtotal = sum((c[9] for c in charges), Decimal("0.00"))
            vat = vat_amount(subtotal=subtotal, rate=rate)
            columns = list(zip(*charges, strict=True))
            # As the run: the charges marked before the number, which is taken last.
            self.execute(cursor, "mark", [list(columns[0])])
            if held:
                self.execute(cursor, "hold", [day, customer.pk])
            number = self.execute(cursor, "number", [day.year]).fetchone()[0]
            number = f"INV-{day.year}-{number:06d}"
            buyer = {
                "organisation": customer.organisation,
                "address": customer.admin_address,
                "country": str(customer.country or ""),
                "vat_id": buyer_vat_id,
                "email": customer.contact_email,
                "contact_name": customer.contact_name,
                "domain": customer.domain,
                "payer_name": (
                    customer.reseller.name
                    if payer == Payer.RESELLER_CARD
                    else customer.organisation
                ),
            }
            public_id = new_public_id()
            invoice_id = self.execute(
                cursor,
                "invoice",
                [
                    public_id,
                    number,
                    customer.pk,
                    customer.reseller_id,
                    payer,
                    currency,
                    customer.language,
                    day,
                    self.due_date,
                    self.seller,
                    json.dumps(buyer),
                    treatment,
                    rate,
                    subtotal,
                    vat,
                    subtotal + vat,
                    len(charges),
                ],
            ).fetchone()[0]
            self.execute(
                cursor,
                "lines",
                [
                    invoice_id,
                    list(range(1, len(charges) + 1)),
                    list(columns[0]),
                    *(list(columns[i]) for i in (1, 4, 5, 6, 7, 8, 9)),
                ],
            )
            after = {"number": number, "total": str(subtotal + vat), "currency": currency}
            after["payer"] = payer
            self.execute(
                cursor,
                "audit",
                [customer.reseller_id, customer.public_id, public_id, number, json.dumps(after)],
            )
            payload = {
                "type": "invoice.issued",
                "timestamp": datetime.now(UTC).isoformat(),
                "data": {
                    "invoice": {
                        "id": public_id,
                        "kind": "invoice",
                        "number": number,
                        "customer_id": customer.public_id,
                        "status": "open",
                        "total": {"amount": str(subtotal + vat), "currency": currency},
                        "issued_at": datetime.now(UTC).isoformat(),
                        "due_date": self.due_date.isoformat(),
                        "paid_at": None,
                    }
                },
            }
            self.execute(
                cursor,
                "event",
                [event_id_new(), customer.reseller_id, json.dumps(payload)],
            )
        self.conn.commit()
        return treatment


def charge_groups(day: date) -> dict[tuple[int, str, str], set[int]]:
    """The charges due on `day` that are not invoiced, by the invoice group they belong to."""
    from billing.selectors import charges_due

    groups: dict[tuple[int, str, str], set[int]] = defaultdict(set)
    rows = charges_due(day).values_list("customer_id", "payer", "currency", "id")
    for customer_id, payer, currency, charge_id in rows:
        groups[(customer_id, payer, currency)].add(charge_id)
    return groups


def day_check(
    day: date,
    *,
    due: list[tuple[int, str, str]],
    due_charges: dict[tuple[int, str, str], set[int]],
) -> list[str]:
    """What should have been invoiced on `day` was, and nothing else: one invoice for each
    group due, with exactly that group's charges; every other charge still waits."""
    from billing.models import Invoice, InvoiceLine
    from subscriptions.models import Charge

    problems = []
    invoices = Invoice.objects.filter(kind=Invoice.Kind.INVOICE, issue_date=day)
    issued = Counter(invoices.values_list("customer_id", "payer", "currency"))
    if issued != Counter(due):
        wrong = set(issued.elements()) ^ set(due)
        return [f"{day}: invoices {sum(issued.values())} for {len(due)} due ({len(wrong)} off)"]
    if not due:
        return [f"{day}: nothing was due (the load must make some customers wait a day)"]
    if Counter(customer for customer, _p, _c in due).most_common(1)[0][1] > 1:
        problems.append(f"{day}: a customer is due two invoices")
    on_lines: dict[tuple[int, str, str], set[int]] = defaultdict(set)
    rows = InvoiceLine.objects.filter(invoice__in=invoices).values_list(
        "invoice__customer_id", "invoice__payer", "invoice__currency", "charge_id"
    )
    for customer_id, payer, currency, charge_id in rows:
        on_lines[(customer_id, payer, currency)].add(charge_id)
    if any(on_lines[group] != due_charges[group] for group in due):
        problems.append(f"{day}: an invoice does not hold exactly its group's due charges")
    invoiced = set().union(*on_lines.values()) if on_lines else set()
    left = set().union(*due_charges.values()) - invoiced
    if Charge.objects.filter(pk__in=left, invoiced_at__isnull=False).exists():
        problems.append(f"{day}: a charge no invoice holds is marked invoiced")
    if Charge.objects.filter(pk__in=invoiced, invoiced_at__isnull=True).exists():
        problems.append(f"{day}: an invoiced charge is not marked invoiced")
    return problems


def ledger_check() -> list[str]:
    """Every charge on exactly one line, and the invoices right (invoices_check)."""
    from billing.models import InvoiceLine
    from subscriptions.models import Charge

    problems = []
    charges = Charge.objects.count()
    lines = InvoiceLine.objects.filter(charge__isnull=False)
    if Charge.objects.filter(invoiced_at__isnull=True).exists():
        problems.append("charges left uninvoiced after the next day's run")
    if lines.count() != charges or lines.values("charge_id").distinct().count() != charges:
        problems.append(f"{lines.count()} lines for {charges} charges")
    return problems + invoices_check()


def invoices_check() -> list[str]:
    """The numbers gapless from INV-YYYY-000001, the counter at the last one; each invoice's
    lines, subtotal, VAT and total reconcile; one "invoice.issued" audit row per invoice."""
    from django.db.models import Count, Sum

    from billing.models import DocumentCounter, Invoice
    from billing.vat import vat_amount
    from resellers.models import AuditEvent

    problems = []
    invoices = list(
        Invoice.objects.annotate(lines_sum=Sum("lines__amount"), lines_n=Count("lines")).values(
            "number",
            "subtotal",
            "vat_rate",
            "vat_amount",
            "total",
            "line_count",
            "lines_sum",
            "lines_n",
            "issue_date",
        )
    )
    year = invoices[0]["issue_date"].year if invoices else 0
    numbers = sorted(invoice["number"] for invoice in invoices)
    if numbers != [f"INV-{year}-{n:06d}" for n in range(1, len(invoices) + 1)]:
        problems.append("the invoice numbers are not gapless from 1")
    counter = DocumentCounter.objects.filter(series="INV", year=year).first()
    if counter is None or counter.last_number != len(invoices):
        problems.append(f"the counter is not at the last number ({len(invoices)})")
    for invoice in invoices:
        if not (
            invoice["lines_sum"] == invoice["subtotal"]
            and invoice["lines_n"] == invoice["line_count"]
            and invoice["vat_amount"]
            == vat_amount(subtotal=invoice["subtotal"], rate=invoice["vat_rate"])
            and invoice["total"] == invoice["subtotal"] + invoice["vat_amount"]
        ):
            problems.append(f"{invoice['number']} does not reconcile")
            break
    audited = AuditEvent.objects.filter(action="invoice.issued")
    if audited.count() != len(invoices) or set(
        audited.values_list("object_repr", flat=True)
    ) != set(numbers):
        problems.append("not one invoice.issued audit row per invoice")
    return problems


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
            "TRUNCATE customers_customer, resellers_auditevent, billing_documentcounter, "
            "webhooks_webhookevent CASCADE"
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
        # One in three subscriptions paid with the customer's card; of the customers holding
        # two, half have the other payer for the second (their invoices: today and tomorrow).
        card = ["customer_card" if n % 3 == 2 else "reseller_card" for n in range(customer_count)]
        other = {"customer_card": "reseller_card", "reseller_card": "customer_card"}
        holdings = [(customer, 0, card[n]) for n, customer in enumerate(customers)] + [
            (customer, 1, other[card[n]] if n % 2 == 0 else card[n])
            for n, customer in enumerate(customers[:second])
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
                    payer=payer,
                    anchor_day=today.day,
                    anchor_month=today.month,
                    monthly_price=Decimal("4.00"),
                    period_start=today,
                    period_end=today + timedelta(days=30),
                )
                for n, (customer, which, payer) in enumerate(holdings)
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
                    # The list price, a 20 % discount: what the reseller earns is kept too.
                    list_unit_price=Decimal("4.00"),
                    unit_cost=Decimal("3.20"),
                    unit_margin=Decimal("0.80"),
                    cost_amount=Decimal("3.20") * subscription.licences,
                    margin_amount=Decimal("0.80") * subscription.licences,
                    monthly_list_price=Decimal("4.00"),
                    monthly_price=Decimal("4.00"),
                    monthly_cost=Decimal("3.20"),
                    price_source="list_price",
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
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    return (
        f"PostgreSQL {version} (database {name}); Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs; load average {load}\n"
    )


def report(results: list[Result], *, smoke: bool) -> int:
    rows = [
        (
            "subscriptions",
            "invoices today",
            "tomorrow",
            "load s",
            "issued by",
            "ms/invoice",
            "x floor",
            "CPU ms/invoice",
            "statements",
            "load average",
        )
    ]
    for r in results:
        yardstick = r.timings["floor"]
        for name, t in r.timings.items():
            rows.append(
                (
                    f"{r.subscriptions:,}",
                    f"{r.invoices_today:,}",
                    f"{r.invoices_tomorrow:,}",
                    f"{r.seconds_to_load:.1f}",
                    name,
                    f"{t.ms:.2f}",
                    f"{t.ms / yardstick.ms:.2f}",
                    f"{t.cpu_ms:.2f}",
                    f"{t.statements_per_invoice:.2f}",
                    f"{r.load_average[0]:.2f} -> {r.load_average[1]:.2f}",
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))
    small, large = results[0], results[-1]
    linear = large.timings["run"].ms / small.timings["run"].ms
    floor = large.timings["run"].ms / large.timings["floor"].ms
    verdict = "not held to it (smoke)" if smoke else None
    print(
        f"\nper invoice, {large.subscriptions:,} vs {small.subscriptions:,} subscriptions: "
        f"{linear:.2f}x (target <= {LINEAR_TARGET}x): "
        f"{verdict or ('met' if linear <= LINEAR_TARGET else 'MISSED')}."
    )
    print(
        f"per invoice at {large.subscriptions:,} subscriptions, the run against its floor: "
        f"{floor:.2f}x (target <= {FLOOR_TARGET}x): "
        f"{verdict or ('met' if floor <= FLOOR_TARGET else 'MISSED')}."
    )
    if any(r.problems for r in results):
        return 1
    if smoke:
        print("smoke: the runs are right.")
        return 0
    return 0 if linear <= LINEAR_TARGET and floor <= FLOOR_TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
