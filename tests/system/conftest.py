"""The fault tests' stack of real processes (tests/support/faults.py), one per test."""

from collections.abc import Iterator

import pytest

from tests.support import fault_stack
from tests.support.faults import (
    WORKER_DB_APPLICATION,
    Stack,
    celery_conf_saved,
    celery_point_at,
    celery_restore,
)


@pytest.fixture
def stack(transactional_db, tmp_path, settings) -> Iterator[Stack]:
    """Redis of this test's own, a worker with its beat on it, and this process queuing to it
    for real (not eagerly). Depends on `transactional_db`, so the processes are stopped before
    pytest-django empties the tables."""
    binary = fault_stack.redis_server_required()
    mail_dir = tmp_path / "mail"
    media_dir = tmp_path / "media"
    mail_dir.mkdir()
    media_dir.mkdir()
    redis = fault_stack.RedisServer(binary, fault_stack.free_port(), tmp_path / "redis.log")
    env = fault_stack.process_env(redis=redis, mail_dir=mail_dir, media_dir=media_dir)
    env["DATABASE_URL"] += f"?application_name={WORKER_DB_APPLICATION}"
    result = Stack(redis=redis, env=env, tmp_path=tmp_path, mail_dir=mail_dir, media_dir=media_dir)
    previous = celery_conf_saved()
    try:
        redis.start()
        celery_point_at(redis, settings)
        result.worker_new()
        yield result
    finally:
        for child in reversed(result.started):
            child.stop()
        redis.kill()
        celery_restore(previous)
