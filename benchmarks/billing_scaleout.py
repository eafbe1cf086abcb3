"""The billing run fanned out to Celery workers: 10,000 subscriptions issued by 1, 2 and 4
worker processes, on PostgreSQL and a Redis of its own.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/partner_portal_bench_billing_scaleout \\
        .venv/bin/python -m benchmarks.billing_scaleout     # or: make bench-billing-scaleout
    .venv/bin/python -m benchmarks.billing_scaleout --subscriptions 1000 --workers 1 2

For each number of worker processes it loads the subscriptions as `benchmarks.billing_run`
does (its database is emptied and loaded again each time), starts a redis-server of its own on
a free port and a real `celery worker` with that many prefork processes, then queues the day's
invoices as `billing.tasks.billing_run_daily` does, one `invoice_issue` task per customer, and
waits until every invoice due is issued. The tasks go to a queue of the benchmark's own, which
is the only one the worker consumes: the PDF render and the card charge that each issue queues
after commit land in the default queue and wait there (their work is not the run's; a render
costs 10 to 30 times an issue, billing/pdf.py).

While the workers issue, it samples every 50 ms how many PostgreSQL sessions of the database
wait for a lock (the counter row: every issue takes the next number, in its transaction) and
the machine's CPU (/proc/stat). After each run it checks the day as billing_run's benchmark
does (every group due has its one invoice with exactly its charges) and the numbers (gapless
from INV-YYYY-000001, amounts reconcile, one audit row each); it exits non-zero when a run is
wrong or a worker logged an error.
"""

import argparse
import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
os.environ.setdefault(
    "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/partner_portal_bench_billing_scaleout"
)

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
QUEUE = "billing-scaleout"
SAMPLE_EVERY = 0.05  # seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscriptions", type=int, default=10_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--timeout", type=float, default=1200, help="seconds per run at most")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="CI's mode: 60 subscriptions by 1 and 2 processes; the checks, not the figures",
    )
    args = parser.parse_args()
    if args.smoke:
        args.subscriptions, args.workers, args.timeout = 60, [1, 2], 300

    from benchmarks.soak import port_free, redis_ping, wait_for

    workdir = Path(tempfile.mkdtemp(prefix="billing-scaleout-"))
    redis_port = port_free()
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        raise SystemExit("redis-server is needed (apt-get install redis-server).")
    redis = spawn(
        workdir,
        "redis",
        f"{redis_server} --port {redis_port} --bind 127.0.0.1 --save '' --appendonly no "
        f"--dir {shlex.quote(str(workdir))}",
    )
    # This process queues the tasks, the workers (children) take them: the same broker.
    os.environ["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
    os.environ.pop("CELERY_BROKER_URL", None)
    os.environ.pop("CELERY_RESULT_BACKEND", None)
    results: list[Run] = []
    try:
        wait_for("redis", lambda: redis_ping(redis_port), timeout=10)
        from benchmarks.billing_run import header, setup

        setup()
        print(header())
        print(f"{args.subscriptions:,} subscriptions; logs in {workdir}\n")
        for workers in args.workers:
            results.append(run(args.subscriptions, workers, workdir, timeout=args.timeout))
            print(results[-1].line(results[0]), flush=True)
    finally:
        stop(redis)
    return 0 if results and all(not r.problems for r in results) else 1


def spawn(workdir: Path, name: str, command: str) -> subprocess.Popen[bytes]:
    log = (workdir / f"{name}.log").open("wb")
    return subprocess.Popen(  # noqa: S603 - our own commands
        shlex.split(command),
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to its process group (a worker and its pool), SIGKILL if it lingers."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@dataclass
class Run:
    workers: int
    invoices: int
    seconds: float
    cpu_busy: float  # share of the machine's CPU time, all cores
    worker_cpu_ms: float  # the worker processes' CPU per invoice
    lock_waiting: float  # share of samples with a session waiting for a lock
    lock_waiters: float  # sessions waiting for a lock, on average
    load_average: tuple[float, float]
    problems: list[str]

    def line(self, first: "Run") -> str:
        rate = self.invoices / self.seconds
        speedup = rate / (first.invoices / first.seconds)
        verdict = "ok" if not self.problems else "WRONG: " + "; ".join(self.problems)
        return (
            f"{self.workers} worker process{'es' if self.workers > 1 else ''}: "
            f"{self.invoices:,} invoices in {self.seconds:.1f} s = {rate:.0f}/s "
            f"({speedup:.2f}x one process); CPU {100 * self.cpu_busy:.0f} % of the machine, "
            f"workers {self.worker_cpu_ms:.1f} ms CPU per invoice; a session waiting for a lock "
            f"in {100 * self.lock_waiting:.0f} % of samples ({self.lock_waiters:.2f} on "
            f"average); load average {self.load_average[0]:.2f} -> {self.load_average[1]:.2f}; "
            f"numbers {verdict}"
        )


def run(subscriptions: int, workers: int, workdir: Path, *, timeout: float) -> Run:
    from django.utils import timezone

    from benchmarks.billing_run import charge_groups, day_check, invoices_check, load
    from benchmarks.soak import wait_for
    from billing import selectors
    from billing.models import Invoice
    from billing.tasks import invoice_issue
    from config.celery import app

    load(subscriptions)
    today = timezone.localdate()
    due = selectors.billing_due(day=today)
    due_charges = charge_groups(today)
    with app.connection_for_write() as broker:
        broker.default_channel.client.flushdb()  # type: ignore[attr-defined]

    name = f"worker-{workers}"
    worker = spawn(
        workdir,
        name,
        f"{VENV_BIN}/celery -A config worker -Q {QUEUE} --pool prefork -c {workers} "
        "-l info --without-gossip --without-mingle --without-heartbeat",
    )
    log = workdir / f"{name}.log"
    try:
        wait_for("Celery worker", lambda: b"ready." in log.read_bytes(), timeout=60)
        sampler = Sampler(workers=worker.pid)
        load_before = os.getloadavg()[0]
        sampler.start()
        started = time.perf_counter()
        # As billing_run_daily queues them, to the benchmark's queue.
        for customer_id, payer, currency in due:
            invoice_issue.apply_async(
                (customer_id, payer, currency, today.isoformat()), queue=QUEUE
            )
        issued = Invoice.objects.filter(issue_date=today)
        deadline = started + timeout
        while issued.count() < len(due) and time.perf_counter() < deadline:
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        sampler.stop()
        worker_cpu = sampler.worker_cpu_seconds()
    finally:
        stop(worker)
    problems = day_check(today, due=due, due_charges=due_charges) + invoices_check()
    errors = [line for line in log.read_bytes().splitlines() if b"ERROR" in line]
    if errors:
        problems.append(f"{len(errors)} errors in {log}")
    return Run(
        workers=workers,
        invoices=issued.count(),
        seconds=seconds,
        cpu_busy=sampler.cpu_busy(),
        worker_cpu_ms=1000 * worker_cpu / max(issued.count(), 1),
        lock_waiting=sampler.lock_waiting(),
        lock_waiters=sampler.lock_waiters(),
        load_average=(load_before, os.getloadavg()[0]),
        problems=problems,
    )


class Sampler(threading.Thread):
    """Lock waits in the benchmark's database and the machine's CPU, while the workers run."""

    def __init__(self, *, workers: int) -> None:
        super().__init__(daemon=True)
        self.workers = workers
        self.waiting: list[int] = []
        self.done = threading.Event()
        self.cpu_start = cpu_times()
        self.cpu_end = self.cpu_start
        self.worker_cpu_start = self.tree_cpu()

    def run(self) -> None:
        import psycopg

        name = os.environ["DATABASE_URL"].rsplit("/", 1)[1]
        with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
            while not self.done.wait(SAMPLE_EVERY):
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                    "AND wait_event_type = 'Lock'",
                    [name],
                ).fetchone()
                self.waiting.append(int(row[0]) if row else 0)

    def stop(self) -> None:
        self.cpu_end = cpu_times()
        self.done.set()
        self.join()

    def tree_cpu(self) -> float:
        """CPU seconds (user and system) of the worker and its pool processes."""
        from benchmarks.soak import process_parents

        parents = process_parents()
        pids = {self.workers} | {pid for pid, ppid in parents.items() if ppid == self.workers}
        ticks = 0
        for pid in pids:
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                ticks += int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")

    def worker_cpu_seconds(self) -> float:
        return self.tree_cpu() - self.worker_cpu_start

    def cpu_busy(self) -> float:
        total = sum(self.cpu_end) - sum(self.cpu_start)
        idle = (self.cpu_end[3] + self.cpu_end[4]) - (self.cpu_start[3] + self.cpu_start[4])
        return 1 - idle / total if total else 0.0

    def lock_waiting(self) -> float:
        return sum(1 for n in self.waiting if n) / max(len(self.waiting), 1)

    def lock_waiters(self) -> float:
        return sum(self.waiting) / max(len(self.waiting), 1)


def cpu_times() -> list[int]:
    """The machine's CPU ticks: user, nice, system, idle, iowait, irq, softirq, steal."""
    return [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]


if __name__ == "__main__":
    sys.exit(main())
