"""The REST API's customer list against the minimal view on a real gunicorn, side by side, and
webhook deliveries per second to a local receiver (issue 17).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/partner_portal_bench_api \\
        .venv/bin/python -m benchmarks.api          # or: make bench-api

The stack and the data are the dashboard benchmark's (benchmarks/dashboard.py): a redis-server of
the run's own, gunicorn with config/gunicorn.py and 3 sync workers on the benchmark settings
(benchmarks/settings.py), and a database (created and migrated if missing, data loaded once)
where one reseller has 10,000 customers among others' 10,000. An API key is made for the
reseller's owner with api.services.api_key_create, as Settings → API keys makes one, each run.

The API. Before timing, GET /api/v1/customers/ with `Authorization: Bearer <key>` is checked
against the database read here (not through the selectors the API uses): the first page's ids in
order and the count; then every page, following next_cursor to the end (each page's ids, every
customer once, in order); the search (?q=harbour: its ids and count). The cursor of the page at
row 9,000 (the Customers benchmark's deep page; the middle of a smaller list) is the one timed.
The timed phases are the dashboard benchmark's (dashboard.measure, dashboard.rounds_report):
closed-loop client threads, a new connection per request (gunicorn's sync workers close it),
phases of the minimal view (benchmarks/urls.py, the yardstick, signed in with a session), of the
minimal API operation (benchmarks/urls.py: the same key authentication and rate limit through
django-ninja, no work: what any API request costs) and of the three list requests, in an order
that turns every round; each round's ratio is the request's requests/s over the minimal view's
in the same round, beside the CPU the serving processes (gunicorn's workers, PostgreSQL's
backends, Redis) spent per request. Each answer in the load must be a 200 that ends as the
checked one did (a cursor is signed with the time, so the deep page's end is only its last
bytes); the answers are compared again after the load.

The rate limit: each key may make API_RATE_LIMIT requests a minute (600 by default), far fewer
than the load makes. The run sets API_RATE_LIMIT=1000000000 in its environment (gunicorn
inherits it): every request still pays the sliding-window count in Redis (core.ratelimit), none
is refused. The answers' RateLimit-Limit is checked to be that figure.

Webhooks. A receiver in a process of its own (http.server's ThreadingHTTPServer) verifies every
delivery's signature with standardwebhooks' Webhook.verify and counts each webhook-id (its
dedupe key). An endpoint for the reseller is registered with webhooks.services.endpoint_create
at http://127.0.0.1:<port>/: the run sets WEBHOOK_ALLOW_PRIVATE_TARGETS=1 in its environment,
which benchmarks/settings.py reads (webhooks.transport refuses loopback targets otherwise). Each
run records N events (customer.invited, 2,000) with webhooks.services.event_record in one
transaction, then they are delivered by the project's own code:

- "minute job, in-process": webhooks.tasks.webhook_deliveries_send_due called in this process
  (the sweep's job: claims 100 due at a time with SKIP LOCKED, sends them one after the other);
  the tasks the commit queued are taken out of the broker unrun;
- "on-commit tasks, in-process": the tasks the events' commit queued (whichever webhooks'
  services queue), taken out of the broker and run in this process in their order, one after
  the other: the on-commit path's own work, without a broker or a worker;
- "Celery, k processes": a real `celery worker` with k prefork processes consumes the tasks
  that the events' commit queues, as in production; the time runs from just before the commit
  (the queueing included) until every delivery is recorded delivered.

The in-process runs time the delivery only (the events are recorded first). After each run
the receiver must have every event of the run exactly once with a valid signature and nothing
else, and each delivery must be recorded delivered after one attempt. The runs alternate
(ABCD, then DCBA) over --webhook-rounds; the median of each is reported, with the CPU of the
sender and of the receiver per delivery, the machine's busy share and the load average.

No speed target is held: the run exits non-zero when an answer or a delivery is wrong. --smoke is
CI's mode: 300 customers, two rounds of 1 s, 100 events per webhook run, Celery with 1 and 2
processes; every check, no timing judged.
"""

import argparse
import base64
import http.client
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast
from urllib.parse import urlencode

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/partner_portal_bench_api")

from benchmarks import customer_list, dashboard
from benchmarks.soak import Stack, port_free, process_parents, wait_for

# Far above what the load makes in a minute: every request is counted, none refused.
RATE_LIMIT = 1_000_000_000
KEY_NAME = "bench-api"
SEARCH_TERM = customer_list.SEARCH_TERM
EVENT_TYPE = "customer.invited"
RECEIVER_SECRET_ENV = "BENCH_API_RECEIVER_SECRET"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="rounds of a phase of each")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each phase")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of each, untimed")
    parser.add_argument("--connections", type=int, default=6, help="concurrent client threads")
    parser.add_argument("--workers", type=int, default=dashboard.WEB_WORKERS, help="gunicorn")
    parser.add_argument("--customers", type=int, default=10_000, help="the reseller's customers")
    parser.add_argument(
        "--others", type=int, default=10, help="other resellers, each with 1,000 customers"
    )
    parser.add_argument("--reload", action="store_true", help="load the data again")
    parser.add_argument("--events", type=int, default=2_000, help="events per webhook run")
    parser.add_argument(
        "--celery", type=int, nargs="*", default=[1, 2], help="Celery worker processes per run"
    )
    parser.add_argument("--webhook-rounds", type=int, default=2, help="runs of each delivery way")
    parser.add_argument("--only", choices=["api", "webhooks"], help="one half of the benchmark")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="CI's mode: 300 customers, two rounds of 1 s, 100 events per webhook run; the "
        "answers and deliveries are checked, no timing judged",
    )
    parser.add_argument("--receiver", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receiver:
        return receiver_serve(args.receiver, os.environ[RECEIVER_SECRET_ENV])
    per_reseller = 1_000
    if args.smoke:
        args.customers, args.others, per_reseller = 300, 2, 100
        args.rounds, args.seconds, args.warmup = 2, 1.0, 0.5
        args.events, args.webhook_rounds = 100, 1
    # Before Django starts here and in the children (gunicorn, Celery), which inherit them.
    os.environ["API_RATE_LIMIT"] = str(RATE_LIMIT)
    os.environ["WEBHOOK_ALLOW_PRIVATE_TARGETS"] = "1"

    workdir = Path(tempfile.mkdtemp(prefix="bench-api-"))
    stack = Stack(workdir)
    ok = False
    try:
        dashboard.stack_start(stack)
        data = dashboard.seed(
            customers=args.customers,
            total=args.customers + args.others * per_reseller,
            per_reseller=per_reseller,
            reload=args.reload,
        )
        key = key_make(data)
        print(header(data, args), flush=True)
        ok = True
        if args.only != "webhooks":
            ok = api_run(stack, data, key, args) and ok
        if args.only != "api":
            ok = webhooks_run(stack, data, args) and ok
    finally:
        stack.stop()
        if ok:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"logs kept in {workdir}")
    return 0 if ok else 1


def key_make(data: dashboard.Data) -> str:
    """A read key of the reseller's owner, as Settings → API keys makes one (the last run's
    deleted first); returns the secret."""
    from api.models import ApiKey, Scope
    from api.services import api_key_create
    from resellers.models import Membership

    ApiKey.objects.filter(reseller=data.reseller, name=KEY_NAME).delete()
    membership = Membership.objects.get(reseller=data.reseller, user=data.owner)
    _key, secret = api_key_create(membership=membership, name=KEY_NAME, scopes=[Scope.READ])
    return secret


def header(data: dashboard.Data, args: argparse.Namespace) -> str:
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
        f"{data.subscriptions:,} subscriptions ({loaded}); gunicorn with {args.workers} sync "
        f"workers, {args.connections} client threads; API_RATE_LIMIT={RATE_LIMIT} for the run; "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; load average "
        f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}\n"
    )


# --- the API ------------------------------------------------------------------------------------

API_LIST = "/api/v1/customers/"
# benchmarks/urls.py: the key's authentication and rate limit through django-ninja, nothing else.
API_MINIMAL = "/api/benchmark/minimal/"


def api_request_bytes(path: str, key: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
        "Accept-Language: en\r\nConnection: close\r\n\r\n"
    ).encode()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def api_get(port: int, path: str, key: str) -> Answer:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(
            "GET", path, headers={"Authorization": f"Bearer {key}", "Accept-Language": "en"}
        )
        response = conn.getresponse()
        return Answer(
            response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        )
    finally:
        conn.close()


@dataclass
class Expected:
    """The reseller's current customers' public ids in the list's order (newest first), and
    those the search finds, read from the database here."""

    rows: list[str]
    search: list[str]


def expected_read(data: dashboard.Data) -> Expected:
    """Straight from the table: the statuses a reseller's list shows, newest first (ties by id
    descending), the search a case-insensitive substring of organisation, domain or contact
    email, matched in Python."""
    from customers.models import Customer

    rows = (
        Customer.objects.filter(
            reseller=data.reseller, status__in=["invited", "active", "cancelled"]
        )
        .order_by("-created_at", "-id")
        .values_list("public_id", "organisation", "domain", "contact_email")
    )
    term = SEARCH_TERM.lower()
    return Expected(
        rows=[row[0] for row in rows],
        search=[row[0] for row in rows if any(term in (text or "").lower() for text in row[1:])],
    )


def page_check(answer: Answer, what: str, ids: list[str], count: int) -> list[str]:
    """What is wrong with one page of the list: its status, its ids in order, its count."""
    if answer.status != 200:
        return [f"{what}: {answer.status} {answer.body[:200]!r}"]
    page = answer.json()
    problems = []
    shown = [item["id"] for item in page["items"]]
    if shown != ids:
        problems.append(f"{what}: ids {shown[:3]}... expected {ids[:3]}...")
    if page["count"] != count:
        problems.append(f"{what}: count {page['count']}, expected {count}")
    return problems


@dataclass
class Checked:
    """The three timed requests' paths and the answers they were checked with."""

    first: str
    deep: str
    search: str
    position: int
    answers: dict[str, Answer] = field(default_factory=dict)


def api_check(port: int, key: str, data: dashboard.Data, expected: Expected) -> Checked | None:
    """Every page of the list through gunicorn, following next_cursor, against the database;
    the search's first page; a wrong key refused. Returns the paths to time, or None."""
    size = 25
    total = len(expected.rows)
    position = customer_list.deep_position(
        cast(customer_list.Data, SimpleNamespace(reseller_id=data.reseller.pk))  # all it reads
    )
    problems: list[str] = []
    checked = Checked(
        first=API_LIST,
        deep="",
        search=f"{API_LIST}?{urlencode({'q': SEARCH_TERM})}",
        position=position,
    )
    path, start, seen = API_LIST, 0, 0
    while True:
        answer = api_get(port, path, key)
        problems += page_check(
            answer, f"rows {start + 1}-", expected.rows[start : start + size], total
        )
        if problems:
            break
        if start == 0:
            checked.answers["first"] = answer
            limit = answer.headers.get("ratelimit-limit")
            if limit != str(RATE_LIMIT):
                problems.append(f"RateLimit-Limit {limit}, expected {RATE_LIMIT}")
        if start == position:
            checked.deep, checked.answers["deep"] = path, answer
        page = answer.json()
        seen += len(page["items"])
        if page["next_cursor"] is None:
            break
        path = f"{API_LIST}?{urlencode({'cursor': page['next_cursor']})}"
        start += size
    if not problems and seen != total:
        problems.append(f"the pages held {seen} customers, expected {total}")
    if not problems and not checked.deep:
        problems.append(f"no page started at row {position + 1}")
    dashboard.verdict(
        not problems,
        f"the API's list: {start // size + 1} pages following next_cursor, {total:,} customers "
        "each once in order, ids and count as in the database",
    )
    search = api_get(port, checked.search, key)
    search_problems = page_check(search, "search", expected.search[:size], len(expected.search))
    if not expected.search:
        search_problems.append(f"no customer matches {SEARCH_TERM!r}")
    checked.answers["search"] = search
    dashboard.verdict(
        not search_problems,
        f"the API's search ?q={SEARCH_TERM}: {len(expected.search):,} customers, the first "
        "page's ids and the count as in the database",
    )
    minimal = api_get(port, API_MINIMAL, key)
    minimal_ok = minimal.status == 200 and minimal.json() == {"ok": True}
    checked.answers["api-minimal"] = minimal
    dashboard.verdict(minimal_ok, f"the minimal API operation ({minimal.status})")
    refused = api_get(port, API_LIST, "ppk_not-a-key")
    refused_ok = refused.status == 401
    dashboard.verdict(refused_ok, f"a wrong key refused ({refused.status})")
    for problem in (problems + search_problems)[:10]:
        print(f"     {problem}")
    good = not problems and not search_problems and minimal_ok and refused_ok
    return checked if good else None


def api_recheck(port: int, key: str, checked: Checked) -> bool:
    """The timed requests again after the load: the same answers (the cursors aside)."""
    ok = True
    for which, _name, path in case_paths(checked):
        again = api_get(port, path, key)
        before = checked.answers[which].json()
        same = again.status == 200 and all(
            again.json()[part] == before[part]
            for part in ("ok", "items", "count")
            if part in before
        )
        ok = ok and same
    dashboard.verdict(ok, "the timed answers the same after the load")
    return ok


def api_queries(checked: Checked, key: str, cookie: str) -> dict[str, int]:
    """SQL queries of one request of each, through the same stack in this process."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    minimal = customer_list.Scenario(
        "minimal view", "/benchmark/minimal/", cookie, "ok", "yardstick"
    )
    customer_list.scenarios_check([minimal])
    queries = {minimal.name: len(minimal.queries)}
    client = Client(HTTP_AUTHORIZATION=f"Bearer {key}", HTTP_ACCEPT_LANGUAGE="en")
    for _which, name, path in case_paths(checked):
        client.get(path)  # the key's last use written, once a minute at most
        with CaptureQueriesContext(connection) as captured:
            client.get(path)
        queries[name] = len(captured.captured_queries)
    return queries


def case_paths(checked: Checked) -> list[tuple[str, str, str]]:
    """The timed API requests: which checked answer, the name, the path."""
    return [
        ("api-minimal", "minimal API operation", API_MINIMAL),
        ("first", "API list, first page", checked.first),
        (
            "deep",
            f"API list, rows {checked.position + 1:,}-{checked.position + 25:,}",
            checked.deep,
        ),
        ("search", f"API list, search “{SEARCH_TERM}”", checked.search),
    ]


def answer_end(answer: Answer) -> bytes:
    """How each answer in the load must end: as the checked one, from its previous_cursor on
    when that is null; a cursor is signed with the time (django.core.signing), so one that is
    not ends differently every second."""
    body = answer.body.rstrip()
    if "previous_cursor" not in answer.json():
        return body
    if answer.json()["previous_cursor"] is None:
        return body[body.rindex(b'"previous_cursor"') :]
    return body[-2:]


def api_run(stack: Stack, data: dashboard.Data, key: str, args: argparse.Namespace) -> bool:
    dashboard.gunicorn_start(stack, "gunicorn", port=stack.web_port, workers=args.workers)
    serving = dashboard.serving(stack, "gunicorn")
    checked = api_check(stack.web_port, key, data, expected_read(data))
    if checked is None:
        return False
    cases = [
        dashboard.Case(
            "minimal view",
            stack.web_port,
            dashboard.request_bytes("/benchmark/minimal/", data.cookie),
            b"ok",
            serving,
        ),
        *(
            dashboard.Case(
                name,
                stack.web_port,
                api_request_bytes(path, key),
                answer_end(checked.answers[which]),
                serving,
            )
            for which, name, path in case_paths(checked)
        ),
    ]
    queries = api_queries(checked, key, data.cookie)
    print(f"\nAPI: {len(cases) - 1} requests against the minimal view", flush=True)
    rounds = dashboard.measure(cases, args)
    answers_ok, ratios = dashboard.rounds_report(cases, rounds, queries, args)
    for case in cases[1:]:
        print(f"{case.name}: {ratios[case.name]:.3f} of the minimal view (no target held)")
    return api_recheck(stack.web_port, key, checked) and answers_ok


# --- webhooks: the receiver ---------------------------------------------------------------------


def receiver_serve(port: int, secret: str) -> int:
    """A reseller's receiver: every POST verified with standardwebhooks (a bad one answered 400
    and counted), each webhook-id counted (a receiver dedupes on it; here a second arrival is
    counted to be seen). GET /stats: the counts; POST /reset: forget them."""
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    webhook = Webhook(secret)
    lock = threading.Lock()
    state: dict[str, Any] = {"ids": Counter(), "invalid": 0, "types": Counter()}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path == "/reset":
                with lock:
                    state.update(ids=Counter(), invalid=0, types=Counter())
                return self.answer(200, b"{}")
            try:
                payload = webhook.verify(body, dict(self.headers.items()))
            except WebhookVerificationError:
                with lock:
                    state["invalid"] += 1
                return self.answer(400, b"bad signature")
            with lock:
                state["ids"][self.headers["webhook-id"]] += 1
                state["types"][payload.get("type", "")] += 1
            return self.answer(200, b"ok")

        def do_GET(self) -> None:
            with lock:
                stats = json.dumps(
                    {"ids": state["ids"], "invalid": state["invalid"], "types": state["types"]}
                )
            self.answer(200, stats.encode())

        def answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 128

    with Server(("127.0.0.1", port), Handler) as server:
        server.serve_forever(poll_interval=0.1)
    return 0


def receiver_call(port: int, method: str, path: str) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=b"" if method == "POST" else None)
        return dict(json.loads(conn.getresponse().read()))
    finally:
        conn.close()


def receiver_answers(port: int) -> bool:
    try:
        receiver_call(port, "GET", "/stats")
    except OSError:
        return False
    return True


# --- webhooks: the runs -------------------------------------------------------------------------


@dataclass
class Delivered:
    way: str
    deliveries: int
    seconds: float
    sender_cpu: float  # seconds: this process, or the Celery worker and its pool
    receiver_cpu: float
    machine_busy: float
    load: tuple[float, float]
    problems: list[str]
    sessions: int = 0  # PostgreSQL sessions opened meanwhile (pg_stat_database)

    @property
    def per_second(self) -> float:
        return self.deliveries / self.seconds


@dataclass
class Webhooks:
    stack: Stack
    data: dashboard.Data
    port: int
    receiver_pid: int
    customers: list[Any]
    events: int


def webhooks_run(stack: Stack, data: dashboard.Data, args: argparse.Namespace) -> bool:
    from resellers.models import Membership
    from webhooks import services
    from webhooks.models import WebhookEndpoint, WebhookEvent

    # The last run's endpoint and events (this database is the benchmark's own).
    WebhookEndpoint.objects.filter(reseller=data.reseller).delete()
    WebhookEvent.objects.filter(reseller=data.reseller).delete()
    port = port_free()
    membership = Membership.objects.get(reseller=data.reseller, user=data.owner)
    _endpoint, secret = services.endpoint_create(
        membership=membership, url=f"http://127.0.0.1:{port}/", event_types=[EVENT_TYPE]
    )
    os.environ[RECEIVER_SECRET_ENV] = secret
    try:
        receiver = stack.spawn("receiver", f"{sys.executable} -m benchmarks.api --receiver {port}")
    finally:
        del os.environ[RECEIVER_SECRET_ENV]
    wait_for("receiver", lambda: receiver_answers(port), timeout=30)
    from customers.models import Customer

    customers = list(Customer.objects.filter(reseller=data.reseller).order_by("pk")[: args.events])
    hooks = Webhooks(stack, data, port, receiver.pid, customers, args.events)
    ways: list[tuple[str, Callable[[Webhooks], Delivered]]] = [
        ("minute job, in-process", lambda h: in_process(h, "minute job, in-process", sweep=True)),
        (
            "on-commit tasks, in-process",
            lambda h: in_process(h, "on-commit tasks, in-process", sweep=False),
        ),
        *(
            (name, lambda h, n=n, name=name: celery_run(h, name, n))
            for n in args.celery
            for name in [f"Celery, {n} process{'es' if n > 1 else ''}"]
        ),
    ]
    print(
        f"\nWebhooks: {args.events:,} events ({EVENT_TYPE}) per run to a receiver on "
        f"127.0.0.1:{port}, {args.webhook_rounds} round(s) of each way",
        flush=True,
    )
    runs: dict[str, list[Delivered]] = {name: [] for name, _ in ways}
    for n in range(args.webhook_rounds):
        order = ways if n % 2 == 0 else ways[::-1]
        for name, way in order:
            run = way(hooks)
            runs[name].append(run)
            print(run_line(run), flush=True)
    return webhooks_report(runs)


def events_record(hooks: Webhooks, *, started: Callable[[], None] | None = None) -> list[str]:
    """N events recorded with the outbox's own service, in one transaction (their deliveries'
    tasks queued on its commit); `started` is called just before the commit."""
    from django.db import transaction

    from webhooks.payloads import customer_data
    from webhooks.services import event_record

    ids = []
    with transaction.atomic():
        for n in range(hooks.events):
            customer = hooks.customers[n % len(hooks.customers)]
            event = event_record(
                reseller=hooks.data.reseller, type=EVENT_TYPE, data=customer_data(customer)
            )
            ids.append(event.public_id)
        if started is not None:
            started()
    return ids


def broker_flush() -> None:
    from config.celery import app

    with app.connection_for_write() as broker:
        broker.default_channel.client.flushdb()  # type: ignore[attr-defined]


def broker_drain() -> list[tuple[str, list[Any], dict[str, Any]]]:
    """The tasks waiting in the broker's default queue, oldest first, taken out of it: (name,
    args, kwargs) of each."""
    from config.celery import app

    queue = app.conf.task_default_queue
    with app.connection_for_write() as broker:
        client = broker.default_channel.client  # type: ignore[attr-defined]
        raw = client.lrange(queue, 0, -1)
        client.delete(queue)
    tasks = []
    for message in reversed(raw):  # kombu's Redis transport pushes on the left
        envelope = json.loads(message)
        body = envelope["body"]
        if envelope["properties"].get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args, kwargs, _embed = json.loads(body)
        tasks.append((envelope["headers"]["task"], args, kwargs))
    return tasks


def in_process(hooks: Webhooks, way: str, *, sweep: bool) -> Delivered:
    """The events recorded, then sent in this process: by the minute job's task, or by running
    the tasks their commit queued (taken from the broker), one after the other."""
    from config.celery import app
    from webhooks.tasks import webhook_deliveries_send_due

    receiver_call(hooks.port, "POST", "/reset")
    broker_flush()
    ids = events_record(hooks)
    queued = broker_drain()
    if not sweep and len(queued) < len(ids):
        return Delivered(way, len(ids), 1.0, 0, 0, 0, (0, 0), [f"{len(queued)} tasks queued"])
    meter = Meter([hooks.receiver_pid], in_process=True)
    if sweep:
        webhook_deliveries_send_due()
    else:
        for name, args, kwargs in queued:
            app.tasks[name](*args, **kwargs)
    run = meter.done(way, len(ids), deliveries_check(hooks, ids))
    run.sessions = pg_sessions() - meter.sessions
    return run


def celery_run(hooks: Webhooks, way: str, processes: int) -> Delivered:
    from benchmarks.billing_scaleout import VENV_BIN
    from webhooks.models import WebhookDelivery

    receiver_call(hooks.port, "POST", "/reset")
    broker_flush()
    name = f"celery-{processes}-{time.monotonic_ns()}"
    worker = hooks.stack.spawn(
        name,
        f"{VENV_BIN}/celery -A config worker --pool prefork -c {processes} -l info "
        "--without-gossip --without-mingle --without-heartbeat",
    )
    log = hooks.stack.workdir / f"{name}.log"
    try:
        wait_for("Celery worker", lambda: b"ready." in log.read_bytes(), timeout=60)
        meters: list[Meter] = []
        ids = events_record(
            hooks, started=lambda: meters.append(Meter([hooks.receiver_pid], worker=worker.pid))
        )
        delivered = WebhookDelivery.objects.filter(
            event__public_id__in=ids, status=WebhookDelivery.Status.DELIVERED
        )
        deadline = time.monotonic() + 60 + hooks.events / 5
        while delivered.count() < len(ids) and time.monotonic() < deadline:
            time.sleep(0.05)
        run = meters[0].done(way, len(ids), [])
    finally:
        stop_process(worker)
        hooks.stack.processes.pop(name, None)
    run.sessions = pg_sessions() - meters[0].sessions  # the pool's last ones closed too
    run.problems = deliveries_check(hooks, ids)
    errors = [line for line in log.read_bytes().splitlines() if b"ERROR" in line]
    if errors:
        run.problems.append(f"{len(errors)} errors in {log}")
    return run


def stop_process(process: Any) -> None:
    from benchmarks.billing_scaleout import stop

    stop(process)


class Meter:
    """The time, the sender's and receiver's CPU, the machine's busy share and the load from
    now until done()."""

    def __init__(self, receiver: list[int], *, in_process: bool = False, worker: int = 0) -> None:
        self.receiver = receiver
        self.in_process = in_process
        self.worker = worker
        self.load = os.getloadavg()[0]
        self.busy = dashboard.cpu_times()
        self.receiver_cpu = dashboard.processes_cpu(receiver)
        self.sender_cpu = self.sender()
        self.sessions = pg_sessions()
        self.started = time.perf_counter()

    def sender(self) -> float:
        if self.in_process:
            return time.process_time()
        pool = [pid for pid, parent in process_parents().items() if parent == self.worker]
        return dashboard.processes_cpu([self.worker, *pool])

    def done(self, way: str, deliveries: int, problems: list[str]) -> Delivered:
        seconds = time.perf_counter() - self.started
        busy = dashboard.cpu_times()
        return Delivered(
            way=way,
            deliveries=deliveries,
            seconds=seconds,
            sender_cpu=self.sender() - self.sender_cpu,
            receiver_cpu=dashboard.processes_cpu(self.receiver) - self.receiver_cpu,
            machine_busy=(busy[0] - self.busy[0]) / max(1, busy[1] - self.busy[1]),
            load=(self.load, os.getloadavg()[0]),
            problems=problems,
        )


def pg_sessions() -> int:
    """Sessions opened in the benchmark's database so far: Celery closes a task's database
    connections after each task (its Django fix-up, unless CELERY_DB_REUSE_MAX is set)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return int(cursor.fetchone()[0])


def deliveries_check(hooks: Webhooks, ids: list[str]) -> list[str]:
    """Every event of the run at the receiver exactly once with a valid signature, nothing
    else; each delivery recorded delivered after one attempt."""
    from webhooks.models import WebhookAttempt, WebhookDelivery

    stats = receiver_call(hooks.port, "GET", "/stats")
    received: dict[str, int] = stats["ids"]
    problems = []
    missing = set(ids) - set(received)
    extra = set(received) - set(ids)
    twice = [event_id for event_id, count in received.items() if count > 1]
    if missing:
        problems.append(f"{len(missing)} events never arrived")
    if extra:
        problems.append(f"{len(extra)} unknown events arrived")
    if twice:
        problems.append(f"{len(twice)} events arrived more than once")
    if stats["invalid"]:
        problems.append(f"{stats['invalid']} deliveries with a bad signature")
    if stats["types"] != {EVENT_TYPE: len(ids)}:
        problems.append(f"event types {stats['types']}")
    deliveries = WebhookDelivery.objects.filter(event__public_id__in=ids)
    wrong = deliveries.exclude(status=WebhookDelivery.Status.DELIVERED, attempts=1).count()
    if deliveries.count() != len(ids) or wrong:
        problems.append(
            f"{deliveries.count()} deliveries for {len(ids)} events, {wrong} not "
            "delivered at the first attempt"
        )
    attempts = WebhookAttempt.objects.filter(delivery__event__public_id__in=ids).count()
    if attempts != len(ids):
        problems.append(f"{attempts} attempts logged for {len(ids)} deliveries")
    return problems


def run_line(run: Delivered) -> str:
    verdict = (
        "each event once, signature valid"
        if not run.problems
        else "WRONG: " + "; ".join(run.problems)
    )
    return (
        f"{run.way}: {run.deliveries:,} in {run.seconds:.2f} s = {run.per_second:.0f}/s; "
        f"sender {1000 * run.sender_cpu / run.deliveries:.2f} ms CPU per delivery, receiver "
        f"{1000 * run.receiver_cpu / run.deliveries:.2f} ms; {run.sessions:,} PostgreSQL "
        f"sessions opened; machine {run.machine_busy:.0%} busy; "
        f"load average {run.load[0]:.2f} -> {run.load[1]:.2f}; {verdict}"
    )


def webhooks_report(runs: dict[str, list[Delivered]]) -> bool:
    print(
        "\n| Delivered by | deliveries/s (median) | min-max | sender CPU per delivery "
        "| receiver CPU per delivery | PostgreSQL sessions per delivery | machine busy "
        "| load average |\n|---|---|---|---|---|---|---|---|"
    )
    for way, results in runs.items():
        rates = [r.per_second for r in results]
        print(
            f"| {way} | {statistics.median(rates):.0f} | {min(rates):.0f}-{max(rates):.0f} "
            f"| {statistics.median(1000 * r.sender_cpu / r.deliveries for r in results):.2f} ms "
            f"| {statistics.median(1000 * r.receiver_cpu / r.deliveries for r in results):.2f} ms "
            f"| {statistics.median(r.sessions / r.deliveries for r in results):.2f} "
            f"| {statistics.median(r.machine_busy for r in results):.0%} "
            f"| {min(r.load[0] for r in results):.2f}-{max(r.load[1] for r in results):.2f} |"
        )
    problems = [p for results in runs.values() for r in results for p in r.problems]
    total = sum(r.deliveries for results in runs.values() for r in results)
    dashboard.verdict(
        not problems,
        f"{total:,} deliveries: every event at the receiver exactly once with a valid signature, "
        "each delivered at the first attempt",
    )
    return not problems


if __name__ == "__main__":
    sys.exit(main())
