"""Passwords are for vendor staff only (issue 11, "Resellers can get a password").

Resellers and customers sign in with Google (or the development sign-in code in DEBUG). A
password is never a way in for them: sign-in, reset, set and change refuse them, the sign-in
and reset pages answering exactly as they answer for an address nobody has.
"""

import importlib
import itertools
import re

import pytest
from allauth.account.forms import default_token_generator
from allauth.account.utils import user_pk_to_url_str
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.apps import apps
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from core.models import User
from customers.models import CustomerMember
from tests.factories import MembershipFactory, UserFactory
from tests.support.fake_google import form_action, signed_in_user_id

PASSWORD = "a long passphrase nobody guesses"
NEW_PASSWORD = "another long passphrase 2"
UNKNOWN_EMAIL = "nobody.here@example.com"
_addresses = itertools.count(1)


def fresh_client() -> Client:
    """A client from its own address: allauth's per-IP limits of one test never reach the next."""
    n = next(_addresses)
    return Client(REMOTE_ADDR=f"10.11.{n // 250}.{n % 250 + 1}")


def with_password(user: User) -> User:
    """The account the finding is about: a Google user who got a password somehow."""
    user.set_password(PASSWORD)
    user.save()
    return user


def reseller_member(tenant) -> User:
    return MembershipFactory(reseller=tenant.reseller).user


def customer_admin(tenant) -> User:
    user = UserFactory()
    CustomerMember.objects.create(
        customer=tenant.customer, user=user, terms_accepted_at=timezone.now()
    )
    return user


NON_STAFF = [
    pytest.param(reseller_member, id="reseller-member"),
    pytest.param(customer_admin, id="customer-admin"),
]


def staff_with_totp() -> User:
    staff = with_password(UserFactory(is_staff=True))
    TOTP.activate(staff, generate_totp_secret())
    return staff


def comparable(response, email: str) -> str:
    """The page with what differs per request (the typed address, tokens, nonces) taken out."""
    content = response.content.decode().replace(email, "EMAIL")
    content = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "CSRF", content)
    content = re.sub(r'nonce="[^"]*"', "NONCE", content)
    return re.sub(r'"csrfToken": "[^"]*"|"X-CSRFToken": "[^"]*"', "CSRF", content)


def sign_in(client: Client, email: str, next_url: str = "/admin/"):
    return client.post(
        reverse("account_login"), {"login": email, "password": PASSWORD, "next": next_url}
    )


# --- Password sign-in ----------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("make_user", NON_STAFF)
@pytest.mark.parametrize("next_url", ["/admin/", "/dashboard/"])
def test_non_staff_password_does_not_sign_in(tenant, other_tenant, make_user, next_url):
    user = with_password(make_user(tenant))
    client = fresh_client()

    response = sign_in(client, user.email, next_url)
    unknown = sign_in(fresh_client(), UNKNOWN_EMAIL, next_url)

    assert signed_in_user_id(client) is None
    assert response.status_code == unknown.status_code == 200
    assert response.context["form"].errors == unknown.context["form"].errors
    assert comparable(response, user.email) == comparable(unknown, UNKNOWN_EMAIL)
    assert client.get(reverse("dashboard")).status_code == 302


@pytest.mark.django_db
@pytest.mark.parametrize("make_user", NON_STAFF)
def test_non_staff_password_does_not_sign_in_from_the_admin_login(tenant, make_user):
    user = with_password(make_user(tenant))
    client = fresh_client()

    page = client.get("/admin/login/?next=/admin/", follow=True)
    response = client.post(
        form_action(page.content.decode(), reverse("account_login")),
        {"login": user.email, "password": PASSWORD, "next": "/admin/"},
    )

    assert page.redirect_chain[-1][0].startswith(reverse("account_login"))
    assert response.status_code == 200
    assert signed_in_user_id(client) is None
    assert client.get("/admin/").status_code == 302


@pytest.mark.django_db
def test_staff_password_sign_in_from_the_admin_login_still_asks_for_the_second_factor():
    staff = staff_with_totp()
    client = fresh_client()

    page = client.get("/admin/login/?next=/admin/", follow=True)
    response = client.post(
        form_action(page.content.decode(), reverse("account_login")),
        {"login": staff.email, "password": PASSWORD, "next": "/admin/"},
    )

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("mfa_authenticate"))
    assert signed_in_user_id(client) is None


@pytest.mark.django_db
@pytest.mark.parametrize("make_user", NON_STAFF)
def test_development_sign_in_code_still_signs_resellers_and_customers_in(
    settings, tenant, mailoutbox, make_user
):
    settings.DEVELOPMENT_SIGN_IN = True
    settings.ACCOUNT_LOGIN_BY_CODE_ENABLED = True
    settings.ROOT_URLCONF = "tests.support.dev_sign_in_urls"
    user = make_user(tenant)
    client = fresh_client()

    requested = client.post(reverse("account_request_login_code"), {"email": user.email})
    (message,) = mailoutbox
    code = re.search(r"^\s*([A-Z0-9]{4}-[A-Z0-9]{4})\s*$", message.body, re.MULTILINE)
    assert code, message.body
    confirmed = client.post(reverse("account_confirm_login_code"), {"code": code.group(1)})

    assert requested.status_code == 302
    assert confirmed.status_code == 302
    assert signed_in_user_id(client) == str(user.pk)


# --- Password reset ------------------------------------------------------------------------


def request_reset(client: Client, email: str):
    return client.post(reverse("account_reset_password"), {"email": email}, follow=True)


@pytest.mark.django_db
@pytest.mark.parametrize("make_user", NON_STAFF)
@pytest.mark.parametrize("has_password", [False, True], ids=["google-only", "with-password"])
def test_password_reset_sends_nothing_to_non_staff_and_answers_as_for_an_unknown_address(
    tenant, other_tenant, mailoutbox, make_user, has_password
):
    user = make_user(tenant)
    if has_password:
        with_password(user)

    response = request_reset(fresh_client(), user.email)
    unknown = request_reset(fresh_client(), UNKNOWN_EMAIL)

    assert mailoutbox == []
    assert response.redirect_chain == unknown.redirect_chain
    assert response.status_code == unknown.status_code == 200
    assert comparable(response, user.email) == comparable(unknown, UNKNOWN_EMAIL)
    assert "If a staff account exists for this address" in response.content.decode()


@pytest.mark.django_db
def test_staff_gets_a_reset_link_and_can_choose_a_new_password(mailoutbox):
    staff = staff_with_totp()
    client = fresh_client()

    response = request_reset(client, staff.email)
    (message,) = mailoutbox
    link = re.search(r"https?://[^/\s]+(/accounts/password/reset/key/\S+/)", message.body)
    assert link, message.body
    form = client.get(link.group(1), follow=True)
    done = client.post(
        form.redirect_chain[-1][0],
        {
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
        },
    )

    assert response.status_code == 200
    assert "If a staff account exists for this address" in response.content.decode()
    assert message.to == [staff.email]
    assert done.status_code == 302
    staff.refresh_from_db()
    assert staff.check_password(NEW_PASSWORD)


@pytest.mark.django_db
@pytest.mark.parametrize("make_user", NON_STAFF)
def test_reset_link_made_for_a_non_staff_account_is_refused(tenant, make_user):
    """A link sent before the fix (the token alone is valid) sets no password."""
    user = make_user(tenant)
    key = f"{user_pk_to_url_str(user)}-{default_token_generator.make_token(user)}"
    client = fresh_client()
    url = reverse("account_reset_password_from_key", kwargs={"uidb36": "UID", "key": "KEY"})
    url = url.replace("UID-KEY", key)

    page = client.get(url, follow=True)
    posted = client.post(
        page.redirect_chain[-1][0] if page.redirect_chain else url,
        {"password1": PASSWORD, "password2": PASSWORD},
    )

    assert page.status_code == 200
    assert page.context["token_fail"] is True
    assert posted.status_code == 200
    assert posted.context["token_fail"] is True
    user.refresh_from_db()
    assert not user.has_usable_password()
    assert signed_in_user_id(client) is None


# --- Password set and change ---------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("make_user", NON_STAFF)
def test_signed_in_non_staff_cannot_set_a_password(tenant, client_for, mailoutbox, make_user):
    user = make_user(tenant)
    client = client_for(user)

    page = client.get(reverse("account_set_password"))
    posted = client.post(
        reverse("account_set_password"), {"password1": PASSWORD, "password2": PASSWORD}
    )

    assert page.status_code == 200
    assert 'name="password1"' not in page.content.decode()
    assert posted.status_code == 403
    user.refresh_from_db()
    assert not user.has_usable_password()
    assert mailoutbox == []


@pytest.mark.django_db
@pytest.mark.parametrize("make_user", NON_STAFF)
def test_signed_in_non_staff_cannot_change_a_password_they_somehow_have(
    tenant, client_for, make_user
):
    user = with_password(make_user(tenant))
    client = client_for(user)

    page = client.get(reverse("account_change_password"))
    posted = client.post(
        reverse("account_change_password"),
        {
            "oldpassword": PASSWORD,
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
        },
    )

    assert page.status_code == 200
    assert 'name="password1"' not in page.content.decode()
    assert posted.status_code == 403
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    assert not user.check_password(NEW_PASSWORD)


@pytest.mark.django_db
def test_staff_can_still_change_their_password(client_for):
    staff = staff_with_totp()
    client = client_for(staff)

    page = client.get(reverse("account_change_password"))
    posted = client.post(
        reverse("account_change_password"),
        {
            "oldpassword": PASSWORD,
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
        },
    )

    assert 'name="password1"' in page.content.decode()
    assert posted.status_code == 302
    staff.refresh_from_db()
    assert staff.check_password(NEW_PASSWORD)


# --- Passwords non-staff already have ------------------------------------------------------


@pytest.mark.django_db
def test_migration_makes_non_staff_passwords_unusable(tenant):
    migration = importlib.import_module("core.migrations.0004_non_staff_unusable_passwords")
    member = with_password(reseller_member(tenant))
    admin = with_password(customer_admin(tenant))
    google_only = reseller_member(tenant)
    google_only_password = google_only.password
    staff = with_password(UserFactory(is_staff=True))

    migration.non_staff_passwords_unusable(apps, None)

    for user in (member, admin, google_only, staff):
        user.refresh_from_db()
    assert not member.has_usable_password()
    assert not admin.has_usable_password()
    # An account that never had a password keeps its value, and so its sessions.
    assert google_only.password == google_only_password
    assert staff.check_password(PASSWORD)


# --- Staff in the admin cannot give a reseller or a customer a password --------------------


@pytest.mark.django_db
@pytest.mark.parametrize("make_user", NON_STAFF)
def test_the_admin_cannot_set_a_non_staff_users_password(tenant, make_user, staff_client):
    user = make_user(tenant)
    url = f"/admin/core/user/{user.pk}/password/"
    client = staff_client
    assert client.get(url).status_code == 403
    response = client.post(url, {"password1": "N3w-passw0rd!x", "password2": "N3w-passw0rd!x"})
    assert response.status_code == 403
    user.refresh_from_db()
    assert not user.check_password("N3w-passw0rd!x")


@pytest.mark.django_db
def test_a_user_added_in_the_admin_has_a_password_only_as_staff(staff_client):
    client = staff_client
    add = reverse("admin:core_user_add")
    for email, is_staff in (("someone@example.com", False), ("colleague@example.com", True)):
        data = {"email": email, "password1": "N3w-passw0rd!x", "password2": "N3w-passw0rd!x"}
        if is_staff:
            data["is_staff"] = "on"
        response = client.post(add, data)
        assert response.status_code == 302, response.content.decode()[:2000]
        user = User.objects.get(email=email)
        assert user.has_usable_password() is is_staff
