"""The demo's email: one line per email on the console, the development outbox (DEBUG only) with
each email in full, and `make demo` pointing the emails' links where it serves."""

import base64
import os
import re
import shutil
import subprocess
import sys
from io import StringIO
from pathlib import Path
from types import ModuleType

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.mail import EmailMultiAlternatives
from django.test import Client
from django.urls import clear_url_caches, include, path

from core.emails import email_queue
from core.mail import DemoConsoleBackend
from core.models import OutboundEmail
from resellers.roles import Role
from resellers.services import team_invite
from tests.factories import MembershipFactory, ResellerFactory, UserFactory
from tests.support.sessions import client_signed_in

PDF = b"%PDF-1.7 " + bytes(range(256)) * 40


def test_console_line_names_recipient_subject_links_and_attachments():
    stream = StringIO()
    message = EmailMultiAlternatives(
        "Invoice INV-2026-0001\n issued",
        "Your invoice.\nView it: http://127.0.0.1:8001/my/invoices/abc/.\nThanks",
        to=["ana@nimbus.example"],
    )
    message.attach_alternative("<p><a href='http://127.0.0.1:8001/x/'>x</a></p>", "text/html")
    message.attach("INV-2026-0001.pdf", PDF, "application/pdf")

    assert DemoConsoleBackend(stream=stream).send_messages([message]) == 1

    output = stream.getvalue()
    assert output.count("\n") == 1
    assert output == (
        "✉ to ana@nimbus.example · Invoice INV-2026-0001 issued · "
        "links: http://127.0.0.1:8001/my/invoices/abc/ · attachments: INV-2026-0001.pdf\n"
    )
    assert base64.b64encode(PDF)[:40].decode() not in output


def test_console_line_shows_a_sign_in_code():
    stream = StringIO()
    message = EmailMultiAlternatives(
        "Sign-In Code", "Your sign-in code is listed below.\n\nK7QX2M\n\nBye", to=["a@example.com"]
    )
    DemoConsoleBackend(stream=stream).send_messages([message])
    assert stream.getvalue().strip() == "✉ to a@example.com · Sign-In Code · code: K7QX2M"


@pytest.mark.django_db
def test_console_line_holds_the_one_time_link(settings, capsys, django_capture_on_commit_callbacks):
    """The demo user accepts an invitation from the console: its one-time link is printed."""
    settings.MAILERS = {"default": {"BACKEND": "core.mail.DemoConsoleBackend"}}
    owner = MembershipFactory(reseller=ResellerFactory(language="en"), role=Role.OWNER)
    with django_capture_on_commit_callbacks(execute=True):
        team_invite(membership=owner, email="new@example.com", role=Role.SALES)

    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("✉ to new@example.com · ")
    assert re.search(r"links: https?://\S+/join/[\w-]+/", lines[0])
    assert "sent by email]" not in lines[0]


# The outbox's URLs are added to config.urls only when DEBUG is on at start-up; with DEBUG
# turned on in a test, the same patterns are served from this URLconf.
debug_urls = ModuleType("tests_demo_mail_debug_urls")


@pytest.fixture
def debug_on(settings):
    from config.urls import urlpatterns

    vars(debug_urls)["urlpatterns"] = [*urlpatterns, path("dev/", include("demo.urls"))]
    sys.modules[debug_urls.__name__] = debug_urls
    settings.DEBUG = True
    settings.ROOT_URLCONF = debug_urls.__name__
    clear_url_caches()
    yield
    clear_url_caches()
    del sys.modules[debug_urls.__name__]


def _email(to: str, subject: str, **fields) -> OutboundEmail:
    fields.setdefault("body_html", f"<html><body><p>{subject}</p></body></html>")
    return OutboundEmail.objects.create(
        to=to, template="test", language="en", subject=subject, body_text=subject, **fields
    )


@pytest.fixture
def emails(db: None) -> dict[str, OutboundEmail]:
    path_ = default_storage.save("invoices/INV-TEST-0001.pdf", ContentFile(PDF))
    attachment = {"path": path_, "filename": "INV-TEST-0001.pdf", "mimetype": "application/pdf"}
    return {
        "ana": _email("ana@example.com", "For Ana", attachments=[attachment]),
        "bob": _email("bob@example.com", "For Bob"),
    }


def test_outbox_staff_see_every_email_newest_first(debug_on, emails):
    response = client_signed_in(UserFactory(is_staff=True)).get("/dev/outbox/")
    assert response.status_code == 200
    page = response.content.decode()
    assert page.index("For Bob") < page.index("For Ana")
    assert "printed on the console" in page


def test_outbox_a_user_sees_only_their_own_email(debug_on, emails):
    client = client_signed_in(UserFactory(email="ana@example.com"))
    page = client.get("/dev/outbox/").content.decode()
    assert "For Ana" in page
    assert "For Bob" not in page
    assert client.get(f"/dev/outbox/{emails['ana'].pk}/").status_code == 200
    assert client.get(f"/dev/outbox/{emails['bob'].pk}/").status_code == 404
    assert client.get(f"/dev/outbox/{emails['bob'].pk}/html/").status_code == 404


def test_outbox_anonymous_is_sent_to_sign_in(debug_on, emails):
    response = Client().get("/dev/outbox/")
    assert response.status_code == 302
    assert response["Location"].startswith(settings.LOGIN_URL.replace("account_login", "/"))
    assert "/accounts/login/" in response["Location"]


def test_outbox_email_page_frames_the_html_under_a_strict_policy(debug_on, emails):
    client = client_signed_in(UserFactory(email="ana@example.com"))
    email = emails["ana"]
    page = client.get(f"/dev/outbox/{email.pk}/")
    assert f'src="/dev/outbox/{email.pk}/html/" sandbox=""' in page.content.decode()
    assert "frame-ancestors 'none'" in page["Content-Security-Policy"]  # the site's, as ever

    body = client.get(f"/dev/outbox/{email.pk}/html/")
    assert body.content.decode() == email.body_html
    policy = body["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "frame-ancestors 'self'" in policy
    assert "sandbox" in policy
    assert "script-src" not in policy
    assert body["X-Frame-Options"] == "SAMEORIGIN"


def test_outbox_shows_a_one_time_link_while_the_email_is_pending(debug_on, db):
    owner = MembershipFactory(reseller=ResellerFactory(language="en"), role=Role.OWNER)
    email = email_queue(  # not sent: the test does not run the commit callbacks
        to=owner.user.email,
        template="team_invitation",
        context={"inviter": "Ana", "reseller_name": "R", "role": "Sales", "expires_at": None},
        language="en",
        secrets={"accept_url": "http://127.0.0.1:8001/join/abc/"},
    )
    client = client_signed_in(owner.user)
    assert (
        "http://127.0.0.1:8001/join/abc/" in client.get(f"/dev/outbox/{email.pk}/").content.decode()
    )
    html = client.get(f"/dev/outbox/{email.pk}/html/").content.decode()
    assert "http://127.0.0.1:8001/join/abc/" in html
    assert "sent by email]" not in html


def test_outbox_attachment_downloads(debug_on, emails):
    client = client_signed_in(UserFactory(email="ana@example.com"))
    email = emails["ana"]
    assert (
        "download>INV-TEST-0001.pdf</a>" in client.get(f"/dev/outbox/{email.pk}/").content.decode()
    )
    response = client.get(f"/dev/outbox/{email.pk}/attachments/0/")
    assert response.status_code == 200
    assert response.getvalue() == PDF
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="INV-TEST-0001.pdf"'
    assert client.get(f"/dev/outbox/{email.pk}/attachments/1/").status_code == 404
    other = client_signed_in(UserFactory(email="bob@example.com"))
    assert other.get(f"/dev/outbox/{email.pk}/attachments/0/").status_code == 404


def test_outbox_is_not_there_without_debug(emails):
    """The test settings run with DEBUG off, as production does: no URL, and the views refuse
    even where they are routed."""
    staff = client_signed_in(UserFactory(is_staff=True))
    assert staff.get("/dev/outbox/").status_code == 404
    assert staff.get(f"/dev/outbox/{emails['ana'].pk}/").status_code == 404


def test_outbox_views_refuse_without_debug_even_when_routed(debug_on, settings, emails):
    settings.DEBUG = False
    staff = client_signed_in(UserFactory(is_staff=True))
    assert staff.get("/dev/outbox/").status_code == 404
    assert staff.get(f"/dev/outbox/{emails['ana'].pk}/attachments/0/").status_code == 404


def test_demo_serve_lists_the_demo_users_after_the_server_banner(debug_on, db):
    from demo.management.commands.demo_serve import Command

    # (That the seed leaves the list to demo_serve: tests/demo/test_demo.py, on its data.)
    out = StringIO()
    command = Command(stdout=out)
    command.addr = "127.0.0.1"
    vars(command)["_raw_ipv6"] = False  # runserver's own, not in its types
    command.on_bind(8001)
    printed = out.getvalue()
    assert printed.index("Quit the server") < printed.index("Demo users")
    assert "http://127.0.0.1:8001/dev/outbox/" in printed
    assert "Staff (admin at /admin/): admin@example.com / admin" in printed


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize(
    ("args", "portal_url"),
    [
        (["DEMO_ADDR=127.0.0.1:8001"], "http://127.0.0.1:8001"),
        (["DEMO_ADDR=8002"], "http://127.0.0.1:8002"),
        (["DEMO_ADDR=127.0.0.1:8001", "PORTAL_URL=https://demo.example"], "https://demo.example"),
    ],
)
def test_make_demo_points_email_links_where_it_serves(args, portal_url):
    env = {k: v for k, v in os.environ.items() if k != "PORTAL_URL"}
    result = subprocess.run(
        ["make", "-n", "demo", *args],
        cwd=Path(settings.BASE_DIR),
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert f"PORTAL_URL={portal_url} " in result.stdout
    assert "demo_serve" in result.stdout


def test_demo_serve_serves_static_files(settings):
    """As `runserver` does with django.contrib.staticfiles: the demo's pages keep their CSS."""
    from django.contrib.staticfiles.handlers import StaticFilesHandler

    from demo.management.commands.demo_serve import Command

    settings.DEBUG = True
    handler = Command().get_handler(use_static_handler=True, insecure_serving=False)
    assert isinstance(handler, StaticFilesHandler)
