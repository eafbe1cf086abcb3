"""Soak: the production-like stack under mixed traffic for SOAK_SECONDS, 0 errors, flat memory.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/partner_portal_bench_soak \\
        SOAK_SECONDS=300 .venv/bin/python -m benchmarks.soak      # or: make bench-soak

Starts, as child processes, everything a deployment runs (docker-compose.yml): its own
redis-server on a free port (broker and cache), the database named in DATABASE_URL
dropped, created, migrated and loaded with the demo data (demo_seed), gunicorn with the project's
config/gunicorn.py and 3 workers, a Celery worker and Celery beat, all with the benchmark
settings (production's request stack, benchmarks/settings.py). Once the seed's own work (invoice
PDFs, emails) is done, a few client threads drive mixed traffic over HTTP: signed-in reseller
pages (dashboard, customers and a search, a customer, a subscription, invoices, an invoice and
its PDF, the team), the customer side's pages, and writes that queue emails for the worker
(team and customer invitations, added licences). The minimal view of benchmarks/urls.py is in
the mix as the yardstick: each page's median is reported as a ratio of its median in the same
run, under the same load.

It reports requests, requests/s, p50 and p95, and errors (any 5xx or connection error; any
other status a request should not get is counted apart as unexpected); the resident set size
(VmRSS) of each gunicorn worker and each Celery process, sampled every few seconds, with the
median of the last quarter of the run over that of the second quarter (the first is warm-up);
and whether every email queued during the run was sent within the drain time. Exits non-zero
on any error or unexpected status, a replaced process, a growth above --growth-limit, or an
email not sent.
"""

import argparse
import contextlib
import http.client
import os
import platform
import random
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
os.environ.setdefault(
    "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/partner_portal_bench_soak"
)

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
GROWTH_LIMIT = 1.10  # median RSS of the last quarter over the second quarter's, per process
WEB_WORKERS = 3
SEARCH_TERMS = ["acme", "studio", "globex labs", "wayne", "legal", "zorg"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seconds",
        type=float,
        default=float(os.environ.get("SOAK_SECONDS", "300")),
        help="length of the traffic (default SOAK_SECONDS or 300)",
    )
    parser.add_argument("--clients", type=int, default=4, help="concurrent client threads")
    parser.add_argument("--growth-limit", type=float, default=GROWTH_LIMIT)
    parser.add_argument("--drain", type=float, default=60, help="seconds for emails to be sent")
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs")
    parser.add_argument(
        "--reads-only",
        action="store_true",
        help="no writes: tells a leak from memory that grows with the data the writes add",
    )
    args = parser.parse_args()

    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="soak-"))
    stack = Stack(workdir)
    ok = False
    try:
        stack.start()
        print(f"stack up in {time.monotonic() - started:.1f} s (logs in {workdir})", flush=True)
        visitors = visitors_sign_in()
        backlog_drain(timeout=120)
        print(f"seed's work done at {time.monotonic() - started:.1f} s", flush=True)
        ok = soak(stack, visitors, args)
    finally:
        stack.stop()
        if ok and not args.keep_logs:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"logs kept in {workdir}")
    print(f"total {time.monotonic() - started:.1f} s including start-up and shut-down")
    return 0 if ok else 1


# --- the stack ----------------------------------------------------------------------------------


def port_free() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def database_recreate(url: str) -> None:
    """Drop and create the soak's database; only a database named for it (`soak` in the name),
    since everything in it is thrown away."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if "soak" not in name:
        raise SystemExit(
            f"DATABASE_URL names {name!r}: the soak drops its database, so it must "
            "be one of its own, with 'soak' in its name."
        )
    server = parts._replace(path="/postgres").geturl()
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


class Stack:
    """The child processes, each in a session of its own so that stopping one stops its
    children too (Celery's pool, gunicorn's workers)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.web_port = port_free()
        self.redis_port = port_free()

    def spawn(self, name: str, command: str) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("wb")
        process = subprocess.Popen(  # noqa: S603 - our own commands
            shlex.split(command),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes[name] = process
        return process

    def manage(self, name: str, *command: str) -> None:
        """A management command in this process (one Django start-up fewer than a child's), its
        output in the logs."""
        from django.core.management import call_command

        started = time.monotonic()
        with (self.workdir / f"{name}.log").open("w") as log:
            call_command(*command, stdout=log, stderr=log)
        print(f"{name}: {time.monotonic() - started:.1f} s", flush=True)

    def start(self) -> None:
        redis = shutil.which("redis-server")
        if redis is None:
            raise SystemExit("redis-server is needed (apt-get install redis-server).")
        workdir = shlex.quote(str(self.workdir))
        self.spawn(
            "redis",
            f"{redis} --port {self.redis_port} --bind 127.0.0.1 --save '' --appendonly no "
            f"--dir {workdir}",
        )
        # Children inherit the environment: the settings, the fresh database, this Redis.
        os.environ.update(
            {
                "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
                "MEDIA_ROOT": str(self.workdir / "media"),
                "WEB_CONCURRENCY": str(WEB_WORKERS),
                "PORTAL_URL": f"http://127.0.0.1:{self.web_port}",
                # The writes invite hundreds of people an hour; the limits are not under test.
                "INVITATIONS_PER_HOUR": "100000",
                "INVITATIONS_PER_HOUR_PER_USER": "100000",
            }
        )
        os.environ.pop("CELERY_BROKER_URL", None)
        os.environ.pop("CELERY_RESULT_BACKEND", None)
        wait_for("redis", lambda: redis_ping(self.redis_port), timeout=10)
        database_recreate(os.environ["DATABASE_URL"])
        # As the Dockerfile and docker-compose.yml start them. They boot while the database is
        # migrated and seeded (none of them reads it before a request or a task comes); the
        # worker takes the seed's tasks as they are queued.
        venv = shlex.quote(str(VENV_BIN))
        self.spawn(
            "gunicorn",
            f"{venv}/gunicorn -c config/gunicorn.py config.wsgi:application "
            f"--bind 127.0.0.1:{self.web_port} --access-logfile -",
        )
        self.spawn("worker", f"{venv}/celery -A config worker -l info")
        self.spawn("beat", f"{venv}/celery -A config beat -l info -s {workdir}/celerybeat-schedule")
        import django

        django.setup()
        self.manage("migrate", "migrate", "--noinput")
        # The seed's tasks (its invoices' PDFs, its emails) go to this Redis, for the worker.
        self.manage("seed", "demo_seed")
        wait_for("gunicorn", self.web_answers, timeout=30)
        wait_for("Celery worker", lambda: b"ready." in self.log("worker"), timeout=30)

    def web_answers(self) -> bool:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.web_port, timeout=2)
            conn.request("GET", "/benchmark/minimal/")
            return conn.getresponse().status == 302  # to the sign-in page
        except OSError:
            return False

    def log(self, name: str) -> bytes:
        return (self.workdir / f"{name}.log").read_bytes()

    def errors_logged(self) -> list[str]:
        """Lines at level ERROR or above in the web's, the worker's and beat's logs: a task that
        failed, a worker that timed out."""
        pattern = re.compile(rb"\b(ERROR|CRITICAL)\b")
        return [
            f"{name}: {line.decode(errors='replace')[:300]}"
            for name in ("gunicorn", "worker", "beat")
            for line in self.log(name).splitlines()
            if pattern.search(line)
        ]

    def died(self) -> list[str]:
        return [name for name, process in self.processes.items() if process.poll() is not None]

    def stop(self) -> None:
        for process in reversed(self.processes.values()):
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in reversed(self.processes.values()):
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def redis_ping(port: int) -> bool:
    import redis

    try:
        return bool(redis.Redis(port=port, socket_timeout=1).ping())
    except redis.exceptions.ConnectionError:
        return False


def wait_for(what: str, ready: Callable[[], bool], *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not start within {timeout:.0f} s")
        time.sleep(0.2)


# --- the traffic --------------------------------------------------------------------------------


@dataclass
class Visitor:
    """A signed-in browser: its cookies and the ids its pages link to."""

    cookie: str
    csrf: str
    customers: list[str] = field(default_factory=list)
    subscriptions: list[str] = field(default_factory=list)
    invoices: list[str] = field(default_factory=list)


@dataclass
class Visitors:
    resellers: list[Visitor]  # each active reseller's owner
    customer: Visitor  # a customer's own person: one organisation
    customer_id: str


def session_cookie(user: Any, *, reseller_public_id: str | None = None) -> tuple[str, str]:
    """The cookies a signed-in browser sends (session and CSRF), made the way Django's test
    client signs in, with the reseller chosen as the Switch page would."""
    from django.conf import settings
    from django.middleware.csrf import CSRF_ALLOWED_CHARS, CSRF_SECRET_LENGTH
    from django.test import Client
    from django.utils.crypto import get_random_string

    from resellers.middleware import SESSION_KEY

    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    if reseller_public_id:
        session = client.session
        session[SESSION_KEY] = reseller_public_id
        session.save()
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    csrf = get_random_string(CSRF_SECRET_LENGTH, allowed_chars=CSRF_ALLOWED_CHARS)
    return f"{settings.SESSION_COOKIE_NAME}={key}; {settings.CSRF_COOKIE_NAME}={csrf}", csrf


def visitors_sign_in() -> Visitors:
    """Sign in the two active resellers' owners and the demo's customer-side person, and list
    the ids their pages link to."""
    from billing.models import Invoice
    from customers.models import CustomerMember
    from customers.selectors import customer_list
    from resellers.models import Membership, Reseller
    from resellers.roles import Role
    from subscriptions.models import Plan, Subscription

    resellers = []
    for reseller in Reseller.objects.filter(status=Reseller.Status.ACTIVE).order_by("id"):
        owner = Membership.objects.get(reseller=reseller, role=Role.OWNER).user
        cookie, csrf = session_cookie(owner, reseller_public_id=reseller.public_id)
        subscriptions = Subscription.objects.filter(
            customer__reseller=reseller, status=Subscription.Status.ACTIVE
        ).exclude(plan__kind=Plan.Kind.TRIAL)
        resellers.append(
            Visitor(
                cookie,
                csrf,
                customers=list(
                    customer_list(reseller=reseller).values_list("public_id", flat=True)
                ),
                subscriptions=list(subscriptions.values_list("public_id", flat=True)),
                invoices=list(
                    Invoice.objects.filter(reseller=reseller).values_list("public_id", flat=True)
                ),
            )
        )
    member = CustomerMember.objects.select_related("user", "customer").first()
    if member is None or not resellers:
        raise SystemExit("demo_seed made no customer member or no active reseller")
    cookie, csrf = session_cookie(member.user)
    customer = Visitor(
        cookie,
        csrf,
        subscriptions=list(
            Subscription.objects.filter(customer=member.customer).values_list(
                "public_id", flat=True
            )
        ),
        invoices=list(
            Invoice.objects.filter(customer=member.customer).values_list("public_id", flat=True)
        ),
    )
    return Visitors(resellers, customer, member.customer.public_id)


def backlog_drain(*, timeout: float) -> None:
    """Wait for the seed's work (its invoices' PDFs, its emails) so the run starts warm."""
    from billing.models import Invoice
    from core.models import OutboundEmail

    def done() -> bool:
        return (
            not Invoice.objects.filter(pdf="").exists()
            and not OutboundEmail.objects.filter(
                status__in=[OutboundEmail.Status.PENDING, OutboundEmail.Status.SENDING]
            ).exists()
        )

    wait_for("the seed's PDFs and emails", done, timeout=timeout)


class Browser:
    """One browser-like client thread: actions drawn from a weighted mix, every response
    recorded under its action's name."""

    def __init__(
        self, number: int, *, clients: int, port: int, visitors: Visitors, results: "Results"
    ) -> None:
        self.number = number
        self.port = port
        self.results = results
        self.rng = random.Random(number)  # noqa: S311 - a traffic mix, not a secret
        self.writes = 0
        resellers = len(visitors.resellers)
        self.reseller = visitors.resellers[number % resellers]
        # Licences are added to subscriptions of this client's own: two clients ordering on one
        # subscription at once would (rightly) be refused as stale.
        mates = len(range(number % resellers, clients, resellers))
        self.own_subscriptions = self.reseller.subscriptions[number // resellers :: mates]
        customer = visitors.customer
        # (name, weight, action): a working day, mostly reading.
        self.mix: list[tuple[str, float, Callable[[], None]]] = [
            ("yardstick: minimal view", 3, self.page("/benchmark/minimal/")),
            ("dashboard", 3, self.page("/dashboard/")),
            ("customers list", 3, self.page("/customers/")),
            ("customers search", 2, self.customers_search),
            ("customer page", 3, self.page("/customers/{}/", self.reseller.customers)),
            ("subscription page", 2, self.page("/subscriptions/{}/", self.reseller.subscriptions)),
            ("invoices list", 2, self.page("/invoices/")),
            ("invoice page", 2, self.page("/invoices/{}/", self.reseller.invoices)),
            ("invoice PDF", 1, self.page("/invoices/{}/pdf/", self.reseller.invoices)),
            ("team page", 1, self.page("/team/")),
            ("customer side: organisations", 1, self.page("/my/", visitor=customer)),
            (
                "customer side: organisation",
                1,
                self.page(f"/my/{visitors.customer_id}/", visitor=customer),
            ),
            (
                "customer side: subscription",
                1,
                self.page(
                    f"/my/{visitors.customer_id}/subscriptions/{{}}/",
                    customer.subscriptions,
                    visitor=customer,
                ),
            ),
            (
                "customer side: invoices",
                1,
                self.page(f"/my/{visitors.customer_id}/invoices/", visitor=customer),
            ),
            (
                "customer side: invoice",
                1,
                self.page(
                    f"/my/{visitors.customer_id}/invoices/{{}}/",
                    customer.invoices,
                    visitor=customer,
                ),
            ),
            (
                "customer side: invoice PDF",
                0.5,
                self.page(
                    f"/my/{visitors.customer_id}/invoices/{{}}/pdf/",
                    customer.invoices,
                    visitor=customer,
                ),
            ),
            ("write: team invitation", 0.5, self.team_invitation),
            ("write: customer invitation", 0.5, self.customer_invitation),
            ("write: add a licence", 0.5, self.licence_add),
        ]
        self.current = ""

    def reads_only(self) -> None:
        self.mix = [entry for entry in self.mix if not entry[0].startswith("write:")]

    def run(self, until: float) -> None:
        names, weights, actions = zip(*self.mix, strict=True)
        while time.monotonic() < until:
            index = self.rng.choices(range(len(names)), weights)[0]
            self.current = names[index]
            actions[index]()

    def request(
        self, path: str, visitor: Visitor, *, expect: int = 200, form: dict[str, str] | None = None
    ) -> bytes:
        """One request on a new connection (gunicorn's sync workers close each one), timed
        from the connect to the last byte."""
        headers = {"Cookie": visitor.cookie, "Accept-Language": "en"}
        body = None
        if form is not None:
            body = urlencode({**form, "csrfmiddlewaretoken": visitor.csrf})
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        started = time.monotonic()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                conn.request("POST" if form is not None else "GET", path, body, headers)
                response = conn.getresponse()
                content = response.read()
            finally:
                conn.close()
        except (OSError, http.client.HTTPException) as error:
            self.results.record(self.current, started, None, expect, f"{path}: {error!r}")
            return b""
        self.results.record(self.current, started, response.status, expect, path)
        return content

    def page(
        self, path: str, ids: list[str] | None = None, *, visitor: Visitor | None = None
    ) -> Callable[[], None]:
        """A GET of `path`, its `{}` filled with one of `ids` at random."""

        def get() -> None:
            if ids is None:
                self.request(path, visitor or self.reseller)
            elif ids:
                self.request(path.format(self.rng.choice(ids)), visitor or self.reseller)

        return get

    def customers_search(self) -> None:
        query = urlencode({"q": self.rng.choice(SEARCH_TERMS)})
        self.request(f"/customers/?{query}", self.reseller)

    def tag(self) -> str:
        self.writes += 1
        return f"soak{self.number}-{self.writes}"

    def team_invitation(self) -> None:
        form = {"email": f"{self.tag()}@team.example", "role": "sales"}
        self.request("/team/", self.reseller, expect=302, form=form)

    def customer_invitation(self) -> None:
        tag = self.tag()
        form = {
            "contact_name": "Soak Contact",
            "contact_email": f"it@{tag}.example",
            "customer_type": "domain",
            "domain": f"{tag}.example",
            "organisation": f"Soak {tag} Ltd",
            "country": "IE",
            "language": "en",
            "time_zone": "Europe/Dublin",
        }
        self.request("/customers/new/", self.reseller, expect=302, form=form)

    def licence_add(self) -> None:
        """The Add licences page, then Order now with one licence more, as a browser does."""
        if not self.own_subscriptions:
            return
        path = f"/subscriptions/{self.rng.choice(self.own_subscriptions)}/licences/"
        page = self.request(path, self.reseller).decode()
        key = re.search(r'name="key" value="([^"]+)"', page)
        expected = re.search(r'name="expected" value="(\d+)"', page)
        if key is None or expected is None:
            self.results.record(self.current, time.monotonic(), 0, 200, f"{path}: no order form")
            return
        form = {
            "step": "order",
            "licences": str(int(expected.group(1)) + 1),
            "expected": expected.group(1),
            "key": key.group(1),
        }
        self.request(path, self.reseller, expect=302, form=form)


class Results:
    """Every response's time and status by action; 5xx and connection errors apart from other
    statuses the request should not get."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.statuses: dict[str, Counter[int | None]] = defaultdict(Counter)
        self.errors: list[str] = []
        self.unexpected: list[str] = []

    def record(self, name: str, started: float, status: int | None, expect: int, what: str) -> None:
        elapsed = time.monotonic() - started
        with self.lock:
            self.latencies[name].append(elapsed)
            self.statuses[name][status] += 1
            if status is None or status >= 500:
                self.errors.append(f"{name}: {status} {what}")
            elif status != expect:
                self.unexpected.append(f"{name}: {status} (expected {expect}) {what}")


# --- memory -------------------------------------------------------------------------------------


def process_parents() -> dict[int, int]:
    """Every process's parent, from /proc/<pid>/stat (the name may hold spaces or brackets)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    return parents


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class Sampler(threading.Thread):
    """VmRSS of each gunicorn worker and each Celery process every `every` seconds. A process
    that goes away, or a new one in its place, is a replaced process: its memory says nothing
    of a leak, and gunicorn only replaces a worker that died or hung."""

    def __init__(self, stack: Stack, every: float) -> None:
        super().__init__(daemon=True)
        self.stack = stack
        self.every = every
        self.started = time.monotonic()
        self.samples: dict[str, list[tuple[float, int]]] = defaultdict(list)
        self.labels: dict[int, str] = {}
        self.replaced: list[str] = []
        self.gone: set[int] = set()
        self.first_done = False
        self.halt = threading.Event()

    def watched(self) -> list[tuple[str, int]]:
        parents = process_parents()

        def children(pid: int) -> list[int]:
            return sorted(child for child, parent in parents.items() if parent == pid)

        worker = self.stack.processes["worker"].pid
        return [
            *(("gunicorn worker", pid) for pid in children(self.stack.processes["gunicorn"].pid)),
            ("celery worker", worker),
            *(("celery pool process", pid) for pid in children(worker)),
            ("celery beat", self.stack.processes["beat"].pid),
        ]

    def sample(self) -> None:
        now = time.monotonic() - self.started
        seen = set()
        for kind, pid in self.watched():
            if pid not in self.labels:
                numbered = kind in ("gunicorn worker", "celery pool process")
                same = sum(label.startswith(kind) for label in self.labels.values())
                self.labels[pid] = f"{kind} {same + 1}" if numbered else kind
                if self.first_done:
                    self.replaced.append(f"{self.labels[pid]} (pid {pid}) started at {now:.0f} s")
            if (rss := rss_kib(pid)) is not None:
                self.samples[self.labels[pid]].append((now, rss))
                seen.add(pid)
        for pid, label in self.labels.items():
            if pid not in seen and pid not in self.gone:
                self.gone.add(pid)
                self.replaced.append(f"{label} (pid {pid}) gone at {now:.0f} s")
        self.first_done = True

    def run(self) -> None:
        while not self.halt.is_set():
            self.sample()
            self.halt.wait(self.every)

    def stop(self) -> None:
        self.halt.set()
        self.join()
        self.sample()


@dataclass
class Growth:
    label: str
    start: float
    second_quarter: float
    last_quarter: float
    end: float

    @property
    def ratio(self) -> float:
        return self.last_quarter / self.second_quarter


def memory_growth(sampler: Sampler, seconds: float) -> list[Growth]:
    """Per process: the median RSS of the last quarter over the second quarter's (the first
    quarter is warm-up: caches, templates, translations, connections)."""
    growths = []
    for label, samples in sorted(sampler.samples.items()):
        second = [kib for at, kib in samples if seconds / 4 <= at < seconds / 2]
        last = [kib for at, kib in samples if at >= seconds * 3 / 4]
        if second and last:
            growths.append(
                Growth(
                    label,
                    samples[0][1] / 1024,
                    statistics.median(second) / 1024,
                    statistics.median(last) / 1024,
                    samples[-1][1] / 1024,
                )
            )
    return growths


# --- the run ------------------------------------------------------------------------------------


def soak(stack: Stack, visitors: Visitors, args: argparse.Namespace) -> bool:
    from core.models import OutboundEmail

    first_email = OutboundEmail.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    results = Results()
    sampler = Sampler(stack, every=min(5.0, max(1.0, args.seconds / 60)))
    browsers = [
        Browser(n, clients=args.clients, port=stack.web_port, visitors=visitors, results=results)
        for n in range(args.clients)
    ]
    if args.reads_only:
        for browser in browsers:
            browser.reads_only()
    args.load_at_start = os.getloadavg()[0]
    print(f"traffic: {args.seconds:.0f} s, {args.clients} clients", flush=True)
    sampler.start()
    started = time.monotonic()
    until = started + args.seconds
    threads = [threading.Thread(target=browser.run, args=(until,)) for browser in browsers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    sampler.stop()

    drained_in, emails = emails_drain(first_email, timeout=args.drain)
    died = stack.died()
    logged = stack.errors_logged()
    growths = memory_growth(sampler, elapsed)
    report(results, elapsed, growths, emails, drained_in, args)
    for problem in [*results.errors[:10], *results.unexpected[:10]]:
        print(f"  {problem}")
    for replaced in sampler.replaced:
        print(f"replaced process: {replaced}")
    if died:
        print(f"exited during the run: {', '.join(died)}")
    for line in logged[:10]:
        print(f"logged: {line}")
    flat = all(growth.ratio <= args.growth_limit for growth in growths) and bool(growths)
    emails_ok = emails.get("sent", 0) == sum(emails.values())
    verdicts = {
        "no errors": not results.errors,
        "no unexpected status": not results.unexpected,
        f"memory flat (growth at most {args.growth_limit:.2f}x)": flat,
        "no process replaced or exited": not sampler.replaced and not died,
        "every email sent": emails_ok,
        f"no error in the processes' logs ({len(logged)})": not logged,
    }
    for what, ok in verdicts.items():
        print(f"{'ok  ' if ok else 'FAIL'} {what}")
    return all(verdicts.values())


def emails_drain(first: int, *, timeout: float) -> tuple[float | None, dict[str, int]]:
    """Wait until every email queued during the run is sent or failed; their counts by status."""
    from django.db.models import Count

    from core.models import OutboundEmail

    queued = OutboundEmail.objects.filter(pk__gt=first)
    waiting = [OutboundEmail.Status.PENDING, OutboundEmail.Status.SENDING]
    started = time.monotonic()
    drained_in = None
    while time.monotonic() - started < timeout:
        if not queued.filter(status__in=waiting).exists():
            drained_in = time.monotonic() - started
            break
        time.sleep(0.5)
    counts = dict(queued.values_list("status").annotate(n=Count("pk")).order_by())
    return drained_in, counts


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def report(
    results: Results,
    elapsed: float,
    growths: list[Growth],
    emails: dict[str, int],
    drained_in: float | None,
    args: argparse.Namespace,
) -> None:
    every = [t for times in results.latencies.values() for t in times]
    yardstick = statistics.median(results.latencies["yardstick: minimal view"] or [float("nan")])
    print(
        f"\nSoak of {elapsed:.0f} s, {args.clients} client threads, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load average {args.load_at_start:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end"
    )
    print(
        f"{len(every):,} requests, {len(every) / elapsed:.1f}/s, "
        f"p50 {statistics.median(every) * 1000:.0f} ms, "
        f"p95 {percentile(every, 0.95) * 1000:.0f} ms, errors {len(results.errors)}, "
        f"unexpected {len(results.unexpected)}\n"
    )
    print("| Request | Count | p50 | p95 | x minimal view (p50) | Statuses |")
    print("|---|---|---|---|---|---|")
    for name, times in sorted(results.latencies.items(), key=lambda item: -len(item[1])):
        median = statistics.median(times)
        statuses = ", ".join(
            f"{status}: {count}"
            for status, count in sorted(results.statuses[name].items(), key=str)
        )
        print(
            f"| {name} | {len(times):,} | {median * 1000:.0f} ms | "
            f"{percentile(times, 0.95) * 1000:.0f} ms | {median / yardstick:.1f} | {statuses} |"
        )
    print(
        "\n| Process | RSS at start | 2nd quarter (median) | last quarter (median) | at end "
        "| Growth |"
    )
    print("|---|---|---|---|---|---|")
    for growth in growths:
        print(
            f"| {growth.label} | {growth.start:.1f} MiB | {growth.second_quarter:.1f} MiB | "
            f"{growth.last_quarter:.1f} MiB | {growth.end:.1f} MiB | {growth.ratio:.3f} |"
        )
    drained = (
        f"all done {drained_in:.1f} s after the traffic"
        if drained_in is not None
        else (f"NOT all done {args.drain:.0f} s after the traffic")
    )
    counts = ", ".join(f"{status} {count}" for status, count in sorted(emails.items()))
    print(f"\nEmails queued during the run: {sum(emails.values())} ({counts}); {drained}")


if __name__ == "__main__":
    sys.exit(main())
