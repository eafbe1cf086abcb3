from typing import cast

import pytest
from django.contrib.admin.sites import site
from django.core.exceptions import ValidationError

from core.models import OutboundEmail
from resellers.admin import ResellerAdmin
from resellers.models import AuditEvent, Membership, Reseller
from resellers.validators import normalise_vat_id
from tests.factories import UserFactory
from tests.support.sessions import client_signed_in

APPLICATION = {
    "name": "Hansen Cloud GmbH",
    "address": "Friedrichstraße 12\n10117 Berlin",
    "country": "DE",
    "vat_id": "DE 136 695 976",
    "billing_email": "billing@hansen.example",
    "currency": "EUR",
}


@pytest.fixture
def newcomer(db, client_for):
    user = UserFactory(email="jo@hansen.example")
    return user, client_for(user)


def test_user_without_reseller_lands_on_become_a_partner(newcomer):
    _, client = newcomer
    assert client.get("/").url == "/partner/apply/"
    assert client.get("/dashboard/").url == "/partner/apply/"
    assert client.get("/team/").url == "/partner/apply/"


def test_application_creates_a_pending_reseller_with_its_owner(
    newcomer, django_capture_on_commit_callbacks, mailoutbox
):
    user, client = newcomer
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/partner/apply/", APPLICATION)
    assert response.url == "/partner/status/"
    reseller = Reseller.objects.get(name="Hansen Cloud GmbH")
    assert reseller.status == Reseller.Status.PENDING
    assert reseller.vat_id == "DE136695976"
    assert Membership.objects.get(reseller=reseller).user == user
    assert AuditEvent.objects.filter(reseller=reseller, action="reseller.applied").exists()
    assert [m.to for m in mailoutbox] == [["billing@hansen.example"]]


@pytest.mark.parametrize(
    ("vat_id", "message"),
    [
        ("DE136695977", "wrong check digit"),
        ("FR40303265045", "does not belong to the selected country"),
        ("DE12", "not a valid VAT id"),
    ],
)
def test_bad_vat_id_is_explained_beside_the_field(newcomer, vat_id, message):
    _, client = newcomer
    response = client.post("/partner/apply/", {**APPLICATION, "vat_id": vat_id})
    assert response.status_code == 200
    form = response.context["form"]
    assert message in " ".join(form.errors["vat_id"])
    assert list(form.errors) == ["vat_id"]
    assert f'value="{vat_id}"' in response.content.decode()  # what was typed is kept
    assert not Reseller.objects.exists()
    assert not Membership.objects.exists()


def test_vat_id_outside_the_eu_is_not_checked():
    assert normalise_vat_id(country="US", vat_id=" 12-3456789 ") == "12-3456789"
    assert normalise_vat_id(country="GR", vat_id="094259216") == "EL094259216"
    with pytest.raises(ValidationError):
        normalise_vat_id(country="NL", vat_id="NL004495446B01")


def test_pending_and_suspended_resellers_see_only_the_status_page(newcomer, tenant):
    _, client = newcomer
    client.post("/partner/apply/", APPLICATION)
    for url in ("/", "/dashboard/", "/customers/", "/team/", "/settings/"):
        assert client.get(url).url == "/partner/status/", url
    assert "waiting for approval" in client.get("/partner/status/").content.decode()

    tenant.reseller.status = Reseller.Status.SUSPENDED
    tenant.reseller.save()
    owner = client_signed_in(tenant.owner)
    assert owner.get("/customers/")["Location"] == "/partner/status/"
    assert "suspended" in owner.get("/partner/status/").content.decode()


def test_staff_approve_in_the_admin_and_the_applicant_is_emailed(
    newcomer, rf, django_capture_on_commit_callbacks, mailoutbox
):
    user, client = newcomer
    client.post("/partner/apply/", APPLICATION)
    reseller = Reseller.objects.get()
    staff = UserFactory(is_staff=True, is_superuser=True)
    request = rf.post("/admin/resellers/reseller/")
    request.user = staff
    request._messages = type("M", (), {"add": lambda *a, **k: None})()
    admin = cast(ResellerAdmin, site._registry[Reseller])
    with django_capture_on_commit_callbacks(execute=True):
        admin.approve(request, Reseller.objects.filter(pk=reseller.pk))
    reseller.refresh_from_db()
    assert reseller.status == Reseller.Status.ACTIVE
    assert OutboundEmail.objects.filter(template="reseller_approved", to=user.email).exists()
    assert any(m.to == [user.email] for m in mailoutbox)
    event = AuditEvent.objects.get(action="reseller.approved")
    assert (event.actor, event.before, event.after) == (
        staff,
        {"status": "pending"},
        {"status": "active"},
    )
    assert client.get("/").url == "/dashboard/"

    with django_capture_on_commit_callbacks(execute=True):
        admin.suspend(request, Reseller.objects.filter(pk=reseller.pk))
    reseller.refresh_from_db()
    assert reseller.status == Reseller.Status.SUSPENDED


def test_csrf_is_enforced(newcomer):
    user, _ = newcomer
    client = client_signed_in(user, enforce_csrf_checks=True)
    response = client.post("/partner/apply/", APPLICATION)
    assert response.status_code == 403
    assert not Reseller.objects.exists()


def test_owner_edits_settings_and_bad_input_saves_nothing(owner_client, tenant):
    data = {
        "name": "Renamed Ltd",
        "country": "GB",
        "vat_id": "",
        "billing_email": "new@b.example",
        "currency": "GBP",
        "language": "fr",
        "time_zone": "Europe/London",
    }
    assert owner_client.post("/settings/", data).status_code == 302
    tenant.reseller.refresh_from_db()
    assert (tenant.reseller.name, tenant.reseller.language) == ("Renamed Ltd", "fr")
    event = AuditEvent.objects.get(action="reseller.profile_updated")
    assert event.after is not None and event.before is not None
    assert event.before["name"] == "Reseller A" and event.after["name"] == "Renamed Ltd"

    bad = {**data, "name": "Again", "country": "NL", "vat_id": "NL123"}
    response = owner_client.post("/settings/", bad)
    assert response.status_code == 400
    assert "vat_id" in response.context["form"].errors
    tenant.reseller.refresh_from_db()
    assert tenant.reseller.name == "Renamed Ltd"


def test_become_a_partner_mentions_open_team_invitations(newcomer, tenant):
    from tests.factories import TeamInvitationFactory

    TeamInvitationFactory.create_with_token(reseller=tenant.reseller, email="JO@hansen.example")
    TeamInvitationFactory.create_with_token(email="someone.else@example.com")
    _, client = newcomer
    body = client.get("/partner/apply/").content.decode()
    assert "You already have an invitation" in body
    assert tenant.reseller.name in body
    assert body.count("with the Sales role") == 1


def test_a_member_of_a_pending_and_an_active_reseller_starts_on_the_active_one(newcomer, tenant):
    user, client = newcomer
    client.post("/partner/apply/", APPLICATION)
    Membership.objects.create(user=user, reseller=tenant.reseller, role="sales")
    fresh = client_signed_in(user)
    assert fresh.get("/")["Location"] == "/dashboard/"


def test_settings_refuse_an_unknown_time_zone(owner_client, tenant):
    data = {
        "name": "Reseller A",
        "country": "GB",
        "vat_id": "",
        "billing_email": "a@b.example",
        "currency": "EUR",
        "language": "en",
        "time_zone": "Mars/Olympus",
    }
    response = owner_client.post("/settings/", data)
    assert response.status_code == 400
    assert "is not a time zone" in " ".join(response.context["form"].errors["time_zone"])
    tenant.reseller.refresh_from_db()
    assert tenant.reseller.time_zone == "UTC"


def test_a_member_cannot_apply_for_a_second_reseller(tenant):
    from resellers import services

    with pytest.raises(ValidationError):
        services.reseller_apply(
            user=tenant.owner,
            name="Second",
            country="GB",
            vat_id="",
            billing_email="x@y.example",
            currency="EUR",
        )
