"""What the fault tests share (tests/system/test_faults_*.py): the stack of real processes a
test breaks, the work put through it, and what must hold once the fault is over.

Each test starts its own Redis (never the shared one), a Celery worker (prefork, two processes,
its beat embedded) and, where pages are loaded, gunicorn, all on this test's database
(tests/support/fault_stack.py: the processes). Then it breaks something while a billing run,
invitations and page loads are under way, and checks that once the fault is over every invoice
has its PDF and every email went out exactly once (its Message-ID is in the file backend's
output once), with its one-time link working. The recovery timings are shortened to seconds
(WORK_SWEEP_EVERY=2, WORK_REQUEUE_AFTER=5, EMAIL_SEND_LEASE=10).

The faults are in three modules, so that parallel test processes run them side by side (each
test has its own Redis and processes): Redis down, Redis frozen, and processes or database
connections lost."""

import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from billing import vat
from billing.models import Invoice
from billing.services import billing_run
from billing.tasks import billing_run_daily
from config import celery_app
from core.models import OutboundEmail, User
from core.tokens import token_digest
from customers.models import CustomerInvitation
from customers.services import customer_invite
from resellers.models import Membership, TeamInvitation
from resellers.roles import Role
from resellers.services import team_invite
from tests.factories import ChargeFactory, SubscriptionFactory, Tenant, make_tenant
from tests.support import fault_stack
from tests.support.sessions import session_key_for

# How long the tests wait for the processes to finish the work once the fault is over: the
# worker tries Redis again every two seconds at most (config/worker.py), then the sweeps run
# every two seconds and queue again what is five seconds overdue.
RECOVERY_TIMEOUT = 90
# What a signed-in reseller loads while Redis is away.
PAGES = ["/dashboard/", "/customers/", "/invoices/", "/team/"]
# Under the limit of invitations per person and hour (30), which is kept per web process
# while Redis is away.
INVITE_EVERY = 2.5
# The pause between two rounds of PAGES: a reseller clicking, not a load test (which would only
# spend the CPU the other tests need).
PAGES_PAUSE = 1.0
# The worker's connections to the database, by name, to end them (test 4).
WORKER_DB_APPLICATION = "fault-worker"


@dataclass
class Stack:
    redis: fault_stack.RedisServer
    env: dict[str, str]
    tmp_path: Path
    mail_dir: Path
    media_dir: Path
    web_port: int = 0
    started: list[fault_stack.Child] = field(default_factory=list)
    restarts: list[str] = field(default_factory=list)

    @property
    def worker(self) -> fault_stack.Child:
        """The worker started last."""
        return [child for child in self.started if child.name == "worker"][-1]

    def worker_new(self) -> fault_stack.Child:
        """Another worker (and beat) like the first, e.g. after the first was killed."""
        worker = fault_stack.Child(
            "worker",
            fault_stack.worker_command(self.tmp_path / f"beat-{len(self.started)}"),
            self.env,
            self.tmp_path / f"worker-{len(self.started)}.log",
        )
        self.started.append(worker)
        worker.start()
        worker.wait_for("ready.", fault_stack.START_TIMEOUT)
        return worker

    def worker_restart_if_exited(self) -> None:
        """Start the worker again if it exited by itself, as the deployment's restart policy
        does (docker-compose.yml: restart: unless-stopped); the exit is recorded."""
        worker = self.worker
        if worker.running() or worker.killed:
            return
        last_error = [line for line in worker.log().splitlines() if "CRITICAL" in line][-1:]
        self.restarts.append(f"{worker.log_path.name}: {last_error}")
        self.worker_new()

    def web_start(self) -> None:
        self.web_port = fault_stack.free_port()
        web = fault_stack.Child(
            "gunicorn",
            fault_stack.gunicorn_command(self.web_port),
            self.env,
            self.tmp_path / "gunicorn.log",
        )
        self.started.append(web)
        web.start()
        fault_stack.wait_until(
            lambda: fault_stack.page_status(self.web_port, "/accounts/login/", "", timeout=2),
            timeout=fault_stack.START_TIMEOUT,
            what="gunicorn answering",
        )

    def status(self, path: str, cookie: str = "") -> int:
        return fault_stack.page_status(self.web_port, path, cookie)

    def logs(self) -> str:
        return "\n".join(
            f"--- {child.log_path.name}\n{child.log()[-6000:]}" for child in self.started
        )


def celery_conf_saved() -> dict[str, object]:
    """What celery_point_at changes in Celery's configuration, to restore."""
    conf = celery_app.conf
    return {
        "task_always_eager": conf.task_always_eager,
        "broker_url": conf.broker_url,
        "result_backend": conf.result_backend,
    }


def celery_point_at(redis: fault_stack.RedisServer, settings: Any) -> None:
    """Queue from this process to the test's Redis, for real; the cache there too, fail-soft as
    in production (the invitation limits use it)."""
    conf = celery_app.conf
    assert conf.task_always_eager is True
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CACHES = {
        "default": {
            "BACKEND": "core.cache.ResilientRedisCache",
            "LOCATION": redis.url(0),
            "OPTIONS": {
                "socket_connect_timeout": settings.REDIS_TIMEOUT,
                "socket_timeout": settings.REDIS_TIMEOUT,
            },
        }
    }
    conf.update(task_always_eager=False, broker_url=redis.url(0), result_backend=redis.url(1))
    celery_connections_forget()
    with celery_app.connection_for_write() as broker:
        assert broker.as_uri().endswith(f"127.0.0.1:{redis.port}/0"), broker.as_uri()


def celery_restore(previous: dict[str, object]) -> None:
    celery_app.conf.update(previous)
    celery_connections_forget()


def celery_connections_forget() -> None:
    """Celery keeps its broker connections and result backend once made: drop them, so the
    next task is sent with the configuration as it is now."""
    # Not closed: kombu keeps each pool in a registry by URL, so the pool of the Redis used
    # before comes back (open) when the configuration is restored.
    app: Any = celery_app  # its private attributes: Celery has no API for this
    app._after_fork()  # forgets the connection pools, as in a forked child
    app._backend_cache = None
    app._local = threading.local()


# --- The work: a billing run, invitations, pages -------------------------------------------


def tenants_make(count: int) -> list[Tenant]:
    vat.vat_rates_seed()
    return [make_tenant(f"Reseller {index}") for index in range(count)]


# Seconds before midnight within which billing_start waits for the next day (a fault test takes
# under two minutes).
MIDNIGHT_MARGIN = 120


def billing_start(tenants: list[Tenant]) -> None:
    """Give each tenant's customer a charge due today, and start the daily run, which issues one
    invoice each (as does the sweeper, when the run's time is past); wait for the first."""
    # The charges are due today and the run issues one invoice per customer and day: a test
    # that crosses midnight would see its charges split over two days (seen once, in a CI run
    # at 23:59). Close to midnight, start after it.
    now = timezone.localtime()
    midnight = datetime.combine(
        now.date() + timedelta(days=1), datetime.min.time(), tzinfo=now.tzinfo
    )
    if midnight - now < timedelta(seconds=MIDNIGHT_MARGIN):
        time.sleep((midnight - now).total_seconds() + 1)
    for tenant in tenants:
        ChargeFactory(subscription=SubscriptionFactory(customer=tenant.customer))
    billing_run_daily.delay()
    fault_stack.wait_until(Invoice.objects.exists, timeout=30, what="the first invoice issued")


def billing_catch_up() -> None:
    """The sweeper issues the invoices whose tasks were lost once the day's run time
    (BILLING_RUN_AT) is WORK_REQUEUE_AFTER past; a test run between midnight and then (UTC)
    runs the day's billing here instead, as the run at that time would. Not by queuing the
    run: the worker that runs it has just failed to reach the broker, and for the next
    BROKER_RETRY_AFTER seconds it leaves every task it would queue to the sweeper (core.queue),
    which before the run's time leaves them to the run (two CI runs after midnight failed so)."""
    now = timezone.localtime()
    run_at = datetime.combine(now.date(), settings.BILLING_RUN_AT, tzinfo=now.tzinfo)
    if now < run_at + timedelta(seconds=fault_stack.WORK_REQUEUE_AFTER + 5):
        billing_run(day=now.date())


def invitations_send(tenant: Tenant, label: str, count: int = 2) -> None:
    """Team invitations and a customer invitation, as the pages send them: the services, in
    their transactions, each queuing an email with a one-time link on commit."""
    membership = Membership.objects.get(user=tenant.owner, reseller=tenant.reseller)
    for index in range(count):
        team_invite(membership=membership, email=f"{label}-{index}@team.example", role=Role.SALES)
    customer_invite(
        membership=membership,
        customer_type="domain",
        organisation=f"{label} Customer",
        domain=f"{label}-customer.co.uk",
        contact_name="Ada Contact",
        contact_email=f"ada@{label}-customer.co.uk",
        country="GB",
    )


def session_cookie(user: User) -> str:
    """A signed-in session for `user`, written to the database as a sign-in would."""
    return f"sessionid={session_key_for(user)}"


def pages_load(
    stack: Stack, cookie: str, seconds: float, *, invite_as: str = ""
) -> tuple[Counter[int], float]:
    """Load the signed-in pages in turn (a round, then a pause of PAGES_PAUSE s) for `seconds`,
    and (with `invite_as`) send a team invitation through the team page every INVITE_EVERY
    seconds, a page that queues work: how many answered with each status, and the slowest
    answer in seconds."""
    statuses: Counter[int] = Counter()
    slowest = 0.0

    def timed(request: Callable[..., int], *args: object) -> None:
        nonlocal slowest
        start = time.monotonic()
        statuses[request(*args)] += 1
        slowest = max(slowest, time.monotonic() - start)

    deadline = time.monotonic() + seconds
    invited = 0
    next_invite = time.monotonic()
    while time.monotonic() < deadline:
        for path in PAGES:
            timed(stack.status, path, cookie)
        if invite_as and time.monotonic() >= next_invite:
            fields = {"email": f"{invite_as}-{invited}@web.example", "role": Role.SALES}
            timed(fault_stack.page_post, stack.web_port, "/team/", cookie, fields)
            invited += 1
            next_invite += INVITE_EVERY
        time.sleep(max(0.0, min(PAGES_PAUSE, deadline - time.monotonic())))
    return statuses, slowest


def within(seconds: float, what: str, action: Callable[[], object]) -> float:
    """Run `action` (in a thread, with its own database connection); fail if it has not
    finished after `seconds` (it hangs on a frozen Redis). Returns how long it took."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            action()
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    start = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"{what}: still running after {seconds} s")
    if errors:
        raise errors[0]
    return time.monotonic() - start


# --- What must hold once the fault is over -----------------------------------------------


def all_done(expected_invoices: int) -> bool:
    """Every invoice issued has its PDF, and every email is sent (none failed)."""
    invoices = Invoice.objects.all()
    return (
        invoices.count() == expected_invoices
        and not invoices.filter(pdf="").exists()
        and OutboundEmail.objects.exists()
        and not OutboundEmail.objects.exclude(status=OutboundEmail.Status.SENT).exists()
    )


def recovery_wait(stack: Stack, expected_invoices: int, timeout: float = RECOVERY_TIMEOUT) -> float:
    """Seconds until all the work is done; fails with the state and the logs after `timeout`."""
    start = time.monotonic()
    while not all_done(expected_invoices):
        stack.worker_restart_if_exited()
        if OutboundEmail.objects.filter(status=OutboundEmail.Status.FAILED).exists():
            pytest.fail(f"an email failed for good:\n{work_state()}\n{stack.logs()}")
        if time.monotonic() - start > timeout:
            pytest.fail(f"not done {timeout} s after the fault:\n{work_state()}\n{stack.logs()}")
        time.sleep(0.5)
    if stack.restarts:
        # Seen once in about fifteen Redis restarts: kombu 5.7 fails while closing the lost
        # connection ("Unrecoverable error: AttributeError: 'NoneType' object has no attribute
        # 'hostname'") and the worker exits.
        print(f"the worker exited by itself and was started again: {stack.restarts}")
    return time.monotonic() - start


def pending_work() -> str:
    """What is not done yet, for the test's report."""
    invoices = Invoice.objects.all()
    emails = OutboundEmail.objects.exclude(status=OutboundEmail.Status.SENT)
    return (
        f"{invoices.filter(pdf='').count()} of {invoices.count()} invoices without a PDF,"
        f" {emails.count()} emails not sent"
    )


def work_state() -> str:
    invoices = list(Invoice.objects.values_list("number", "pdf", "pdf_attempts"))
    emails = list(
        OutboundEmail.objects.values_list("pk", "template", "status", "attempts", "last_error")
    )
    return f"invoices: {invoices}\nemails: {emails}"


def pdfs_stored(stack: Stack) -> None:
    """Each invoice's PDF is in the storage the processes share, and was emailed once."""
    for invoice in Invoice.objects.all():
        assert (stack.media_dir / str(invoice.pdf.name)).read_bytes().startswith(b"%PDF-")
    emailed = OutboundEmail.objects.filter(template="invoice_issued")
    assert emailed.count() == Invoice.objects.count()


def each_email_sent_once(stack: Stack) -> None:
    """Each email's Message-ID went out exactly once, and nothing else went out."""
    sent = fault_stack.sent_message_ids(stack.mail_dir)
    message_ids = [
        message_id or ""
        for message_id in OutboundEmail.objects.values_list("message_id", flat=True)
    ]
    assert all(message_ids), message_ids
    twice = {message_id: count for message_id, count in sent.items() if count != 1}
    assert not twice, f"sent more than once: {twice}"
    assert sorted(sent) == sorted(message_ids)


def links_work(stack: Stack) -> None:
    """Each invitation went out with a link whose token is the invitation's own (and, when the
    web runs, whose page opens)."""
    mail = fault_stack.sent_mail(stack.mail_dir)
    team = {token_digest(raw): raw for raw in re.findall(r"/join/([\w-]+)/", mail)}
    customer = {token_digest(raw): raw for raw in re.findall(r"/invitation/([\w-]+)/", mail)}
    invitations = list(TeamInvitation.objects.values_list("token_hash", flat=True))
    customer_invitations = list(CustomerInvitation.objects.values_list("token_hash", flat=True))
    assert invitations and customer_invitations
    assert set(invitations) <= set(team), "a team invitation's link is missing"
    assert set(customer_invitations) <= set(customer), "a customer invitation's link is missing"
    if stack.web_port:
        for token_hash in invitations:
            assert stack.status(f"/join/{team[token_hash]}/") == 200
        for token_hash in customer_invitations:
            assert stack.status(f"/invitation/{customer[token_hash]}/") == 200
        assert stack.status("/join/not-a-real-token/") == 404
