import pytest
from django.core.exceptions import ValidationError

from core.models import OutboundEmail
from core.tokens import TokenState, token_digest
from resellers import services
from resellers.models import AuditEvent, Membership, TeamInvitation
from resellers.roles import Role
from tests.factories import member_of


def owner_membership(tenant):
    return Membership.objects.get(user=tenant.owner, reseller=tenant.reseller)


def test_owner_invites_a_teammate_by_email(
    owner_client, tenant, django_capture_on_commit_callbacks, mailoutbox
):
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post("/team/", {"email": "new.person@example.com", "role": "admin"})
    assert response.status_code == 302
    invitation = TeamInvitation.objects.get(reseller=tenant.reseller)
    assert (invitation.email, invitation.role, invitation.state) == (
        "new.person@example.com",
        Role.ADMIN,
        TokenState.VALID,
    )
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == ["new.person@example.com"]
    assert "/join/" in message.body
    assert message.alternatives and "/join/" in message.alternatives[0][0]
    raw = message.body.split("/join/")[1].split("/")[0]
    assert token_digest(raw) == invitation.token_hash  # only the digest is stored
    assert AuditEvent.objects.filter(
        action="team_invitation.sent", reseller=tenant.reseller
    ).exists()


def test_invite_form_errors_keep_input(owner_client, tenant):
    response = owner_client.post("/team/", {"email": "not-an-email", "role": "admin"})
    assert response.status_code == 400
    body = response.content.decode()
    assert 'value="not-an-email"' in body
    assert "Enter a valid email address." in body
    assert not TeamInvitation.objects.exists()


def test_inviting_a_member_again_is_refused(owner_client, tenant):
    response = owner_client.post("/team/", {"email": tenant.owner.email.upper(), "role": "sales"})
    assert response.status_code == 400
    assert "already in your team" in response.content.decode()


def test_resend_gives_a_new_link_and_kills_the_old_one(tenant, other_tenant):
    owner = owner_membership(tenant)
    invitation = services.team_invite(membership=owner, email="a@example.com", role=Role.SALES)
    old_hash = invitation.token_hash
    services.team_invitation_resend(membership=owner, invitation=invitation)
    invitation.refresh_from_db()
    assert invitation.token_hash != old_hash
    assert not TeamInvitation.objects.filter(token_hash=old_hash).exists()


def test_withdrawn_invitation_cannot_be_accepted(tenant, other_tenant):
    owner = owner_membership(tenant)
    invitation = services.team_invite(membership=owner, email="a@example.com", role=Role.SALES)
    services.team_invitation_withdraw(membership=owner, invitation=invitation)
    invitation.refresh_from_db()
    assert invitation.state == TokenState.WITHDRAWN


def test_owner_changes_role_and_it_is_audited(owner_client, tenant):
    sales = member_of(tenant.reseller, Role.SALES)
    response = owner_client.post(f"/team/members/{sales.public_id}/role/", {"role": "admin"})
    assert response.status_code == 302
    sales.refresh_from_db()
    assert sales.role == Role.ADMIN
    event = AuditEvent.objects.get(action="membership.role_changed")
    assert (event.before, event.after, event.actor) == (
        {"role": "sales"},
        {"role": "admin"},
        tenant.owner,
    )
    assert event.ip == "127.0.0.1"


def test_last_owner_cannot_be_demoted_or_removed(owner_client, tenant):
    owner = owner_membership(tenant)
    response = owner_client.post(
        f"/team/members/{owner.public_id}/role/", {"role": "sales"}, follow=True
    )
    assert "at least one owner" in response.content.decode()
    response = owner_client.post(f"/team/members/{owner.public_id}/remove/", follow=True)
    assert "at least one owner" in response.content.decode()
    owner.refresh_from_db()
    assert owner.role == Role.OWNER
    with pytest.raises(ValidationError):
        services.membership_remove(membership=owner, target=owner)


def test_an_owner_can_leave_when_another_owner_remains(owner_client, tenant):
    member_of(tenant.reseller, Role.OWNER)
    owner = owner_membership(tenant)
    response = owner_client.post(f"/team/members/{owner.public_id}/remove/")
    assert response.status_code == 302
    assert not Membership.objects.filter(pk=owner.pk).exists()
    assert AuditEvent.objects.filter(action="membership.removed").count() == 1


def test_any_member_may_leave(tenant, other_tenant, client_for):
    billing = member_of(tenant.reseller, Role.BILLING)
    response = client_for(billing.user).post(f"/team/members/{billing.public_id}/remove/")
    assert response.status_code == 302
    assert not Membership.objects.filter(pk=billing.pk).exists()


def test_switcher_only_switches_to_own_resellers(tenant, other_tenant, client_for):
    both = member_of(tenant.reseller, Role.SALES).user
    member_of(other_tenant.reseller, Role.ADMIN).user.delete()
    Membership.objects.create(user=both, reseller=other_tenant.reseller, role=Role.ADMIN)
    client = client_for(both)
    page = client.get("/dashboard/").content.decode()
    assert 'name="reseller"' in page and other_tenant.reseller.name in page
    client.post("/switch/", {"reseller": other_tenant.reseller.public_id})
    assert client.get("/team/").context["membership"].reseller == other_tenant.reseller
    client.post("/switch/", {"reseller": tenant.reseller.public_id})
    assert client.get("/team/").context["membership"].reseller == tenant.reseller

    stranger = client_for(member_of(tenant.reseller, Role.SALES).user)
    stranger.post("/switch/", {"reseller": other_tenant.reseller.public_id})
    assert stranger.get("/team/").context["membership"].reseller == tenant.reseller


def test_team_page_shows_members_of_this_reseller_only(owner_client, tenant, other_tenant):
    body = owner_client.get("/team/").content.decode()
    assert tenant.owner.email in body
    assert other_tenant.owner.email not in body


def test_emails_are_queued_only_on_commit(tenant):
    owner = owner_membership(tenant)
    services.team_invite(membership=owner, email="later@example.com", role=Role.SALES)
    # Inside the test transaction nothing was committed, so nothing was sent.
    assert OutboundEmail.objects.get(to="later@example.com").status == OutboundEmail.Status.PENDING


def test_the_invitation_names_the_role_in_the_emails_language_not_the_inviters(tenant):
    """The owner works in German; the invitation goes out in the invitation's language
    (English here): the role in it is English too, not "Vertrieb" in an English sentence."""
    from django.utils import translation

    owner = tenant.reseller.memberships.get(role=Role.OWNER)
    with translation.override("de"):
        invitation = services.team_invite(
            membership=owner, email="new@example.com", role=Role.SALES
        )
    assert invitation.language == "en"
    email = OutboundEmail.objects.get(template="team_invitation", to="new@example.com")
    assert "with the Sales role" in email.body_text
    assert "Vertrieb" not in email.body_text + email.body_html
