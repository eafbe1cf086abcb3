"""Nothing is lost when the worker is killed mid-render or its database connections are ended
while it sends emails (tests/support/faults.py: the stack and what must hold)."""

import re
import threading
import time

import pytest
from django.db import connection

from billing.models import Invoice
from core.models import OutboundEmail
from tests.factories import make_tenant
from tests.support import fault_stack
from tests.support.faults import (
    WORKER_DB_APPLICATION,
    billing_catch_up,
    billing_start,
    each_email_sent_once,
    invitations_send,
    links_work,
    pdfs_stored,
    pending_work,
    recovery_wait,
    tenants_make,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]


def test_a_worker_killed_mid_render_leaves_no_invoice_without_its_pdf(stack):
    offset = len(stack.worker.log())
    billing_start(tenants_make(8))
    # A render has started: kill the worker, its processes and its beat, as a crash would.
    stack.worker.wait_for("invoice_render_pdf[", 60, after=offset)
    time.sleep(0.3)
    stack.worker.kill()
    pending = pending_work()
    assert Invoice.objects.filter(pdf="").exists(), "every PDF was stored before the kill"

    stack.worker_new()
    billing_catch_up()
    # The bound is five minutes; with the recovery timings of seconds, one.
    took = recovery_wait(stack, expected_invoices=8, timeout=300)
    print(f"at the kill: {pending}; all done {took:.1f} s after a new worker started")
    assert took < 60
    pdfs_stored(stack)
    each_email_sent_once(stack)


class ConnectionKiller(threading.Thread):
    """Ends the worker's database connections every 5 ms until stopped, from a connection of
    its own."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.ended = 0
        self.halt = threading.Event()

    def run(self) -> None:
        try:
            while not self.halt.is_set():
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND application_name = %s",
                        [WORKER_DB_APPLICATION],
                    )
                    self.ended += cursor.fetchone()[0]
                self.halt.wait(0.005)
        finally:
            connection.close()

    def stop(self) -> int:
        self.halt.set()
        self.join(timeout=10)
        return self.ended


def send_email_database_errors(worker: fault_stack.Child) -> int:
    """How many times a send_email task met a lost database connection (and was retried)."""
    return len(re.findall(r"send_email\[[^\]]+\] retry: .*OperationalError", worker.log()))


def test_database_connections_killed_while_sending_each_email_goes_once(stack):
    tenant = make_tenant("Reseller")
    killer = ConnectionKiller()
    killer.start()
    started = time.monotonic()
    try:
        # Each batch commits and queues its emails while the worker's connections are ended,
        # until a few sends met it, for less than an email's lease: an outage longer than the
        # lease may send an email twice (with its Message-ID), as core.tasks says.
        for index in range(5):
            invitations_send(tenant, f"batch{index}", count=3)
        outage = fault_stack.EMAIL_SEND_LEASE - 4
        while send_email_database_errors(stack.worker) < 3:
            if time.monotonic() - started > outage:
                break
            time.sleep(0.2)
    finally:
        ended = killer.stop()
    assert send_email_database_errors(stack.worker), "no send met a lost connection"
    queued = OutboundEmail.objects.count()
    sent_during = OutboundEmail.objects.filter(status=OutboundEmail.Status.SENT).count()
    print(
        f"{ended} worker connections ended, {send_email_database_errors(stack.worker)} sends"
        f" retried; {sent_during} of {queued} emails sent meanwhile"
    )
    assert queued == 20

    took = recovery_wait(stack, expected_invoices=0)
    print(f"every email sent {took:.1f} s after the last connection was ended")
    each_email_sent_once(stack)
    links_work(stack)
