"""Celery: a real worker runs the team-invitation email; sending is idempotent and on commit
only; every delay stays under the broker's visibility timeout; JSON only."""

import ast
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from email import message_from_bytes
from pathlib import Path

import pytest
from django.conf import settings
from django.db import transaction

from config import celery_app
from core.emails import email_queue
from core.models import OutboundEmail
from core.tasks import send_email
from core.tokens import token_digest
from resellers.models import Membership, TeamInvitation
from resellers.roles import Role
from resellers.services import team_invite
from tests.support.fault_stack import database_url

BASE_DIR = Path(settings.BASE_DIR)
WORKER_READY_TIMEOUT = 30
TASK_TIMEOUT = 20


class Worker:
    def __init__(self, process: subprocess.Popen, log_path: Path, queue: str) -> None:
        self.process = process
        self.log_path = log_path
        self.queue = queue

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            if self.process.poll() is not None:
                pytest.fail(f"Celery worker exited ({self.process.returncode}):\n{self.log()}")
            time.sleep(0.1)
        pytest.fail(f"{text!r} not in the worker's log after {timeout} s:\n{self.log()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@pytest.fixture
def mail_dir(tmp_path) -> Path:
    path = tmp_path / "mail"
    path.mkdir()
    return path


@pytest.fixture
def celery_worker(transactional_db, tmp_path, mail_dir):
    """A real worker process on its own queue, reading and writing this test's database.

    It depends on `transactional_db`, so it is stopped before pytest-django empties the tables.
    """
    queue = f"test-{uuid.uuid4().hex[:12]}"
    log_path = tmp_path / "worker.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_RESULT_BACKEND": settings.CELERY_RESULT_BACKEND,
        "TEST_EMAIL_FILE_PATH": str(mail_dir),
        "PYTHONUNBUFFERED": "1",
    }
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "--pool=solo",
        "--loglevel=INFO",
        "-Q",
        queue,
        "-n",
        f"{queue}@%h",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command,
            cwd=BASE_DIR,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    worker = Worker(process, log_path, queue)
    try:
        worker.wait_for("ready.", WORKER_READY_TIMEOUT)
        yield worker
    finally:
        worker.stop()


@pytest.fixture
def not_eager(settings, celery_worker):
    """Queue tasks for real from this process, on the worker's queue."""
    # Celery copies Django's settings into its own configuration the first time it reads
    # it: remember what it holds before touching either, and override both.
    previous = {
        "task_always_eager": celery_app.conf.task_always_eager,
        "task_routes": celery_app.conf.task_routes,
    }
    assert previous["task_always_eager"] is True
    settings.CELERY_TASK_ALWAYS_EAGER = False
    celery_app.conf.update(
        task_always_eager=False, task_routes={"*": {"queue": celery_worker.queue}}
    )
    route = celery_app.amqp.router.route({}, send_email.name)
    assert route["queue"].name == celery_worker.queue
    try:
        yield celery_worker
    finally:
        celery_app.conf.update(previous)


@pytest.mark.integration
@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_real_worker_sends_the_team_invitation_email(tenant, not_eager, mailoutbox, mail_dir):
    worker = not_eager
    membership = Membership.objects.get(user=tenant.owner)

    invitation = team_invite(
        membership=membership, email="worker.test@example.com", role=Role.SALES
    )

    email = OutboundEmail.objects.get(to="worker.test@example.com")
    assert email.template == "team_invitation"
    deadline = time.monotonic() + TASK_TIMEOUT
    while time.monotonic() < deadline:
        email.refresh_from_db()
        if email.status == OutboundEmail.Status.SENT:
            break
        time.sleep(0.1)
    assert email.status == OutboundEmail.Status.SENT, (email.status, email.last_error, worker.log())
    assert email.attempts == 1
    assert email.sent_at is not None
    # The worker ran it, not this process.
    assert mailoutbox == []
    worker.wait_for("succeeded", 5)
    log = worker.log()
    assert f"Task {send_email.name}[" in log
    assert "'sent'" in log
    assert TeamInvitation.objects.get(pk=invitation.pk).state == "valid"

    if hasattr(settings, "TEST_EMAIL_FILE_PATH"):
        # config/settings/test.py sends the worker's email to files in TEST_EMAIL_FILE_PATH.
        files = list(mail_dir.iterdir())
        assert len(files) == 1, files
        message = message_from_bytes(files[0].read_bytes())
        assert message["To"] == "worker.test@example.com"
        assert tenant.reseller.name in message["Subject"]
        assert {part.get_content_type() for part in message.walk()} >= {"text/plain", "text/html"}
        # The link went through the broker in the task's arguments (the stored email has a
        # placeholder), into the email, and not into the worker's log.
        raw = re.findall(r"/join/([\w-]+)/", files[0].read_text())[0]
        assert token_digest(raw) == TeamInvitation.objects.get(pk=invitation.pk).token_hash
        assert "/join/" not in email.body_text + email.body_html
        assert raw not in log


# --- Without a worker ----------------------------------------------------------------------


def _pending_email(**kwargs) -> OutboundEmail:
    return OutboundEmail.objects.create(
        to="someone@example.com",
        template="team_invitation",
        language="en",
        subject="Subject",
        body_text="Text body",
        body_html="<p>HTML body</p>",
        **kwargs,
    )


@pytest.mark.django_db
def test_running_the_send_task_twice_sends_one_email(mailoutbox):
    email = _pending_email()

    first = send_email.delay(email.pk)
    second = send_email.delay(email.pk)

    assert (first.get(), second.get()) == ("sent", "skipped")
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["someone@example.com"]
    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.SENT
    assert email.attempts == 1


@pytest.mark.django_db
def test_an_email_already_being_sent_is_not_sent_again(mailoutbox):
    """A redelivered message (acks_late) finds the row claimed by the first run."""
    email = _pending_email(status=OutboundEmail.Status.SENDING, attempts=1)

    assert send_email.delay(email.pk).get() == "skipped"
    assert mailoutbox == []


@pytest.mark.django_db
def test_a_failed_send_hands_the_row_back_for_the_retry(mailoutbox, monkeypatch):
    from celery.exceptions import Retry

    def refuse(self, *args, **kwargs):
        raise ConnectionError("SMTP server went away")

    email = _pending_email()
    with monkeypatch.context() as patch:
        patch.setattr("django.core.mail.EmailMultiAlternatives.send", refuse)
        with pytest.raises(Retry):
            send_email.apply(args=(email.pk,), throw=True)
        email.refresh_from_db()
        assert email.status == OutboundEmail.Status.PENDING
        assert email.attempts == 1
        assert "went away" in email.last_error

        # The last allowed attempt gives up for good (recorded, for staff; nothing raised).
        last = send_email.apply(args=(email.pk,), retries=send_email.max_retries, throw=True)
        assert last.get() == "failed"
        email.refresh_from_db()
        assert email.status == OutboundEmail.Status.FAILED
        assert email.attempts == 2

        retried = _pending_email()
        with pytest.raises(Retry):
            send_email.apply(args=(retried.pk,), throw=True)
    assert mailoutbox == []

    # The retry after a transient failure claims the row again and sends it.
    assert send_email.apply(args=(retried.pk,), retries=1, throw=True).get() == "sent"
    retried.refresh_from_db()
    assert retried.status == OutboundEmail.Status.SENT
    assert retried.attempts == 2
    assert retried.last_error == ""
    assert len(mailoutbox) == 1


@pytest.mark.django_db(transaction=True)
def test_email_queued_in_a_rolled_back_transaction_is_never_sent(tenant, mailoutbox):
    membership = Membership.objects.get(user=tenant.owner)

    with pytest.raises(RuntimeError), transaction.atomic():
        team_invite(membership=membership, email="ghost@example.com", role=Role.SALES)
        assert OutboundEmail.objects.filter(to="ghost@example.com").exists()
        raise RuntimeError("something later in the request failed")

    assert not OutboundEmail.objects.filter(to="ghost@example.com").exists()
    assert not TeamInvitation.objects.filter(email="ghost@example.com").exists()
    assert mailoutbox == []

    # The same call, committed, does send: the test above can tell the difference.
    team_invite(membership=membership, email="real@example.com", role=Role.SALES)
    assert [message.to for message in mailoutbox] == [["real@example.com"]]
    assert OutboundEmail.objects.get(to="real@example.com").status == OutboundEmail.Status.SENT


@pytest.mark.django_db(transaction=True)
def test_email_is_sent_only_after_the_commit(mailoutbox):
    with transaction.atomic():
        email = email_queue(
            to="later@example.com",
            template="reseller_applied",
            context={"reseller_name": "Later Ltd"},
            language="en",
        )
        assert mailoutbox == []
        assert OutboundEmail.objects.get(pk=email.pk).status == OutboundEmail.Status.PENDING

    assert len(mailoutbox) == 1
    assert OutboundEmail.objects.get(pk=email.pk).status == OutboundEmail.Status.SENT


# --- Configuration --------------------------------------------------------------------------


def _project_tasks() -> dict:
    # Celery's Django fix-up runs Django's checks while importing the task modules; they may
    # touch the database, hence the `db` fixture on the tests that call this.
    celery_app.loader.import_default_modules()
    tasks = {
        name: task for name, task in celery_app.tasks.items() if not name.startswith("celery.")
    }
    assert send_email.name in tasks, sorted(celery_app.tasks)
    return tasks


def test_visibility_timeout_is_the_brokers():
    timeout = settings.CELERY_VISIBILITY_TIMEOUT
    assert timeout > 0
    assert celery_app.conf.broker_transport_options["visibility_timeout"] == timeout
    assert celery_app.conf.result_backend_transport_options["visibility_timeout"] == timeout


def test_every_task_retries_within_the_visibility_timeout(db):
    timeout = settings.CELERY_VISIBILITY_TIMEOUT
    for name, task in _project_tasks().items():
        assert (task.default_retry_delay or 0) < timeout, name
        # Celery sets the backoff attributes only on tasks that retry automatically.
        if getattr(task, "retry_backoff", False):
            assert task.retry_backoff_max is not None, name
            assert task.retry_backoff_max < timeout, name
        assert (task.time_limit or 0) < timeout, name
        if task.acks_late:
            assert task.reject_on_worker_lost, f"{name}: acks_late without reject_on_worker_lost"


def _countdown_constants(source: str) -> list[tuple[str, ast.expr]]:
    """Numbers given as countdown=, eta delays, retry delays, or module constants named so."""
    found: list[tuple[str, ast.expr]] = []
    tree = ast.parse(source)
    names = {"countdown", "retry_backoff_max", "default_retry_delay"}
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg in names:
            found.append((node.arg, node.value))
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name) and any(
                    word in target.id for word in ("COUNTDOWN", "BACKOFF", "RETRY_DELAY")
                ):
                    found.append((target.id, node.value))
    return found


def test_every_countdown_in_the_code_is_below_the_visibility_timeout():
    timeout = settings.CELERY_VISIBILITY_TIMEOUT
    checked = 0
    packages = [
        path
        for path in BASE_DIR.iterdir()
        if (path / "__init__.py").exists() and path.name not in {"tests", ".venv"}
    ]
    assert {"config", "core"} <= {path.name for path in packages}
    for path in (module for package in packages for module in package.rglob("*.py")):
        relative = path.relative_to(BASE_DIR)
        if "migrations" in relative.parts:
            continue
        for name, value in _countdown_constants(path.read_text()):
            try:
                number = ast.literal_eval(value)
            except ValueError:
                continue  # a name or an expression: covered by the task attributes above
            if isinstance(number, int | float):
                checked += 1
                assert number < timeout, f"{relative}: {name}={number} >= {timeout}"
    assert checked, "no countdown constant found: the scan is not looking at the code"


def test_tasks_use_json_only(db):
    conf = celery_app.conf
    assert conf.task_serializer == "json"
    assert conf.result_serializer == "json"
    assert list(conf.accept_content) == ["json"]
    assert conf.result_accept_content in (None, ["json"])
    for name, task in _project_tasks().items():
        assert task.serializer == "json", name


def test_send_email_survives_a_lost_worker():
    assert send_email.acks_late is True
    assert send_email.reject_on_worker_lost is True
