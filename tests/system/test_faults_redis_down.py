"""Nothing is lost when Redis stops for 30 seconds during a billing run, and pages answer
meanwhile (tests/support/faults.py: the stack and what must hold)."""

import time

import pytest

from tests.support.faults import (
    PAGES,
    billing_catch_up,
    billing_start,
    each_email_sent_once,
    invitations_send,
    links_work,
    pages_load,
    pdfs_stored,
    pending_work,
    recovery_wait,
    session_cookie,
    tenants_make,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]


def test_redis_down_for_30_seconds_loses_nothing_and_pages_answer(stack):
    tenants = tenants_make(4)
    cookie = session_cookie(tenants[0].owner)
    stack.web_start()
    assert {path: stack.status(path, cookie) for path in PAGES} == dict.fromkeys(PAGES, 200)
    assert stack.status("/dashboard/") == 302  # the cookie is what signs in

    # The billing run starts; Redis stops while its invoices are issued and rendered.
    billing_start(tenants)
    stack.redis.stop()
    down_at = time.monotonic()
    # Invitations sent while Redis is down: saved, their task not queued.
    invitations_send(tenants[1], "down")
    statuses, slowest = pages_load(
        stack, cookie, 30 - (time.monotonic() - down_at), invite_as="web-down"
    )
    pending = pending_work()
    stack.redis.start()  # empty: whatever the broker held is gone

    # Pages answered, the invitations sent through the team page too (redirected back).
    assert set(statuses) == {200, 302}, statuses
    assert slowest < 5, slowest
    print(f"pages while Redis was down: {dict(statuses)}, slowest {slowest:.2f} s; {pending}")
    # The run's queued tasks were lost with Redis: the sweeper issues, renders and emails the
    # rest.
    billing_catch_up()
    invitations_send(tenants[2], "after")
    took = recovery_wait(stack, expected_invoices=4)
    print(f"all work done {took:.1f} s after Redis came back")
    # The worker tries Redis again every two seconds at most (config/worker.py), and the
    # sweeps run every two: seconds, not the half minute of Celery's own backoff.
    assert took < 15, took
    pdfs_stored(stack)
    each_email_sent_once(stack)
    links_work(stack)
