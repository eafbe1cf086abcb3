"""A never-seen invitee signs in and accepts (issue 13, "A brand-new invitee cannot accept").

Sign-up is closed, except for the address of an open invitation whose link this browser
opened: that address can sign in with the development sign-in code (DEBUG only) or with
Google, land back on the invitation and accept it. Any other address is answered as before:
no account, no code, the same pages.
"""

import itertools
import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from core.models import User
from customers.models import Customer, CustomerInvitation, CustomerMember
from resellers.models import Membership
from resellers.roles import Role
from tests.factories import CustomerFactory, TeamInvitationFactory
from tests.support.fake_google import FakeGoogle, GoogleIdentity, form_action, signed_in_user_id

KINDS = ["team", "customer"]
_addresses = itertools.count(1)
_people = itertools.count(1)


def fresh_client() -> Client:
    """A client from its own address: allauth's per-IP limits of one test never reach the next."""
    n = next(_addresses)
    return Client(REMOTE_ADDR=f"10.13.{n // 250}.{n % 250 + 1}")


@pytest.fixture
def invited() -> str:
    """A never-seen address, new in every test: allauth limits the codes per address."""
    return f"New.Person{next(_people)}@Example.com"


@pytest.fixture
def stranger() -> str:
    return f"never.invited{next(_people)}@example.com"


@pytest.fixture
def development_sign_in(settings):
    settings.DEVELOPMENT_SIGN_IN = True
    settings.ACCOUNT_LOGIN_BY_CODE_ENABLED = True
    settings.ROOT_URLCONF = "tests.support.dev_sign_in_urls"


@pytest.fixture
def google(monkeypatch) -> Iterator[FakeGoogle]:
    fake = FakeGoogle().install(monkeypatch)
    yield fake
    assert fake.unexpected == [], f"unexpected outgoing requests: {fake.unexpected}"


def invite(kind: str, tenant, email: str):
    """An open invitation of `kind` to `email`; returns it and its link."""
    if kind == "team":
        invitation, token = TeamInvitationFactory.create_with_token(
            reseller=tenant.reseller, email=email, role=Role.SALES, invited_by=tenant.owner
        )
        return invitation, reverse("resellers:join", kwargs={"token": token})
    customer = CustomerFactory(
        reseller=tenant.reseller, status=Customer.Status.INVITED, contact_email=email
    )
    sent = CustomerInvitation(customer=customer, email=email, invited_by=tenant.owner)
    token = sent.renew_token()
    sent.save()
    return sent, reverse("customer_side:invitation", kwargs={"token": token})


def accept(client: Client, kind: str, url: str):
    return client.post(url, {"terms": "on"} if kind == "customer" else {})


def assert_accepted(kind: str, invitation, user: User) -> None:
    invitation.refresh_from_db()
    assert invitation.state == "used"
    assert invitation.accepted_by == user
    if kind == "team":
        assert Membership.objects.get(user=user).reseller == invitation.reseller
    else:
        assert CustomerMember.objects.get(user=user).customer == invitation.customer
        invitation.customer.refresh_from_db()
        assert invitation.customer.status == Customer.Status.ACTIVE


def link(content: str, starts_with: str) -> str:
    """The (unescaped) href of the first link in the page that starts with `starts_with`."""
    for href in re.findall(r'href="([^"]*)"', content):
        href = href.replace("&amp;", "&")
        if href.startswith(starts_with):
            return href
    raise AssertionError(f"no link to {starts_with!r} in the page")


def page_without_secrets(response) -> str:
    """The page, its per-request nonce and CSRF token blanked out."""
    content = response.content.decode()
    content = re.sub(r'nonce="[^"]*"', 'nonce=""', content)
    return re.sub(r'"X-CSRFToken": "[^"]*"|name="csrfmiddlewaretoken" value="[^"]*"', "", content)


def code_in(mail) -> str:
    found = re.search(r"^\s*([A-Z0-9]{4}-[A-Z0-9]{4})\s*$", mail.body, re.MULTILINE)
    assert found, mail.body
    return found.group(1)


def request_code(client: Client, email: str, next_url: str | None = None):
    url = reverse("account_request_login_code")
    if next_url:
        url += "?next=" + next_url
    return client.post(url, {"email": email})


# --- Development sign-in (one-time code) ---------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("kind", KINDS)
def test_never_seen_invitee_signs_in_by_code_through_the_link_and_accepts(
    development_sign_in, tenant, invited, mailoutbox, kind
):
    invitation, url = invite(kind, tenant, invited)
    client = fresh_client()

    # The invitation page → the sign-in page → "Send me a sign-in code" → the code page.
    page = client.get(url)
    assert page.status_code == 200
    sign_in = client.get(link(page.content.decode(), reverse("account_login")))
    code_page = link(sign_in.content.decode(), reverse("account_request_login_code"))
    requested = client.post(code_page, {"email": invited.lower()})

    assert requested.status_code == 302
    assert requested["Location"].startswith(reverse("account_confirm_login_code"))
    (mail,) = mailoutbox
    assert mail.to == [invited.lower()]
    confirmed = client.post(requested["Location"], {"code": code_in(mail)})

    assert confirmed.status_code == 302
    assert confirmed["Location"] == url
    user = User.objects.get(email__iexact=invited)
    assert signed_in_user_id(client) == str(user.pk)
    assert not user.has_usable_password()
    assert not user.is_staff
    assert EmailAddress.objects.get(user=user).verified  # entering the code proved it
    assert client.get(url).status_code == 200

    accepted = accept(client, kind, url)

    assert accepted.status_code == 302
    assert_accepted(kind, invitation, user)


@pytest.mark.django_db
@pytest.mark.parametrize("kind", KINDS)
def test_invited_address_without_the_link_gets_no_account_and_no_code(
    development_sign_in, tenant, invited, mailoutbox, kind
):
    """The link is the proof of the invitation: typing the invited address is not enough."""
    _, url = invite(kind, tenant, invited)
    client = fresh_client()

    requested = request_code(client, invited, next_url=url)

    assert requested.status_code == 302
    assert requested["Location"].startswith(reverse("account_confirm_login_code"))
    assert mailoutbox == []
    assert not User.objects.filter(email__iexact=invited).exists()
    assert signed_in_user_id(client) is None


@pytest.mark.django_db
def test_uninvited_address_gets_the_same_answer_no_account_and_no_code(
    development_sign_in, tenant, invited, stranger, mailoutbox
):
    """An address that is not the invited one is answered exactly as the invited one, even in
    the browser that opened an invitation link."""
    _, url = invite("team", tenant, invited)
    invited_client, stranger_client = fresh_client(), fresh_client()
    invited_client.get(url)
    stranger_client.get(url)
    users_before = User.objects.count()

    refused = request_code(stranger_client, stranger, next_url=url)
    refused_page = stranger_client.get(refused["Location"])
    sent = request_code(invited_client, invited, next_url=url)
    sent_page = invited_client.get(sent["Location"])

    assert refused.status_code == sent.status_code == 302
    assert refused["Location"] == sent["Location"]
    assert refused_page.status_code == sent_page.status_code == 200
    assert page_without_secrets(refused_page).replace(stranger, invited.lower()) == (
        page_without_secrets(sent_page)
    )
    assert [mail.to for mail in mailoutbox] == [[invited.lower()]]
    assert User.objects.count() == users_before + 1
    assert not User.objects.filter(email__iexact=stranger).exists()
    assert not EmailAddress.objects.filter(email__iexact=stranger).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("ended", ["withdrawn", "expired", "used"])
def test_a_link_opened_before_the_invitation_ended_opens_nothing(
    development_sign_in, tenant, invited, mailoutbox, ended
):
    invitation, url = invite("team", tenant, invited)
    client = fresh_client()
    client.get(url)
    now = timezone.now()
    field = {"withdrawn": "withdrawn_at", "expired": "expires_at", "used": "consumed_at"}[ended]
    type(invitation).objects.filter(pk=invitation.pk).update(**{field: now - timedelta(seconds=1)})

    requested = request_code(client, invited, next_url=url)

    assert requested.status_code == 302
    assert mailoutbox == []
    assert not User.objects.filter(email__iexact=invited).exists()


@pytest.mark.django_db
def test_the_password_sign_up_stays_closed_for_the_invitee(development_sign_in, tenant, invited):
    _, url = invite("team", tenant, invited)
    client = fresh_client()
    client.get(url)

    page = client.get(reverse("account_signup"))
    attempt = client.post(
        reverse("account_signup"), {"email": invited, "password1": "a long passphrase 12345"}
    )

    assert 'name="password1"' not in page.content.decode()
    assert attempt.status_code != 302
    assert not User.objects.filter(email__iexact=invited).exists()


# --- Google --------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("kind", KINDS)
def test_never_seen_invitee_signs_in_with_google_through_the_link_and_accepts(
    google, tenant, invited, kind
):
    invitation, url = invite(kind, tenant, invited)
    client = fresh_client()

    page = client.get(url)
    callback = google.sign_in(
        client,
        GoogleIdentity(invited.lower()),
        login_url=form_action(page.content.decode(), "/accounts/google/login/"),
    )

    assert callback.status_code == 302
    assert callback["Location"] == url
    user = User.objects.get(email__iexact=invited)
    assert signed_in_user_id(client) == str(user.pk)
    assert not user.has_usable_password()
    accepted = accept(client, kind, url)

    assert accepted.status_code == 302
    assert_accepted(kind, invitation, user)


@pytest.mark.django_db
@pytest.mark.parametrize("kind", KINDS)
def test_another_google_account_cannot_accept_and_the_invitation_stays_open(
    google, tenant, invited, stranger, kind
):
    """A Google account of another address may sign up (to apply as a partner), never accept."""
    invitation, url = invite(kind, tenant, invited)
    client = fresh_client()
    page = client.get(url)
    google.sign_in(
        client,
        GoogleIdentity(stranger),
        login_url=form_action(page.content.decode(), "/accounts/google/login/"),
    )

    attempt = accept(client, kind, url)

    assert attempt.status_code == 403
    invitation.refresh_from_db()
    assert invitation.state == "valid"
    intruder = User.objects.get(email=stranger)
    assert not Membership.objects.filter(user=intruder).exists()
    assert not CustomerMember.objects.filter(user=intruder).exists()
