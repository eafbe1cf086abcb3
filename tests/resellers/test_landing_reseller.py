"""Where a member of several resellers lands after signing in: the reseller last used, else the
one where the user's role is highest (owner, admin, sales, billing), one open for business first."""

from django.test import Client
from django.urls import reverse

from core.models import User
from resellers.models import Reseller
from resellers.roles import Role
from tests.factories import MembershipFactory, ResellerFactory, UserFactory
from tests.support.sessions import client_signed_in


def signed_in(user: User) -> Client:
    """A fresh session, as after signing in: no reseller chosen in it yet."""
    return client_signed_in(user)


def landed_in(user: User) -> str:
    response = signed_in(user).get("/dashboard/")
    assert response.status_code == 200
    return response.context["reseller"].name


def test_without_a_last_used_reseller_the_highest_role_wins(db: None) -> None:
    user = UserFactory()
    # Alphabetically first, the sales membership is where sign-in used to land.
    MembershipFactory(user=user, reseller=ResellerFactory(name="Alpha Sales"), role=Role.SALES)
    MembershipFactory(user=user, reseller=ResellerFactory(name="Zeta Owned"), role=Role.OWNER)
    MembershipFactory(user=user, reseller=ResellerFactory(name="Beta Billing"), role=Role.BILLING)
    assert landed_in(user) == "Zeta Owned"


def test_sign_in_lands_in_the_reseller_last_switched_to(db: None) -> None:
    user = UserFactory()
    sales = MembershipFactory(user=user, reseller=ResellerFactory(name="Alpha"), role=Role.SALES)
    MembershipFactory(user=user, reseller=ResellerFactory(name="Zeta"), role=Role.OWNER)
    client = signed_in(user)
    client.post(reverse("resellers:switch"), {"reseller": sales.reseller.public_id})
    assert client.get("/dashboard/").context["reseller"].name == "Alpha"
    # Signed out and in again: the new session has no choice, the last one used is kept.
    assert landed_in(user) == "Alpha"
    signed_in(user).post(reverse("resellers:switch"), {"reseller": "not-a-membership"})
    assert landed_in(user) == "Alpha"


def test_a_reseller_open_for_business_comes_before_a_pending_one(db: None) -> None:
    user = UserFactory()
    pending = ResellerFactory(name="Pending Owned", status=Reseller.Status.PENDING)
    MembershipFactory(user=user, reseller=pending, role=Role.OWNER)
    MembershipFactory(user=user, reseller=ResellerFactory(name="Open"), role=Role.SALES)
    assert landed_in(user) == "Open"
