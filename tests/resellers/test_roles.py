"""Who may do what, checked in the services; views turn a refusal into a 403."""

import pytest
from django.core.exceptions import PermissionDenied

from resellers import services
from resellers.models import Membership
from resellers.roles import PERMISSIONS, Action, Role, require, role_can
from tests.factories import member_of

# The product's matrix (SPEC.md, after Microsoft Partner Center), written out in full.
EXPECTED = {
    Role.OWNER: set(Action),
    Role.ADMIN: {
        Action.CUSTOMER_VIEW,
        Action.CUSTOMER_INVITE,
        Action.CUSTOMER_EDIT,
        Action.SUBSCRIPTION_BUY,
        Action.LICENCES_ADD,
        Action.LICENCES_REMOVE,
        Action.SUBSCRIPTION_CANCEL,
        Action.SUBSCRIPTION_SUSPEND,
        Action.INVOICE_VIEW,
        Action.PRICES_MANAGE,
        Action.MARGIN_VIEW,
        Action.API_KEYS_MANAGE,
        Action.WEBHOOKS_MANAGE,
        Action.AUDIT_VIEW,
    },
    Role.SALES: {
        Action.CUSTOMER_VIEW,
        Action.CUSTOMER_INVITE,
        Action.CUSTOMER_EDIT,
        Action.SUBSCRIPTION_BUY,
        Action.LICENCES_ADD,
    },
    Role.BILLING: {
        Action.CUSTOMER_VIEW,
        Action.INVOICE_VIEW,
        Action.PAYMENT_CARD_MANAGE,
        Action.PRICES_MANAGE,
        Action.MARGIN_VIEW,
    },
}


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("action", list(Action))
def test_role_action_matrix(role, action):
    allowed = action in EXPECTED[role]
    assert role_can(role, action) is allowed
    if allowed:
        require(role, action)
    else:
        with pytest.raises(PermissionDenied):
            require(role, action)


def test_every_role_has_a_row():
    assert set(PERMISSIONS) == set(Role)


@pytest.mark.parametrize("role", [Role.ADMIN, Role.SALES, Role.BILLING])
def test_only_owners_run_team_services(role, tenant, other_tenant):
    actor = member_of(tenant.reseller, role)
    owner = Membership.objects.get(user=tenant.owner)
    with pytest.raises(PermissionDenied):
        services.team_invite(membership=actor, email="new@example.com", role=Role.SALES)
    with pytest.raises(PermissionDenied):
        services.membership_change_role(membership=actor, target=owner, role=Role.SALES)
    with pytest.raises(PermissionDenied):
        services.membership_remove(membership=actor, target=owner)
    with pytest.raises(PermissionDenied):
        services.reseller_update_profile(membership=actor, name="Taken over")
    tenant.reseller.refresh_from_db()
    assert tenant.reseller.name == "Reseller A"
    assert Membership.objects.get(pk=owner.pk).role == Role.OWNER


@pytest.mark.parametrize("role", [Role.ADMIN, Role.SALES, Role.BILLING])
def test_owner_actions_are_403_in_views(role, tenant, other_tenant, client_for):
    actor = member_of(tenant.reseller, role)
    client = client_for(actor.user)
    owner = Membership.objects.get(user=tenant.owner)
    assert client.post("/team/", {"email": "x@example.com", "role": "sales"}).status_code == 403
    response = client.post(f"/team/members/{owner.public_id}/role/", {"role": "sales"})
    assert response.status_code == 403
    assert client.post(f"/team/members/{owner.public_id}/remove/").status_code == 403
    response = client.post(
        "/settings/",
        {
            "name": "Taken over",
            "country": "GB",
            "vat_id": "",
            "billing_email": "a@b.example",
            "currency": "EUR",
            "language": "en",
            "time_zone": "UTC",
        },
    )
    assert response.status_code == 403
    assert Membership.objects.get(pk=owner.pk).role == Role.OWNER
    assert not tenant.reseller.invitations.exists()


def test_billing_and_sales_members_read_customers(tenant, other_tenant, client_for):
    client = client_for(member_of(tenant.reseller, Role.BILLING).user)
    assert client.get("/customers/").status_code == 200  # billing reads customers
    sales = client_for(member_of(tenant.reseller, Role.SALES).user)
    assert sales.get("/customers/").status_code == 200


def test_every_role_reads_the_price_book_and_only_money_roles_change_it(
    tenant, other_tenant, client_for
):
    """The Price book (issue 16): every member reads customer prices; owner, admin and billing
    (PRICES_MANAGE) set prices and special prices; sales gets a 403 before anything is read."""
    posts = [
        "/subscriptions/prices/set/",
        "/subscriptions/prices/special/",
        f"/subscriptions/prices/special/{tenant.customer.public_id}/end/",
    ]
    for role in Role:
        client = client_for(member_of(tenant.reseller, role).user)
        assert client.get("/subscriptions/prices/").status_code == 200, role
        for url in posts:
            status = client.post(url, {}).status_code
            if role_can(role, Action.PRICES_MANAGE):
                # An empty form: refused beside its fields (400) or at the top (302), not 403.
                assert status in (302, 400), (role, url, status)
            else:
                assert status == 403, (role, url, status)


def test_only_roles_that_see_margins_reach_the_margin_page_and_its_csv(
    tenant, other_tenant, client_for
):
    """The Margin page (issue 16): owner, admin and billing (MARGIN_VIEW) read it and download
    its CSV; sales gets a 403 and no menu entry."""
    for role in Role:
        client = client_for(member_of(tenant.reseller, role).user)
        allowed = role_can(role, Action.MARGIN_VIEW)
        assert allowed is (role != Role.SALES)
        for url in ("/margin/", "/margin/export.csv", "/margin/?month=2026-01"):
            status = client.get(url).status_code
            assert status == (200 if allowed else 403), (role, url, status)
        assert ('href="/margin/"' in client.get("/dashboard/").content.decode()) is allowed
