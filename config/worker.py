"""The Celery worker's consumer (CELERY_WORKER_CONSUMER): only workers import this, web
processes never load the worker's machinery."""

from functools import partial
from typing import Any

from celery.worker.consumer import Consumer as CeleryConsumer

# The longest a worker waits between two attempts to reach its broker again.
BROKER_RECONNECT_EVERY_MAX = 2


class Consumer(CeleryConsumer):
    """The worker's consumer, reaching Redis again every second or two while it is away.

    Celery's own waits 2, 4, 6… seconds between attempts, up to 30 (kombu's defaults): after
    an outage of half a minute the worker came back up to 12 s after Redis did, and the work
    queued meanwhile waited for it (tests/system/test_faults_redis_down.py). An attempt costs
    one refused connection."""

    def ensure_connected(self, conn: Any) -> Any:
        conn.ensure_connection = partial(
            conn.ensure_connection,
            interval_start=0,
            interval_step=1,
            interval_max=BROKER_RECONNECT_EVERY_MAX,
        )
        return super().ensure_connected(conn)
