"""No raw one-time token at rest or in the logs (issue 11).

Every token flow is run end to end through the pages (team invitation, customer invitation,
card consent, transfer token), with refused and spent links opened too so that Django logs
"Forbidden" and "Gone" for token URLs. Afterwards every column of every table, the decoded
sessions and every log record are searched for every raw token issued during the test.
"""

import http.client
import json
import logging
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast
from urllib.parse import quote

import pytest
from django.apps import apps
from django.contrib.sessions.models import Session
from django.core import mail
from django.db import connection
from django.http import HttpResponse
from django.test import Client, TestCase
from django.urls import URLResolver, get_resolver, reverse
from gunicorn.config import Config as GunicornConfig

import core.tokens
from billing.models import CustomerCardConsent
from config.log_redaction import TokenRedactingGunicornLogger, tokens_redact
from core.emails import email_queue
from core.models import OutboundEmail
from customers.models import Customer, CustomerInvitation, CustomerMember, TransferToken
from resellers.models import Membership, TeamInvitation
from subscriptions.models import Payer, Subscription
from tests.factories import SubscriptionFactory, UserFactory
from tests.support.fake_google import FakeGoogle, GoogleIdentity, form_action
from tests.support.fake_stripe import FakeStripe

ROOT = Path(__file__).resolve().parents[2]

NEW_CUSTOMER = {
    "contact_name": "Marta Ruiz",
    "contact_email": "marta@acme-iberia.es",
    "customer_type": "domain",
    "domain": "acme-iberia.es",
    "organisation": "Acme Iberia",
    "crm_id": "",
    "admin_name": "",
    "admin_address": "",
    "admin_alternate_email": "",
    "admin_phone": "",
    "language": "es",
    "time_zone": "Europe/Madrid",
    "country": "ES",
}


@pytest.fixture
def issued_tokens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every raw token core.tokens.token_new hands out during the test, wherever it is called
    from (modules that imported the function by name included)."""
    issued: list[str] = []
    original = core.tokens.token_new

    def recording() -> tuple[str, str]:
        raw, digest = original()
        issued.append(raw)
        return raw, digest

    for module in list(sys.modules.values()):
        if vars(module).get("token_new") is original:
            monkeypatch.setattr(module, "token_new", recording)
    return issued


@pytest.fixture
def everything_logged(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every logger at DEBUG, SQL statements with their parameters included."""
    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        caplog.set_level(logging.DEBUG, logger=name)
    connection.force_debug_cursor = True
    try:
        yield caplog
    finally:
        connection.force_debug_cursor = False


def sent(action: Callable[[], HttpResponse]) -> HttpResponse:
    """Run a request with its on-commit callbacks, so the queued emails really go out."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        return action()


def sign_in_with_google(client: Client, email: str, login_url: str) -> None:
    # Google is faked only for the sign-in: Stripe's client (the fake Stripe server) uses
    # requests as well.
    with pytest.MonkeyPatch.context() as patch:
        callback = (
            FakeGoogle().install(patch).sign_in(client, GoogleIdentity(email), login_url=login_url)
        )
    assert callback.status_code == 302, callback


def link_in_last_email(path_start: str) -> str:
    """The link of the latest email actually sent (the outbox), as the recipient reads it."""
    body = mail.outbox[-1].body
    start = body.index(path_start)
    return body[start:].split()[0]


def database_dump() -> str:
    """Every value of every row of every table, and the sessions decoded."""
    rows: list[str] = []
    for model in apps.get_models(include_auto_created=True):
        for row in model._base_manager.values_list():
            rows.append(f"{model._meta.label}: {row!r}")
    for session in Session.objects.all():
        rows.append(f"session: {session.get_decoded()!r}")
    return "\n".join(rows)


def log_dump(caplog: pytest.LogCaptureFixture) -> str:
    return caplog.text + "\n".join(record.getMessage() for record in caplog.records)


def team_invitation_flow(tenant, client_for) -> None:
    owner = client_for(tenant.owner)
    sent(lambda: owner.post("/team/", {"email": "new.hire@example.com", "role": "admin"}))
    invitation = TeamInvitation.objects.get(reseller=tenant.reseller)
    first_link = link_in_last_email("/join/")
    # A resend issues a new link; the first one is dead.
    resend = reverse("resellers:invitation_resend", args=[invitation.public_id])
    sent(lambda: owner.post(resend))
    link = link_in_last_email("/join/")
    assert link != first_link

    assert client_for(UserFactory()).get(link).status_code == 403  # another account
    invitee = Client()
    page = invitee.get(link)
    assert page.status_code == 200
    sign_in_with_google(
        invitee, "new.hire@example.com", form_action(page.content.decode(), "/accounts/")
    )
    assert invitee.post(link).status_code == 302
    assert Membership.objects.filter(user__email="new.hire@example.com").exists()
    assert invitee.get(link).status_code == 410  # used
    assert invitee.get(first_link).status_code == 404  # the resend replaced it


def customer_invitation_flow(tenant, client_for) -> Customer:
    created = sent(lambda: client_for(tenant.owner).post("/customers/new/", NEW_CUSTOMER))
    assert created.status_code == 302, created.content.decode()
    customer = Customer.objects.get(domain="acme-iberia.es")
    assert CustomerInvitation.objects.filter(customer=customer).exists()
    link = link_in_last_email("/invitation/")

    assert client_for(UserFactory()).get(link).status_code == 403  # another account
    contact = Client()
    page = contact.get(link)
    assert page.status_code == 200
    sign_in_with_google(
        contact, "marta@acme-iberia.es", form_action(page.content.decode(), "/accounts/")
    )
    assert contact.post(link, {"terms": "on"}).status_code == 302
    customer.refresh_from_db()
    assert customer.status == Customer.Status.ACTIVE
    assert contact.get(link).status_code == 410  # used
    return customer


def card_consent_flow(tenant, customer: Customer, client_for, stripe: FakeStripe) -> None:
    subscription = cast(Subscription, SubscriptionFactory(customer=customer))
    payer_url = reverse("payments:subscription_payer", args=[subscription.public_id])
    sent(lambda: client_for(tenant.owner).post(payer_url, {"use_customer_card": "on"}))
    assert CustomerCardConsent.objects.filter(subscription=subscription).exists()
    link = link_in_last_email("/billing/card-consent/")

    assert client_for(tenant.owner).get(link).status_code == 403  # not the customer's admin
    admin = CustomerMember.objects.get(customer=customer).user
    client = client_for(admin)
    page = client.get(link)
    add_url = page.context["add_card_url"]
    card_page = client.get(add_url)
    setup_id = stripe.card_confirmed(card_page.context["setup"].client_secret)
    assert client.post(add_url, {"setup_intent": setup_id, "next": link})["Location"] == link
    assert client.post(link).status_code == 302
    subscription.refresh_from_db()
    assert subscription.payer == Payer.CUSTOMER_CARD
    assert client.get(link).status_code == 410  # used


def transfer_token_flow(customer: Customer, other_tenant, client_for) -> None:
    admin = client_for(CustomerMember.objects.get(customer=customer).user)
    url = reverse("customer_side:transfer_token_create", args=[customer.public_id])
    page = admin.post(url, {"reseller_id": other_tenant.reseller.public_id})
    assert page.status_code == 200
    raw = page.content.decode().split('id="transfer-token-value" value="')[1].split('"')[0]
    assert TransferToken.objects.filter(customer=customer).exists()

    importer = client_for(other_tenant.owner)
    data = {"domain": customer.domain, "token": raw}
    assert sent(lambda: importer.post("/customers/import/", data)).status_code == 302
    assert Customer.objects.filter(previous=customer).exists()
    assert importer.post("/customers/import/", data).status_code == 400  # used


@pytest.mark.postgres
def test_no_raw_token_in_the_database_or_the_logs_after_every_token_flow(
    tenant, other_tenant, client_for, fake_stripe, issued_tokens, everything_logged
):
    team_invitation_flow(tenant, client_for)
    customer = customer_invitation_flow(tenant, client_for)
    card_consent_flow(tenant, customer, client_for, fake_stripe)
    transfer_token_flow(customer, other_tenant, client_for)

    # team (2: sent, resent), customer invitation, card consent, transfer token
    assert len(issued_tokens) >= 5
    assert not OutboundEmail.objects.exclude(status=OutboundEmail.Status.SENT).exists()
    sent_mail = "\n".join(str(message.body) for message in mail.outbox)
    assert sum(raw in sent_mail for raw in issued_tokens) == 4  # the emails carry live links
    logs = log_dump(everything_logged)
    assert "Forbidden: /" in logs and "Gone: /" in logs, "the refused links were not logged"
    dump = database_dump()
    assert "new.hire@example.com" in dump  # the dump does see the rows
    stored = lines_with(issued_tokens, dump)
    assert not stored, "raw tokens stored in the database:\n" + "\n".join(stored)
    logged = lines_with(issued_tokens, logs)
    assert not logged, "raw tokens written to the logs:\n" + "\n".join(logged)


def lines_with(tokens: list[str], text: str) -> list[str]:
    return [line[:300] for line in text.splitlines() if any(raw in line for raw in tokens)]


def token_url_patterns() -> list[str]:
    """The names of every URL pattern that takes a token."""
    names: list[str] = []

    def walk(patterns: list[Any], namespace: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
                walk(pattern.url_patterns, inner)
            elif "token" in pattern.pattern.converters:
                names.append(f"{namespace}{pattern.name}")

    walk(get_resolver().url_patterns, "")
    return names


def test_every_token_url_is_redacted_in_log_messages():
    names = token_url_patterns()
    assert {"resellers:join", "customer_side:invitation", "payments:card_consent"} <= set(names)
    raw = core.tokens.token_new()[0]
    for name in names:
        path = reverse(name, kwargs={"token": raw})
        for message in (
            f"Gone: {path}",
            f'"GET {path}?x=1 HTTP/1.1" 403',
            f"?next={quote(path, '')}",
        ):
            redacted = tokens_redact(message)
            assert raw not in redacted and "[token]" in redacted, (name, redacted)
        # A token of another shape (typed by hand) is not logged either.
        odd = reverse(name, kwargs={"token": "short-odd.token~"})
        assert "short-odd" not in tokens_redact(f"Not Found: {odd}"), name


def test_the_gunicorn_access_and_error_logs_are_redacted():
    raw = core.tokens.token_new()[0]
    config = GunicornConfig()
    config.set("accesslog", "-")
    logger = TokenRedactingGunicornLogger(config)
    request = SimpleNamespace(
        method="GET",
        uri=f"/join/{raw}/",
        path=f"/join/{raw}/",
        query="",
        version=(1, 1),
        headers=[],
    )
    response = SimpleNamespace(status="410 Gone", response_length=10, sent=10, headers=[])
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": f"/join/{raw}/?next=%2Fjoin%2F{raw}%2F",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "PATH_INFO": f"/join/{raw}/",
        "REMOTE_ADDR": "10.0.0.1",
        # The page's own requests (its CSS) name it as the referrer.
        "HTTP_REFERER": f"https://portal.example/join/{raw}/",
    }
    written: list[str] = []
    capture = logging.Handler()
    capture.emit = lambda record: written.append(capture.format(record))  # type: ignore[method-assign]
    # gunicorn's loggers do not propagate: listen on them directly.
    for log in (logger.access_log, logger.error_log):
        log.addHandler(capture)
    try:
        logger.access(response, request, environ, timedelta(seconds=1))
        logger.error("Error handling request %s", request.uri)
    finally:
        for log in (logger.access_log, logger.error_log):
            log.removeHandler(capture)
    assert len(written) == 2
    text = "\n".join(written)
    assert "GET /join/[token]/?next=%2Fjoin%2F[token]%2F HTTP/1.1" in text
    assert "Error handling request /join/[token]/" in text
    assert raw not in text


@pytest.mark.django_db
def test_a_one_time_link_is_put_in_only_when_the_email_is_sent(mailoutbox):
    link = "https://portal.example/join/abc&def/"
    with TestCase.captureOnCommitCallbacks(execute=True):
        email = email_queue(
            to="x@example.com",
            template="team_invitation",
            context={"reseller_name": "X", "inviter": "Pat", "role": "Sales", "expires_at": None},
            language="en",
            secrets={"accept_url": link},
        )
    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.SENT
    assert "abc" not in email.body_text + email.body_html
    assert "[accept_url sent by email]" in email.body_text
    assert 'href="[accept_url sent by email]"' in email.body_html
    (message,) = mailoutbox
    assert link in message.body
    assert 'href="https://portal.example/join/abc&amp;def/"' in message.alternatives[0][0]


FORBIDDEN_APP = """
def application(environ, start_response):
    start_response("403 Forbidden", [("Content-Type", "text/plain")])
    return [b"no"]
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_gunicorn_started_as_the_dockerfile_starts_it_logs_no_token(tmp_path):
    """A real gunicorn, with the Dockerfile's command line (its config file and access log),
    serves a token URL: the access log has the request without the token."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    (cmd,) = [line for line in dockerfile.splitlines() if line.startswith("CMD ")]
    argv = json.loads(cmd.removeprefix("CMD "))
    assert argv[0] == "gunicorn" and "config.wsgi:application" in argv
    assert argv[argv.index("--access-logfile") + 1] == "-"
    access_log = tmp_path / "access.log"
    argv[argv.index("--access-logfile") + 1] = str(access_log)
    argv[argv.index("--bind") + 1] = f"127.0.0.1:{_free_port()}"
    bind = argv[argv.index("--bind") + 1]
    argv[argv.index("config.wsgi:application")] = "forbidden:application"
    (tmp_path / "forbidden.py").write_text(FORBIDDEN_APP)
    raw = core.tokens.token_new()[0]
    server = subprocess.Popen(
        [sys.executable, "-m", *argv, "--pythonpath", str(tmp_path), "--workers", "1"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                connection = http.client.HTTPConnection(bind, timeout=5)
                connection.request(
                    "GET",
                    f"/join/{raw}/?next=%2Fbilling%2Fcard-consent%2F{raw}%2F",
                    headers={"Referer": f"https://portal.example/invitation/{raw}/"},
                )
                response = connection.getresponse()
                break
            except OSError:
                assert server.poll() is None, "gunicorn did not start"
                assert time.monotonic() < deadline, "gunicorn did not answer"
                time.sleep(0.1)
        assert response.status == 403
    finally:
        server.terminate()
        server.wait(timeout=10)
    logged = access_log.read_text()
    assert "GET /join/[token]/" in logged, logged
    assert raw not in logged, logged
