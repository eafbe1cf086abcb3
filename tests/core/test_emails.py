"""Email goes out in the recipient's language, as text and HTML, through the send task."""

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.template.loader import render_to_string
from django.test import Client
from django.utils import translation

from core.emails import email_queue
from core.models import OutboundEmail
from core.queue import task_enqueue
from resellers.roles import Role
from resellers.services import team_invite
from tests.factories import MembershipFactory, ResellerFactory

EMAIL_TEMPLATES = Path(settings.BASE_DIR) / "templates" / "emails"


def _owner_membership(language: str):
    reseller = ResellerFactory(name="Soluciones Iberia", language=language)
    return MembershipFactory(reseller=reseller, role=Role.OWNER)


def _render_subject(template: str, language: str, **context) -> str:
    context = {"portal_name": settings.PORTAL_NAME, "vendor_name": settings.VENDOR_NAME, **context}
    with translation.override(language):
        return " ".join(render_to_string(f"emails/{template}.subject.txt", context).split())


def _invite(membership, email="nuevo@example.com"):
    return team_invite(membership=membership, email=email, role=Role.SALES)


@pytest.mark.django_db
def test_invitation_email_is_in_the_resellers_language_spanish():
    membership = _owner_membership("es")

    _invite(membership)

    email = OutboundEmail.objects.get(to="nuevo@example.com")
    assert email.language == "es"
    english_subject = _render_subject("team_invitation", "en", reseller_name="Soluciones Iberia")
    assert english_subject == f"Join Soluciones Iberia on {settings.PORTAL_NAME}"
    assert "Soluciones Iberia" in email.subject
    assert email.subject != english_subject, "the Spanish subject is still in English"
    assert "Accept the invitation" not in email.body_text
    assert "Accept the invitation" not in email.body_html


@pytest.mark.django_db
def test_invitation_email_is_in_english_for_an_english_reseller():
    membership = _owner_membership("en")

    _invite(membership)

    email = OutboundEmail.objects.get(to="nuevo@example.com")
    assert email.language == "en"
    assert email.subject == f"Join Soluciones Iberia on {settings.PORTAL_NAME}"
    assert "Accept the invitation" in email.body_text


@pytest.mark.django_db
def test_email_language_follows_the_recipient_not_the_current_request():
    membership = _owner_membership("es")

    with translation.override("de"):
        _invite(membership)
        assert translation.get_language() == "de"

    assert OutboundEmail.objects.get(to="nuevo@example.com").language == "es"


@pytest.mark.django_db
def test_unsupported_language_falls_back_to_the_default():
    email = email_queue(
        to="x@example.com",
        template="reseller_applied",
        context={"reseller_name": "X Ltd"},
        language="xx",
    )

    assert email.language == settings.LANGUAGE_CODE
    assert email.subject == "We received the partner application of X Ltd"


@pytest.mark.django_db
def test_sent_invitation_has_text_and_html_parts(mailoutbox, django_capture_on_commit_callbacks):
    membership = _owner_membership("es")

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        invitation = _invite(membership)
        assert mailoutbox == []  # nothing leaves before the commit

    # One email queued after the commit (the other callbacks move cache versions on).
    assert len([c for c in callbacks if getattr(c, "func", None) is task_enqueue]) == 1
    email = OutboundEmail.objects.get(to="nuevo@example.com")
    assert email.status == OutboundEmail.Status.SENT
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == ["nuevo@example.com"]
    assert message.subject == email.subject
    assert message.body.strip()
    assert "<" not in message.body  # the text part is text, not HTML
    html_parts = [content for content, mimetype in message.alternatives if mimetype == "text/html"]
    assert len(html_parts) == 1
    # The stored email is what was sent, with a placeholder where the one-time link was.
    link = re.findall(r"https?://\S+/join/[\w-]+/", message.body)[0]
    assert message.body.replace(link, "[accept_url sent by email]") == email.body_text
    assert html_parts[0].replace(link, "[accept_url sent by email]") == email.body_html
    assert "/join/" not in email.body_text + email.body_html
    assert "<html" in html_parts[0]
    assert "Soluciones Iberia" in message.body
    assert "Soluciones Iberia" in html_parts[0]

    # Both parts carry the same working link to the invitation.
    links = re.findall(r"https?://\S+/join/[\w-]+/", message.body)
    assert len(links) == 1
    assert f'href="{links[0]}"' in html_parts[0]
    assert links[0].startswith(settings.PORTAL_URL)
    page = Client().get(urlsplit(links[0]).path)
    assert page.status_code == 200
    assert invitation.email in page.content.decode()


def test_every_email_template_has_subject_text_and_html_parts():
    subjects = sorted(EMAIL_TEMPLATES.glob("*.subject.txt"))
    assert subjects
    for subject in subjects:
        name = subject.name.removesuffix(".subject.txt")
        assert (EMAIL_TEMPLATES / f"{name}.txt").exists(), name
        assert (EMAIL_TEMPLATES / f"{name}.html").exists(), name


# Every variable any email template uses; a template that needs one not listed here fails.
SAMPLE_CONTEXT = {
    "reseller_name": "Acme Resale",
    "old_reseller_name": "Acme Old",
    "new_reseller_name": "Acme New",
    "organisation": "Acme Customer",
    "contact_name": "Pat",
    "inviter": "Pat",
    "revoked_by": "pat@acme.example",
    "role": "Sales",
    "role_code": "sales",
    "domain": "acme.example",
    "customer_id": "c0ffee00c0ffee00",
    "product": "Acme Contacts",
    "licences": 3,
    "next_licences": 5,
    "renewal_setting": "auto_renew",
    "scheduled_plan_kind": "",
    "accept_url": "https://portal.example/join/abc/",
    "portal_url": "https://portal.example",
    "customer_url": "https://portal.example/customers/c0ffee00c0ffee00/",
    "customers_url": "https://portal.example/customers/",
    "expires_at": datetime(2026, 12, 24, 9, 30, tzinfo=UTC),
    "revoked_at": datetime(2026, 12, 24, 9, 30, tzinfo=UTC),
    "ends_on": date(2026, 12, 24),
    "number": "INV-2026-000042",
    "issue_date": date(2026, 11, 20),
    "due_date": date(2026, 12, 4),
    "total": Decimal("121.00"),
    "currency": "EUR",
    "invoice_url": "https://portal.example/invoices/c0ffee00c0ffee00/",
    "consent_url": "https://portal.example/billing/card-consent/abc/",
    "card_url": "https://portal.example/billing/card/",
    "reason": "Your card was declined.",
    "next_attempt": date(2026, 11, 26),
    "corrects": "",
    # price_increase_notice
    "applies_from": date(2027, 1, 15),
    "old_price": Decimal("4.00"),
    "new_price": Decimal("4.40"),
    "subscription_url": "https://portal.example/my/subscriptions/c0ffee00c0ffee00/",
    # invoice_issued
    "amount_due": Decimal("60.50"),
    "by_transfer": True,
    "iban": "IE29AIBK93115212345678",
    # payment_receipt
    "amount": Decimal("100.00"),
    "received_on": date(2026, 11, 22),
    "method": "Visa •••• 4242",
    "balance": Decimal("21.00"),
    "invoice_currency": "EUR",
    # invoice_pdf_failed
    "issued_at": datetime(2026, 11, 20, 1, 0, tzinfo=UTC),
    "attempts": 10,
    "error": "FacturXInvalid: no country",
    "admin_url": "https://portal.example/admin/billing/invoice/42/change/",
    # statement_issued
    "is_correction": False,
    "month": date(2026, 10, 1),
    "commission": Decimal("100.00"),
    "vat_rate": Decimal("23.00"),
    "vat_amount": Decimal("23.00"),
    "statement_url": "https://portal.example/statements/c0ffee00c0ffee00/",
    # webhook_endpoint_disabled
    "endpoint_url": "https://hooks.acme.example/portal",
    "failing_since": datetime(2026, 11, 20, 1, 0, tzinfo=UTC),
}


@pytest.mark.parametrize("language", [code for code, _name in settings.LANGUAGES])
@pytest.mark.django_db
def test_every_email_renders_in_every_language(language, settings):
    # A variable missing from the context shows up as a marker instead of vanishing.
    settings.TEMPLATES = [
        {
            **settings.TEMPLATES[0],
            "OPTIONS": {**settings.TEMPLATES[0]["OPTIONS"], "string_if_invalid": "MISSING(%s)"},
        }
    ]
    for subject in sorted(EMAIL_TEMPLATES.glob("*.subject.txt")):
        name = subject.name.removesuffix(".subject.txt")
        email = email_queue(
            to="x@example.com", template=name, context=SAMPLE_CONTEXT, language=language
        )
        assert email.language == language
        assert email.subject and "\n" not in email.subject, name
        for part in (email.subject, email.body_text, email.body_html):
            assert "MISSING(" not in part, (name, part)
            assert "Acme" in part, name
        assert "{%" not in email.body_text + email.body_html, name
