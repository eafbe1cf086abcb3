"""Real processes for the fault tests (tests/system/test_faults.py): a Redis server of the test's
own, to stop, freeze and empty; a Celery worker with its beat, to kill; gunicorn serving the portal;
and what the worker sent, read from the file email backend's output.

Never the shared Redis: each test starts its own `redis-server` on a free port and breaks only
that one. The processes read and write pytest-django's test database, so the tests that use them
need `transaction=True` (the worker sees only committed rows)."""

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from http.client import HTTPConnection
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from django.conf import settings
from django.db import connection

BASE_DIR = Path(settings.BASE_DIR)
REDIS_SERVER = shutil.which("redis-server")
# The settings of every process these tests start: the test settings with a storage the
# processes share, and the web's cache and sessions as in production
# (tests/support/fault_settings.py).
SETTINGS_MODULE = "tests.support.fault_settings"
START_TIMEOUT = 30
# The recovery timings of the processes (seconds; a minute, two and five by default), so the
# sweeper's work shows within seconds.
WORK_SWEEP_EVERY = 2
WORK_REQUEUE_AFTER = 5
EMAIL_SEND_LEASE = 10


def redis_server_required() -> str:
    """The redis-server binary; the test is skipped without it (an error in CI, where
    REQUIRE_SERVICES=1 says every service is there)."""
    if REDIS_SERVER is None:
        if settings.REQUIRE_SERVICES:
            pytest.fail("REQUIRE_SERVICES=1 but no redis-server binary on PATH")
        pytest.skip("no redis-server binary on PATH: the fault tests start their own Redis")
    return REDIS_SERVER


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def database_url() -> str:
    """The URL of the database this test runs against (pytest-django's `test_<name>`)."""
    db = connection.settings_dict
    assert db["ENGINE"] == "django.db.backends.postgresql", db["ENGINE"]
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = quote(db["HOST"] or "", safe="")
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{credentials}@{host}{port}/{quote(db['NAME'], safe='')}"


def wait_until(
    predicate: Callable[[], object], *, timeout: float, what: str, every: float = 0.2
) -> float:
    """Poll `predicate` until it is true; returns the seconds it took, fails after `timeout`."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            pytest.fail(f"{what}: not after {timeout} s")
        time.sleep(every)
    return time.monotonic() - start


class RedisServer:
    """A redis-server on `port`, without persistence: a restart comes back empty."""

    def __init__(self, binary: str, port: int, log_path: Path) -> None:
        self.binary = binary
        self.port = port
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    self.binary,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until(
            self.ping, timeout=START_TIMEOUT, what=f"redis-server on {self.port}", every=0.05
        )

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), 0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """SIGTERM, as an orderly shutdown; with --save '' nothing is written."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def freeze(self) -> None:
        """The server stops answering, its connections stay open (a hung Redis)."""
        assert self.process
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process
        self.process.send_signal(signal.SIGCONT)

    def restart_empty(self) -> None:
        """Killed and started again on the same port: every queued message is gone."""
        self.kill()
        self.start()


class Child:
    """A child process writing to a log file; started in its own process group so that it and
    its children are stopped together."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.command = command
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        # Killed or stopped by the test (not exited by itself).
        self.killed = False

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=BASE_DIR,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        assert self.process
        return self.process.pid

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for(self, text: str, timeout: float, *, after: int = 0) -> None:
        """Until `text` is in the log (from character `after` on)."""

        def seen() -> bool:
            if not self.running():
                pytest.fail(f"{self.name} exited:\n{self.log()[-5000:]}")
            return text in self.log()[after:]

        wait_until(seen, timeout=timeout, what=f"{text!r} in the {self.name}'s log")

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM to the process group, SIGKILL after `timeout`."""
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=timeout)
        self.kill()

    def kill(self) -> None:
        """SIGKILL to the whole group (children a killed parent left behind too)."""
        if self.process is None:
            return
        self.killed = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


def process_env(
    *, redis: RedisServer, mail_dir: Path, media_dir: Path, **extra: str
) -> dict[str, str]:
    """The environment of the worker and the web: this test's database, the test's own Redis
    for the broker and the cache, mail into files, recovery timings of seconds."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
        "DATABASE_URL": database_url(),
        "REDIS_URL": redis.url(0),
        "CELERY_BROKER_URL": redis.url(0),
        "CELERY_RESULT_BACKEND": redis.url(1),
        "TEST_EMAIL_FILE_PATH": str(mail_dir),
        "FAULT_MEDIA_ROOT": str(media_dir),
        "WORK_SWEEP_EVERY": str(WORK_SWEEP_EVERY),
        "WORK_REQUEUE_AFTER": str(WORK_REQUEUE_AFTER),
        "EMAIL_SEND_LEASE": str(EMAIL_SEND_LEASE),
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def worker_command(schedule: Path, concurrency: int = 2) -> list[str]:
    """A prefork worker with its beat embedded (-B), the beat's state in `schedule`."""
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "-B",
        "-s",
        str(schedule),
        "--pool=prefork",
        f"--concurrency={concurrency}",
        "--loglevel=INFO",
        "-n",
        f"faults-{uuid.uuid4().hex[:8]}@%h",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]


def gunicorn_command(port: int) -> list[str]:
    """gunicorn as the Dockerfile runs it (its config file), three sync workers."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        str(BASE_DIR / "config" / "gunicorn.py"),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "3",
        "--timeout",
        "60",
        # Not gunicorn's control socket, one path for every gunicorn on the machine.
        "--no-control-socket",
        "config.wsgi:application",
    ]


def page_status(port: int, path: str, cookie: str, timeout: float = 15) -> int:
    """The status code of a GET, or 0 if no answer came."""
    return page_request(port, "GET", path, cookie, timeout=timeout)[0]


def page_request(
    port: int,
    method: str,
    path: str,
    cookie: str,
    *,
    fields: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 15,
) -> tuple[int, dict[str, str]]:
    """The status code and the cookies set by a request (status 0 if no answer came)."""
    http = HTTPConnection("127.0.0.1", port, timeout=timeout)
    all_headers = {"Cookie": cookie, "Host": "localhost", **(headers or {})}
    body = None
    if fields is not None:
        body = urlencode(fields)
        all_headers["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        http.request(method, path, body=body, headers=all_headers)
        response = http.getresponse()
        response.read()
    except OSError:
        return 0, {}
    finally:
        http.close()
    cookies = SimpleCookie()
    for header in response.headers.get_all("Set-Cookie") or []:
        cookies.load(header)
    return response.status, {name: morsel.value for name, morsel in cookies.items()}


def page_post(port: int, path: str, cookie: str, fields: dict[str, str]) -> int:
    """POST a form as a signed-in browser would: the CSRF cookie from a GET of the page first,
    its token in the X-CSRFToken header. The status code, or 0 if no answer came."""
    status, cookies = page_request(port, "GET", path, cookie)
    assert status == 200 and "csrftoken" in cookies, (status, cookies)
    token = cookies["csrftoken"]
    return page_request(
        port,
        "POST",
        path,
        f"{cookie}; csrftoken={token}",
        fields=fields,
        headers={"X-CSRFToken": token},
    )[0]


# The file backend writes each message's headers as they were sent.
MESSAGE_ID = re.compile(r"^Message-ID: *(\S+)", re.MULTILINE | re.IGNORECASE)


def sent_mail(mail_dir: Path) -> str:
    return "".join(path.read_text(errors="replace") for path in sorted(mail_dir.iterdir()))


def sent_message_ids(mail_dir: Path) -> Counter[str]:
    """How many times each Message-ID went out."""
    return Counter(MESSAGE_ID.findall(sent_mail(mail_dir)))
