"""Shared fixtures. Every test that uses a reseller also gets a second one with its own data,
so a query that forgets the tenant shows up."""

import os
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, time
from typing import Any

import celery._state
import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.conf import settings
from django.test import Client
from django.utils import translation
from time_machine import Traveller

from billing.payments import tasks as payment_tasks
from config.celery import app as celery_app
from subscriptions.models import Plan
from tests.factories import Tenant, UserFactory, catalogue, make_tenant
from tests.support.browser import ARGS, CHROMIUM
from tests.support.fake_stripe import fake_stripe_fixture
from tests.support.sessions import client_signed_in

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests whose service or browser is missing, visibly; with REQUIRE_SERVICES=1 settings
    refuse to load without the services, and .ci/run installs the browser, so nothing is
    skipped in CI."""
    missing = {
        "postgres": not settings.POSTGRES_AVAILABLE,
        "redis": not settings.REDIS_AVAILABLE,
        "browser": CHROMIUM is None,
    }
    reasons = {
        "postgres": f"PostgreSQL not reachable at {settings.DATABASE_URL} (tests run on SQLite)",
        "redis": f"Redis not reachable at {settings.REDIS_URL}",
        "browser": "Debian's chromium-headless-shell (or chromium) is not installed",
    }
    for item in items:
        for marker, is_missing in missing.items():
            if is_missing and item.get_closest_marker(marker):
                item.add_marker(pytest.mark.skip(reason=reasons[marker]))
    # The longest modules first, longest to shortest, so that in parallel runs (make test)
    # the others fill the other processes around them instead of one process finishing alone
    # at the end; the rest keep their order.
    order = {module: index for index, module in enumerate(LONGEST_MODULES)}
    items.sort(key=lambda item: order.get(item.nodeid.split("::")[0], len(order)))


# The modules that take longest, longest first (most of it waiting for real processes and
# timeouts, or a browser).
LONGEST_MODULES = [
    "tests/demo/test_browser_walk.py",
    "tests/demo/test_demo.py",  # the demo's year, loaded once
    "tests/system/test_faults_redis_down.py",
    "tests/system/test_faults_redis_frozen.py",
    "tests/subscriptions/test_jobs.py",
    "tests/system/test_faults_processes.py",
    "tests/system/test_faults_webhooks.py",
    "tests/subscriptions/test_pricing_properties.py",
    "tests/billing/test_refund_invariant.py",
    "tests/insights/test_dashboard_browser.py",
]


@pytest.fixture(autouse=True)
def _celery_state() -> Iterator[None]:
    """Celery's process-wide state, as each test expects it.

    - Each test starts allowed to wait for an eager task's result (`.delay(...).get()`). Celery
      keeps "a task is running here, do not wait" in one flag, which each eager task sets while
      it runs and puts back as it found it on the way out. Two threads running eager tasks at
      once (the tests that release requests together) can leave it set: B starts while A runs
      and keeps "set" to put back, A ends, then B puts "set" back. Every later `.get()` in that
      process would fail with "Never call result.get() within a task!".
    - A test leaves the project's app current: the shared tasks follow the current app, so a
      test that made another app current would send every later test's tasks to its broker."""
    vars(celery._state)["_task_join_will_block"] = False  # what celery.result resets it with
    yield
    assert celery._state.get_current_app() is celery_app, "a test left another Celery app current"


@pytest.fixture(autouse=True)
def _default_language() -> Iterator[None]:
    """Each test starts and ends in the default language: a request in another language leaves
    it active in this thread (LocaleMiddleware activates, nothing deactivates), and a test that
    happens to run next would read Spanish where it expects English."""
    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture
def tenant(db: None) -> Tenant:
    return make_tenant("Reseller A")


@pytest.fixture
def other_tenant(db: None) -> Tenant:
    return make_tenant("Reseller B")


@pytest.fixture
def client_for(db: None):
    """`client_for(user)`: a test client signed in as that user."""
    return client_signed_in


@pytest.fixture
def owner_client(tenant: Tenant, other_tenant: Tenant, client_for) -> Client:
    return client_for(tenant.owner)


@pytest.fixture
def fake_stripe(settings, monkeypatch):
    """Stripe configured with test keys, its API served by a FakeStripe
    (tests/support/fake_stripe.py)."""
    yield from fake_stripe_fixture(settings, monkeypatch)


@pytest.fixture
def staff_client(db: None) -> Client:
    """Signed in to the admin as a superuser with a second factor (the admin requires one);
    `client.staff` is that user."""
    staff = UserFactory(is_staff=True, is_superuser=True)
    TOTP.activate(staff, generate_totp_secret())
    assert Authenticator.objects.filter(user=staff).exists()  # the admin requires MFA
    client = client_signed_in(staff)
    client.staff = staff  # type: ignore[attr-defined]
    return client


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The test database is built from the models (--no-migrations): add what migrations add
    with SQL, the immutability triggers of issued invoices (billing/immutability.py) and of
    issued commission statements (commissions/immutability.py)."""
    from django.db import OperationalError, connection

    from billing.immutability import immutability_install, invoice_immutable_columns
    from commissions import immutability as statement_immutability

    with django_db_blocker.unblock():
        # A run of tests that need no database builds none (and may point at a database that
        # does not exist): nothing to install then.
        try:
            tables = connection.introspection.table_names()
        except OperationalError:
            tables = []
        if "billing_invoice" in tables:
            immutability_install(connection, invoice_immutable_columns())
        if "commissions_statement" in tables:
            statement_immutability.immutability_install(
                connection, statement_immutability.statement_immutable_columns()
            )


@pytest.fixture(scope="session", autouse=True)
def _flush_by_delete() -> Iterator[None]:
    """Empty the test database after a transactional test (TransactionTestCase's flush) with
    DELETE instead of TRUNCATE on PostgreSQL: TRUNCATE gives each of the ~100 tables and their
    indexes new files, about 0.3 s per test, where deleting the few rows a test wrote takes a
    tenth of it. Triggers (foreign keys, the issued documents' immutability) are off for the
    session while it deletes, as TRUNCATE bypasses them too. Sequences are not reset, as
    TRUNCATE does not reset them here either."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    truncate = DatabaseOperations.sql_flush

    def sql_flush(
        self: DatabaseOperations,
        style: Any,
        tables: Sequence[str],
        *,
        reset_sequences: bool = False,
        allow_cascade: bool = False,
    ) -> list[str]:
        if reset_sequences or not tables:
            return truncate(
                self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
            )
        return [
            "SET LOCAL session_replication_role = replica",
            *(f"DELETE FROM {self.quote_name(table)}" for table in tables),
        ]

    DatabaseOperations.sql_flush = sql_flush  # type: ignore[method-assign,assignment]
    yield
    DatabaseOperations.sql_flush = truncate  # type: ignore[method-assign]


@pytest.fixture(scope="session", autouse=True)
def _close_stray_connections(django_db_setup, django_db_blocker):
    """The live server's thread keeps its last database connection open until the session
    ends, after pytest-django tries to drop the test database; end such connections first."""
    yield
    from django.db import OperationalError, connection

    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            try:
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
            except OperationalError:
                pass  # no database was built (a run of database-free tests)


@pytest.fixture(scope="session")
def _chromium():
    """One headless Chromium (Debian's, through Playwright) per test process, started when a
    test first asks for it: starting Playwright's driver and Chromium costs about a second of
    CPU, which each browser test paid before."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def browser(_chromium, live_server):
    """The test process's Chromium for a browser test, with the live server running. Each test
    opens its own contexts (cookies, storage and pages of their own); those left open are
    closed after it."""
    yield _chromium
    for context in _chromium.contexts:
        context.close()


@pytest.fixture
def demo(settings):
    """Development (DEBUG) without Stripe keys, as on `make demo`: the demo card gateway."""
    settings.DEBUG = True
    settings.STRIPE_SECRET_KEY = settings.STRIPE_PUBLISHABLE_KEY = ""
    settings.STRIPE_WEBHOOK_SECRET = ""
    return settings


@pytest.fixture
def plans(db: None) -> dict[str, Plan]:
    """The catalogue (tests.factories.catalogue): a plan of each kind, priced in EUR and USD."""
    return catalogue()


@pytest.fixture
def retry_day() -> Callable[[Traveller, date], int]:
    """`retry_day(traveller, day)`: travel to 06:00 UTC of `day`, run the daily payment retry
    job, and return how many retries it queued."""

    def run(traveller: Traveller, day: date) -> int:
        traveller.move_to(datetime.combine(day, time(6), tzinfo=UTC))
        return payment_tasks.payments_retry_due()

    return run
