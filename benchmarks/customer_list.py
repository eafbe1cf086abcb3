"""Customers page at scale: 100,000 customers, 10,000 of them one reseller's, on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/partner_portal_bench \\
        .venv/bin/python -m benchmarks.customer_list          # or: make bench-customers

Creates the database if it is missing, migrates it and loads the customers once (COPY; later
runs reuse them). Then it times, side by side in one run, requests through the WSGI handler
(everything gunicorn would call: middleware, session, signed-in user, view, template):

- a minimal view of the same stack (benchmarks/urls.py), the yardstick;
- the Customers page: first page, a deep page, a search;
- the Django admin's customer list (staff user): unfiltered, filtered by reseller, a search.

For each it reports the median and 95th percentile, the ratio to the minimal view, and the
number of SQL queries; then EXPLAIN ANALYZE of the Customers page's queries with the indexes
they use. The target: each Customers page at most 3x the minimal view (median). Exits non-zero
when a target is missed.

--candidates also times other renderings of the rows (benchmarks/customer_list_candidates.py)
side by side. --smoke is CI's mode: 3,000 customers and a few rounds, failing only when a page
does not answer as it should or the Customers pages issue different numbers of queries.
"""

import argparse
import io
import os
import random
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode, urlsplit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/partner_portal_bench")

TARGET_RATIO = 3.0
SEARCH_TERM = "harbour"  # one noun of NOUNS below: about 1 organisation in 40
NARROW_SEARCH_TERM = "golden harbour"  # an adjective and a noun: about 1 in 1,600
BENCHMARK_RESELLER_EMAIL = "billing@benchmark-reseller.example"  # the others: billingN@
OWNER_EMAIL = "owner@benchmark-reseller.example"
STAFF_EMAIL = "staff@benchmark.example"

# Organisation names: adjective, noun, kind and legal form ("Golden Harbour Dental Ltd"); contact
# addresses from first and last names. One group of words per paragraph.
WORDS = """
Blue Green Red Silver Golden North South East West Bright Quiet Rapid Clear Solid Open Prime
Grand Little Royal Urban Rural Coastal Alpine Polar Sunny Misty Stone Iron Oak Cedar Maple
Swift Noble Modern Classic Global Local United Central Pacific

Harbour Valley River Bridge Tower Garden Forest Meadow Summit Canyon Island Lake Harvest
Anchor Beacon Compass Falcon Lantern Orchard Pioneer Quarry Ranger Signal Thistle Willow
Atlas Orbit Pixel Vector Delta Nexus Vertex Matrix Quantum Cobalt Ember Granite Harrow Juniper

Logistics Dental Bakery Consulting Studio Legal Builders Media Labs Foods Travel

Ltd GmbH SL BV SAS LLC Group Partners

ana luis sofia pablo olivia harry amelia daan emma noah lucas mia

garcia smith jansen martin muller rossi dubois visser lopez brown
"""
ADJECTIVES, NOUNS, KINDS, SUFFIXES, FIRST_NAMES, LAST_NAMES = (
    paragraph.split() for paragraph in WORDS.strip().split("\n\n")
)
STATUS_WEIGHTS = {
    "active": 80,
    "invited": 8,
    "cancelled": 4,
    "access_revoked": 5,
    "transferred_out": 3,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=300, help="timed requests per scenario")
    parser.add_argument("--warmup", type=int, default=30, help="untimed requests per scenario")
    parser.add_argument("--total", type=int, default=100_000, help="customers in the database")
    parser.add_argument("--mine", type=int, default=10_000, help="customers of one reseller")
    parser.add_argument(
        "--per-reseller", type=int, default=1_000, help="customers of each other reseller"
    )
    parser.add_argument("--reload", action="store_true", help="load the customers again")
    parser.add_argument(
        "--candidates",
        action="store_true",
        help="also time other renderings of the rows (benchmarks/customer_list_candidates.py)",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="CI's smoke mode: 3,000 customers, a few rounds; every page answers as it should "
        "with the same number of queries, and the ratios are printed, not held to the target",
    )
    parser.add_argument("--no-admin", action="store_true", help="leave the admin's lists out")
    args = parser.parse_args()
    if args.smoke:
        args.total, args.mine, args.per_reseller = 3_000, 1_000, 500
        args.rounds, args.warmup = min(args.rounds, 5), min(args.warmup, 2)

    database_ensure(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor != "postgresql":
        print("This benchmark needs PostgreSQL (DATABASE_URL).", file=sys.stderr)
        return 2
    call_command("migrate", verbosity=0)
    data = seed(
        total=args.total, mine=args.mine, per_reseller=args.per_reseller, reload=args.reload
    )
    if args.candidates:
        from django.conf import settings

        # The portal's and the benchmark's URLs, and one Customers page per candidate.
        settings.ROOT_URLCONF = "benchmarks.customer_list_candidates"
    scenarios = scenarios_build(data, candidates=args.candidates, admin=not args.no_admin)
    print(header(data))
    checks_ok = scenarios_check(scenarios)
    timings = measure(scenarios, rounds=args.rounds, warmup=args.warmup)
    target_ok = report(scenarios, timings, hold_target=not args.smoke)
    explain(data)
    return 0 if (checks_ok and target_ok) else 1


# --- the data -----------------------------------------------------------------------------------


def database_ensure(url: str) -> None:
    """Create the benchmark's database if it does not exist (connecting to `postgres`)."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    server = parts._replace(path="/postgres").geturl()
    with psycopg.connect(server, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
            print(f"created database {name}")


@dataclass
class Data:
    reseller_id: int
    reseller_public_id: str
    mine: int
    total: int
    owner: Any
    staff: Any
    seconds_to_load: float | None


def seed(*, total: int, mine: int, per_reseller: int, reload: bool) -> Data:
    """One benchmark reseller with `mine` customers, others with `per_reseller` each, up to
    `total`; reused when already there."""
    from allauth.mfa.models import Authenticator
    from django.db import connection, transaction

    from core.models import User
    from customers.models import Customer
    from resellers.models import Membership, Reseller
    from resellers.roles import Role

    def benchmark_reseller(email: str, name: str) -> Reseller:
        reseller, _ = Reseller.objects.get_or_create(
            billing_email=email,
            defaults={"name": name, "country": "GB", "status": Reseller.Status.ACTIVE},
        )
        return reseller

    reseller = benchmark_reseller(BENCHMARK_RESELLER_EMAIL, "Benchmark Reseller")
    loaded = None
    from subscriptions.models import Subscription

    if (
        reload
        or reseller.customers.count() != mine
        or Customer.objects.count() != total
        or not Subscription.objects.exists()
    ):
        foreign = Customer.objects.exclude(
            reseller__billing_email__endswith=BENCHMARK_RESELLER_EMAIL.partition("@")[2]
        )
        if foreign.exists():
            raise SystemExit(
                "DATABASE_URL holds customers of resellers the benchmark did not make: point it "
                "at a database of its own (it replaces every customer)."
            )
        started = time.perf_counter()
        others = [
            benchmark_reseller(
                f"billing{n}@{BENCHMARK_RESELLER_EMAIL.partition('@')[2]}", f"Other Reseller {n}"
            )
            for n in range(-(-(total - mine) // per_reseller))
        ]
        owners = [reseller.pk] * mine + [other.pk for other in others for _ in range(per_reseller)]
        with transaction.atomic(), connection.cursor() as cursor:
            # SQL, not the ORM: only benchmark data is here (checked above), and the ORM would
            # collect 100,000 rows' relations one by one.
            cursor.execute(f"TRUNCATE {Customer._meta.db_table} CASCADE")
            customers_copy(owners[:total])
            subscriptions_copy()
        with connection.cursor() as cursor:
            # Fresh statistics for the planner and a visibility map for index-only scans, as
            # autovacuum would leave them on a live database.
            cursor.execute("VACUUM ANALYZE customers_customer")
            cursor.execute("VACUUM ANALYZE subscriptions_subscription")
            cursor.execute("VACUUM ANALYZE resellers_reseller")
        loaded = time.perf_counter() - started

    owner, _ = User.objects.get_or_create(email=OWNER_EMAIL)
    Membership.objects.get_or_create(reseller=reseller, user=owner, defaults={"role": Role.OWNER})
    staff, _ = User.objects.get_or_create(
        email=STAFF_EMAIL, defaults={"is_staff": True, "is_superuser": True}
    )
    # Production admins have a second factor; the admin site checks for it on every request.
    Authenticator.objects.get_or_create(
        user=staff, type=Authenticator.Type.TOTP, defaults={"data": {"secret": "benchmark"}}
    )
    return Data(
        reseller_id=reseller.pk,
        reseller_public_id=reseller.public_id,
        mine=reseller.customers.count(),
        total=Customer.objects.count(),
        owner=owner,
        staff=staff,
        seconds_to_load=loaded,
    )


def rows_copy(model: Any, rows: Iterable[Any]) -> int:
    """COPY `rows`, unsaved instances of `model`, into its table; returns how many. Model
    instances give every column its default, so a column added later needs no change here; a
    generated column (Customer.search_text) is left to the database, which computes it. `rows`
    may be a generator, as long as it reads nothing from the database: the connection can do
    nothing else while the COPY runs."""
    from django.db import connection

    fields = [
        f
        for f in model._meta.concrete_fields
        if not f.primary_key and not getattr(f, "generated", False)
    ]
    columns = ", ".join(connection.ops.quote_name(str(f.column)) for f in fields)
    count = 0
    with connection.cursor() as cursor:
        sql = f"COPY {model._meta.db_table} ({columns}) FROM STDIN"
        with cursor.cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(
                    [f.get_db_prep_save(getattr(row, f.attname), connection) for f in fields]
                )
                count += 1
    return count


def customers_copy(reseller_ids: list[int]) -> None:
    """COPY the customers in, statuses mixed (STATUS_WEIGHTS), created over three years."""
    from customers.models import Customer

    rng = random.Random(20261123)  # noqa: S311 - test data, not secrets
    now = datetime.now(UTC)
    # Rows arrive as in real life: in the order they were created, resellers interleaved (so
    # one reseller's rows are spread over the whole table, not packed together).
    reseller_ids = reseller_ids[:]
    rng.shuffle(reseller_ids)
    ages = sorted((rng.randrange(3 * 365 * 86400) for _ in reseller_ids), reverse=True)
    statuses, weights = zip(*STATUS_WEIGHTS.items(), strict=True)

    def rows() -> Iterator[Customer]:
        for n, (reseller_id, age) in enumerate(zip(reseller_ids, ages, strict=True)):
            organisation = " ".join(
                filter(
                    None,
                    [
                        rng.choice(ADJECTIVES),
                        rng.choice(NOUNS),
                        rng.choice(KINDS),
                        rng.choice(SUFFIXES),
                    ],
                )
            )
            is_team = rng.random() < 0.1
            domain = "" if is_team else f"{organisation.split()[1].lower()}-{n}.example"
            person = f"{rng.choice(FIRST_NAMES)}.{rng.choice(LAST_NAMES)}"
            yield Customer(
                reseller_id=reseller_id,
                organisation=organisation,
                domain=domain,
                customer_type=Customer.Type.TEAM if is_team else Customer.Type.DOMAIN,
                contact_name=person.replace(".", " ").title(),
                contact_email=f"{person}{n}@gmail.com" if is_team else f"{person}@{domain}",
                status=rng.choices(statuses, weights)[0],
                created_at=now - timedelta(seconds=age, microseconds=rng.randrange(10**6)),
            )

    rows_copy(Customer, rows())


def subscriptions_copy(customer_ids: list[int] | None = None) -> None:
    """A subscription for each active customer (one in three has a second product), so the
    Plan and Licences columns are filled as on a live portal; `customer_ids`: of those
    customers only."""
    from customers.models import Customer
    from subscriptions.models import Plan, PlanPrice, Product, Subscription

    rng = random.Random(20261124)  # noqa: S311 - test data, not secrets
    plans = []
    for sku, name in [("contacts", "Shared Contacts"), ("labels", "Shared Labels")]:
        product, _ = Product.objects.get_or_create(sku=sku, defaults={"name": name})
        for kind in (Plan.Kind.FLEXIBLE, Plan.Kind.ANNUAL_MONTHLY, Plan.Kind.ANNUAL_YEARLY):
            plan, _ = Plan.objects.get_or_create(product=product, kind=kind)
            PlanPrice.objects.get_or_create(
                plan=plan, currency="GBP", defaults={"monthly_price": Decimal("3.50")}
            )
            plans.append(plan)
    today = datetime.now(UTC).date()
    # Read before the COPY starts: the connection can do nothing else while it runs.
    active = Customer.objects.filter(status=Customer.Status.ACTIVE)
    if customer_ids is not None:
        active = active.filter(pk__in=customer_ids)
    active_ids = list(active.order_by("pk").values_list("pk", flat=True))

    def rows() -> Iterator[Subscription]:
        for customer_id in active_ids:
            for plan in rng.sample(plans[:3], 1) + (
                rng.sample(plans[3:], 1) if rng.random() < 1 / 3 else []
            ):
                yield Subscription(
                    customer_id=customer_id,
                    product_id=plan.product_id,
                    plan=plan,
                    currency="GBP",
                    licences=rng.randint(1, 300),
                    status=Subscription.Status.ACTIVE,
                    payer="reseller_card",
                    anchor_day=today.day,
                    anchor_month=today.month,
                    monthly_price=Decimal("3.50"),
                    period_start=today,
                    period_end=today + timedelta(days=30),
                    term_start=today if plan.kind != Plan.Kind.FLEXIBLE else None,
                    term_end=today + timedelta(days=365)
                    if plan.kind != Plan.Kind.FLEXIBLE
                    else None,
                    created_at=datetime.now(UTC),
                )

    rows_copy(Subscription, rows())


# --- the requests -------------------------------------------------------------------------------


@dataclass
class Scenario:
    name: str
    path: str
    cookie: str
    expect: str  # text the page must contain
    group: str  # "yardstick", "customers" (held to the target), "admin", "candidate", "info"
    htmx: bool = False
    queries: list[str] = field(default_factory=list)

    def environ(self) -> dict[str, Any]:
        path, _, query = self.path.partition("?")
        return {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "SCRIPT_NAME": "",
            "SERVER_NAME": "testserver",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "testserver",
            "HTTP_COOKIE": self.cookie,
            "HTTP_ACCEPT_LANGUAGE": "en",
            **({"HTTP_HX_REQUEST": "true"} if self.htmx else {}),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }


def session_cookie(user: Any) -> str:
    """The cookies a signed-in browser sends: its session and the CSRF cookie the first page it
    saw set (without it, every page would make and set a new CSRF secret)."""
    from django.conf import settings
    from django.middleware.csrf import CSRF_ALLOWED_CHARS, CSRF_SECRET_LENGTH
    from django.test import Client
    from django.utils.crypto import get_random_string

    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    csrf = get_random_string(CSRF_SECRET_LENGTH, allowed_chars=CSRF_ALLOWED_CHARS)
    return f"{settings.SESSION_COOKIE_NAME}={session}; {settings.CSRF_COOKIE_NAME}={csrf}"


def scenarios_build(data: Data, *, candidates: bool = False, admin: bool = True) -> list[Scenario]:
    member = session_cookie(data.owner)
    staff = session_cookie(data.staff)
    position = deep_position(data)
    deep = urlencode({"cursor": deep_cursor(data, position)})
    rows = f"{position + 1:,}\u2013{position + 25:,}"
    admin_url = "/admin/customers/customer/"
    narrow = narrow_term(data)
    scenarios = [
        Scenario("minimal view (yardstick)", "/benchmark/minimal/", member, "ok", "yardstick"),
        Scenario("empty page of the layout", "/benchmark/empty-page/", member, "</html>", "info"),
        Scenario("Customers, first page", "/customers/", member, "1\u201325 of", "customers"),
        Scenario(
            f"Customers, page {position // 25 + 1} (rows {position + 1:,}-{position + 25:,})",
            f"/customers/?{deep}",
            member,
            rows,
            "customers",
        ),
        Scenario(
            f"Customers, search “{SEARCH_TERM}”",
            f"/customers/?{urlencode({'q': SEARCH_TERM})}",
            member,
            "Harbour",
            "customers",
        ),
        Scenario(
            f"Customers, search “{narrow}”",
            f"/customers/?{urlencode({'q': narrow})}",
            member,
            narrow.title(),
            "customers",
        ),
        Scenario(
            f"Customers, search “{SEARCH_TERM}” (htmx, as typed)",
            f"/customers/?{urlencode({'q': SEARCH_TERM})}",
            member,
            "Harbour",
            "info",
            htmx=True,
        ),
    ]
    if admin:
        scenarios += [
            Scenario("admin customers, first page", admin_url, staff, "Reseller", "admin"),
            Scenario(
                "admin customers, one reseller",
                f"{admin_url}?reseller={data.reseller_public_id}",
                staff,
                "Benchmark Reseller",
                "admin",
            ),
            Scenario(
                f"admin customers, search “{SEARCH_TERM}”",
                f"{admin_url}?{urlencode({'q': SEARCH_TERM})}",
                staff,
                "Harbour",
                "admin",
            ),
        ]
    if candidates:
        from benchmarks.customer_list_candidates import urlpatterns

        scenarios += [
            Scenario(
                f"candidate rows: {name}, first page",
                f"/{pattern.pattern}",
                member,
                "1\u201325 of",
                "candidate",
            )
            for pattern in urlpatterns
            if str(pattern.pattern).startswith("benchmark/candidate/")
            for name in [str(pattern.pattern).split("/")[2]]
        ]
    return scenarios


def narrow_term(data: Data) -> str:
    """NARROW_SEARCH_TERM, or with fewer customers (--smoke), where none may match it, the
    adjective and noun of one that holds SEARCH_TERM."""
    from customers import selectors
    from resellers.models import Reseller

    reseller = Reseller.objects.get(pk=data.reseller_id)
    if selectors.customer_list(reseller=reseller, query=NARROW_SEARCH_TERM).exists():
        return NARROW_SEARCH_TERM
    found = selectors.customer_list(reseller=reseller, query=SEARCH_TERM).first()
    if found is None:
        return NARROW_SEARCH_TERM
    return " ".join(found.organisation.split()[:2]).lower()


def deep_position(data: Data) -> int:
    """Row 9,000 of the benchmark reseller's list (or its middle, for a smaller --mine)."""
    from customers import selectors
    from resellers.models import Reseller

    count = selectors.customer_list(reseller=Reseller.objects.get(pk=data.reseller_id)).count()
    return 9_000 if count >= 9_025 else max(25, count // 2 // 25 * 25)


def deep_cursor(data: Data, position: int) -> str:
    """A cursor to the page that starts at `position` of the benchmark reseller's list, as the
    Next link of the page before it would carry."""
    from core.pagination import keyset_cursor
    from customers import selectors
    from resellers.models import Reseller

    reseller = Reseller.objects.get(pk=data.reseller_id)
    before = selectors.customer_list(reseller=reseller)[position - 1]
    return keyset_cursor(
        sort=selectors.DEFAULT_CUSTOMER_SORT,
        values=[before.created_at, before.pk],
        position=position,
    )


def wsgi_call(application: Callable[..., Any], scenario: Scenario) -> tuple[str, bytes]:
    status: list[str] = []

    def start_response(code: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        status.append(code)

    result = application(scenario.environ(), start_response)
    try:
        body = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    return status[0], body


def scenarios_check(scenarios: list[Scenario]) -> bool:
    """Each request once: it answers 200 with the expected text; record its SQL."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    application = WSGIHandler()
    ok = True
    for scenario in scenarios:
        with CaptureQueriesContext(connection) as captured:
            status, body = wsgi_call(application, scenario)
        scenario.queries = [query["sql"] for query in captured.captured_queries]
        if not status.startswith("200") or scenario.expect.encode() not in body:
            print(f"!! {scenario.name}: {status}, {scenario.expect!r} missing", file=sys.stderr)
            ok = False
    return ok


def measure(scenarios: list[Scenario], *, rounds: int, warmup: int) -> dict[str, list[float]]:
    """Round-robin in a shuffled order each round, so that drift hits every scenario alike."""
    from django.core.handlers.wsgi import WSGIHandler

    application = WSGIHandler()
    timings: dict[str, list[float]] = {scenario.name: [] for scenario in scenarios}
    rng = random.Random(1)  # noqa: S311
    for n in range(warmup + rounds):
        order = scenarios[:]
        rng.shuffle(order)
        for scenario in order:
            started = time.perf_counter_ns()
            wsgi_call(application, scenario)
            elapsed = (time.perf_counter_ns() - started) / 1e6
            if n >= warmup:
                timings[scenario.name].append(elapsed)
    return timings


# --- the report ---------------------------------------------------------------------------------


def header(data: Data) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
    loaded = (
        f"loaded in {data.seconds_to_load:.1f} s"
        if data.seconds_to_load is not None
        else "reused from an earlier run"
    )
    return (
        f"PostgreSQL {version}; {data.total:,} customers, {data.mine:,} of them the benchmark "
        f"reseller's ({loaded}); Python {sys.version.split()[0]}, {os.cpu_count()} CPUs\n"
    )


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


FULL_COUNT = re.compile(r'^SELECT COUNT\(\*\) AS "__count" FROM "customers_customer"\s*$')


def report(
    scenarios: list[Scenario], timings: dict[str, list[float]], *, hold_target: bool = True
) -> bool:
    """The table; False when a Customers page misses the target (unless `hold_target` is off:
    the smoke mode's few rounds on a busy CI machine say nothing about speed) or when the
    Customers pages issue different numbers of queries (in every mode)."""
    yardstick = statistics.median(timings[scenarios[0].name])
    yardstick_p95 = percentile(timings[scenarios[0].name], 0.95)
    rows = [("", "median ms", "p95 ms", "x minimal (median)", "x minimal (p95)", "queries")]
    ok = True
    for scenario in scenarios:
        values = timings[scenario.name]
        median, p95 = statistics.median(values), percentile(values, 0.95)
        ratio = median / yardstick
        if hold_target and scenario.group == "customers" and ratio > TARGET_RATIO:
            ok = False
        full_counts = sum(bool(FULL_COUNT.match(sql)) for sql in scenario.queries)
        note = f" ({full_counts} full COUNT(*))" if full_counts else ""
        rows.append(
            (
                scenario.name,
                f"{median:.2f}",
                f"{p95:.2f}",
                f"{ratio:.2f}",
                f"{p95 / yardstick_p95:.2f}",
                f"{len(scenario.queries)}{note}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(
                cell.ljust(w) if i == 0 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    rounds = len(timings[scenarios[0].name])
    verdict = ("met" if ok else "MISSED") if hold_target else "not held (smoke mode)"
    print(
        f"\n{rounds} timed requests each. Target (Customers pages <= {TARGET_RATIO:g}x the "
        f"minimal view, median): {verdict}."
    )
    customer_counts = {len(s.queries) for s in scenarios if s.group == "customers"}
    if len(customer_counts) != 1:
        print("!! the Customers pages issue different numbers of queries", file=sys.stderr)
        ok = False
    return ok


def explain(data: Data) -> None:
    """EXPLAIN ANALYZE of the Customers page's query (the rows and their count), as the selector
    issues it, for the benchmark's cases and each sort."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from customers import selectors
    from resellers.models import Reseller

    reseller = Reseller.objects.get(pk=data.reseller_id)
    position = deep_position(data)
    deep = deep_cursor(data, position)
    cases: list[tuple[str, dict[str, str]]] = [
        ("first page", {}),
        (f"page {position // 25 + 1}", {"cursor": deep}),
        ("last page", {"cursor": "last"}),
        (f"search “{SEARCH_TERM}”", {"query": SEARCH_TERM}),
        ("search “bridge dental”", {"query": "bridge dental"}),
        ("by organisation, last page", {"sort": "organisation", "cursor": "last"}),
        ("by domain, descending", {"sort": "-domain"}),
        ("by status", {"sort": "status"}),
        ("Invited, by organisation", {"status": "invited", "sort": "organisation"}),
        ("Access revoked", {"status": "access_revoked"}),
    ]
    print("\nEXPLAIN ANALYZE of the Customers page's queries (ms, indexes, plan nodes):")
    for name, arguments in cases:
        with CaptureQueriesContext(connection) as captured:
            selectors.customer_page(reseller=reseller, **arguments)
        (query,) = captured.captured_queries
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN ANALYZE {query['sql']}")
            plan = "\n".join(row[0] for row in cursor.fetchall())
        print(f"  {name:30} {plan_summary(plan)}")


def plan_summary(plan: str) -> str:
    scan = r"(?:Index Scan|Index Only Scan)(?: Backward)? (?:using|on) (\S+)"
    indexes = sorted(set(re.findall(scan, plan)))
    node = r"(Seq Scan|Index Only Scan|(?<!Bitmap )Index Scan(?: Backward)?|Bitmap Heap Scan|Sort)"
    nodes = sorted(set(re.findall(node, plan)))
    elapsed = re.search(r"Execution Time: ([\d.]+) ms", plan)
    return (
        f"{elapsed.group(1) if elapsed else '?':>7} ms  {', '.join(indexes) or '-'}"
        f"  [{', '.join(nodes)}]"
    )


if __name__ == "__main__":
    sys.exit(main())
