"""Issue 12: staff can see the pending work. The admin index's "Background work" box counts the
emails pending, overdue and failed, the invoices without a PDF and the card charges and attempts
due, with the oldest of each; each count links to exactly its rows; "Queue again now" queues
them at once and says what it queued. Failed emails can be sent again, unless their one-time
link was erased."""

import re
from datetime import datetime, timedelta
from typing import Any, cast

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.contrib.auth.models import Permission
from django.core import mail
from django.utils import timezone

from billing.models import Invoice, Payment
from billing.payments.tasks import payments_sweep
from core import sweeper
from core.emails import email_queue, secret_placeholder
from core.models import OutboundEmail, User
from core.selectors import work_backlog
from core.tasks import emails_sweep
from tests.factories import UserFactory
from tests.support.pdf import issue
from tests.support.sessions import client_signed_in

QUEUE_AGAIN = "/admin/core/outboundemail/queue-again/"
EMAILS = "/admin/core/outboundemail/"


def _email(created: datetime, **fields: Any) -> OutboundEmail:
    email = OutboundEmail.objects.create(
        to="someone@example.com",
        template="reseller_approved",
        language="en",
        subject="Approved",
        body_text="Approved.",
        body_html="<p>Approved.</p>",
        **fields,
    )
    OutboundEmail.objects.filter(pk=email.pk).update(created_at=created)
    return email


def _invoice(
    customer: Any, number: str, issued: datetime, lines: Any = None, **fields: Any
) -> Invoice:
    """An issued card invoice; `fields` written afterwards (its PDF, its charge's state)."""
    invoice = issue(customer, number=number, issued_at=issued, lines=lines)
    if fields:
        Invoice.objects.filter(pk=invoice.pk).update(**fields)
    return invoice


def _payment(invoice: Invoice, attempt: int, updated: datetime, **fields: Any) -> Payment:
    payment = Payment.objects.create(
        invoice=invoice,
        attempt=attempt,
        gateway="stripe",
        idempotency_key=f"{invoice.number}-{attempt}",
        amount=invoice.total,
        currency=invoice.currency,
        **fields,
    )
    Payment.objects.filter(pk=payment.pk).update(created_at=updated, updated_at=updated)
    return payment


@pytest.fixture
def work(tenant, other_tenant, fake_stripe, settings) -> dict[str, Any]:
    """Of each kind, rows that count and rows that must not (across both resellers: the admin
    is the vendor's); returns the pks each line must list and the oldest of each."""
    now = timezone.now()
    minutes = lambda n: now - timedelta(minutes=n)  # noqa: E731
    lease = timedelta(seconds=settings.EMAIL_SEND_LEASE)
    Status = OutboundEmail.Status
    emails = {
        "emails-pending": [
            _email(minutes(1), next_attempt_at=minutes(1), queued_at=minutes(1)),
            # Backing off after a temporary failure: due later.
            _email(minutes(30), next_attempt_at=now + timedelta(minutes=5), queued_at=minutes(2)),
            # Queued again a moment ago: not overdue until that stamp is.
            _email(minutes(40), next_attempt_at=minutes(40), queued_at=minutes(1)),
            # Being sent, within its lease.
            _email(minutes(3), status=Status.SENDING, claimed_at=minutes(1)),
        ],
        "emails-overdue": [
            _email(minutes(60), next_attempt_at=minutes(60), queued_at=minutes(60)),
            _email(minutes(10), next_attempt_at=minutes(10), queued_at=None),
            # Its worker died mid-send.
            _email(minutes(20), status=Status.SENDING, claimed_at=now - lease - timedelta(1)),
        ],
        "emails-failed": [
            _email(minutes(90), status=Status.FAILED, attempts=9, last_error="SMTP 451"),
            _email(minutes(2), status=Status.FAILED, attempts=1, last_error="SMTP 550"),
        ],
    }
    _email(minutes(120), status=Status.SENT, sent_at=minutes(119))  # counts nowhere

    paid = {"status": Invoice.Status.PAID}
    pdf = {"pdf": "invoices/x.pdf", "pdf_sha256": "a" * 64}
    today = timezone.localdate(now)
    missing = [
        _invoice(tenant.customer, "INV-2026-000001", minutes(60), **paid),
        _invoice(other_tenant.customer, "INV-2026-000002", minutes(300), **paid),
        _invoice(
            tenant.customer, "INV-2026-000003", minutes(30), pdf_queued_at=minutes(20), **paid
        ),
    ]
    _invoice(tenant.customer, "INV-2026-000004", minutes(1), **paid)  # just issued
    _invoice(tenant.customer, "INV-2026-000005", minutes(60), pdf_queued_at=minutes(1), **paid)
    _invoice(tenant.customer, "INV-2026-000006", minutes(600), **paid, **pdf)  # has its PDF
    charges = [
        _invoice(tenant.customer, "INV-2026-000011", minutes(45), **pdf),  # first charge lost
        _invoice(
            other_tenant.customer,
            "INV-2026-000012",
            minutes(60 * 24 * 3),
            status=Invoice.Status.PAYMENT_FAILED,
            payment_attempts=1,
            next_payment_attempt=today - timedelta(days=1),  # its retry day passed
            **pdf,
        ),
    ]
    _invoice(tenant.customer, "INV-2026-000013", minutes(45), payment_queued_at=minutes(1), **pdf)
    _invoice(tenant.customer, "INV-2026-000014", minutes(45), payment_attempts=1, **pdf)
    _invoice(
        tenant.customer,
        "INV-2026-000015",
        minutes(60 * 24 * 3),
        status=Invoice.Status.PAYMENT_FAILED,
        payment_attempts=1,
        next_payment_attempt=today,  # the daily job's day, not late yet
        **pdf,
    )
    # Below Stripe's minimum charge: waits for staff, not for the sweeper.
    tiny = [("Tiny", 1, "0.10", "0.10", None, None)]
    _invoice(tenant.customer, "INV-2026-000016", minutes(45), lines=tiny, **pdf)
    attempted = _invoice(tenant.customer, "INV-2026-000017", minutes(200), **paid, **pdf)
    attempts = [_payment(attempted, 1, minutes(50))]  # no answer from the gateway
    _payment(attempted, 2, minutes(1))  # asked a moment ago
    _payment(attempted, 3, minutes(100), status=Payment.Status.SUCCEEDED)
    return {
        "now": now,
        "rows": {
            **{key: [email.pk for email in rows] for key, rows in emails.items()},
            "pdfs-missing": [invoice.pk for invoice in missing],
            "charges-overdue": [invoice.pk for invoice in charges],
            "payments-unsettled": [payment.pk for payment in attempts],
            "invoices-left": [],  # no charge due (tests/system/test_pending_work.py has one)
        },
        "oldest": {
            "emails-pending": minutes(40),
            "emails-overdue": minutes(60),
            "emails-failed": minutes(90),
            "pdfs-missing": minutes(300),
            "charges-overdue": minutes(60 * 24 * 3),
            "payments-unsettled": minutes(50),
            "invoices-left": None,
        },
    }


@pytest.mark.django_db
def test_each_line_counts_its_rows_and_their_oldest(work):
    lines = {line.key: line for line in work_backlog(now=work["now"])}

    assert set(work["rows"]) <= set(lines)
    for key, rows in work["rows"].items():
        assert (lines[key].count, lines[key].oldest) == (len(rows), work["oldest"][key]), key


@pytest.mark.django_db
def test_the_lines_count_what_the_sweeps_queue(work, monkeypatch):
    """One definition of each: what the box says is overdue is what the sweep queues."""
    queued: list[tuple[Any, ...]] = []

    def enqueue(task: Any, *args: Any) -> bool:
        queued.append(args)
        return True

    monkeypatch.setattr(sweeper, "task_enqueue", enqueue)
    now = work["now"]
    rows = work["rows"]

    assert payments_sweep(now=now, force=False) == 3
    charged = {invoice_id for invoice_id, _attempt in queued}
    attempted = set(
        Payment.objects.filter(pk__in=rows["payments-unsettled"]).values_list(
            "invoice_id", flat=True
        )
    )
    assert charged == set(rows["charges-overdue"]) | attempted
    queued.clear()
    assert emails_sweep(now=now, force=False) == len(rows["emails-overdue"])
    assert {args[0] for args in queued} == set(rows["emails-overdue"])


@pytest.mark.django_db
def test_without_a_card_gateway_no_charge_is_due(work, settings):
    settings.STRIPE_SECRET_KEY = ""  # the manual gateway: nothing for the sweeper to charge

    lines = {line.key: line for line in work_backlog(now=work["now"])}

    assert (lines["charges-overdue"].count, lines["payments-unsettled"].count) == (0, 0)


def _box(page: Any) -> str:
    html = page.content.decode()
    start = html.index('id="background-work"')
    return html[start : html.index("</div>", start)]


@pytest.mark.django_db
def test_the_box_links_each_count_to_exactly_its_rows(staff_client, work):
    page = staff_client.get("/admin/")

    assert page.status_code == 200
    box = _box(page)
    assert "Background work" in box
    rows = re.findall(
        r'<a href="([^"]+)">[^<]*</a></th>\s*<td data-count="([\w-]+)">(\d+)</td>\s*'
        r"<td>(?:<time[^>]*>([^<]*)</time>)?</td>",
        box,
    )
    assert {key for _href, key, _count, _age in rows} == set(work["rows"])
    ages = {key: age for _href, key, _count, age in rows}
    assert ages["emails-overdue"] == "1\xa0hour ago"
    assert ages["pdfs-missing"] == "5\xa0hours ago"
    assert not ages["charges-overdue"].endswith("ago")  # older than a day: its date
    for href, key, count, _age in rows:
        assert int(count) == len(work["rows"][key]), key
        changelist = staff_client.get(href.replace("&amp;", "&"))
        assert changelist.status_code == 200, href
        listed = [row.pk for row in changelist.context["cl"].result_list]
        assert sorted(listed) == sorted(work["rows"][key]), (key, href)


@pytest.mark.django_db
def test_queue_again_now_queues_the_pending_work_and_says_what(
    staff_client, tenant, django_capture_on_commit_callbacks
):
    nothing = staff_client.post(QUEUE_AGAIN, follow=True)
    [message] = [str(message) for message in nothing.context["messages"]]
    assert message == "Nothing was waiting: nothing queued again."
    with django_capture_on_commit_callbacks(execute=False):  # its task is lost
        lost = email_queue(
            to="someone@example.com",
            template="reseller_approved",
            context={"reseller_name": "Acme", "portal_url": "http://portal.example"},
            language="en",
        )
    failed = _email(timezone.now(), status=OutboundEmail.Status.FAILED, attempts=1)
    invoice = issue(tenant.customer, issued_at=timezone.now())  # its render was lost
    page = staff_client.get("/admin/")
    assert QUEUE_AGAIN in _box(page)  # a superuser has the button

    response = staff_client.post(QUEUE_AGAIN, follow=True)

    assert response.redirect_chain == [("/admin/", 302)]
    [message] = [str(message) for message in response.context["messages"]]
    assert message.startswith("Queued again: ")
    assert "1 email," in message and "1 PDF," in message, message
    [sent] = mail.outbox
    lost.refresh_from_db()
    assert (lost.status, sent.extra_headers["Message-ID"]) == ("sent", lost.message_id)
    failed.refresh_from_db()
    assert failed.status == OutboundEmail.Status.FAILED  # failed stays for "Send again"
    invoice.refresh_from_db()
    assert invoice.pdf_sha256


def _staff(*permissions: str) -> User:
    user = cast(User, UserFactory(is_staff=True))
    user.user_permissions.set(
        [Permission.objects.get(codename=codename) for codename in permissions]
    )
    TOTP.activate(user, generate_totp_secret())
    return user


@pytest.mark.django_db
def test_staff_who_may_only_read_get_the_box_without_the_button(client_for, work):
    reader = client_for(_staff("view_outboundemail"))

    page = reader.get("/admin/")

    assert page.status_code == 200
    box = _box(page)
    assert 'data-count="emails-overdue">3<' in box
    assert QUEUE_AGAIN not in box and "Queue again now" not in box
    assert reader.post(QUEUE_AGAIN).status_code == 403
    assert OutboundEmail.objects.filter(status=OutboundEmail.Status.SENT).count() == 1
    assert mail.outbox == []
    changelist = reader.get(EMAILS)
    assert changelist.status_code == 200
    assert 'value="send_again"' not in changelist.content.decode()
    # Staff without even that see no box.
    page = client_for(_staff()).get("/admin/")
    assert page.status_code == 200
    assert "background-work" not in page.content.decode()


@pytest.mark.django_db
def test_the_button_needs_the_csrf_token(work):
    user = cast(User, UserFactory(is_staff=True, is_superuser=True))
    TOTP.activate(user, generate_totp_secret())
    client = client_signed_in(user, enforce_csrf_checks=True)

    assert client.post(QUEUE_AGAIN).status_code == 403
    assert mail.outbox == []


def _invitation(link: str | None) -> OutboundEmail:
    context = {
        "inviter": "Pat",
        "reseller_name": "Acme",
        "role": "Billing",
        "expires_at": timezone.now() + timedelta(days=7),
    }
    email = email_queue(
        to="new.hire@example.com",
        template="team_invitation",
        context=context,
        language="en",
        secrets={"accept_url": link or "http://portal.example/join/erased/"},
    )
    changes: dict[str, Any] = {"status": OutboundEmail.Status.FAILED, "attempts": 9}
    changes["last_error"] = "SMTPServerDisconnected()"
    if link is None:
        changes["secrets_sealed"] = ""  # given up for good: its link was erased
    OutboundEmail.objects.filter(pk=email.pk).update(**changes)
    return email


@pytest.mark.django_db
def test_send_again_sends_failed_emails_and_refuses_one_whose_link_was_erased(
    staff_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        sealed = _invitation("http://portal.example/join/live-token/")
        erased = _invitation(None)
        plain = _email(timezone.now(), status=OutboundEmail.Status.FAILED, attempts=2)
        OutboundEmail.objects.filter(pk=plain.pk).update(last_error="SMTP 451")
        sent = _email(timezone.now(), status=OutboundEmail.Status.SENT)
    assert secret_placeholder("accept_url") in erased.body_text
    selected = [sealed.pk, erased.pk, plain.pk, sent.pk]
    data = {"action": "send_again", "_selected_action": selected, "index": 0}

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = staff_client.post(EMAILS, data, follow=True)

    messages = [str(message) for message in response.context["messages"]]
    assert any(
        "to new.hire@example.com was erased" in m and "new invitation" in m for m in messages
    )
    assert "2 emails queued to be sent again." in messages
    assert "1 email left as it was: only failed emails are sent again." in messages
    assert len(callbacks) == 2
    # Back to pending, due and queued now; its attempts and last error kept for the record.
    before = timezone.now()
    for email, attempts, error in ((sealed, 9, "SMTPServerDisconnected()"), (plain, 2, "SMTP 451")):
        email.refresh_from_db()
        assert (email.status, email.attempts, email.last_error) == ("pending", attempts, error)
        assert before - timedelta(minutes=1) < email.next_attempt_at <= before
        assert email.queued_at == email.next_attempt_at
    erased.refresh_from_db()
    assert erased.status == OutboundEmail.Status.FAILED

    for callback in callbacks:
        callback()

    assert sorted(message.to[0] for message in mail.outbox) == [
        "new.hire@example.com",
        "someone@example.com",
    ]
    [invitation] = [message for message in mail.outbox if message.to == ["new.hire@example.com"]]
    assert "http://portal.example/join/live-token/" in invitation.body  # its sealed link
    sealed.refresh_from_db()
    assert (sealed.status, sealed.secrets_sealed) == ("sent", "")


@pytest.mark.django_db
def test_the_change_page_shows_the_delivery_fields_but_never_the_sealed_link(staff_client):
    email = _invitation("http://portal.example/join/live-token/")
    now = timezone.now()
    OutboundEmail.objects.filter(pk=email.pk).update(queued_at=now, claimed_at=now)
    email.refresh_from_db()

    page = staff_client.get(f"{EMAILS}{email.pk}/change/")

    assert page.status_code == 200
    html = page.content.decode()
    for label in ("Message-ID", "Next attempt", "Queued", "Claimed"):
        assert f">{label}:<" in html, label
    assert email.message_id and email.message_id.replace("<", "&lt;").replace(">", "&gt;") in html
    assert email.secrets_sealed and email.secrets_sealed not in html
    assert "live-token" not in html
