"""The header's "My organisations" link (customers.context_processors.customer_side): for a
person who administers a customer and is no reseller's member, asked of the database once per
page and never for a reseller's member; marked current on the customer side's pages."""

from collections.abc import Callable

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.models import User
from customers.context_processors import customer_side
from customers.models import CustomerMember
from customers.selectors import customers_of_user
from tests.factories import Tenant, UserFactory, admin_of

MY = "/my/"
LINK = f'<a class="tenant" href="{MY}" aria-current="page">My organisations</a>'


def _administers_query(user: User) -> str:
    """The SQL of the question the link asks, as the context processor asks it."""
    with CaptureQueriesContext(connection) as queries:
        customers_of_user(user=user).exists()
    [query] = queries.captured_queries
    return query["sql"]


def _page(client: Client, url: str) -> tuple[str, list[str]]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return response.content.decode(), [query["sql"] for query in queries.captured_queries]


def test_a_customer_administrator_has_the_link_asked_once_per_page(
    tenant: Tenant, other_tenant: Tenant, client_for: Callable[[User], Client]
) -> None:
    admin = admin_of(tenant.customer)
    asked = _administers_query(admin)
    client = client_for(admin)
    # The organisation page also renders other apps' sections with the same context processors.
    for url in (MY, reverse("customer_side:organisation", args=[tenant.customer.public_id])):
        page, queries = _page(client, url)
        assert LINK in page
        assert queries.count(asked) == 1


def test_a_reseller_member_has_no_link_and_it_is_not_asked(
    tenant: Tenant, other_tenant: Tenant, client_for: Callable[[User], Client]
) -> None:
    # Even one who also administers a customer: the reseller's header wins, as before.
    owner = tenant.owner
    CustomerMember.objects.create(
        customer=other_tenant.customer, user=owner, terms_accepted_at=owner.date_joined
    )
    asked = _administers_query(owner)
    page, queries = _page(client_for(owner), "/dashboard/")
    assert "My organisations" not in page
    assert asked not in queries


def test_signed_in_without_an_organisation_has_no_link(tenant: Tenant) -> None:
    request = RequestFactory().get(MY)
    request.user = UserFactory()
    assert not customer_side(request)["my_organisations_link"]
    request.user = admin_of(tenant.customer)
    assert customer_side(request)["my_organisations_link"]


@pytest.mark.parametrize(
    ("path", "current"),
    [
        (MY, True),
        (f"{MY}abc/", True),
        (f"{MY}abc/transfer-token/", True),
        ("/my", False),
        ("/mystery/", False),
        ("/", False),
        ("/dashboard/", False),
        ("/invitation/abc/", False),
    ],
)
def test_the_link_is_current_on_the_customer_sides_pages(path: str, current: bool) -> None:
    request = RequestFactory().get(path)
    request.user = AnonymousUser()
    context = customer_side(request)
    assert context["my_organisations_url"] == reverse("customer_side:home") == MY
    assert context["my_organisations_current"] is current
    # Signed out: no link, and nothing asked (this test has no database).
    assert not context["my_organisations_link"]
