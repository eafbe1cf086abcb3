"""The dashboard at any size and after any change.

Its queries do not grow with the reseller's customers or activity: the counts by status and the
newest customers are kept in the cache under the version of the reseller's customer list
(customers.selectors.customer_summary), and the activity's names take one query per kind of
object, kept under the events shown (insights.selectors.dashboard_activity). And every figure on
it is right after each kind of change a reseller's people make, compared with a fresh count.

These tests commit (transaction=True), as requests do: the list's version moves on after the
commit, which a test inside one transaction never reaches.
"""

import html
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation

from core.audit_format import audit_object_label, audit_object_labels
from customers import services as customer_services
from customers.models import Customer
from resellers import services as reseller_services
from resellers.models import AuditEvent, Membership, Reseller
from resellers.roles import Role
from resellers.services import audit_record
from subscriptions import services as subscription_services
from subscriptions.models import Plan, Subscription
from tests.factories import (
    CustomerFactory,
    MembershipFactory,
    PlanFactory,
    SubscriptionFactory,
    UserFactory,
)
from tests.support.sessions import client_signed_in

pytestmark = pytest.mark.django_db(transaction=True)

FIGURE = re.compile(
    r'<span class="figure">(?:<a [^>]*>)?([^<]*)(?:</a>)?</span>'
    r'\s*<span class="label">([^<]*)</span>'
)
SECTION = re.compile(r"<section[^>]*>\s*<h2>([^<]*)</h2>(.*?)</section>", re.S)
ACTIVITY_LINE = re.compile(r"<li><time[^>]*>[^<]*</time>(.*?)</li>", re.S)


def _shown(client: Client) -> dict[str, Any]:
    """What the dashboard shows: its figures by label, the recent customers' links and the
    activity's lines (who · what · which object)."""
    response = client.get(reverse("dashboard"), HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    page = response.content.decode()
    sections = {html.unescape(title): body for title, body in SECTION.findall(page)}
    return {
        "figures": {html.unescape(label): figure for figure, label in FIGURE.findall(page)},
        "customers": re.findall(r'<a href="([^"]+)">', sections["Recent customers"])[:-1],
        "activity": [
            [html.unescape(part).strip() for part in line.split(" · ")]
            for line in ACTIVITY_LINE.findall(sections["Recent activity"])
        ],
    }


def _fresh(reseller: Reseller) -> dict[str, Any]:
    """The same, from the database: nothing cached."""
    customers = Customer.objects.filter(reseller=reseller)
    figures = {
        str(status.label): str(customers.filter(status=status).count())
        for status in (Customer.Status.INVITED, Customer.Status.ACTIVE, Customer.Status.CANCELLED)
    }
    newest = customers.filter(status__in=["invited", "active", "cancelled"]).order_by(
        "-created_at", "-id"
    )[:5]
    events = AuditEvent.objects.filter(reseller=reseller).order_by("-created_at", "-id")[:8]
    with translation.override("en"):
        activity = [
            [event.actor_email or "System", event.action_label, audit_object_label(event)]
            for event in events
        ]
    return {
        "figures": figures,
        "customers": [reverse("customers:detail", args=[c.public_id]) for c in newest],
        "activity": activity,
    }


def _activity_add(reseller: Reseller, customers: int, plan: Plan) -> None:
    """`customers` more customers, each invited, with a subscription bought, as the audit log
    records them."""
    for _ in range(customers):
        customer = CustomerFactory(reseller=reseller)
        subscription = SubscriptionFactory(customer=customer, plan=plan)
        for action, obj in (("customer.invited", customer), ("subscription.bought", subscription)):
            audit_record(
                actor=None,
                reseller=reseller,
                action=action,
                obj=obj,
                customer_public_id=customer.public_id,
            )


def _queries(client: Client) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(reverse("dashboard")).status_code == 200
    return [query["sql"] for query in captured.captured_queries]


def test_the_dashboards_queries_do_not_grow_with_the_customers(tenant, other_tenant):
    plan = SubscriptionFactory(customer=tenant.customer).plan
    client = client_signed_in(tenant.owner)
    sizes = {}
    for customers in (3, 40):
        _activity_add(
            tenant.reseller,
            customers - Customer.objects.filter(reseller=tenant.reseller).count(),
            plan,
        )
        _activity_add(other_tenant.reseller, customers, plan)
        # A customer saved: the list's version moves on, so the next page counts afresh.
        tenant.customer.save()
        cold = _queries(client)
        warm = _queries(client)
        sizes[customers] = (len(cold), len(warm))
        assert _shown(client) == _fresh(tenant.reseller)
        # While nothing changes, the customers' counts, the newest and the activity's names
        # come from the cache: no query reads a customer or a subscription.
        assert not [sql for sql in warm if "customers_customer" in sql], warm
        assert not [sql for sql in warm if "subscriptions_subscription" in sql], warm
        # Counted afresh, the same queries, however many customers and lines (the activity's
        # names: one query per kind of object, the next test).
    assert sizes[3] == sizes[40], sizes


def test_the_activitys_names_take_one_query_per_kind_of_object(tenant):
    plan = SubscriptionFactory(customer=tenant.customer).plan
    _activity_add(tenant.reseller, 4, plan)
    events = list(AuditEvent.objects.filter(reseller=tenant.reseller).order_by("-id")[:8])
    kinds = {event.object_type for event in events}
    with CaptureQueriesContext(connection) as captured:
        labels = audit_object_labels(events)
    assert len(captured.captured_queries) == len(kinds) == 2
    assert labels == [audit_object_label(event) for event in events]
    subscription = Subscription.objects.get(public_id=events[0].object_id)
    assert labels[0] == f"{subscription.customer} — {subscription.plan}"


def test_an_activitys_object_that_is_gone_or_unknown_reads_as_recorded(tenant):
    customer = CustomerFactory(reseller=tenant.reseller, organisation="Gone Ltd")
    audit_record(actor=None, reseller=tenant.reseller, action="customer.invited", obj=customer)
    customer.delete()
    gone = AuditEvent.objects.get(object_repr__startswith="Gone Ltd")
    odd = AuditEvent.objects.create(
        reseller=tenant.reseller,
        action="membership.created",
        object_type="resellers.membership",
        object_id="not-a-number",
        object_repr="A membership",
    )
    unknown = AuditEvent.objects.create(
        reseller=tenant.reseller,
        action="x",
        object_type="nowhere.nothing",
        object_id="1",
        object_repr="Something",
    )
    assert audit_object_labels([gone, odd, unknown]) == [
        gone.object_repr,
        "A membership",
        "Something",
    ]


def test_the_activitys_names_follow_the_readers_language(tenant):
    subscription = SubscriptionFactory(customer=tenant.customer, plan__kind="flexible")
    with translation.override("en"):
        audit_record(
            actor=None, reseller=tenant.reseller, action="subscription.bought", obj=subscription
        )
    client = client_signed_in(tenant.owner)
    # The English names are kept first; the German page does not take them.
    english = client.get(reverse("dashboard"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    german = client.get(reverse("dashboard"), HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "Flexible" in english
    assert "Flexibel" in german and "Flexible" not in german


def test_every_figure_is_right_after_each_kind_of_change(tenant, other_tenant):
    """Each change through its service, the page seen (and its figures cached) before it and
    compared with fresh counts after it, on both resellers' dashboards."""
    owner = Membership.objects.get(user=tenant.owner, reseller=tenant.reseller)
    staff = UserFactory(is_staff=True)
    contact = UserFactory(email="kim@fresh.example")
    clients = {
        tenant.reseller.pk: client_signed_in(tenant.owner),
        other_tenant.reseller.pk: client_signed_in(other_tenant.owner),
    }
    state: dict[str, Any] = {}

    def fresh_customer() -> Customer:
        return Customer.objects.get(pk=state["customer"].pk)

    def invite() -> None:
        state["customer"] = customer_services.customer_invite(
            membership=owner,
            contact_name="Kim",
            contact_email="kim@fresh.example",
            customer_type=Customer.Type.DOMAIN,
            domain="fresh.example",
            organisation="Fresh Org",
            country="GB",
        )

    def accept() -> None:
        invitation = fresh_customer().invitations.order_by("-created_at").first()
        assert invitation is not None
        customer_services.customer_invitation_accept(
            invitation=invitation, user=contact, terms_accepted=True
        )

    def buy_subscription() -> None:
        subscription_services.subscription_buy(
            membership=owner,
            customer=fresh_customer(),
            plan=PlanFactory(),
            licences=5,
            payer="reseller_card",
            order_key=subscription_services.order_key_new(),
        )

    def rename() -> None:
        customer_services.customer_update_contact(
            membership=owner, customer=fresh_customer(), organisation="Renamed Org"
        )

    def rename_by_staff() -> None:
        customer_services.customer_update_contact_by_staff(
            customer=fresh_customer(), by=staff, organisation="Renamed By Staff"
        )

    # A team member (joined without an audit entry: the dashboard no longer counts the team).
    state["member"] = MembershipFactory(reseller=tenant.reseller, role=Role.SALES)

    def role_changes() -> None:
        reseller_services.membership_change_role(
            membership=owner, target=state["member"], role=Role.BILLING
        )

    def member_leaves() -> None:
        reseller_services.membership_remove(
            membership=owner, target=Membership.objects.get(pk=state["member"].pk)
        )

    def invite_another() -> None:
        state["other"] = customer_services.customer_invite(
            membership=owner,
            contact_name="Lee",
            contact_email="lee@second.example",
            customer_type=Customer.Type.DOMAIN,
            domain="second.example",
            organisation="Second Org",
            country="GB",
        )

    def withdraw() -> None:
        customer_services.customer_invitation_withdraw(
            membership=owner, customer=Customer.objects.get(pk=state["other"].pk)
        )

    def transfer() -> None:
        customer_services.customer_transfer(
            customer=Customer.objects.get(pk=tenant.customer.pk),
            to_reseller=other_tenant.reseller,
            actor=staff,
            via="staff",
        )

    def access_revoke() -> None:
        customer_services.customer_access_revoke(customer=fresh_customer(), user=contact)

    steps: dict[str, Callable[[], None]] = {
        "a customer invited": invite,
        "its invitation accepted": accept,
        "a subscription bought": buy_subscription,
        "the customer renamed": rename,
        "the customer renamed by staff": rename_by_staff,
        "a role changed": role_changes,
        "a team member removed": member_leaves,
        "another customer invited": invite_another,
        "its invitation withdrawn": withdraw,
        "a customer moved to another reseller": transfer,
        "a customer revoked the reseller's access": access_revoke,
    }
    for name, step in steps.items():
        before = {}
        for reseller_id, client in clients.items():
            # Seen before the change: what the page keeps is in the cache.
            before[reseller_id] = _shown(client)
            assert before[reseller_id] == _fresh(Reseller.objects.get(pk=reseller_id)), name
        step()
        after = {}
        for reseller_id, client in clients.items():
            reseller = Reseller.objects.get(pk=reseller_id)
            after[reseller_id] = _shown(client)
            assert after[reseller_id] == _fresh(reseller), f"after {name}: {reseller.name}"
        assert before != after, f"{name} changed nothing the dashboards show"
    newest = _shown(clients[tenant.reseller.pk])["activity"][0]
    assert newest == [
        "kim@fresh.example",
        "Customer revoked the reseller's access",
        "Renamed By Staff (fresh.example)",
    ]
