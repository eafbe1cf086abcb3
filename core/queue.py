"""Queuing a task: a wake-up for work the database already holds, never the work itself.

Whatever must happen after a commit is a row first (an email `pending`, an invoice without its
PDF, a payment attempt due); the task message only says "do it now". So an enqueue that fails
(Redis down or frozen) is logged, not raised: the request that queued it still succeeds, and
the sweeper (core.sweeper) queues the work again once it is overdue.

After a failed enqueue this process stops trying for `BROKER_RETRY_AFTER` seconds, so a page
that queues work while Redis is frozen pays the broker's short timeout once, not on every
request. That moment is process state (one per web or worker process), not a cache of data.
"""

import logging
import time
from functools import partial
from typing import Any

from celery import Task
from django.conf import settings
from django.db import transaction
from kombu.exceptions import ChannelError

logger = logging.getLogger(__name__)

BROKER_RETRY_AFTER = 5.0  # seconds


class _Broker:
    """When this process may try the broker again after a failed enqueue."""

    retry_at = 0.0


def task_enqueue(task: Task, *args: Any, **kwargs: Any) -> bool:
    """Queue `task(*args, **kwargs)` now; False (logged) if the broker could not take it.

    Run in-process (the demo's eager tasks), a failure of the task itself is logged the same
    way: the task has recorded it on its row, and the page that queued it must not fail."""
    eager = settings.CELERY_TASK_ALWAYS_EAGER
    if not eager and time.monotonic() < _Broker.retry_at:
        logger.warning("Broker unavailable: %s%r left for the sweeper", task.name, args)
        return False
    try:
        task.apply_async(args, kwargs)
    except Exception:
        if not eager:
            _Broker.retry_at = time.monotonic() + BROKER_RETRY_AFTER
        logger.exception("Could not run or queue %s%r: left for the sweeper", task.name, args)
        return False
    return True


def task_enqueue_on_commit(task: Task, *args: Any, **kwargs: Any) -> None:
    """Queue `task(*args, **kwargs)` once the caller's transaction commits (never if it rolls
    back); a failure to queue is logged, never raised into the caller."""
    transaction.on_commit(partial(task_enqueue, task, *args, **kwargs))


def broker_backlog() -> int | None:
    """How many tasks wait in the broker's default queue; None if it cannot say (tasks run
    in-process, or the broker is unreachable)."""
    from config.celery import app

    if settings.CELERY_TASK_ALWAYS_EAGER:
        return None
    try:
        with app.connection_for_read() as broker:
            declared = broker.default_channel.queue_declare(  # type: ignore[attr-defined]
                queue=app.conf.task_default_queue, passive=True
            )
    except ChannelError:
        return 0  # Redis deletes an empty list: no queue is an empty one
    except Exception:
        logger.warning("Broker unavailable: its queue length is unknown", exc_info=True)
        return None
    return int(declared.message_count)
