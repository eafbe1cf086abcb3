"""The sweeper: the database holds all pending work, and this queues again whatever is overdue.

Every app registers its sweeps in its AppConfig.ready (`sweep_register`): core the emails,
billing the PDFs, the payment attempts, the refunds and the webhook events. Celery beat runs
`core.tasks.work_sweep` every WORK_SWEEP_EVERY seconds (a minute); staff can run it at once from
the admin (`force`: overdue or not).

Recovery works like this. Each piece of work is a row whose state says it is not done, with the
moment its task was last queued. A task lost on the way (Redis restarted without its data, an
enqueue that failed while Redis was down, a worker killed with `kill -9`) leaves the row as it
was; once it is WORK_REQUEUE_AFTER overdue (2 minutes), the sweeper queues it again and stamps
the moment, so it is queued once per period, not once per sweep. Every task is safe to run twice
(a claimed row, a locked invoice, an idempotency key), so a wake-up that was only slow costs a
skipped run. The broker's visibility timeout (an hour) only decides when Redis itself hands a
killed worker's message to another worker, which then finds the work done.

Two beats (two schedulers started by mistake) do not double the work: a sweep holds a
PostgreSQL advisory lock, and one that finds it taken does nothing. While the broker has a long
queue of its own, the workers are busy with the work it holds, and the sweep waits.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from celery import Task
from django.conf import settings
from django.db import connection
from django.db.models import Model, Q, QuerySet
from django.utils import timezone

from core.queue import broker_backlog, task_enqueue

if TYPE_CHECKING:
    from core.selectors import BacklogLine

logger = logging.getLogger(__name__)

# At most this many tasks queued per kind of work per sweep: after a mass loss the queue is not
# flooded; the next sweeps take the rest. A broker queue longer than this means the workers
# are behind, not that work was lost.
SWEEP_BATCH = 500
# Any number unique to this lock among the project's advisory locks.
SWEEP_LOCK_KEY = 0x5EED_5EE9


class Sweep(Protocol):
    def __call__(self, *, now: datetime, force: bool) -> int: ...


class _Sweeps:
    """The registered sweeps, by name, in the order registered (filled in AppConfig.ready)."""

    registered: dict[str, Sweep] = {}


def sweep_register(name: str, sweep: Sweep) -> None:
    _Sweeps.registered[name] = sweep


class BacklogReader(Protocol):
    def __call__(self, *, now: datetime) -> "list[BacklogLine]": ...


class QueuedText(Protocol):
    def __call__(self, count: int) -> str: ...


class _Backlogs:
    """What staff see of each sweep's pending work (core.selectors.work_backlog), by the sweep's
    name, in the order registered (filled in AppConfig.ready): the lines of the admin's
    "Background work" box, and how to say how many tasks the sweep queued ("3 emails")."""

    registered: dict[str, tuple[BacklogReader, QueuedText]] = {}


def backlog_register(name: str, reader: BacklogReader, *, queued_text: QueuedText) -> None:
    _Backlogs.registered[name] = (reader, queued_text)


def backlog_registered() -> dict[str, tuple[BacklogReader, QueuedText]]:
    return dict(_Backlogs.registered)


def work_sweep(*, force: bool = False, now: datetime | None = None) -> dict[str, int]:
    """Run every registered sweep once; returns how many tasks each queued ({} when another
    sweep holds the lock, or the broker's own queue is long)."""
    now = now or timezone.now()
    with sweep_lock() as acquired:
        if not acquired:
            logger.info("Work sweep skipped: another sweep is running")
            return {}
        backlog = broker_backlog()
        if not force and backlog is not None and backlog > SWEEP_BATCH:
            logger.info("Work sweep skipped: %d tasks already wait in the broker", backlog)
            return {}
        queued = {}
        for name, sweep in _Sweeps.registered.items():
            try:
                queued[name] = sweep(now=now, force=force)
            except Exception:
                # One kind of work failing to sweep does not stop the others.
                logger.exception("Work sweep: %s failed", name)
    if any(queued.values()):
        logger.warning("Work sweep queued again: %s", queued)
    return queued


@contextmanager
def sweep_lock() -> Iterator[bool]:
    """Hold the sweep's advisory lock (PostgreSQL) for the block; yields whether it was free.
    Other databases serve one process (the demo's SQLite): nothing to lock against."""
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [SWEEP_LOCK_KEY])
        (acquired,) = cursor.fetchone()
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [SWEEP_LOCK_KEY])


def overdue_q(*, due_field: str, queued_field: str, now: datetime) -> Q:
    """Rows due and queued at least WORK_REQUEUE_AFTER ago (or never queued)."""
    cutoff = now - timedelta(seconds=settings.WORK_REQUEUE_AFTER)
    return Q(**{f"{due_field}__lte": cutoff}) & (
        Q(**{f"{queued_field}__isnull": True}) | Q(**{f"{queued_field}__lte": cutoff})
    )


def rows_requeue(
    pending: QuerySet[Model],
    *,
    due_field: str,
    task: Task,
    now: datetime,
    force: bool,
    queued_field: str = "queued_at",
    argument_fields: tuple[str, ...] = (),
    annotations: dict[str, Any] | None = None,
    stamp: bool = True,
) -> int:
    """Queue `task` again for the `pending` rows that are overdue (all of them if `force`),
    oldest first, and stamp their `queued_field` with `now` (unless not `stamp`: rows queued
    again on every sweep while overdue). The task is called with the row's `argument_fields`
    (which may name `annotations`), or with its pk. Returns how many were queued."""
    overdue = pending.annotate(**annotations) if annotations else pending
    if not force:
        overdue = overdue.filter(overdue_q(due_field=due_field, queued_field=queued_field, now=now))
    rows = list(overdue.order_by(due_field, "pk").values_list("pk", *argument_fields)[:SWEEP_BATCH])
    if not rows:
        return 0
    if stamp:
        pending.model._default_manager.filter(pk__in=[row[0] for row in rows]).update(
            **{queued_field: now}
        )
    return sum(task_enqueue(task, *(row[1:] if argument_fields else row[:1])) for row in rows)
