"""Google sign-in, driven through allauth's real views with Google answered in-process,
team invitations accepted (or refused) through it, and the staff flow into the admin."""

import secrets
from collections.abc import Iterator
from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import (
    TOTP,
    format_hotp_value,
    generate_totp_secret,
    hotp_value,
    yield_hotp_counters_from_time,
)
from allauth.socialaccount.models import SocialAccount
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from core.models import User
from resellers import services
from resellers.models import AuditEvent, Membership, TeamInvitation
from resellers.roles import Role
from tests.factories import TeamInvitationFactory, UserFactory
from tests.support.fake_google import (
    LOGIN_URL,
    FakeGoogle,
    GoogleIdentity,
    form_action,
    signed_in_user_id,
)
from tests.support.sessions import client_signed_in


@pytest.fixture
def google(monkeypatch) -> Iterator[FakeGoogle]:
    fake = FakeGoogle().install(monkeypatch)
    yield fake
    assert fake.unexpected == [], f"unexpected outgoing requests: {fake.unexpected}"


def join_url(token: str) -> str:
    return reverse("resellers:join", kwargs={"token": token})


def db_snapshot(invitation: TeamInvitation | None = None) -> dict:
    snapshot = {
        "users": User.objects.count(),
        "memberships": sorted(Membership.objects.values_list("reseller_id", "user_id", "role")),
        "audit": AuditEvent.objects.count(),
        "invitations": TeamInvitation.objects.count(),
    }
    if invitation is not None:
        invitation = TeamInvitation.objects.get(pk=invitation.pk)
        snapshot["invitation"] = (
            invitation.consumed_at,
            invitation.withdrawn_at,
            invitation.accepted_by_id,
            invitation.token_hash,
        )
    return snapshot


# --- Sign-in --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_new_verified_google_user_is_created_signed_in_and_asked_to_become_a_partner(google):
    client = Client()

    callback = google.sign_in(client, GoogleIdentity("new.partner@example.com", locale="fr"))

    assert callback.status_code == 302
    user = User.objects.get(email="new.partner@example.com")
    assert signed_in_user_id(client) == str(user.pk)
    assert user.first_name == "Pat"
    assert user.language == "fr"
    assert not user.has_usable_password()
    assert EmailAddress.objects.filter(user=user, email=user.email, verified=True).exists()
    assert SocialAccount.objects.filter(user=user, provider="google").exists()
    # Exactly one call left the process: the code-for-token exchange.
    assert [(method, url) for method, url, _ in google.calls] == [
        ("POST", "https://oauth2.googleapis.com/token")
    ]

    landing = client.get(callback["Location"], follow=True)
    assert landing.redirect_chain[-1][0] == reverse("resellers:apply")
    assert landing.status_code == 200
    assert "Become a partner" in landing.content.decode()


@pytest.mark.django_db
def test_google_account_with_unverified_email_is_refused(google):
    client = Client()

    response = google.sign_in(client, GoogleIdentity("unverified@example.com", verified=False))

    assert response.status_code == 403
    content = response.content.decode()
    assert "email is not verified" in content
    assert "Verify the address with Google" in content
    assert signed_in_user_id(client) is None
    assert not User.objects.filter(email__iexact="unverified@example.com").exists()
    assert not EmailAddress.objects.filter(email__iexact="unverified@example.com").exists()
    assert not SocialAccount.objects.exists()
    # Nothing behind the sign-in opens either.
    assert client.get(reverse("resellers:apply"))["Location"].startswith(reverse("account_login"))


@pytest.mark.django_db
def test_unverified_google_account_cannot_take_over_an_existing_user(google, tenant):
    client = Client()

    response = google.sign_in(client, GoogleIdentity(tenant.owner.email, verified=False))

    assert response.status_code == 403
    assert signed_in_user_id(client) is None
    assert not SocialAccount.objects.filter(user=tenant.owner).exists()


@pytest.mark.django_db
def test_member_of_an_active_reseller_lands_on_the_dashboard(google, tenant, other_tenant):
    client = Client()
    users_before = User.objects.count()

    callback = google.sign_in(client, GoogleIdentity(tenant.owner.email.upper()))

    assert callback.status_code == 302
    assert signed_in_user_id(client) == str(tenant.owner.pk)
    assert User.objects.count() == users_before
    assert SocialAccount.objects.get(provider="google").user == tenant.owner
    landing = client.get(callback["Location"], follow=True)
    assert landing.redirect_chain[-1][0] == reverse("dashboard")
    assert landing.status_code == 200
    content = landing.content.decode()
    assert tenant.reseller.name in content
    assert other_tenant.reseller.name not in content


@pytest.mark.django_db
def test_sign_in_with_next_returns_to_that_page(google, tenant):
    client = Client()

    callback = google.sign_in(client, GoogleIdentity(tenant.owner.email), next_url="/team/")

    assert callback.status_code == 302
    assert callback["Location"] == "/team/"


@pytest.mark.django_db
def test_sign_in_refuses_a_next_url_on_another_site(google, tenant):
    client = Client()

    callback = google.sign_in(
        client, GoogleIdentity(tenant.owner.email), next_url="https://evil.example/steal"
    )

    assert signed_in_user_id(client) == str(tenant.owner.pk)
    assert "evil.example" not in callback.get("Location", "")


# --- Team invitations -----------------------------------------------------------------------


@pytest.mark.django_db
def test_invitation_accepted_with_the_invited_google_account(google, tenant):
    invitation, token = TeamInvitationFactory.create_with_token(
        reseller=tenant.reseller,
        email="new.hire@example.com",
        role=Role.BILLING,
        invited_by=tenant.owner,
    )
    client = Client()

    page = client.get(join_url(token))

    assert page.status_code == 200
    content = page.content.decode()
    assert tenant.reseller.name in content
    assert "new.hire@example.com" in content
    assert "Sign in with Google" in content
    sign_in_action = form_action(content, LOGIN_URL)

    callback = google.sign_in(
        client, GoogleIdentity("new.hire@example.com"), login_url=sign_in_action
    )

    assert callback.status_code == 302
    assert callback["Location"] == join_url(token)
    user = User.objects.get(email="new.hire@example.com")
    assert signed_in_user_id(client) == str(user.pk)
    confirm = client.get(join_url(token))
    assert confirm.status_code == 200
    assert "Accept and join" in confirm.content.decode()
    assert not Membership.objects.filter(user=user).exists()  # a GET changes nothing

    accepted = client.post(join_url(token))

    assert accepted.status_code == 302
    membership = Membership.objects.get(user=user)
    assert membership.reseller == tenant.reseller
    assert membership.role == Role.BILLING
    invitation.refresh_from_db()
    assert invitation.consumed_at is not None
    assert invitation.state == "used"
    assert invitation.accepted_by == user
    event = AuditEvent.objects.get(action="team_invitation.accepted")
    assert event.actor == user
    assert event.reseller == tenant.reseller
    assert event.after is not None
    assert event.after["role"] == Role.BILLING
    landing = client.get(accepted["Location"], follow=True)
    assert landing.redirect_chain[-1][0] == reverse("dashboard")


@pytest.mark.django_db
def test_invitation_opened_with_another_google_account_is_refused_and_stays_valid(google, tenant):
    invitation, token = TeamInvitationFactory.create_with_token(
        reseller=tenant.reseller,
        email="Pat@Example.com",
        role=Role.SALES,
        invited_by=tenant.owner,
    )
    wrong = Client()
    google.sign_in(wrong, GoogleIdentity("someone.else@example.com"), next_url=join_url(token))
    intruder = User.objects.get(email="someone.else@example.com")
    assert signed_in_user_id(wrong) == str(intruder.pk)
    before = db_snapshot(invitation)

    page = wrong.get(join_url(token))
    attempt = wrong.post(join_url(token))

    for response in (page, attempt):
        assert response.status_code == 403
        content = response.content.decode()
        assert "This invitation is for another account" in content
        assert "Pat@Example.com" in content
        assert "someone.else@example.com" in content
        assert "Accept and join" not in content
    assert db_snapshot(invitation) == before
    assert not Membership.objects.filter(user=intruder).exists()
    invitation.refresh_from_db()
    assert invitation.state == "valid"
    assert invitation.consumed_at is None
    assert invitation.accepted_by is None

    # The invited person (Google reports the address in lower case) can still accept it.
    right = Client()
    google.sign_in(right, GoogleIdentity("pat@example.com"), next_url=join_url(token))
    invitee = User.objects.get(email__iexact="pat@example.com")
    assert right.get(join_url(token)).status_code == 200

    accepted = right.post(join_url(token))

    assert accepted.status_code == 302
    assert Membership.objects.get(user=invitee).role == Role.SALES
    invitation.refresh_from_db()
    assert invitation.state == "used"
    assert invitation.accepted_by == invitee
    assert not Membership.objects.filter(user=intruder).exists()


@pytest.mark.django_db
def test_unverified_address_of_the_invited_email_does_not_count(tenant, client_for):
    """Holding the invited address unverified (e.g. typed in, never confirmed) is not enough."""
    invitation, token = TeamInvitationFactory.create_with_token(
        reseller=tenant.reseller, email="claims@example.com"
    )
    user = UserFactory(email="claims@example.com")
    EmailAddress.objects.filter(user=user).update(verified=False)
    client = client_for(user)

    response = client.post(join_url(token))

    assert response.status_code == 403
    assert not Membership.objects.filter(user=user).exists()
    invitation.refresh_from_db()
    assert invitation.state == "valid"


def _invited(tenant, **kwargs):
    return TeamInvitationFactory.create_with_token(
        reseller=tenant.reseller,
        email="late@example.com",
        role=Role.ADMIN,
        invited_by=tenant.owner,
        **kwargs,
    )


@pytest.mark.django_db
def test_expired_invitation_link(tenant, client_for):
    invitation, token = _invited(tenant, expires_at=timezone.now() - timedelta(minutes=1))
    invitee = UserFactory(email="late@example.com")
    before = db_snapshot(invitation)

    anonymous = Client().get(join_url(token))
    signed_in = client_for(invitee)
    page = signed_in.get(join_url(token))
    attempt = signed_in.post(join_url(token))

    for response in (anonymous, page, attempt):
        assert response.status_code == 410
        assert "This invitation has expired" in response.content.decode()
        assert tenant.reseller.name in response.content.decode()
    assert db_snapshot(invitation) == before
    assert not Membership.objects.filter(user=invitee).exists()


@pytest.mark.django_db
def test_reused_invitation_link(tenant, client_for):
    invitation, token = _invited(tenant)
    invitee = UserFactory(email="late@example.com")
    first = client_for(invitee).post(join_url(token))
    assert first.status_code == 302
    assert Membership.objects.filter(user=invitee, role=Role.ADMIN).count() == 1
    stranger = UserFactory()
    before = db_snapshot(invitation)

    for client in (Client(), client_for(invitee), client_for(stranger)):
        for response in (client.get(join_url(token)), client.post(join_url(token))):
            assert response.status_code == 410
            assert "This invitation was already used" in response.content.decode()

    assert db_snapshot(invitation) == before


@pytest.mark.django_db
def test_withdrawn_invitation_link(tenant, client_for):
    invitation, token = _invited(tenant)
    owner_membership = Membership.objects.get(user=tenant.owner)
    services.team_invitation_withdraw(membership=owner_membership, invitation=invitation)
    invitee = UserFactory(email="late@example.com")
    before = db_snapshot(invitation)

    for client in (Client(), client_for(invitee)):
        for response in (client.get(join_url(token)), client.post(join_url(token))):
            assert response.status_code == 410
            assert "This invitation was withdrawn" in response.content.decode()

    assert db_snapshot(invitation) == before
    assert not Membership.objects.filter(user=invitee).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "token",
    [
        "not-a-token",
        secrets.token_urlsafe(32),  # well-formed, never issued
        "x" * 300,
    ],
    ids=["malformed", "unknown", "overlong"],
)
def test_unknown_invitation_link_is_a_404(tenant, client_for, token):
    invitation, _real_token = _invited(tenant)
    invitee = UserFactory(email="late@example.com")
    before = db_snapshot(invitation)

    for client in (Client(), client_for(invitee)):
        for response in (client.get(join_url(token)), client.post(join_url(token))):
            assert response.status_code == 404
            assert "This invitation link is not valid" in response.content.decode()

    assert db_snapshot(invitation) == before


@pytest.mark.django_db
def test_accepting_without_csrf_token_is_refused(tenant):
    invitation, token = _invited(tenant)
    invitee = UserFactory(email="late@example.com")
    client = client_signed_in(invitee, enforce_csrf_checks=True)

    forged = client.post(join_url(token))

    assert forged.status_code == 403
    assert "403_csrf.html" in [template.name for template in forged.templates]
    assert not Membership.objects.filter(user=invitee).exists()
    invitation.refresh_from_db()
    assert invitation.state == "valid"

    # The same request with the page's token goes through: the 403 above was the CSRF check.
    page = client.get(join_url(token))
    csrf_token = page.context["csrf_token"]
    accepted = client.post(join_url(token), {"csrfmiddlewaretoken": str(csrf_token)})
    assert accepted.status_code == 302
    assert Membership.objects.filter(user=invitee, role=Role.ADMIN).exists()


# --- Staff and the admin --------------------------------------------------------------------


def _staff(**kwargs) -> User:
    return UserFactory(is_staff=True, is_superuser=True, **kwargs)


@pytest.mark.django_db
def test_admin_sends_anonymous_visitors_to_the_allauth_sign_in():
    client = Client()

    response = client.get("/admin/", follow=True)

    final_path = response.redirect_chain[-1][0]
    assert final_path.startswith(reverse("account_login") + "?")
    assert "next=/admin/" in final_path.replace("%2F", "/")
    assert response.status_code == 200
    assert "Staff sign-in" in response.content.decode()
    # The admin's own password form is never offered.
    assert 'action="/admin/login/' not in response.content.decode()


@pytest.mark.django_db
def test_staff_without_totp_is_sent_to_set_it_up(settings):
    assert settings.ADMIN_REQUIRE_MFA is True
    client = client_signed_in(_staff())

    response = client.get("/admin/", follow=True)

    assert response.redirect_chain[-1][0] == reverse("mfa_activate_totp")
    assert response.status_code == 200
    assert client.get("/admin/core/user/").status_code == 302


@pytest.mark.django_db
def test_staff_with_totp_gets_into_the_admin():
    staff = _staff()
    TOTP.activate(staff, generate_totp_secret())
    assert Authenticator.objects.filter(user=staff, type=Authenticator.Type.TOTP).exists()
    client = client_signed_in(staff)

    response = client.get("/admin/")

    assert response.status_code == 200
    assert "Site administration" in response.content.decode()


@pytest.mark.django_db
def test_non_staff_member_cannot_use_the_admin(tenant, client_for):
    client = client_for(tenant.owner)

    response = client.get("/admin/", follow=True)

    assert response.status_code == 403
    assert "Site administration" not in response.content.decode()


@pytest.mark.django_db
def test_staff_password_sign_in_asks_for_the_second_factor():
    staff = _staff(email="staff@vendor.example")
    staff.set_password("a long staff passphrase")
    staff.save()
    secret = generate_totp_secret()
    TOTP.activate(staff, secret)
    client = Client()

    first = client.post(
        reverse("account_login"),
        {"login": "staff@vendor.example", "password": "a long staff passphrase", "next": "/admin/"},
    )

    assert first.status_code == 302
    assert first["Location"].startswith(reverse("mfa_authenticate"))
    assert signed_in_user_id(client) is None
    assert client.get("/admin/").status_code == 302

    code = format_hotp_value(hotp_value(secret, next(yield_hotp_counters_from_time())))
    second = client.post(reverse("mfa_authenticate"), {"code": code})

    assert second.status_code == 302
    assert second["Location"] == "/admin/"
    assert signed_in_user_id(client) == str(staff.pk)
    assert client.get("/admin/").status_code == 200


@pytest.mark.django_db
def test_sign_in_page_sends_no_email_code_outside_development(settings, tenant, mailoutbox):
    """Only Google (and the staff password form) sign people in; an email alone gets no code."""
    assert settings.DEVELOPMENT_SIGN_IN is False
    client = Client()

    page = client.get(reverse("account_login") + "?next=/admin/")
    response = client.post(reverse("account_login"), {"login": tenant.owner.email})

    assert 'name="password"' in page.content.decode()
    assert mailoutbox == []
    assert not response.get("Location", "").startswith(reverse("account_confirm_login_code"))
    assert signed_in_user_id(client) is None
