"""Dashboard throughput against the minimal view, on a real gunicorn, side by side in one run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/partner_portal_bench_dashboard \\
        .venv/bin/python -m benchmarks.dashboard          # or: make bench-dashboard

Starts its own redis-server on a free port (the cache, empty at the start) and gunicorn with the
project's config/gunicorn.py and the production default of 3 sync workers, both with the
benchmark settings (production's request stack, benchmarks/settings.py). The database, created
and migrated if missing, holds issue 18's scale, loaded once (COPY) and reused by later runs:
one reseller with 10,000 customers (and 10 others with 1,000 each) loaded by the Customers
benchmark's seed (benchmarks/customer_list.py), its team, and 100,000 subscriptions over a
catalogue of 12 products (1 to 15 per customer, statuses mixed, annual terms ending all year),
the charges of their first and current periods, two years of monthly invoices (some open,
overdue, failed or credited), the audit log the services would have written, and the daily
snapshots of 730 days made by the project's own job (insights.services.snapshots_take, its
first run replaying the history from the audit log: timed and printed, as is the hourly run
that every run starts with).

Before timing, the dashboard is fetched through gunicorn and every figure with a `data-figure`
(MRR, its 30-day change and the margin per currency, active licences, trials ending, open and
overdue money, customers by status) and every row of the three charts' tables is compared with
fresh SQL written here (not insights.selectors): the live figures from the subscriptions, their
latest charges and the invoices, the past months from the daily snapshots; again after a
subscription's licences change through the service (and back) and a customer's status changes
(and back), and after the load, so that a cached figure that went stale fails the run. The
queries per request are counted in this process through the same WSGI stack, cold (the cache
emptied) and warm.

The load: closed-loop client threads with raw sockets, each sending GET after GET as soon as the
answer is in. gunicorn's sync workers close every connection after one response (no keep-alive,
whatever the client asks), so each request is a new connection, with wrk as with this. Phases of
the minimal view (benchmarks/urls.py) and of the dashboard alternate (ABBA), each a few seconds,
so a change in the machine's load hits both; each round's ratio is the dashboard's requests/s
over the minimal view's in the same round. --versus DIR adds the dashboard of another checkout
(`git archive <commit> | tar -x -C DIR`), served by a gunicorn of its own from DIR on the same
data, as a third phase of every round: a before and after measured side by side. It prints the
throughputs, the ratios, the CPU the load generator used (so that it is seen not to be the
bottleneck), the machine's CPU busy share during the phases, and the load average.

Target: the dashboard at least 0.40 of the minimal view's throughput (median of the rounds'
ratios); exits non-zero when it is missed, when any answer is not a 200 with the page's end, or
when a figure on the page is wrong. --smoke is CI's mode: 300 customers, 1,000 subscriptions,
60 days of history, two short rounds; it checks the figures and the answers and prints the
ratio without holding it to the target (a few seconds on a busy CI machine say nothing about
speed).
"""

import argparse
import os
import shlex
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
os.environ.setdefault(
    "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/partner_portal_bench_dashboard"
)

from benchmarks import customer_list
from benchmarks.soak import Stack, port_free, process_parents, redis_ping, wait_for

TARGET_RATIO = 0.40
WEB_WORKERS = 3  # WEB_CONCURRENCY's default in production (README, Configuration)
TEAM = [("admin", "team-admin"), ("sales", "team-sales"), ("billing", "team-billing")]
WARM_REQUESTS = 20  # in-process, for the CPU a warm dashboard takes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="rounds of a phase of each")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each phase")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of each, untimed")
    parser.add_argument("--connections", type=int, default=6, help="concurrent client threads")
    parser.add_argument("--workers", type=int, default=WEB_WORKERS, help="gunicorn workers")
    parser.add_argument("--customers", type=int, default=10_000, help="the reseller's customers")
    parser.add_argument(
        "--others", type=int, default=10, help="other resellers, each with 1,000 customers"
    )
    parser.add_argument(
        "--subscriptions", type=int, default=100_000, help="the reseller's subscriptions"
    )
    parser.add_argument("--days", type=int, default=730, help="days of history")
    parser.add_argument("--reload", action="store_true", help="load the data again")
    parser.add_argument(
        "--versus",
        metavar="DIR",
        type=Path,
        help="also time the dashboard of another checkout (e.g. `git archive` of an earlier "
        "commit), served by its own gunicorn from DIR in the same rounds, on the same data",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="CI's mode: 300 customers, 1,000 subscriptions, 60 days of history, two rounds of "
        "1 s; the figures and answers are checked, the ratio printed but not held to the target",
    )
    args = parser.parse_args()
    per_reseller = 1_000
    if args.smoke:
        args.customers, args.others, per_reseller = 300, 2, 100
        args.subscriptions, args.days = 1_000, 60
        args.rounds, args.seconds, args.warmup = 2, 1.0, 0.5

    workdir = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    stack = Stack(workdir)
    ok = False
    try:
        stack_start(stack)
        data = seed(
            customers=args.customers,
            total=args.customers + args.others * per_reseller,
            per_reseller=per_reseller,
            reload=args.reload,
            subscriptions=args.subscriptions,
            history_days=args.days,
        )
        gunicorn_start(stack, "gunicorn", port=stack.web_port, workers=args.workers)
        ours = serving(stack, "gunicorn")
        cases = [
            Case(
                "minimal view",
                stack.web_port,
                request_bytes("/benchmark/minimal/", data.cookie),
                b"ok",
                ours,
            ),
            Case(
                "dashboard",
                stack.web_port,
                request_bytes("/dashboard/", data.cookie),
                b"</html>",
                ours,
            ),
        ]
        if args.versus:
            port = port_free()
            gunicorn_start(stack, "versus", port=port, workers=args.workers, chdir=args.versus)
            request = request_bytes("/dashboard/", data.cookie)
            theirs = serving(stack, "versus")
            cases.append(Case(f"dashboard of {args.versus}", port, request, b"</html>", theirs))
        print(header(data, args), flush=True)
        checks_ok = figures_check(stack.web_port, data)
        queries = queries_count(data)
        rounds = measure(cases, args)
        ok = report(cases, rounds, queries, args) and checks_ok
        ok = figures_check(stack.web_port, data, after_load=True) and ok
    finally:
        stack.stop()
        if ok:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"logs kept in {workdir}")
    return 0 if ok else 1


# --- the processes ------------------------------------------------------------------------------


def stack_start(stack: Stack) -> None:
    """What every gunicorn benchmark starts with (benchmarks.api too): a redis-server of the
    run's own, the database (created if missing, then migrated), Django set up on PostgreSQL."""
    redis_start(stack)
    customer_list.database_ensure(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor != "postgresql":
        raise SystemExit("This benchmark needs PostgreSQL (DATABASE_URL).")
    call_command("migrate", verbosity=0)


def redis_start(stack: Stack) -> None:
    """A redis-server of the run's own: the cache starts empty, and nothing else writes to it."""
    redis = shutil.which("redis-server")
    if redis is None:
        raise SystemExit("redis-server is needed (apt-get install redis-server).")
    stack.spawn(
        "redis",
        f"{redis} --port {stack.redis_port} --bind 127.0.0.1 --save '' --appendonly no "
        f"--dir {shlex.quote(str(stack.workdir))}",
    )
    # Set before Django starts: this process's cache and gunicorn's are the same Redis.
    os.environ["REDIS_URL"] = f"redis://127.0.0.1:{stack.redis_port}/0"
    os.environ.pop("CELERY_BROKER_URL", None)
    os.environ.pop("CELERY_RESULT_BACKEND", None)
    wait_for("redis", lambda: redis_ping(stack.redis_port), timeout=10)


def gunicorn_start(
    stack: Stack, name: str, *, port: int, workers: int, chdir: Path | None = None
) -> None:
    """gunicorn as the Dockerfile starts it; with `chdir`, the application of that directory
    (gunicorn puts it first on the import path)."""
    venv = shlex.quote(str(Path(sys.executable).parent))
    where = f" --chdir {shlex.quote(str(chdir.resolve()))}" if chdir else ""
    stack.spawn(
        name,
        f"{venv}/gunicorn -c config/gunicorn.py config.wsgi:application "
        f"--bind 127.0.0.1:{port} --workers {workers}{where}",
    )
    wait_for(name, lambda: answers(port), timeout=30)


def answers(port: int) -> bool:
    """The minimal view sends a visitor without a session to the sign-in page."""
    import http.client

    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/benchmark/minimal/")
        return conn.getresponse().status == 302
    except OSError:
        return False


# --- the data -----------------------------------------------------------------------------------

# The catalogue: (SKU, name, GBP list price per licence per month, the reseller's cost as a share
# of it). EUR prices are 1.15 times; annual plans 10 % below flexible ones.
CATALOGUE = [
    ("dash-contacts", "Shared Contacts", "3.50", "0.78"),
    ("dash-labels", "Shared Labels", "2.50", "0.80"),
    ("dash-calendar", "Team Calendar", "4.00", "0.75"),
    ("dash-signatures", "Email Signatures", "2.00", "0.82"),
    ("dash-backup", "Drive Backup", "6.00", "0.70"),
    ("dash-archive", "Mail Archive", "5.00", "0.74"),
    ("dash-security", "Security Suite", "8.00", "0.72"),
    ("dash-forms", "Smart Forms", "3.00", "0.80"),
    ("dash-meet", "Meeting Rooms", "4.50", "0.76"),
    ("dash-tasks", "Shared Tasks", "2.25", "0.85"),
    ("dash-voice", "Cloud Voice", "9.00", "0.71"),
    ("dash-sign", "E-Signature", "5.50", "0.77"),
]
EUR_FACTOR = Decimal("1.15")
ANNUAL_FACTOR = Decimal("0.90")
# A live subscription's status (a cancelled customer's are all cancelled).
SUBSCRIPTION_STATUS_WEIGHTS = {"active": 84, "trial": 4, "suspended": 4, "cancelled": 8}
PLAN_WEIGHTS = {"flexible": 45, "annual_monthly": 40, "annual_yearly": 15}
EUR_SHARE = 0.15  # customers billed in euros
VAT = {"GBP": Decimal("20.00"), "EUR": Decimal("0.00")}  # domestic; reverse charge
PAYMENT_TERMS_DAYS = 14
CENT = Decimal("0.01")


def months_add(day: date, months: int, anchor_day: int) -> date:
    """`day` moved by `months` months, on `anchor_day` or the month's last day."""
    import calendar

    years, month = divmod(day.month - 1 + months, 12)
    year = day.year + years
    return date(year, month + 1, min(anchor_day, calendar.monthrange(year, month + 1)[1]))


def periods_since(start: date, on: date) -> int:
    """How many whole months from `start` (its day the anchor) until the period holding `on`."""
    months = (on.year - start.year) * 12 + on.month - start.month
    while months > 0 and months_add(start, months, start.day) > on:
        months -= 1
    return max(months, 0)


@dataclass
class Story:
    """One subscription's life as the benchmark makes it: bought, perhaps its licences changed,
    perhaps suspended or cancelled since (times in UTC)."""

    public_id: str
    customer_id: int
    customer_public_id: str
    organisation: str
    product: int  # index in CATALOGUE
    kind: str  # the plan's kind
    currency: str
    status: str
    licences: int
    licences_first: int
    price: Decimal  # the customer's, per licence per month
    cost: Decimal  # the reseller's, per licence per month
    bought: datetime
    changed: datetime | None = None  # licences_first → licences
    ended: datetime | None = None  # suspended or cancelled
    reason: str = ""


@dataclass
class Data:
    reseller: Any
    owner: Any
    cookie: str
    customers: int
    total: int
    subscriptions: int
    activity: int
    history_days: int
    seconds_to_load: float | None
    # The first run of insights.services.snapshots_take on the data (the backfill of the whole
    # history, replayed from the audit log), when it was loaded by this run; and this run's.
    seconds_backfill: float | None = None
    seconds_hourly: float | None = None
    snapshot_rows: int = 0


def seed(
    *,
    customers: int,
    total: int,
    per_reseller: int,
    reload: bool,
    subscriptions: int | None = None,
    history_days: int = 730,
) -> Data:
    """The Customers benchmark's customers (benchmarks/customer_list.py), the reseller's team,
    then its subscriptions, charges, invoices and audit log over `history_days` days, and the
    daily snapshots the hourly job makes of them; each reused when already there. The other
    resellers keep the Customers benchmark's subscriptions (no history)."""
    from django.db import connection

    from core.models import User
    from resellers.models import AuditEvent, Membership, Reseller
    from subscriptions.models import Subscription

    wanted = subscriptions if subscriptions is not None else customers * 10
    loaded = customer_list.seed(
        total=total, mine=customers, per_reseller=per_reseller, reload=reload
    )
    reseller = Reseller.objects.get(pk=loaded.reseller_id)
    domain = customer_list.OWNER_EMAIL.partition("@")[2]
    for role, name in TEAM:
        user, _ = User.objects.get_or_create(email=f"{name}@{domain}")
        Membership.objects.get_or_create(reseller=reseller, user=user, defaults={"role": role})
    from insights.models import DailySnapshot

    seconds = loaded.seconds_to_load
    mine = Subscription.objects.filter(customer__reseller=reseller)
    backfill = None
    if (
        reload
        or seconds is not None
        or mine.count() != wanted
        or not DailySnapshot.objects.filter(reseller=reseller).exists()
    ):
        started = time.perf_counter()
        history_load(reseller=reseller, actor=loaded.owner, subscriptions=wanted, days=history_days)
        with connection.cursor() as cursor:
            for table in history_tables():
                cursor.execute(f"VACUUM ANALYZE {table}")
        seconds = (seconds or 0) + time.perf_counter() - started
        backfill, _rows = snapshots_time()
    hourly, rows = snapshots_time()
    first = DailySnapshot.objects.filter(reseller=reseller).order_by("day").first()
    return Data(
        reseller=reseller,
        owner=loaded.owner,
        cookie=customer_list.session_cookie(loaded.owner),
        customers=loaded.mine,
        total=loaded.total,
        subscriptions=mine.count(),
        activity=AuditEvent.objects.filter(reseller=reseller).count(),
        history_days=(today() - first.day).days if first else 0,
        seconds_to_load=seconds,
        seconds_backfill=backfill,
        seconds_hourly=hourly,
        snapshot_rows=rows,
    )


def today() -> date:
    from django.utils import timezone

    return timezone.localdate()


def snapshots_time() -> tuple[float, int]:
    """One run of the hourly snapshot job as Celery beat runs it (every reseller): seconds, rows
    written."""
    from insights.services import snapshots_take

    started = time.perf_counter()
    rows = snapshots_take()
    return time.perf_counter() - started, rows


def history_tables() -> list[str]:
    from billing.models import Invoice
    from insights.models import DailySnapshot
    from resellers.models import AuditEvent
    from subscriptions.models import Charge, Subscription

    return [
        model._meta.db_table for model in (Subscription, Charge, Invoice, AuditEvent, DailySnapshot)
    ]


def history_load(*, reseller: Any, actor: Any, subscriptions: int, days: int) -> None:
    """Empty the subscription, billing, audit and snapshot tables (TRUNCATE: the triggers refuse
    to delete issued invoices row by row; only the benchmark's data is here, customer_list.seed
    checked), give the other resellers the Customers benchmark's subscriptions again, and COPY
    in the reseller's: its subscriptions, their charges, its invoices and its audit log."""
    from django.db import connection, transaction

    from billing.models import Invoice
    from customers.models import Customer
    from insights.models import DailySnapshot
    from resellers.models import AuditEvent
    from subscriptions.models import Subscription

    with transaction.atomic():
        with connection.cursor() as cursor:
            tables = [Subscription, Invoice, AuditEvent, DailySnapshot]
            cursor.execute(
                f"TRUNCATE {', '.join(model._meta.db_table for model in tables)} CASCADE"
            )
        others = list(Customer.objects.exclude(reseller=reseller).values_list("pk", flat=True))
        customer_list.subscriptions_copy(others)
        plans = catalogue_ensure()
        stories = stories_make(reseller=reseller, subscriptions=subscriptions, days=days)
        subscriptions_copy(stories, plans)
        charges_copy(stories)
        invoices_copy(reseller=reseller, stories=stories, days=days)
        activity_copy(reseller=reseller, actor=actor, stories=stories)


def catalogue_ensure() -> dict[tuple[int, str], Any]:
    """The twelve products, each with its four plans and their prices in GBP and EUR:
    {(product index, kind): Plan}."""
    from subscriptions.models import Plan, PlanPrice, Product

    plans = {}
    for index, (sku, name, _price, _cost) in enumerate(CATALOGUE):
        product, _ = Product.objects.get_or_create(sku=sku, defaults={"name": name})
        for kind in Plan.Kind.values:
            plan, _ = Plan.objects.get_or_create(product=product, kind=kind)
            plans[(index, kind)] = plan
            for currency in ("GBP", "EUR"):
                PlanPrice.objects.get_or_create(
                    plan=plan,
                    currency=currency,
                    defaults={"monthly_price": list_price(index, kind, currency)},
                )
    return plans


def list_price(product: int, kind: str, currency: str) -> Decimal:
    price = Decimal(CATALOGUE[product][2])
    if currency == "EUR":
        price *= EUR_FACTOR
    if kind in ("annual_monthly", "annual_yearly"):
        price *= ANNUAL_FACTOR
    return price.quantize(CENT)


def stories_make(*, reseller: Any, subscriptions: int, days: int) -> list[Story]:
    """`subscriptions` subscriptions over the reseller's customers that are not merely invited:
    1 to 15 each (a customer holds one live subscription per product at most, so beyond 12 the
    rest are cancelled ones it replaced), bought at times spread over the last `days` days
    (never before the customer was created), trials in the last 30 days."""
    import random

    from core.ids import new_public_id
    from customers.models import Customer

    rng = random.Random(20261207)  # noqa: S311 - test data, not secrets
    now = datetime.now(UTC)
    start = now - timedelta(days=days) + timedelta(hours=1)
    holders = list(
        Customer.objects.filter(reseller=reseller)
        .exclude(status=Customer.Status.INVITED)
        .order_by("pk")
        .values_list("pk", "public_id", "organisation", "status", "created_at")
    )
    if not holders or subscriptions > 15 * len(holders):
        raise SystemExit(f"{subscriptions} subscriptions need more customers than {len(holders)}")
    mean = subscriptions / len(holders)
    counts = [min(15, max(1, round(rng.gauss(mean, 3.0)))) for _ in holders]
    while (difference := subscriptions - sum(counts)) != 0:
        n = rng.randrange(len(counts))
        if difference > 0 and counts[n] < 15:
            counts[n] += 1
        elif difference < 0 and counts[n] > 1:
            counts[n] -= 1
    statuses, status_weights = zip(*SUBSCRIPTION_STATUS_WEIGHTS.items(), strict=True)
    kinds, kind_weights = zip(*PLAN_WEIGHTS.items(), strict=True)
    stories = []

    def moment(after: datetime, before: datetime) -> datetime:
        if before <= after:
            return after
        return after + (before - after) * rng.random()

    def story_make(
        pk: int,
        public_id: str,
        organisation: str,
        product: int,
        status: str,
        currency: str,
        discount: Decimal,
        earliest: datetime,
        latest: datetime,
    ) -> Story:
        kind = "trial" if status == "trial" else rng.choices(kinds, kind_weights)[0]
        if kind == "trial":
            bought = moment(max(earliest, now - timedelta(days=29)), now - timedelta(hours=1))
            licences = rng.randint(1, 10)
        else:
            bought = moment(earliest, latest)
            licences = max(1, min(2000, int(rng.lognormvariate(2.0, 1.1))))
        price = list_price(product, kind, currency)
        story = Story(
            public_id=new_public_id(),
            customer_id=pk,
            customer_public_id=public_id,
            organisation=organisation,
            product=product,
            kind=kind,
            currency=currency,
            status=status,
            licences=licences,
            licences_first=licences,
            price=(price * (1 - discount)).quantize(CENT),
            cost=(price * Decimal(CATALOGUE[product][3])).quantize(CENT),
            bought=bought,
        )
        if kind == "trial":
            story.price = story.cost = Decimal("0.00")
        elif rng.random() < 0.4:
            story.licences_first = max(1, licences + rng.choice([-3, -2, -1, 1, 2, 5]))
            if story.licences_first != licences:
                story.changed = moment(bought, min(latest + timedelta(hours=1), now))
        if status in ("suspended", "cancelled"):
            story.ended = moment(story.changed or bought, latest + timedelta(hours=1))
            story.reason = rng.choice(["pending_payment", "reseller_initiated"])
        return story

    for (pk, public_id, organisation, customer_status, created), count in zip(
        holders, counts, strict=True
    ):
        currency = "EUR" if rng.random() < EUR_SHARE else "GBP"
        discount = rng.choice([Decimal("0"), Decimal("0"), Decimal("0.05"), Decimal("0.10")])
        products = rng.sample(range(len(CATALOGUE)), min(count, len(CATALOGUE)))
        # Beyond one per product: an earlier subscription of the same product, cancelled before
        # the live one was bought.
        replaced = set(rng.sample(products, count - len(products)))
        earliest = min(max(created, start), now - timedelta(hours=3))
        for product in products:
            if customer_status == Customer.Status.CANCELLED:
                status = "cancelled"
            else:
                status = rng.choices(statuses, status_weights)[0]
            story = story_make(
                pk,
                public_id,
                organisation,
                product,
                status,
                currency,
                discount,
                earliest,
                now - timedelta(hours=2),
            )
            stories.append(story)
            if product in replaced:
                before = story_make(
                    pk,
                    public_id,
                    organisation,
                    product,
                    "cancelled",
                    currency,
                    discount,
                    earliest,
                    story.bought - timedelta(hours=1),
                )
                before.bought = min(before.bought, story.bought - timedelta(hours=1))
                before.changed = None
                before.licences_first = before.licences
                before.ended = moment(before.bought, story.bought - timedelta(minutes=30))
                stories.append(before)
    return stories


def subscriptions_copy(stories: list[Story], plans: dict[tuple[int, str], Any]) -> None:
    """The subscriptions as they stand now: periods and annual terms from the day each was
    bought (its anchor), so that terms end all through the coming year."""
    from subscriptions.models import Subscription

    now = datetime.now(UTC)

    def rows() -> Iterator[Subscription]:
        for story in stories:
            bought = story.bought.date()
            on = (story.ended or now).date() if story.status == "cancelled" else now.date()
            plan = plans[(story.product, story.kind)]
            term_start = term_end = None
            if story.kind == "trial":
                period_start, period_end = bought, bought + timedelta(days=30)
                term_start, term_end = period_start, period_end
            else:
                months = periods_since(bought, on)
                period_start = months_add(bought, months, bought.day)
                period_end = months_add(bought, months + 1, bought.day)
                if story.kind != "flexible":
                    years = months // 12
                    term_start = months_add(bought, 12 * years, bought.day)
                    term_end = months_add(bought, 12 * (years + 1), bought.day)
                    if story.kind == "annual_yearly":
                        period_start, period_end = term_start, term_end
            yield Subscription(
                public_id=story.public_id,
                customer_id=story.customer_id,
                product_id=plan.product_id,
                plan=plan,
                currency=story.currency,
                licences=story.licences,
                status=story.status,
                suspension_reason=story.reason if story.status == "suspended" else "",
                payer="reseller_card",
                anchor_day=bought.day,
                anchor_month=bought.month,
                monthly_price=story.price,
                period_start=period_start,
                period_end=period_end,
                term_start=term_start,
                term_end=term_end,
                created_at=story.bought,
                status_changed_at=story.ended,
                cancelled_at=story.ended if story.status == "cancelled" else None,
            )

    customer_list.rows_copy(Subscription, rows())


def charges_copy(stories: list[Story]) -> None:
    """What each paid subscription was charged: its first period when bought, and, when that
    is over, its current period (the charge the margin reads its cost from), both at the
    subscription's cost."""
    from subscriptions.models import Charge, Subscription
    from subscriptions.pricing_models import PriceSource

    mine = {story.public_id for story in stories}
    ids, periods = {}, {}
    for public_id, pk, period_start in Subscription.objects.values_list(
        "public_id", "id", "period_start"
    ).iterator(chunk_size=10_000):
        if public_id in mine:
            ids[public_id], periods[pk] = pk, period_start

    def charge(story: Story, kind: str, start: date, end: date, at: datetime) -> Charge:
        months = 12 if story.kind == "annual_yearly" else 1
        unit_price = story.price * months
        unit_cost = story.cost * months
        return Charge(
            subscription_id=ids[story.public_id],
            customer_id=story.customer_id,
            kind=kind,
            description=f"{CATALOGUE[story.product][1]} {start:%Y-%m-%d} to {end:%Y-%m-%d}",
            payer="reseller_card",
            period_start=start,
            period_end=end,
            licences=story.licences,
            unit_price=unit_price,
            amount=unit_price * story.licences,
            currency=story.currency,
            list_unit_price=unit_price,
            unit_cost=unit_cost,
            unit_margin=unit_price - unit_cost,
            cost_amount=unit_cost * story.licences,
            margin_amount=(unit_price - unit_cost) * story.licences,
            monthly_list_price=story.price,
            monthly_price=story.price,
            monthly_cost=story.cost,
            price_source=PriceSource.LIST_PRICE,
            created_at=at,
            invoiced_at=at,
        )

    def rows() -> Iterator[Charge]:
        for story in stories:
            if story.kind == "trial":
                continue
            bought = story.bought.date()
            current = periods[ids[story.public_id]]
            first_end = months_add(bought, 12 if story.kind == "annual_yearly" else 1, bought.day)
            yield charge(story, "purchase", bought, first_end, story.bought)
            if story.status != "cancelled" and current > bought:
                at = datetime.combine(current, datetime.min.time(), tzinfo=UTC) + timedelta(hours=2)
                end = months_add(current, 12 if story.kind == "annual_yearly" else 1, bought.day)
                yield charge(story, "period", current, end, at)

    customer_list.rows_copy(Charge, rows())


def invoices_copy(*, reseller: Any, stories: list[Story], days: int) -> None:
    """A monthly invoice for each customer from the month of its first purchase, of about
    what its subscriptions bring in (VAT added), without lines (the dashboard reads none):
    paid within two weeks, except in the last two months, where some are open (overdue once
    past their due date) or their payment failed; a few older ones credited by a credit note,
    and a few never paid."""
    import random

    from django.conf import settings

    from billing.models import Invoice

    rng = random.Random(20261208)  # noqa: S311 - test data, not secrets
    now = datetime.now(UTC)
    first_day = now.date() - timedelta(days=days)
    by_customer: dict[int, list[Story]] = {}
    for story in stories:
        by_customer.setdefault(story.customer_id, []).append(story)
    seller = {
        "name": settings.VENDOR_NAME,
        "country": settings.VENDOR_COUNTRY,
        "vat_id": settings.VENDOR_VAT_ID,
    }
    credited: list[tuple[str, Invoice]] = []
    serial = 0

    def rows() -> Iterator[Invoice]:
        nonlocal serial
        for customer_id, held in by_customer.items():
            paid_for = [s for s in held if s.kind != "trial"]
            if not paid_for:
                continue
            monthly = sum((s.price * s.licences for s in paid_for), Decimal("0"))
            first = max(min(s.bought for s in paid_for).date(), first_day)
            last = max((s.ended or now) for s in paid_for).date()
            if all(s.status != "cancelled" for s in paid_for):
                last = now.date()
            currency = paid_for[0].currency
            organisation = paid_for[0].organisation
            for month in range(periods_since(first, last) + 1):
                issue = months_add(first, month, first.day)
                if issue > now.date():
                    break
                subtotal = max(Decimal("5.00"), monthly * Decimal(rng.uniform(0.85, 1.1))).quantize(
                    CENT
                )
                vat = (subtotal * VAT[currency] / 100).quantize(CENT)
                due = issue + timedelta(days=PAYMENT_TERMS_DAYS)
                recent = (now.date() - issue).days < 60
                draw = rng.random()
                status, paid_at = Invoice.Status.PAID, None
                if recent and draw < 0.22:
                    status = Invoice.Status.OPEN
                elif recent and draw < 0.27:
                    status = Invoice.Status.PAYMENT_FAILED
                elif not recent and draw < 0.004:
                    status = Invoice.Status.OPEN  # never paid
                elif not recent and draw < 0.01:
                    status = Invoice.Status.CREDITED
                if status == Invoice.Status.PAID:
                    paid_at = datetime.combine(issue, datetime.min.time(), tzinfo=UTC) + timedelta(
                        days=rng.uniform(0, 14), hours=9
                    )
                    if paid_at > now:
                        status, paid_at = Invoice.Status.OPEN, None
                serial += 1
                invoice = Invoice(
                    kind=Invoice.Kind.INVOICE,
                    number=f"DB-{serial:09d}",
                    customer_id=customer_id,
                    reseller_id=reseller.pk,
                    payer="reseller_card",
                    currency=currency,
                    language="en",
                    issue_date=issue,
                    due_date=due,
                    seller=seller,
                    buyer={"name": organisation, "country": "GB"},
                    vat_treatment="domestic" if currency == "GBP" else "reverse_charge",
                    vat_rate=VAT[currency],
                    subtotal=subtotal,
                    vat_amount=vat,
                    total=subtotal + vat,
                    issued_at=datetime.combine(issue, datetime.min.time(), tzinfo=UTC)
                    + timedelta(hours=3),
                    status=status,
                    paid_at=paid_at,
                    pdf_sha256="0" * 64,
                )
                if status == Invoice.Status.CREDITED:
                    credited.append((invoice.number, invoice))
                yield invoice

    customer_list.rows_copy(Invoice, rows())
    ids = dict(
        Invoice.objects.filter(number__in=[number for number, _ in credited]).values_list(
            "number", "id"
        )
    )

    def notes() -> Iterator[Invoice]:
        nonlocal serial
        for number, invoice in credited:
            serial += 1
            day = invoice.issue_date + timedelta(days=rng.randrange(3, 20))
            yield Invoice(
                kind=Invoice.Kind.CREDIT_NOTE,
                number=f"DB-{serial:09d}",
                corrects_id=ids[number],
                customer_id=invoice.customer_id,
                reseller_id=reseller.pk,
                payer=invoice.payer,
                currency=invoice.currency,
                language="en",
                issue_date=day,
                due_date=day,
                seller=invoice.seller,
                buyer=invoice.buyer,
                vat_treatment=invoice.vat_treatment,
                vat_rate=invoice.vat_rate,
                subtotal=invoice.subtotal,
                vat_amount=invoice.vat_amount,
                total=invoice.total,
                issued_at=datetime.combine(day, datetime.min.time(), tzinfo=UTC)
                + timedelta(hours=3),
                status=Invoice.Status.CREDITED,
                pdf_sha256="0" * 64,
            )

    customer_list.rows_copy(Invoice, notes())


def activity_copy(*, reseller: Any, actor: Any, stories: list[Story]) -> None:
    """The reseller's audit log as the services write it: each customer invited, and accepted
    unless still invited; each subscription bought (its whole state), its licences changed,
    suspended or cancelled; customers that revoked the reseller's access or moved to another
    reseller, after their last subscription's event. Oldest first, as they happened."""
    import random

    from customers.models import Customer
    from resellers.models import AuditEvent

    rng = random.Random(20261206)  # noqa: S311 - test data, not secrets
    now = datetime.now(UTC)
    events: list[AuditEvent] = []

    def event(
        action: str,
        at: datetime,
        kind: str,
        object_id: str,
        name: str,
        customer: str,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
    ) -> None:
        events.append(
            AuditEvent(
                actor=actor,
                actor_email=actor.email,
                reseller=reseller,
                customer_public_id=customer,
                action=action,
                object_type=kind,
                object_id=object_id,
                object_repr=name[:255],
                before=before,
                after=after,
                created_at=min(at, now - timedelta(seconds=1)),
            )
        )

    last: dict[str, datetime] = {}
    for story in stories:
        name = f"{story.organisation} — {CATALOGUE[story.product][1]}"
        sub = "subscriptions.subscription"
        first_status = "trial" if story.kind == "trial" else "active"
        state = {
            "status": first_status,
            "suspension_reason": "",
            "licences": story.licences_first,
            "renewal_setting": "auto_renew",
            "monthly_price": str(story.price),
        }
        args = (sub, story.public_id, name, story.customer_public_id)
        event("subscription.bought", story.bought, *args, None, state)
        ended = story.bought
        if story.changed is not None:
            action = (
                "subscription.licences_added"
                if story.licences > story.licences_first
                else "subscription.licences_removed"
            )
            event(
                action,
                story.changed,
                *args,
                {"licences": story.licences_first},
                {"licences": story.licences},
            )
            ended = story.changed
        if story.status in ("suspended", "cancelled") and story.ended is not None:
            change = (
                {"status": "suspended", "suspension_reason": story.reason}
                if story.status == "suspended"
                else {"status": "cancelled"}
            )
            event(f"subscription.{story.status}", story.ended, *args, {"status": "active"}, change)
            ended = story.ended
        last[story.customer_public_id] = max(last.get(story.customer_public_id, ended), ended)
    for public_id, organisation, status, created in Customer.objects.filter(
        reseller=reseller
    ).values_list("public_id", "organisation", "status", "created_at"):
        customer = "customers.customer"
        event("customer.invited", created, customer, public_id, organisation, public_id)
        if status == Customer.Status.INVITED:
            continue
        accepted = created + timedelta(hours=rng.randrange(1, 72))
        event("customer.accepted", accepted, customer, public_id, organisation, public_id)
        if status in (Customer.Status.ACCESS_REVOKED, Customer.Status.TRANSFERRED_OUT):
            since = max(last.get(public_id, accepted), accepted)
            at = since + (now - since) * rng.random()
            event(
                f"customer.{status}",
                at,
                customer,
                public_id,
                organisation,
                public_id,
                {"status": "active"},
                {"status": str(status)},
            )
    events.sort(key=lambda e: e.created_at)
    customer_list.rows_copy(AuditEvent, events)


# --- what the page must show ---------------------------------------------------------------------

# Customers that left the reseller: their subscriptions count for it no more (the spec's "a
# subscription counts while its customer is the reseller's").
LEFT = ("access_revoked", "transferred_out")
MRR_CHANGE_DAYS = 30
TRIAL_DAYS = 7
CHART_MONTHS = 12


class PageFigures(HTMLParser):
    """What the page shows: {(data-figure, currency): data-value} (the value on the element
    that names the figure, or on the first element inside it that has one; the currency on it
    or on the nearest element around it that has one), and the charts' tables:
    {data-chart: {data-month: [data-value, ...]}}. The currency of the charts is the one
    chosen in the currency select, else the first card's."""

    VOID = frozenset(
        "area base br col embed hr img input link meta source track wbr".split()  # noqa: SIM905
    )

    def __init__(self) -> None:
        super().__init__()
        self.figures: dict[tuple[str, str], str] = {}
        self.charts: dict[str, dict[str, list[str]]] = {}
        self.stack: list[dict[str, str]] = []
        self.pending: list[tuple[int, str, str]] = []  # (depth, figure, currency)
        self.chart = ""
        self.month = ""
        self.cards_currency = ""

    def handle_starttag(self, tag: str, attributes: list[tuple[str, str | None]]) -> None:
        attrs = {name: value or "" for name, value in attributes}
        if tag not in self.VOID:
            self.stack.append({"tag": tag, **attrs})
        currency = attrs.get("data-currency") or next(
            (e["data-currency"] for e in reversed(self.stack) if e.get("data-currency")), ""
        )
        if "data-figure" in attrs:
            self.pending.append((len(self.stack), attrs["data-figure"], currency))
            self.cards_currency = self.cards_currency or currency
        if tag == "table" and "data-chart" in attrs:
            self.chart = attrs["data-chart"]
            self.charts[self.chart] = {}
        if tag == "tr" and self.chart and "data-month" in attrs:
            self.month = attrs["data-month"]
            self.charts[self.chart][self.month] = []
        if "data-value" in attrs:
            if self.chart and self.month:
                self.charts[self.chart][self.month].append(attrs["data-value"])
            elif self.pending:
                _depth, figure, figure_currency = self.pending.pop()
                self.figures[(figure, figure_currency)] = attrs["data-value"]

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        while self.stack:
            element = self.stack.pop()
            if element["tag"] == tag:
                break
        self.pending = [p for p in self.pending if p[0] <= len(self.stack)]
        if tag == "table":
            self.chart = ""
        if tag == "tr":
            self.month = ""


@dataclass
class Expected:
    """The page's figures and chart tables as fresh queries written here give them (not
    through insights.selectors): `required` every figure the page must show; `optional` those
    it may show (an "Open" card of a currency with nothing open)."""

    required: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    optional: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    currency: str = ""  # the charts'
    charts: dict[str, dict[str, list[Decimal]]] = field(default_factory=dict)


def sql(query: str, params: list[Any]) -> list[tuple[Any, ...]]:
    """The rows of `query`, its {names} replaced by the models' tables (table_names)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(query.format(**table_names()), params)
        return list(cursor.fetchall())


def table_names() -> dict[str, str]:
    from billing.models import Invoice, Payment, Refund
    from customers.models import Customer
    from insights.models import DailySnapshot
    from subscriptions.models import Charge, Subscription

    return {
        "subscription": Subscription._meta.db_table,
        "customer": Customer._meta.db_table,
        "charge": Charge._meta.db_table,
        "invoice": Invoice._meta.db_table,
        "payment": Payment._meta.db_table,
        "refund": Refund._meta.db_table,
        "snapshot": DailySnapshot._meta.db_table,
    }


def expected_read(data: Data) -> Expected:
    """Straight from the tables, in SQL: MRR, margin (the price less the cost of the latest
    charge; none without a charge) and licences of the active subscriptions of customers that
    are still the reseller's, per currency; trials ending in the next 7 days; what unpaid
    invoices (open or payment failed) still owe, and of it what is past its due date (total
    less credit notes and payments, plus refunds); customers
    by status; MRR 30 days ago and each past month's chart points from the daily snapshots (the
    last day of the month; the money summed over its days); this month's money from the
    invoices."""
    reseller = data.reseller.pk
    day = today()
    live = {
        currency: (mrr, margin, licences)
        for currency, mrr, margin, licences in sql(
            """
            SELECT s.currency,
                COALESCE(SUM(s.licences * s.monthly_price) FILTER (WHERE s.status = 'active'), 0),
                COALESCE(SUM(s.licences * (s.monthly_price - COALESCE(c.monthly_cost,
                    s.monthly_price))) FILTER (WHERE s.status = 'active'), 0),
                COALESCE(SUM(s.licences) FILTER (WHERE s.status = 'active'), 0)
            FROM {subscription} s
            JOIN {customer} cu ON cu.id = s.customer_id
            LEFT JOIN LATERAL (SELECT monthly_cost FROM {charge} WHERE subscription_id = s.id
                ORDER BY id DESC LIMIT 1) c ON TRUE
            WHERE cu.reseller_id = %s AND cu.status <> ALL(%s) AND s.status <> 'cancelled'
            GROUP BY s.currency
            """,
            [reseller, list(LEFT)],
        )
    }
    owed = {
        currency: (open_, overdue)
        for currency, open_, overdue in sql(
            """
            SELECT currency, SUM(GREATEST(balance, 0)),
                COALESCE(SUM(GREATEST(balance, 0)) FILTER (WHERE due_date < %s), 0)
            FROM (
                SELECT i.currency, i.status, i.due_date, i.total
                    - COALESCE((SELECT SUM(n.total) FROM {invoice} n WHERE n.corrects_id = i.id
                        AND n.kind = 'credit_note'), 0)
                    - COALESCE((SELECT SUM(p.amount) FROM {payment} p WHERE p.invoice_id = i.id
                        AND p.status = 'succeeded'), 0)
                    + COALESCE((SELECT SUM(r.amount) FROM {refund} r WHERE r.invoice_id = i.id
                        AND r.status = 'succeeded'), 0) AS balance
                FROM {invoice} i
                WHERE i.reseller_id = %s AND i.kind = 'invoice'
                    AND i.status IN ('open', 'payment_failed')
            ) unpaid
            GROUP BY currency
            """,
            [day, reseller],
        )
    }
    months = [date(day.year, day.month, 1)]
    while len(months) < CHART_MONTHS:
        previous = months[0] - timedelta(days=1)
        months.insert(0, date(previous.year, previous.month, 1))
    snapshots = sql(
        "SELECT currency, day, mrr, margin, licences, invoiced, paid FROM {snapshot} "
        "WHERE reseller_id = %s AND day >= %s AND day < %s ORDER BY day",
        [reseller, months[0], day],
    )
    before = {
        currency: mrr
        for currency, on, mrr, *_rest in sql(
            "SELECT currency, day, mrr FROM {snapshot} WHERE reseller_id = %s AND day = %s",
            [reseller, day - timedelta(days=MRR_CHANGE_DAYS)],
        )
    }
    currencies = sorted(set(live) | set(owed) | {row[0] for row in snapshots})
    expected = Expected()
    zero = Decimal("0")
    for currency in currencies:
        mrr, margin, _licences = live.get(currency, (zero, zero, 0))
        expected.required[("mrr", currency)] = mrr
        expected.required[("margin", currency)] = margin
        if currency in before:
            expected.required[("mrr-change", currency)] = mrr - before[currency]
        open_, overdue = owed.get(currency, (zero, zero))
        target = expected.required if open_ else expected.optional
        target[("open", currency)] = open_
        target[("overdue", currency)] = overdue
    expected.required[("licences", "")] = Decimal(sum(v[2] for v in live.values()))
    (trials,) = sql(
        "SELECT COUNT(*) FROM {subscription} s JOIN {customer} cu ON cu.id = s.customer_id "
        "WHERE cu.reseller_id = %s AND s.status = 'trial' AND s.term_end > %s "
        "AND s.term_end <= %s AND cu.status NOT IN ('access_revoked', 'transferred_out')",
        [reseller, day, day + timedelta(days=TRIAL_DAYS)],
    )
    expected.required[("trials-ending", "")] = Decimal(trials[0])
    counts = dict(
        sql(
            "SELECT status, COUNT(*) FROM {customer} WHERE reseller_id = %s GROUP BY status",
            [reseller],
        )
    )
    for status in ("invited", "active", "cancelled"):
        expected.required[(f"customers-{status}", "")] = Decimal(counts.get(status, 0))
    # The charts: the currency bringing in the most (ties by code), its months.
    if currencies:
        expected.currency = min(currencies, key=lambda c: (-live.get(c, (zero,))[0], c))
    points: dict[str, dict[date, dict[str, Decimal]]] = {c: {} for c in currencies}
    for currency, on, mrr, margin, licences, invoiced, paid in snapshots:
        month = date(on.year, on.month, 1)
        point = points[currency].setdefault(month, {"invoiced": zero, "paid": zero})
        point.update(mrr=mrr, margin=margin, licences=Decimal(licences))
        point["invoiced"] += invoiced
        point["paid"] += paid
    zone = ZoneInfo(settings_time_zone())
    flows = {
        currency: (invoiced, paid)
        for currency, invoiced, paid in sql(
            """
            SELECT currency,
                COALESCE(SUM(CASE WHEN kind = 'credit_note' THEN -ABS(total) ELSE total END)
                    FILTER (WHERE issue_date >= %s AND issue_date <= %s), 0),
                COALESCE(SUM(total - COALESCE((SELECT SUM(n.total) FROM {invoice} n
                    WHERE n.corrects_id = i.id AND n.kind = 'credit_note'), 0))
                    FILTER (WHERE kind = 'invoice' AND paid_at >= %s AND paid_at < %s), 0)
            FROM {invoice} i WHERE reseller_id = %s GROUP BY currency
            """,
            [
                months[-1],
                day,
                datetime.combine(months[-1], datetime.min.time(), tzinfo=zone),
                datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone),
                reseller,
            ],
        )
    }
    for currency in currencies:
        mrr, margin, licences = live.get(currency, (zero, zero, 0))
        points[currency][months[-1]] = {
            "mrr": mrr,
            "margin": margin,
            "licences": Decimal(licences),
            "invoiced": flows.get(currency, (zero, zero))[0],
            "paid": flows.get(currency, (zero, zero))[1],
        }

    def series(currency: str, names: list[str]) -> dict[str, list[Decimal]]:
        return {
            f"{month:%Y-%m}": [points[currency].get(month, {}).get(name, zero) for name in names]
            for month in months
        }

    if expected.currency:
        expected.charts["chart-mrr"] = series(expected.currency, ["mrr", "margin"])
        expected.charts["chart-invoices"] = series(expected.currency, ["invoiced", "paid"])
    expected.charts["chart-licences"] = {
        f"{month:%Y-%m}": [
            sum((points[c].get(month, {}).get("licences", zero) for c in currencies), zero)
        ]
        for month in months
    }
    return expected


def settings_time_zone() -> str:
    from django.conf import settings

    return str(settings.TIME_ZONE)


def page_get(port: int, path: str, cookie: str) -> tuple[int, str]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", path, headers={"Cookie": cookie, "Accept-Language": "en"})
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def differences(expected: Expected, shown: PageFigures) -> list[str]:
    """What the page shows that the database does not say, figure by figure."""
    problems = []
    for key, value in expected.required.items():
        if key not in shown.figures:
            problems.append(f"{key}: missing, expected {value}")
    for key, text in shown.figures.items():
        want = expected.required.get(key, expected.optional.get(key))
        if want is None:
            problems.append(f"{key}: shows {text}, not expected")
        elif Decimal(text) != want:
            problems.append(f"{key}: shows {text}, expected {want}")
    if expected.currency and shown.cards_currency != expected.currency:
        problems.append(
            f"the charts' currency: {shown.cards_currency}, expected {expected.currency}"
        )
    for chart, rows in expected.charts.items():
        table = shown.charts.get(chart)
        if table is None:
            problems.append(f"{chart}: no table")
            continue
        if list(table) != list(rows):
            problems.append(f"{chart}: months {list(table)}, expected {list(rows)}")
            continue
        for month, values in rows.items():
            if [Decimal(v) for v in table[month]] != values:
                problems.append(f"{chart} {month}: shows {table[month]}, expected {values}")
    return problems


def figures_compare(port: int, data: Data, when: str) -> bool:
    status, page = page_get(port, "/dashboard/", data.cookie)
    expected = expected_read(data)
    shown = PageFigures()
    shown.feed(page)
    problems = [f"status {status}"] if status != 200 else differences(expected, shown)
    verdict(
        not problems,
        f"the dashboard's {len(shown.figures)} figures and "
        f"{sum(len(t) for t in shown.charts.values())} chart rows {when}",
    )
    for problem in problems[:12]:
        print(f"     {problem}")
    return not problems


def figures_check(port: int, data: Data, *, after_load: bool = False) -> bool:
    """The page's figures and charts against the database, then after a subscription's
    licences change through the service (the Add licences page's order: one fewer, and back),
    and after a customer's status changes (through Model.save(), as every service ends, and
    back): each must show on the very next request, so a figure kept in the cache after what
    it counts changed fails the run."""
    import uuid

    from customers.models import Customer
    from resellers.models import Membership
    from subscriptions.models import Subscription
    from subscriptions.services import subscription_change_licences

    if after_load:
        return figures_compare(port, data, "after the load")
    ok = figures_compare(port, data, "as loaded")
    subscription = (
        Subscription.objects.filter(
            customer__reseller=data.reseller,
            customer__status=Customer.Status.ACTIVE,
            status=Subscription.Status.ACTIVE,
            plan__kind="flexible",
            licences__gte=2,
            period_end__gt=today(),
        )
        .order_by("-licences", "id")
        .first()
    )
    if subscription is None:
        print("FAIL no flexible subscription to change")
        return False
    membership = Membership.objects.get(reseller=data.reseller, user=data.owner)
    count = subscription.licences
    for new_count in (count - 1, count):
        subscription_change_licences(
            membership=membership,
            subscription=Subscription.objects.get(pk=subscription.pk),
            new_count=new_count,
            expected_count=Subscription.objects.get(pk=subscription.pk).licences,
            order_key=str(uuid.uuid4()),
        )
        ok = (
            figures_compare(port, data, f"after a subscription went to {new_count} licences") and ok
        )
    customer = Customer.objects.filter(reseller=data.reseller, status="active").first()
    if customer is None:
        print("FAIL no active customer to change")
        return False
    for status in ("cancelled", "active"):
        customer.status = status
        customer.save(update_fields=["status"])
        ok = figures_compare(port, data, f"after a customer became {status}") and ok
    return ok


def queries_count(data: Data) -> dict[str, str]:
    """SQL queries of one request of each, through the same WSGI stack in this process: the
    dashboard with the cache emptied first (cold: its figures counted afresh) and again (warm),
    with the time the cold one took here (wall clock: mostly the database's) and the CPU a warm
    one takes here (the median of WARM_REQUESTS)."""
    from django.core.cache import cache
    from django.core.handlers.wsgi import WSGIHandler

    minimal = customer_list.Scenario(
        "minimal view", "/benchmark/minimal/", data.cookie, "ok", "yardstick"
    )
    customer_list.scenarios_check([minimal])
    cache.clear()
    cold = customer_list.Scenario("dashboard", "/dashboard/", data.cookie, "</html>", "dashboard")
    started = time.perf_counter()
    customer_list.scenarios_check([cold])
    cold_ms = (time.perf_counter() - started) * 1000
    warm = customer_list.Scenario("dashboard", "/dashboard/", data.cookie, "</html>", "dashboard")
    customer_list.scenarios_check([warm])
    application = WSGIHandler()
    cpu: dict[str, list[float]] = {"minimal view": [], "dashboard": []}
    for _ in range(WARM_REQUESTS):
        for scenario in (minimal, warm):
            started = time.process_time()
            customer_list.wsgi_call(application, scenario)
            cpu[scenario.name].append((time.process_time() - started) * 1000)
    warm_cpu = {name: statistics.median(values) for name, values in cpu.items()}
    return {
        "minimal view": f"{len(minimal.queries)} ({warm_cpu['minimal view']:.1f} ms CPU here)",
        "dashboard": f"{len(cold.queries)} cold ({cold_ms:.0f} ms), {len(warm.queries)} warm "
        f"({warm_cpu['dashboard']:.1f} ms CPU here)",
    }


# --- the load -----------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    requests: int = 0
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    client_cpu: float = 0.0  # seconds of CPU this process used
    machine_busy: float = 0.0  # share of all cores busy, from /proc/stat
    served: int = 0  # every answer, including those that came after the phase's end
    server_cpu: float = 0.0  # seconds of CPU of the gunicorn workers, PostgreSQL and Redis

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_per_request(self) -> float:
        return self.server_cpu / max(1, self.served)


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle and iowait
    return sum(values) - idle, sum(values)


def request_bytes(path: str, cookie: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n"
        "Accept-Language: en\r\nConnection: close\r\n\r\n"
    ).encode()


@dataclass
class Case:
    name: str
    port: int
    request: bytes
    end: bytes  # how the whole answer ends
    serving: Callable[[], list[int]]  # the processes that do the work: gunicorn's workers...


def processes_cpu(pids: list[int]) -> float:
    """Seconds of CPU (user and system) the processes used since they started."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def serving(stack: Stack, server: str) -> Callable[[], list[int]]:
    """The gunicorn workers of `server`, the redis-server and the database's backends (except
    this process's own): what a request costs, wherever it runs. The CPU they use per request
    does not depend on what else the machine runs, as the requests per second do."""

    def pids() -> list[int]:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            backends = [row[0] for row in cursor.fetchall()]
        master = stack.processes[server].pid
        workers = [pid for pid, parent in process_parents().items() if parent == master]
        return [*workers, stack.processes["redis"].pid, *backends]

    return pids


def phase_run(case: Case, *, seconds: float, connections: int) -> Phase:
    """`connections` threads, each sending the case's request again as soon as its answer is
    in, for `seconds`; a request still open at the end is not counted."""
    phase = Phase(case.name, seconds=seconds)
    lock = threading.Lock()
    pids = case.serving()
    server_before = processes_cpu(pids)
    cpu_before, busy_before = time.process_time(), cpu_times()
    until = time.monotonic() + seconds

    def client() -> None:
        done, served, failures = 0, 0, []
        while time.monotonic() < until:
            try:
                with socket.create_connection(("127.0.0.1", case.port), timeout=30) as sock:
                    sock.sendall(case.request)
                    chunks = []
                    while chunk := sock.recv(65536):
                        chunks.append(chunk)
            except OSError as error:
                failures.append(repr(error))
                continue
            served += 1
            if time.monotonic() > until:
                break
            answer = b"".join(chunks)
            if answer.startswith(b"HTTP/1.1 200") and answer.rstrip().endswith(case.end):
                done += 1
            else:
                failures.append(answer[:200].decode(errors="replace"))
        with lock:
            phase.requests += done
            phase.served += served
            phase.failures += failures

    threads = [threading.Thread(target=client) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    busy_after = cpu_times()
    phase.client_cpu = time.process_time() - cpu_before
    phase.server_cpu = processes_cpu(pids) - server_before
    phase.machine_busy = (busy_after[0] - busy_before[0]) / max(1, busy_after[1] - busy_before[1])
    return phase


def measure(cases: list[Case], args: argparse.Namespace) -> list[dict[str, Phase]]:
    """Warm-up of each, then rounds of a phase of each, the order turning every round (with two
    cases ABBA), so that a change of the machine's load hits every case alike."""
    for case in cases:
        phase_run(case, seconds=args.warmup, connections=args.connections)
    args.load_before = os.getloadavg()
    rounds = []
    for n in range(args.rounds):
        turn = n % len(cases)
        order = cases[turn:] + cases[:turn]
        if n // len(cases) % 2:
            order.reverse()
        phases = {
            case.name: phase_run(case, seconds=args.seconds, connections=args.connections)
            for case in order
        }
        rounds.append(phases)
        yardstick = phases[cases[0].name].per_second
        print(
            f"round {n + 1}: "
            + ", ".join(
                f"{case.name} {phases[case.name].per_second:.0f}/s"
                + (
                    f" ({phases[case.name].per_second / yardstick:.3f})"
                    if case is not cases[0]
                    else ""
                )
                for case in cases
            )
            + f", load average {os.getloadavg()[0]:.2f}",
            flush=True,
        )
    args.load_after = os.getloadavg()
    return rounds


# --- the report ---------------------------------------------------------------------------------


def header(data: Data, args: argparse.Namespace) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
    loaded = (
        f"loaded in {data.seconds_to_load:.1f} s"
        if data.seconds_to_load is not None
        else "reused from an earlier run"
    )
    backfill = (
        f"the first snapshot run (backfill of the history, replayed from the audit log) took "
        f"{data.seconds_backfill:.1f} s; "
        if data.seconds_backfill is not None
        else ""
    )
    return (
        f"PostgreSQL {version}; the reseller's {data.customers:,} customers (of {data.total:,}), "
        f"{data.subscriptions:,} subscriptions, {data.activity:,} audit rows, "
        f"{data.history_days} days of daily snapshots ({loaded}); {backfill}this run's hourly "
        f"snapshot run {data.seconds_hourly or 0:.1f} s ({data.snapshot_rows} rows); "
        f"gunicorn with {args.workers} sync workers, {args.connections} client threads; "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; load average "
        f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}\n"
    )


def report(
    cases: list[Case],
    rounds: list[dict[str, Phase]],
    queries: Mapping[str, object],
    args: argparse.Namespace,
) -> bool:
    """The table and the answers (rounds_report); False when an answer was wrong or (unless
    --smoke) the dashboard misses the target."""
    answers_ok, ratios = rounds_report(cases, rounds, queries, args)
    ratio = ratios["dashboard"]
    if args.smoke:
        print(
            f"dashboard {ratio:.3f} of the minimal view; target {TARGET_RATIO:.2f} not held (smoke)"
        )
        return answers_ok
    target_ok = ratio >= TARGET_RATIO
    verdict(target_ok, f"target: dashboard {ratio:.3f} >= {TARGET_RATIO:.2f} of the minimal view")
    return answers_ok and target_ok


def rounds_report(
    cases: list[Case],
    rounds: list[dict[str, Phase]],
    queries: Mapping[str, object],
    args: argparse.Namespace,
) -> tuple[bool, dict[str, float]]:
    """The table (requests/s and the ratio to the minimal view, the first case, in the same
    round), the load generator's and the machine's CPU, the load average. Returns whether every
    answer was right, and each case's ratio (median of the rounds). benchmarks.api reports its
    rounds with it too."""
    yardstick = cases[0].name
    ratios = {
        case.name: [r[case.name].per_second / r[yardstick].per_second for r in rounds]
        for case in cases
    }
    # The CPU the serving processes spent per request, and the minimal view's over the case's:
    # the throughput that CPU allows, relative to the minimal view, whatever else ran.
    cpu = {
        case.name: statistics.median(r[case.name].cpu_per_request for r in rounds) for case in cases
    }
    print(
        f"\n| Request | requests/s (median of {len(rounds)} rounds) | min-max "
        "| x minimal view (median of the rounds) | min-max | CPU per request | "
        "x minimal view (CPU) | queries |\n"
        "|---|---|---|---|---|---|---|---|"
    )
    for case in cases:
        rates = [r[case.name].per_second for r in rounds]
        print(
            f"| {case.name} | {statistics.median(rates):.0f} | {min(rates):.0f}-{max(rates):.0f} "
            f"| {statistics.median(ratios[case.name]):.3f} | {min(ratios[case.name]):.3f}-"
            f"{max(ratios[case.name]):.3f} | {cpu[case.name] * 1000:.1f} ms "
            f"| {cpu[yardstick] / cpu[case.name]:.3f} | {queries.get(case.name, '?')} |"
        )
    phases = [phase for r in rounds for phase in r.values()]
    failures = [f"{phase.name}: {failure}" for phase in phases for failure in phase.failures]
    client = sum(p.client_cpu for p in phases) / sum(p.seconds for p in phases)
    busy = statistics.median(p.machine_busy for p in phases)
    print(
        f"\nload generator: {client:.0%} of one core; machine's CPU busy {busy:.0%} (median of "
        f"the phases); load average {args.load_before[0]:.2f} {args.load_before[1]:.2f} "
        f"{args.load_before[2]:.2f} before, {args.load_after[0]:.2f} {args.load_after[1]:.2f} "
        f"{args.load_after[2]:.2f} after"
    )
    for failure in failures[:10]:
        print(f"  {failure}")
    answers_ok = not failures and all(p.requests for p in phases)
    verdict(answers_ok, f"every answer a 200 with the whole page ({len(failures)} not)")
    return answers_ok, {name: statistics.median(values) for name, values in ratios.items()}


def verdict(ok: bool, what: str) -> None:
    print(f"{'ok  ' if ok else 'FAIL'} {what}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
