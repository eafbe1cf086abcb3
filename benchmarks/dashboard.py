"""Dashboard throughput against the minimal view, on a real gunicorn, side by side in one run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/partner_portal_bench_dashboard \\
        .venv/bin/python -m benchmarks.dashboard          # or: make bench-dashboard

Starts its own redis-server on a free port (the cache, empty at the start) and gunicorn with the
project's config/gunicorn.py and the production default of 3 sync workers, both with the
benchmark settings (production's request stack, benchmarks/settings.py). The database, created
and migrated if missing, holds one reseller with 10,000 customers (and 10 others with 1,000
each) loaded by the Customers benchmark's seed (benchmarks/customer_list.py: COPY, statuses
mixed, a subscription for each active customer, a third with two), its team, and its activity:
about three audit rows per customer, as the services write them (invited, accepted,
subscription bought, licences added or removed). Later runs reuse the data.

Before timing, the dashboard is fetched through gunicorn and every figure on it (customers by
status, team members, the recent customers, the recent activity) is compared with a fresh count
of the database, again after a customer's status changes and a team member joins (and after
both are undone), so that a cached figure that went stale fails the run. The queries per request
are counted in this process through the same WSGI stack.

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
when a figure on the page is wrong. --smoke is CI's mode: a few hundred customers, two short
rounds; it checks the figures and the answers and prints the ratio without holding it to the
target (a few seconds on a busy CI machine say nothing about speed).
"""

import argparse
import html
import os
import re
import shlex
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
os.environ.setdefault(
    "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/partner_portal_bench_dashboard"
)

from benchmarks import customer_list
from benchmarks.soak import Stack, port_free, process_parents, redis_ping, wait_for

TARGET_RATIO = 0.40
WEB_WORKERS = 3  # WEB_CONCURRENCY's default in production (README, Configuration)
TEAM = [("admin", "team-admin"), ("sales", "team-sales"), ("billing", "team-billing")]
RECENT_CUSTOMERS = 5
RECENT_ACTIVITY = 8


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
        help="CI's mode: 300 customers, two rounds of 1 s; the figures and answers are checked, "
        "the ratio printed but not held to the target",
    )
    args = parser.parse_args()
    per_reseller = 1_000
    if args.smoke:
        args.customers, args.others, per_reseller = 300, 2, 100
        args.rounds, args.seconds, args.warmup = 2, 1.0, 0.5

    workdir = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    stack = Stack(workdir)
    ok = False
    try:
        redis_start(stack)
        customer_list.database_ensure(os.environ["DATABASE_URL"])
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection

        if connection.vendor != "postgresql":
            print("This benchmark needs PostgreSQL (DATABASE_URL).", file=sys.stderr)
            return 2
        call_command("migrate", verbosity=0)
        data = seed(
            customers=args.customers,
            total=args.customers + args.others * per_reseller,
            per_reseller=per_reseller,
            reload=args.reload,
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


@dataclass
class Data:
    reseller: Any
    owner: Any
    cookie: str
    customers: int
    total: int
    subscriptions: int
    activity: int
    seconds_to_load: float | None


def seed(*, customers: int, total: int, per_reseller: int, reload: bool) -> Data:
    """The Customers benchmark's customers and subscriptions, then the reseller's team and its
    activity; each reused when already there."""
    from django.db import connection, transaction

    from core.models import User
    from resellers.models import AuditEvent, Membership, Reseller
    from subscriptions.models import Subscription

    loaded = customer_list.seed(
        total=total, mine=customers, per_reseller=per_reseller, reload=reload
    )
    reseller = Reseller.objects.get(pk=loaded.reseller_id)
    domain = customer_list.OWNER_EMAIL.partition("@")[2]
    for role, name in TEAM:
        user, _ = User.objects.get_or_create(email=f"{name}@{domain}")
        Membership.objects.get_or_create(reseller=reseller, user=user, defaults={"role": role})
    started = time.perf_counter()
    seconds = loaded.seconds_to_load
    activity = AuditEvent.objects.filter(reseller=reseller)
    if seconds is not None or not activity.exists():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {AuditEvent._meta.db_table}")
            activity_copy(reseller=reseller, actor=loaded.owner)
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM ANALYZE {AuditEvent._meta.db_table}")
        seconds = (seconds or 0) + time.perf_counter() - started
    return Data(
        reseller=reseller,
        owner=loaded.owner,
        cookie=customer_list.session_cookie(loaded.owner),
        customers=loaded.mine,
        total=loaded.total,
        subscriptions=Subscription.objects.filter(customer__reseller=reseller).count(),
        activity=activity.count(),
        seconds_to_load=seconds,
    )


def activity_copy(*, reseller: Any, actor: Any) -> None:
    """The reseller's audit rows as the services write them, COPYed in: each customer invited,
    accepted unless still invited, each subscription bought, and for some licences added or
    removed since; oldest first, the last ones in the past hour."""
    import random

    from django.db import connection

    from customers.models import Customer
    from resellers.models import AuditEvent
    from subscriptions.models import Subscription

    rng = random.Random(20261206)  # noqa: S311 - test data, not secrets
    now = datetime.now(UTC)
    subscriptions: dict[int, list[tuple[str, str]]] = {}
    for customer_id, public_id, plan in Subscription.objects.filter(
        customer__reseller=reseller
    ).values_list("customer_id", "public_id", "plan__kind"):
        subscriptions.setdefault(customer_id, []).append((public_id, plan))
    events: list[AuditEvent] = []

    def event(action: str, at: datetime, object_type: str, object_id: str, name: str) -> None:
        events.append(
            AuditEvent(
                actor=actor,
                actor_email=actor.email,
                reseller=reseller,
                customer_public_id=customer_public_id,
                action=action,
                object_type=object_type,
                object_id=object_id,
                object_repr=name,
                created_at=min(at, now - timedelta(seconds=1)),
            )
        )

    for pk, customer_public_id, organisation, status, created in Customer.objects.filter(
        reseller=reseller
    ).values_list("pk", "public_id", "organisation", "status", "created_at"):
        event("customer.invited", created, "customers.customer", customer_public_id, organisation)
        if status == Customer.Status.INVITED:
            continue
        accepted = created + timedelta(hours=rng.randrange(1, 72))
        event("customer.accepted", accepted, "customers.customer", customer_public_id, organisation)
        for public_id, plan in subscriptions.get(pk, []):
            bought = accepted + timedelta(minutes=rng.randrange(5, 600))
            name = f"{organisation} — {plan}"
            event("subscription.bought", bought, "subscriptions.subscription", public_id, name)
            if rng.random() < 0.5:
                action = rng.choice(
                    ["subscription.licences_added", "subscription.licences_removed"]
                )
                later = bought + (now - bought) * rng.random()
                event(action, later, "subscriptions.subscription", public_id, name)
    events.sort(key=lambda e: e.created_at)
    fields = [f for f in AuditEvent._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(connection.ops.quote_name(str(f.column)) for f in fields)
    with connection.cursor() as cursor:
        sql = f"COPY {AuditEvent._meta.db_table} ({columns}) FROM STDIN"
        with cursor.cursor.copy(sql) as copy:
            for row in events:
                copy.write_row(
                    [f.get_db_prep_save(getattr(row, f.attname), connection) for f in fields]
                )


# --- what the page must show ---------------------------------------------------------------------


FIGURE = re.compile(r'<span class="figure">([^<]*)</span>\s*<span class="label">([^<]*)</span>')
SECTION = re.compile(r"<section[^>]*>\s*<h2>([^<]*)</h2>(.*?)</section>", re.S)


@dataclass
class Figures:
    """What the dashboard shows: figures by label, the recent customers' links, and the actions
    of the recent activity, in the page's order."""

    figures: dict[str, str] = field(default_factory=dict)
    recent_customers: list[str] = field(default_factory=list)
    recent_activity: list[str] = field(default_factory=list)


def figures_expected(data: Data) -> Figures:
    """Counted afresh from the database, nothing cached."""
    from django.urls import reverse

    from customers.models import Customer
    from resellers.models import AuditEvent, Membership

    customers = Customer.objects.filter(reseller=data.reseller)
    expected = Figures()
    for status in (Customer.Status.INVITED, Customer.Status.ACTIVE, Customer.Status.CANCELLED):
        expected.figures[str(status.label)] = str(customers.filter(status=status).count())
    expected.figures["Team members"] = str(
        Membership.objects.filter(reseller=data.reseller).count()
    )
    newest = customers.filter(status__in=["invited", "active", "cancelled"]).order_by(
        "-created_at", "-id"
    )
    expected.recent_customers = [
        reverse("customers:detail", args=[public_id])
        for public_id in newest.values_list("public_id", flat=True)[:RECENT_CUSTOMERS]
    ]
    expected.recent_activity = [
        event.action_label
        for event in AuditEvent.objects.filter(reseller=data.reseller).order_by(
            "-created_at", "-id"
        )[:RECENT_ACTIVITY]
    ]
    return expected


def figures_shown(page: str) -> Figures:
    shown = Figures()
    for figure, label in FIGURE.findall(page):
        shown.figures[html.unescape(label)] = re.sub(r"\D", "", figure)
    sections = {html.unescape(title): body for title, body in SECTION.findall(page)}
    shown.recent_customers = re.findall(
        r'<a href="(/customers/[^"/]+/)">', sections.get("Recent customers", "")
    )
    shown.recent_activity = [
        html.unescape(line.split(" · ")[1]) if " · " in line else line
        for line in re.findall(
            r"<li><time[^>]*>[^<]*</time>([^\n]*)</li>", sections.get("Recent activity", "")
        )
    ]
    return shown


def page_get(port: int, path: str, cookie: str) -> tuple[int, str]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers={"Cookie": cookie, "Accept-Language": "en"})
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def figures_compare(port: int, data: Data, when: str) -> bool:
    status, page = page_get(port, "/dashboard/", data.cookie)
    expected = figures_expected(data)
    shown = figures_shown(page)
    ok = status == 200 and shown == expected
    verdict(ok, f"the dashboard's figures {when}")
    if not ok:
        print(f"     status {status}\n     expected {expected}\n     shown    {shown}")
    return ok


def figures_check(port: int, data: Data, *, after_load: bool = False) -> bool:
    """The page's figures against fresh counts, then after each kind of change a reseller's
    people make (a customer's status, the team), each undone again. The changes go through
    Model.save() and delete(), which is what every service ends in: the same signals."""
    from customers.models import Customer
    from resellers.models import Membership

    if after_load:
        return figures_compare(port, data, "after the load")
    ok = figures_compare(port, data, "as loaded")
    customer = Customer.objects.filter(reseller=data.reseller, status="active").first()
    if customer is None:
        print("FAIL no active customer to change")
        return False
    for status in ("cancelled", "active"):
        customer.status = status
        customer.save(update_fields=["status"])
        ok = figures_compare(port, data, f"after a customer became {status}") and ok
    user = type(data.owner).objects.get_or_create(email="joins@benchmark-reseller.example")[0]
    # A run stopped halfway may have left it in the team.
    Membership.objects.filter(reseller=data.reseller, user=user).delete()
    membership = Membership.objects.create(reseller=data.reseller, user=user, role="sales")
    ok = figures_compare(port, data, "after a team member joined") and ok
    membership.delete()
    return figures_compare(port, data, "after the team member left") and ok


def queries_count(data: Data) -> dict[str, int]:
    """SQL queries of one request of each, through the same WSGI stack in this process."""
    scenarios = [
        customer_list.Scenario(
            "minimal view", "/benchmark/minimal/", data.cookie, "ok", "yardstick"
        ),
        customer_list.Scenario("dashboard", "/dashboard/", data.cookie, "</html>", "dashboard"),
    ]
    customer_list.scenarios_check(scenarios)
    return {scenario.name: len(scenario.queries) for scenario in scenarios}


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
    return (
        f"PostgreSQL {version}; the reseller's {data.customers:,} customers (of {data.total:,}), "
        f"{data.subscriptions:,} subscriptions, {data.activity:,} audit rows ({loaded}); "
        f"gunicorn with {args.workers} sync workers, {args.connections} client threads; "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; load average "
        f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}\n"
    )


def report(
    cases: list[Case],
    rounds: list[dict[str, Phase]],
    queries: dict[str, int],
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
    queries: dict[str, int],
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
