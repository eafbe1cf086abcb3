"""Issue 12: the database holds all pending work, the broker only carries wake-ups.

An enqueue that fails (Redis down) is logged, not raised; the sweeper (core.sweeper) queues the
work again once it is overdue: emails pending or stuck sending past their lease, documents
without their PDF, card charges whose task was lost. Emails are sent once: a Message-ID recorded
before the SMTP call, a claimed row, and a record of the send that survives a lost database
connection. SMTP failures are retried by class. Each test below failed before its fix.
"""

import re
import smtplib
import uuid
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from celery.exceptions import Retry
from django.core import mail
from django.db import OperationalError, connections
from django.db.models import QuerySet
from django.utils import timezone

import core.queue
from billing import admin as billing_admin
from billing import services as billing_services
from billing import tasks as billing_tasks
from billing.models import BillingHold, Invoice, Payment
from core import sweeper
from core.emails import email_queue
from core.models import OutboundEmail
from core.tasks import RECORD_LEASE_MARGIN, RECORD_RETRY_EVERY, send_email, work_sweep
from core.tokens import token_digest
from resellers.models import Membership
from resellers.roles import Role
from resellers.services import team_invite
from subscriptions.models import Payer
from tests.factories import ChargeFactory, SubscriptionFactory
from tests.support.fake_stripe import reseller_card
from tests.support.pdf import issue


@pytest.fixture
def broker_down(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every enqueue fails as it does with Redis stopped (kombu's OperationalError)."""

    def refuse(self, *args, **kwargs):
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr("celery.app.task.Task.apply_async", refuse)
    monkeypatch.setattr(core.queue._Broker, "retry_at", 0.0)


def _sweep_at(when) -> dict[str, int]:
    """What beat's task does at `when` (core.tasks.work_sweep)."""
    with time_machine.travel(when, tick=False):
        return work_sweep.run()


def _queue(**kwargs) -> OutboundEmail:
    return email_queue(
        to="someone@example.com",
        template="reseller_approved",
        context={"reseller_name": "Acme", "portal_url": "http://portal.example"},
        language="en",
        **kwargs,
    )


# Enqueue failures and the sweeper


@pytest.mark.django_db(transaction=True)
def test_an_invitation_queued_while_redis_is_down_is_sent_once_by_the_sweeper(
    tenant, broker_down, monkeypatch, caplog
):
    # The page succeeds: the failed enqueue is logged, not raised.
    owner = Membership.objects.get(reseller=tenant.reseller, user=tenant.owner)
    invitation = team_invite(membership=owner, email="new.hire@example.com", role=Role.BILLING)
    assert mail.outbox == []
    email = OutboundEmail.objects.get(to="new.hire@example.com")
    assert email.status == OutboundEmail.Status.PENDING
    assert "left for the sweeper" in caplog.text
    assert "/join/" not in email.body_text  # the link is sealed, not in the stored body
    monkeypatch.undo()  # Redis is back

    assert _sweep_at(timezone.now() + timedelta(seconds=30)).get("emails") == 0  # not overdue
    assert _sweep_at(timezone.now() + timedelta(minutes=3))["emails"] == 1
    assert _sweep_at(timezone.now() + timedelta(minutes=6))["emails"] == 0

    [message] = mail.outbox
    assert "/join/" in message.body  # the one-time link arrives, from the sealed copy
    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.SENT
    assert email.secrets_sealed == ""  # erased once sent
    assert message.extra_headers["Message-ID"] == email.message_id
    raw = re.findall(r"/join/([\w-]+)/", str(message.body))[0]
    invitation.refresh_from_db()
    assert token_digest(raw) == invitation.token_hash  # the link in the email is the live one


@pytest.mark.django_db
def test_the_sweeper_queues_an_overdue_email_once_per_period(monkeypatch):
    queued: list[tuple] = []

    def enqueue(task: object, *args: object) -> bool:
        queued.append(args)
        return True

    monkeypatch.setattr(sweeper, "task_enqueue", enqueue)
    email = _queue()
    now = email.created_at

    assert sweeper.work_sweep(now=now + timedelta(minutes=1)).get("emails") == 0
    assert sweeper.work_sweep(now=now + timedelta(minutes=3))["emails"] == 1
    # Queued again only once its new stamp is overdue in turn.
    assert sweeper.work_sweep(now=now + timedelta(minutes=4))["emails"] == 0
    assert sweeper.work_sweep(now=now + timedelta(minutes=6))["emails"] == 1
    assert queued == [(email.pk,), (email.pk,)]


@pytest.mark.django_db
def test_an_email_stuck_sending_is_handed_back_after_its_lease_with_its_message_id(settings):
    email = _queue()
    claimed = timezone.now()
    OutboundEmail.objects.filter(pk=email.pk).update(
        status=OutboundEmail.Status.SENDING, claimed_at=claimed, attempts=1
    )

    # Within the lease the worker may still be sending it: not even a forced sweep touches it.
    assert sweeper.work_sweep(now=claimed + timedelta(minutes=4), force=True)["emails"] == 0
    assert mail.outbox == []
    over = claimed + timedelta(seconds=settings.EMAIL_SEND_LEASE + 1)
    with time_machine.travel(over, tick=False):
        assert sweeper.work_sweep(now=over)["emails"] == 1

    [message] = mail.outbox
    email.refresh_from_db()
    assert message.extra_headers["Message-ID"] == email.message_id
    assert (email.status, email.attempts) == (OutboundEmail.Status.SENT, 2)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_do_not_double_the_work(broker_down, monkeypatch):
    _queue()  # its task is lost
    monkeypatch.undo()
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [sweeper.SWEEP_LOCK_KEY])
        assert sweeper.work_sweep(now=timezone.now() + timedelta(hours=1)) == {}
        assert mail.outbox == []
        with other.cursor() as cursor:  # the other sweep ends
            cursor.execute("SELECT pg_advisory_unlock(%s)", [sweeper.SWEEP_LOCK_KEY])
    finally:
        other.close()
    assert sweeper.work_sweep(now=timezone.now() + timedelta(hours=1))["emails"] == 1
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_the_sweep_waits_while_the_broker_has_a_long_queue(monkeypatch):
    monkeypatch.setattr(sweeper, "broker_backlog", lambda: sweeper.SWEEP_BATCH + 1)
    _queue()
    later = timezone.now() + timedelta(hours=1)
    assert sweeper.work_sweep(now=later) == {}
    assert sweeper.work_sweep(now=later, force=True)["emails"] == 1  # staff asked


# Retries by class


def _fail_with(monkeypatch, error: Exception) -> None:
    def send(self, *args, **kwargs):
        raise error

    monkeypatch.setattr("django.core.mail.EmailMultiAlternatives.send", send)


@pytest.mark.django_db
def test_a_bad_address_fails_at_once_for_staff_to_see(monkeypatch):
    email = _queue(secrets={"accept_url": "http://portal.example/join/abc/"})
    refused = smtplib.SMTPRecipientsRefused({"someone@example.com": (550, b"5.1.1 User unknown")})
    _fail_with(monkeypatch, refused)

    assert send_email.apply(args=(email.pk,), throw=True).get() == "failed"

    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.FAILED
    assert "User unknown" in email.last_error
    assert email.secrets_sealed == ""  # given up: the link is erased too


@pytest.mark.django_db
def test_a_temporary_smtp_failure_is_retried(monkeypatch):
    email = _queue()
    _fail_with(monkeypatch, smtplib.SMTPResponseException(451, b"4.3.0 Try again later"))

    with pytest.raises(Retry):
        send_email.apply(args=(email.pk,), throw=True)

    email.refresh_from_db()
    assert (email.status, email.attempts) == (OutboundEmail.Status.PENDING, 1)
    assert "Try again later" in email.last_error


@pytest.mark.django_db
def test_a_lost_database_connection_after_the_send_does_not_send_it_again(monkeypatch):
    email = _queue()
    update = QuerySet.update
    failures = {"left": 2}

    def flaky(self, **changes):
        if changes.get("status") == OutboundEmail.Status.SENT and failures["left"]:
            failures["left"] -= 1
            raise OperationalError("server closed the connection unexpectedly")
        return update(self, **changes)

    monkeypatch.setattr(QuerySet, "update", flaky)
    monkeypatch.setattr("core.tasks.time.sleep", lambda seconds: None)

    assert send_email.apply(args=(email.pk,), throw=True).get() == "sent"
    assert send_email.apply(args=(email.pk,), throw=True).get() == "skipped"
    assert len(mail.outbox) == 1
    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.SENT


@pytest.mark.django_db
def test_a_lost_database_connection_before_the_send_is_retried(monkeypatch):
    email = _queue()
    update = QuerySet.update

    def down(self, **changes):
        if changes.get("status") == OutboundEmail.Status.SENDING:
            raise OperationalError("could not connect to server")
        return update(self, **changes)

    monkeypatch.setattr(QuerySet, "update", down)
    with pytest.raises(Retry):
        send_email.apply(args=(email.pk,), throw=True)
    monkeypatch.undo()

    assert send_email.apply(args=(email.pk,), throw=True).get() == "sent"
    assert len(mail.outbox) == 1


# PDFs and card charges


@pytest.mark.django_db
def test_a_document_whose_render_was_lost_gets_its_pdf_from_the_sweeper(tenant):
    invoice = issue(tenant.customer, issued_at=timezone.now())  # its render task was lost
    assert not invoice.pdf_sha256

    assert _sweep_at(timezone.now() + timedelta(minutes=1)).get("pdfs") == 0
    assert _sweep_at(timezone.now() + timedelta(minutes=3))["pdfs"] == 1

    invoice.refresh_from_db()
    assert invoice.pdf_sha256 and invoice.pdf_queued_at is not None
    assert _sweep_at(timezone.now() + timedelta(minutes=10))["pdfs"] == 0


@pytest.mark.django_db
def test_a_card_charge_whose_task_was_lost_is_made_once_by_the_sweeper(
    tenant, other_tenant, client_for, fake_stripe, django_capture_on_commit_callbacks, monkeypatch
):
    reseller_card(tenant, client_for, fake_stripe)
    ChargeFactory(subscription=SubscriptionFactory(customer=tenant.customer))
    with monkeypatch.context() as patch:
        patch.setattr(core.queue._Broker, "retry_at", 0.0)
        patch.setattr(
            "celery.app.task.Task.apply_async",
            lambda *args, **kwargs: (_ for _ in ()).throw(ConnectionError("Redis is down")),
        )
        with django_capture_on_commit_callbacks(execute=True):
            invoice = billing_services.invoice_issue_for_customer(
                customer=tenant.customer, payer=Payer.RESELLER_CARD, day=timezone.localdate()
            )
    assert invoice is not None
    assert not Payment.objects.filter(invoice=invoice).exists()

    assert _sweep_at(timezone.now() + timedelta(minutes=3))["payments"] == 1
    assert _sweep_at(timezone.now() + timedelta(minutes=6))["payments"] == 0

    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    assert len(fake_stripe.posts("/v1/payment_intents")) == 1


@pytest.mark.django_db
def test_a_billing_run_whose_tasks_were_lost_is_caught_up_after_its_time(
    tenant, other_tenant, broker_down, monkeypatch
):
    ChargeFactory(subscription=SubscriptionFactory(customer=tenant.customer))
    ChargeFactory(subscription=SubscriptionFactory(customer=other_tenant.customer))
    BillingHold.objects.create(  # tried today and held: the next run tries again, not the sweep
        customer=other_tenant.customer,
        reason="No country",
        first_seen_on=timezone.localdate(),
        last_seen_on=timezone.localdate(),
    )
    run = timezone.localtime().replace(hour=1, minute=0, second=0, microsecond=0)
    with time_machine.travel(run, tick=False):
        billing_tasks.billing_run_daily()  # its per-customer tasks are lost
    assert not Invoice.objects.exists()
    monkeypatch.undo()

    assert _sweep_at(run + timedelta(minutes=1)).get("invoices") == 0  # may be on its way
    # Staff see it in the admin's Background work box, and a forced sweep never runs early.
    [line] = billing_admin.invoices_backlog(now=run + timedelta(minutes=3))
    assert (line.count, line.url.endswith(f"?id__in={tenant.customer.pk}")) == (1, True)
    assert billing_tasks.billing_run_left(now=run - timedelta(minutes=1), force=True) == []
    assert _sweep_at(run + timedelta(minutes=3))["invoices"] == 1
    assert _sweep_at(run + timedelta(minutes=6))["invoices"] == 0

    [invoice] = Invoice.objects.all()
    assert invoice.customer == tenant.customer


def _redis(broker: Any) -> Any:
    """The Redis client behind a kombu connection (kombu's types do not declare it)."""
    return broker.default_channel.client


@pytest.mark.redis
def test_the_broker_backlog_is_read_from_redis_and_an_absent_queue_is_empty(settings):
    from config.celery import app

    settings.CELERY_TASK_ALWAYS_EAGER = False
    queue = f"test-backlog-{uuid.uuid4().hex}"
    previous = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    try:
        assert core.queue.broker_backlog() == 0  # Redis keeps no empty list
        with app.connection_for_write() as broker:
            _redis(broker).lpush(queue, "{}", "{}")
        assert core.queue.broker_backlog() == 2
    finally:
        app.conf.task_default_queue = previous
        with app.connection_for_write() as broker:
            _redis(broker).delete(queue)


@pytest.mark.django_db
def test_the_record_of_a_send_is_tried_every_half_second_until_the_lease_is_nearly_over(
    monkeypatch, settings
):
    """The database is away after the send: the record is tried again every half second (so
    it lands as soon as the database is back, before the sweeper could send it again), and
    given up only when the lease is nearly over, the email left `sending` for the sweeper."""
    settings.EMAIL_SEND_LEASE = 10
    email = _queue()
    update = QuerySet.update
    clock = {"now": 1000.0}
    slept: list[float] = []

    def away(self, **changes):
        if changes.get("status") == OutboundEmail.Status.SENT:
            raise OperationalError("server closed the connection unexpectedly")
        return update(self, **changes)

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock["now"] += seconds

    monkeypatch.setattr(QuerySet, "update", away)
    monkeypatch.setattr("core.tasks.time.sleep", sleep)
    monkeypatch.setattr("core.tasks._clock", lambda: clock["now"])

    with pytest.raises(Retry):  # the task is retried; its claim makes the retry skip it
        send_email.apply(args=(email.pk,), throw=True)

    assert set(slept) == {RECORD_RETRY_EVERY}
    # Tried until the lease (10 s) less its margin was about to end, not beyond.
    assert 10 - RECORD_LEASE_MARGIN - RECORD_RETRY_EVERY <= sum(slept) <= 10 - RECORD_LEASE_MARGIN
    assert len(mail.outbox) == 1
    monkeypatch.undo()
    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.SENDING
