"""Settings → API keys (issue 17): owners and admins list, make and revoke the reseller's keys;
the secret is shown once, in the answer to the POST that made it."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from api.models import ApiKey, Scope
from resellers.models import AuditEvent, Membership
from resellers.roles import Role
from tests.factories import Tenant, member_of
from tests.support.api import ApiClient, api_key

LIST = "/settings/api-keys/"


def owner_membership(tenant: Tenant) -> Membership:
    return Membership.objects.get(reseller=tenant.reseller, user=tenant.owner)


def test_settings_links_the_page_for_owners_and_admins_only(tenant, other_tenant, client_for):
    for role, shown in ((Role.OWNER, True), (Role.ADMIN, True), (Role.SALES, False)):
        client = client_for(member_of(tenant.reseller, role).user)
        page = client.get("/settings/").content.decode()
        assert (f'href="{LIST}"' in page) is shown, role
        assert client.get(LIST).status_code == (200 if shown else 403), role
    assert client_for(member_of(tenant.reseller, Role.BILLING).user).get(LIST).status_code == 403


def test_making_a_key_shows_it_once_and_it_works(tenant, other_tenant, owner_client):
    response = owner_client.post(
        LIST, {"name": "CRM sync", "scopes": [Scope.READ, Scope.BILLING_READ]}
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    raw = response.context["raw"]
    page = response.content.decode()
    assert raw.startswith("ppk_") and f'value="{raw}"' in page
    assert "it will not be shown again" in page
    key = ApiKey.objects.get(reseller=tenant.reseller)
    assert key.name == "CRM sync" and key.scopes == ["billing:read", "read"]
    assert key.expires_at is None and key.role == Role.OWNER

    # Nowhere to be found again: not in the session, not on the list.
    assert raw not in str(dict(owner_client.session))
    listing = owner_client.get(LIST).content.decode()
    assert raw not in listing and key.prefix in listing
    assert ApiClient(raw).get("/api/v1/customers/").status_code == 200
    assert AuditEvent.objects.filter(action="api_key.created", object_id=key.public_id).exists()


def test_the_list_says_what_each_key_is(tenant, other_tenant, owner_client):
    owner = owner_membership(tenant)
    admin = member_of(tenant.reseller, Role.ADMIN)
    active, _ = api_key(owner, Scope.READ, name="Active one")
    revoked, _ = api_key(owner, name="Revoked one")
    ApiKey.objects.filter(pk=revoked.pk).update(revoked_at=timezone.now())
    expired, _ = api_key(owner, name="Expired one")
    ApiKey.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(days=1))
    api_key(admin, name="Stopped one")
    admin.role = Role.SALES
    admin.save()
    api_key(owner_membership(other_tenant), name="Their key")

    response = owner_client.get(LIST)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Their key" not in page
    assert "Each key may make 600 requests every 60 seconds" in page
    rows = {row["key"].name: row for row in response.context["keys"]}
    assert {name: row["state"] for name, row in rows.items()} == {
        "Active one": "active",
        "Revoked one": "revoked",
        "Expired one": "expired",
        "Stopped one": "stopped",
    }
    assert rows["Active one"]["scopes"] == ["Read customers, subscriptions and the audit log"]
    assert "Read customers, subscriptions and the audit log" in page
    assert "The member who made it left the team or changed role." in page
    assert active.prefix in page and admin.user.email in page
    # Every key but the revoked one can be revoked.
    assert page.count("/revoke/") == 3
    assert f"/settings/api-keys/{revoked.public_id}/revoke/" not in page


def test_bad_input_is_a_400_with_messages_beside_the_fields(tenant, other_tenant, owner_client):
    yesterday = (timezone.localdate() - timedelta(days=1)).isoformat()
    response = owner_client.post(LIST, {"name": "  ", "expires_at": yesterday})
    assert response.status_code == 400
    form = response.context["form"]
    assert set(form.errors) == {"name", "scopes"}
    page = response.content.decode()
    assert 'id="id_scopes_error"' in page and 'id="id_name_error"' in page
    assert f'value="{yesterday}"' in page

    # Past the form, the service's refusal stands beside its own field, the input kept.
    response = owner_client.post(
        LIST, {"name": "Old sync", "scopes": [Scope.READ], "expires_at": yesterday}
    )
    assert response.status_code == 400
    assert set(response.context["form"].errors) == {"expires_at"}
    page = response.content.decode()
    assert 'value="Old sync"' in page and 'value="read" id="id_scopes_0" checked' in page
    assert not ApiKey.objects.exists()


def test_an_expiry_date_keeps_the_key_working_through_that_day(tenant, other_tenant, owner_client):
    day = timezone.localdate() + timedelta(days=30)
    response = owner_client.post(
        LIST, {"name": "Trial", "scopes": [Scope.READ], "expires_at": day.isoformat()}
    )
    assert response.status_code == 200
    key = ApiKey.objects.get(name="Trial")
    local = timezone.localtime(key.expires_at, timezone=ZoneInfo(tenant.reseller.time_zone))
    assert (local.date(), local.hour, local.minute) == (day + timedelta(days=1), 0, 0)


def test_revoking_asks_first_then_the_key_stops(tenant, other_tenant, owner_client):
    key, raw = api_key(owner_membership(tenant), name="Old PSA")
    url = f"{LIST}{key.public_id}/revoke/"
    confirm = owner_client.get(url)
    assert confirm.status_code == 200
    assert "Old PSA" in confirm.content.decode() and "Revoke key" in confirm.content.decode()
    key.refresh_from_db()
    assert key.revoked_at is None

    response = owner_client.post(url, follow=True)
    assert response.redirect_chain == [(LIST, 302)]
    assert "was revoked" in response.content.decode()
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert ApiClient(raw).get("/api/v1/customers/").status_code == 401
    assert AuditEvent.objects.filter(action="api_key.revoked", object_id=key.public_id).exists()


def test_another_resellers_key_cannot_be_revoked(tenant, other_tenant, client_for):
    key, _ = api_key(owner_membership(tenant))
    outsider = client_for(other_tenant.owner)
    assert outsider.post(f"{LIST}{key.public_id}/revoke/").status_code == 404
    key.refresh_from_db()
    assert key.revoked_at is None


@pytest.mark.parametrize("role", [Role.SALES, Role.BILLING])
def test_other_roles_cannot_revoke(role, tenant, other_tenant, client_for):
    key, _ = api_key(owner_membership(tenant))
    client = client_for(member_of(tenant.reseller, role).user)
    assert client.post(f"{LIST}{key.public_id}/revoke/").status_code == 403
    key.refresh_from_db()
    assert key.revoked_at is None


def test_the_page_publishes_the_rate_limit_as_set(tenant, other_tenant, owner_client, settings):
    settings.API_RATE_LIMIT, settings.API_RATE_WINDOW = 1, 30
    page = owner_client.get(LIST).content.decode()
    assert "Each key may make 1 request every 30 seconds" in page
    spanish = owner_client.get(LIST, headers={"Accept-Language": "es"})
    assert spanish.status_code == 200
