"""The demo walked by a brand-new user, in headless Chromium, in each of the five languages
(issue 13): a reseller adds its demo card, creates a never-seen customer, whose contact accepts
the invitation from the link in the email after signing in with the development sign-in; the
reseller buys with its card (the nightly run charges it), asks the customer to pay with its own
card, the customer agrees after adding one, then changes it (a card that asks for
authentication); the reseller imports a team customer with its transfer token.

Every page the walk reaches, at 1280 and 390 pixels wide, shows no leftover English of the
project's catalogue, no raw choice code or timestamp, no Content-Security-Policy violation and
no sideways scrolling.
"""

import itertools
import re
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from billing import services as billing_services
from billing.models import Invoice, PaymentCard
from billing.vat import vat_rates_seed
from customers import services as customer_services
from customers.models import Customer, CustomerMember
from subscriptions.models import Payer, Plan, PlanPrice, Product, Subscription
from tests.factories import CustomerFactory, UserFactory, make_tenant
from tests.support.browser import (
    csp_collect,
    csp_violations,
    horizontal_overflow,
    session_cookie,
)

LANGUAGES = ["en", "es", "fr", "de", "nl"]
LANGUAGE_NAMES = {str(name) for _code, name in settings.LANGUAGES}
WIDTHS = (1280, 390)
LOCALE = Path(__file__).resolve().parents[2] / "locale"
_walks = itertools.count(1)

pytestmark = pytest.mark.browser

# Raw values a person must never read: choice codes (reseller_card, payment_failed) and ISO
# timestamps.
RAW_CODE = re.compile(r"\b[a-z]+_[a-z]+(?:_[a-z]+)*\b")
RAW_TIMESTAMP = re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
# What the walk's pages may show as typed: email addresses (user_name@...) and card numbers.
EMAIL = re.compile(r"\S+@\S+")


def _po_entries(language: str) -> list[tuple[str, str]]:
    """(msgid, msgstr) of the project's catalogue for `language`, plural forms left out."""
    text = (LOCALE / language / "LC_MESSAGES" / "django.po").read_text()
    entries = []
    for block in text.split("\n\n"):
        if "msgid_plural" in block or "#, fuzzy" in block:
            continue
        found = re.search(r'^msgid ((?:".*"\n?)+)msgstr ((?:".*"\n?)+)', block, re.MULTILINE)
        if not found:
            continue

        def joined(quoted: str) -> str:
            parts = re.findall(r'"((?:[^"\\]|\\.)*)"', quoted)
            return "".join(parts).encode().decode("unicode_escape").encode("latin-1").decode()

        entries.append((joined(found.group(1)), joined(found.group(2))))
    return entries


_ENGLISH: dict[str, tuple[set[str], list[str]]] = {}


def english_left(language: str) -> tuple[set[str], list[str]]:
    """The English a page in `language` must not show: whole lines (one- or two-word texts, such
    as labels and buttons) and phrases (longer texts, or the literal parts of a message with
    placeholders, of three words or more). Only texts the catalogue translates differently."""
    if language not in _ENGLISH:
        lines, phrases = set(), []
        for msgid, msgstr in _po_entries(language):
            if not msgid or not msgstr or msgstr == msgid or "<" in msgid:
                continue
            if msgid in LANGUAGE_NAMES:
                continue  # the language menu names each language in its own language
            parts = re.split(r"%\(\w+\)[sd]|%[sd]|\{\{?[^}]*\}?\}", msgid)
            for part in parts:
                part = part.strip(" .,:;()\u2013\u2014-")
                words = part.split()
                if len(parts) == 1 and 1 <= len(words) <= 2 and len(part) > 3:
                    lines.add(part)
                elif len(words) >= 3 and part not in msgstr:
                    phrases.append(part)
        _ENGLISH[language] = (lines, phrases)
    return _ENGLISH[language]


def leftover_english(text: str, language: str) -> list[str]:
    lines, phrases = english_left(language)
    shown = [line.strip() for line in text.splitlines() if line.strip()]
    found = [line for line in shown if line.rstrip(":") in lines]
    found += [phrase for phrase in phrases if phrase in text]
    return found


def raw_values(text: str) -> list[str]:
    text = EMAIL.sub("", text)
    return RAW_CODE.findall(text) + RAW_TIMESTAMP.findall(text)


class Walk:
    """One language's walk: its pages, and every problem found on each page shown."""

    def __init__(self, browser, live_server, language: str) -> None:
        self.browser, self.live_server, self.language = browser, live_server, language
        self.problems: list[str] = []
        self.visited: list[tuple[Any, str]] = []
        self.pages: list[object] = []

    def page(self, user=None):
        context = self.browser.new_context(
            base_url=self.live_server.url,
            locale=self.language,
            viewport={"width": WIDTHS[0], "height": 900},
        )
        if user is not None:
            context.add_cookies([session_cookie(user, self.live_server.url)])
        page = context.new_page()
        csp_collect(context, page)
        self.pages.append(page)
        return page

    def check(self, page) -> None:
        """Look at the page shown, at each width the first time its path is seen: what a person
        reads, and how it is laid out. The narrow width is the same page resized (the layout is
        CSS alone), not loaded again."""
        page.wait_for_load_state("load")
        path = urlsplit(page.url).path
        if (page, path) in self.visited:
            self.look(page, path)
            return
        self.visited.append((page, path))
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            self.look(page, path)
        page.set_viewport_size({"width": WIDTHS[0], "height": 900})

    def look(self, page, path: str) -> None:
        width = page.viewport_size["width"]
        where = f"{self.language} {width}px {path}"
        text = page.inner_text("body")
        if self.language != "en":
            for english in leftover_english(text, self.language):
                self.problems.append(f"{where}: English left: {english!r}")
        for raw in raw_values(text):
            self.problems.append(f"{where}: raw value {raw!r}")
        for violation in csp_violations(page):
            self.problems.append(f"{where}: CSP violation {violation}")
        page.console_csp.clear()
        overflow = horizontal_overflow(page)
        if overflow > 0:
            self.problems.append(f"{where}: {overflow}px of sideways scrolling")

    def goto(self, page, path: str) -> None:
        response = page.goto(path)
        assert response is not None and response.status < 400, (path, response and response.status)
        self.check(page)

    def submit(self, page, form: str) -> None:
        """Press the form's (first) submit button and look at the page that follows."""
        with page.expect_navigation():
            page.locator(f"{form} button[type=submit]").first.click()
        self.check(page)


def link_in_mail(to: str, path_prefix: str) -> str:
    """The path of the link starting with `path_prefix` in the latest email to `to`."""
    for message in reversed(mail.outbox):
        if to in message.to:
            for url in re.findall(r"https?://\S+", str(message.body)):
                path = urlsplit(url).path
                if path.startswith(path_prefix):
                    return path
    raise AssertionError(f"no email to {to} with a link to {path_prefix}")


def code_in_mail(to: str) -> str:
    for message in reversed(mail.outbox):
        if to in message.to:
            found = re.search(r"^\s*([A-Z0-9]{4}-[A-Z0-9]{4})\s*$", str(message.body), re.MULTILINE)
            if found:
                return found.group(1)
    raise AssertionError(f"no sign-in code was emailed to {to}")


def prefix(name: str) -> str:
    return reverse(name, kwargs={"token": "TOKEN"}).split("TOKEN")[0]


@pytest.fixture
def demo_sign_in(demo):
    """`make demo`'s settings: the demo card gateway (the demo fixture) and the sign-in by code."""
    settings = demo
    settings.DEVELOPMENT_SIGN_IN = True
    settings.ACCOUNT_LOGIN_BY_CODE_ENABLED = True
    settings.ROOT_URLCONF = "tests.support.dev_sign_in_urls"
    return settings


def fill_card(walk: Walk, page, number: str) -> None:
    page.fill("#id_number", number)
    page.fill("#id_expiry", "12 / 34")
    page.fill("#id_cvc", "123")
    walk.submit(page, "#demo-card-form")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("language", LANGUAGES)
def test_a_new_user_walks_the_seed_flows_on_the_demo(
    demo_sign_in, browser, live_server, mailoutbox, language
):
    n = next(_walks)
    vat_rates_seed()  # loaded by a migration, and emptied by the transactional tests before
    tenant = make_tenant(f"Walk Reseller {n}")
    tenant.reseller.language = language
    tenant.reseller.save(update_fields=["language"])
    tenant.owner.language = language
    tenant.owner.save(update_fields=["language"])
    product = Product.objects.create(name="Shared Contacts", sku=f"shared-contacts-{n}")
    plan = Plan.objects.create(product=product, kind=Plan.Kind.FLEXIBLE, max_licences=500)
    PlanPrice.objects.create(plan=plan, currency="EUR", monthly_price=Decimal("4.00"))
    # A team customer of another reseller, whose administrator made a transfer token for ours.
    other = make_tenant(f"Other Reseller {n}")
    team = CustomerFactory(
        reseller=other.reseller, customer_type=Customer.Type.TEAM, domain="", country="ES"
    )
    team_admin = UserFactory()
    CustomerMember.objects.create(customer=team, user=team_admin, terms_accepted_at=timezone.now())
    transfer_token = customer_services.transfer_token_create(
        customer=team, user=team_admin, reseller_public_id=tenant.reseller.public_id
    )

    walk = Walk(browser, live_server, language)
    reseller = walk.page(tenant.owner)

    # 1. The reseller saves its card on the demo's card page.
    walk.goto(reseller, reverse("payments:card_change"))
    fill_card(walk, reseller, "4242 4242 4242 4242")
    assert urlsplit(reseller.url).path == reverse("payments:card")
    assert PaymentCard.objects.get(reseller=tenant.reseller).last4 == "4242"

    # 2. A never-seen customer: created, invited by email.
    contact = f"new.contact{n}@walk{n}.example"
    walk.goto(reseller, reverse("customers:create"))
    reseller.fill("#id_contact_name", "Nora Nieuw")
    reseller.fill("#id_contact_email", contact)
    reseller.fill("#id_domain", f"walk{n}.example")
    reseller.fill("#id_organisation", f"Walk Customer {n}")
    reseller.select_option("#id_country", "ES")
    walk.submit(reseller, "form.card")
    customer = Customer.objects.get(contact_email=contact)
    assert urlsplit(reseller.url).path == reverse("customers:detail", args=[customer.public_id])

    # 3. Its contact opens the link in the email, signs in with a code, and accepts.
    invitee = walk.page()
    walk.goto(invitee, link_in_mail(contact, prefix("customer_side:invitation")))
    invitation_path = urlsplit(invitee.url).path
    with invitee.expect_navigation():
        invitee.locator(f"a[href^='{reverse('account_login')}']").click()
    walk.check(invitee)
    with invitee.expect_navigation():
        invitee.locator(f"a[href^='{reverse('account_request_login_code')}']").click()
    walk.check(invitee)
    invitee.fill("input[name=email]", contact)
    walk.submit(invitee, "main form")
    invitee.fill("input[name=code]", code_in_mail(contact))
    walk.submit(invitee, "main form")
    assert urlsplit(invitee.url).path == invitation_path
    invitee.check("input[name=terms]")
    walk.submit(invitee, "main form")
    customer.refresh_from_db()
    assert customer.status == Customer.Status.ACTIVE

    # 4. The reseller buys, paid with its card; the nightly run invoices and charges it.
    walk.goto(reseller, reverse("subscriptions:buy", args=[customer.public_id]))
    reseller.check(f"input[name=plan][value='{plan.public_id}']")
    reseller.fill("input[name=licences]", "5")
    reseller.wait_for_selector("#due-now")
    reseller.check("input[name=payer][value='reseller_card']")
    walk.check(reseller)
    walk.submit(reseller, "form.card")
    subscription = Subscription.objects.get(customer=customer)
    billing_services.billing_run(day=timezone.localdate())
    invoice = Invoice.objects.get(customer=customer)
    assert invoice.status == Invoice.Status.PAID
    walk.goto(reseller, reverse("billing:invoice_detail", args=[invoice.public_id]))

    # 5. It asks the customer to pay with the customer's card.
    walk.goto(reseller, reverse("subscriptions:detail", args=[subscription.public_id]))
    walk.goto(reseller, reverse("payments:subscription_payer", args=[subscription.public_id]))
    reseller.check("input[name=use_customer_card]")
    walk.submit(reseller, "#payer form")

    # 6. The customer adds a card from the consent link and agrees.
    consent_path = link_in_mail(contact, prefix("payments:card_consent"))
    walk.goto(invitee, consent_path)
    with invitee.expect_navigation():
        invitee.locator("#consent a.button").first.click()
    walk.check(invitee)
    fill_card(walk, invitee, "5555 5555 5555 4444")
    assert urlsplit(invitee.url).path == consent_path
    walk.submit(invitee, "#consent form")
    subscription.refresh_from_db()
    assert subscription.payer == Payer.CUSTOMER_CARD

    # 7. Then changes the card, to one that asks the cardholder to authenticate.
    walk.goto(invitee, reverse("my_payments:card", args=[customer.public_id]))
    walk.goto(invitee, reverse("my_payments:card_change", args=[customer.public_id]))
    fill_card(walk, invitee, "4000 0025 0000 3155")
    assert invitee.locator("#demo-authentication").is_visible()
    with invitee.expect_navigation():
        invitee.locator("button[name=authenticate][value=complete]").click()
    walk.check(invitee)
    assert PaymentCard.objects.get(customer=customer).last4 == "3155"
    walk.goto(invitee, reverse("customer_side:organisation", args=[customer.public_id]))

    # 8. The reseller imports the team customer with its customer ID and transfer token.
    walk.goto(reseller, reverse("customers:import"))
    reseller.check("input[name=customer_type][value='team']")
    reseller.fill("#id_customer_id", team.public_id)
    reseller.fill("#id_token", transfer_token)
    walk.submit(reseller, "form.card")
    imported = Customer.objects.get(reseller=tenant.reseller, customer_type=Customer.Type.TEAM)
    assert imported.organisation == team.organisation
    walk.goto(reseller, reverse("customers:list"))
    walk.goto(reseller, reverse("dashboard"))

    assert not walk.problems, "\n".join(walk.problems)


def test_the_walk_sees_english_left_and_raw_values():
    """The walk's checks can fail: English the catalogue translates, and raw codes and times."""
    assert leftover_english("Cobros\nPayment card\nSave card:", "es") == [
        "Payment card",
        "Save card:",
    ]
    assert "Your card was declined." not in leftover_english("Tu tarjeta fue rechazada.", "es")
    assert raw_values("Pagado con reseller_card el 2026-12-06T10:00 (ana_b@x.es)") == [
        "reseller_card",
        "2026-12-06T10:00",
    ]
