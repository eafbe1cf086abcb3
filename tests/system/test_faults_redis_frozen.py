"""Nothing is lost when Redis hangs during a billing run, whether it is then restarted empty
or thawed (tests/support/faults.py: the stack and what must hold)."""

import time

import pytest

from billing.models import Invoice
from core.models import OutboundEmail
from tests.support.faults import (
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
    within,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]


def test_redis_frozen_then_restarted_empty_mid_run_loses_nothing(stack):
    tenants = tenants_make(6)
    cookie = session_cookie(tenants[0].owner)
    stack.web_start()
    invitations_send(tenants[0], "before")
    billing_start(tenants)

    # Redis hangs (its connections stay open, nothing answers), then is restarted empty.
    stack.redis.freeze()
    took = within(
        15, "invitations while Redis is frozen", lambda: invitations_send(tenants[1], "frozen")
    )
    statuses, slowest = pages_load(stack, cookie, 6, invite_as="web-frozen")
    print(f"invitations: {took:.1f} s; pages: {dict(statuses)}, slowest {slowest:.2f} s")
    assert set(statuses) == {200, 302}, statuses
    assert slowest < 5, slowest
    pending = pending_work()
    unsent = OutboundEmail.objects.exclude(status=OutboundEmail.Status.SENT).count()
    unrendered = Invoice.objects.filter(pdf="").count()
    assert unsent and unrendered, "nothing was left to lose: the test proves nothing"
    stack.redis.restart_empty()

    billing_catch_up()
    took = recovery_wait(stack, expected_invoices=6)
    print(f"at the restart: {pending}; all done {took:.1f} s after Redis restarted empty")
    pdfs_stored(stack)
    each_email_sent_once(stack)
    links_work(stack)


def test_redis_frozen_mid_run_then_thawed_loses_nothing(stack):
    """Regression: with a socket timeout on the worker's broker connection, the acks that
    timed out while Redis was frozen left the consumer wedged after the thaw (it never fetched
    again until restarted). The worker now waits for Redis instead (config/celery.py)."""
    tenants = tenants_make(8)
    billing_start(tenants)
    # Frozen while both worker processes render: their acknowledgements time out.
    stack.redis.freeze()
    time.sleep(8)
    stack.redis.thaw()
    invitations_send(tenants[1], "thawed")
    # Without the defect, done within seconds (the sweeps run every two).
    took = recovery_wait(stack, expected_invoices=8, timeout=20)
    print(f"all work done {took:.1f} s after Redis thawed")
    pdfs_stored(stack)
    each_email_sent_once(stack)
    links_work(stack)
