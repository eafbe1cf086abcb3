"""The reseller's Audit log page (issue 18) and its CSV: every event of the reseller, newest
first, filtered by a form (actor, customer, action, days in the reader's zone), in keyset pages;
owners and admins only; changes read as on a customer's activity (core.audit_format)."""

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.middleware import audit_via, client_ip
from insights.audit import AUDIT_PAGE_SIZE
from insights.forms import AUDIT_ACTION_GROUPS
from resellers.models import AUDIT_ACTION_LABELS, AuditEvent, Reseller
from resellers.roles import Role
from resellers.services import audit_record
from tests.factories import (
    CustomerFactory,
    PlanFactory,
    SubscriptionFactory,
    Tenant,
    UserFactory,
    member_of,
)

LIST = "/settings/audit-log/"
EXPORT = "/settings/audit-log/export.csv"
HEADER = "time,actor,via,action,action_code,object_type,object,customer_id,organisation,ip,changes"


def record(
    reseller: Reseller,
    action: str,
    obj: Any,
    *,
    actor: Any = None,
    customer: Any = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    ip: str | None = None,
    via: str = "",
    at: datetime | None = None,
) -> AuditEvent:
    ip_token, via_token = client_ip.set(ip), audit_via.set(via)
    try:
        with time_machine.travel(at or datetime(2026, 12, 1, 10, tzinfo=UTC), tick=False):
            return audit_record(
                actor=actor,
                reseller=reseller,
                action=action,
                obj=obj,
                before=before,
                after=after,
                customer_public_id=customer.public_id if customer else "",
            )
    finally:
        client_ip.reset(ip_token)
        audit_via.reset(via_token)


def text(html: str) -> str:
    """The page's words without its markup, spaces squeezed."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def results(response: Any) -> str:
    html = response.content.decode()
    start = html.index('<div id="results"')
    return html[start:]


def export(client: Any, **query: str) -> list[dict[str, str]]:
    response = client.get(EXPORT, query)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    body = b"".join(response.streaming_content).decode()
    assert body.splitlines()[0] == HEADER
    return list(csv.DictReader(io.StringIO(body)))


@pytest.fixture
def log(tenant: Tenant, other_tenant: Tenant) -> dict[str, Any]:
    """Tenant A's log: an admin changes Acme's licences through an API key, the owner invites
    Globex, the portal suspends a subscription; and tenant B's own event."""
    admin = member_of(tenant.reseller, Role.ADMIN).user
    acme = CustomerFactory(reseller=tenant.reseller, organisation="Acme Iberia", domain="acme.es")
    globex = CustomerFactory(reseller=tenant.reseller, organisation="Globex", domain="globex.nl")
    subscription = SubscriptionFactory(customer=acme)
    events = {
        "invited": record(
            tenant.reseller,
            "customer.invited",
            globex,
            actor=tenant.owner,
            customer=globex,
            after={"organisation": "Globex"},
            ip="198.51.100.7",
            at=datetime(2026, 11, 2, 10, tzinfo=UTC),
        ),
        "licences": record(
            tenant.reseller,
            "subscription.licences_added",
            subscription,
            actor=admin,
            customer=acme,
            before={"licences": 5},
            after={"licences": 8},
            ip="203.0.113.24",
            via="PSA sync",
            at=datetime(2026, 11, 5, 10, tzinfo=UTC),
        ),
        "suspended": record(
            tenant.reseller,
            "subscription.suspended",
            subscription,
            customer=acme,
            before={"status": "active"},
            after={"status": "suspended"},
            at=datetime(2026, 11, 9, 10, tzinfo=UTC),
        ),
    }
    theirs = CustomerFactory(reseller=other_tenant.reseller, organisation="Initech")
    record(
        other_tenant.reseller,
        "customer.updated",
        theirs,
        actor=other_tenant.owner,
        customer=theirs,
        before={"organisation": "Initech Old"},
        after={"organisation": "Initech"},
    )
    return {"admin": admin, "acme": acme, "globex": globex, "events": events}


def shown_actions(response: Any) -> list[str]:
    """The action labels of the table's rows, in order."""
    assert response.status_code == 200
    return re.findall(r"<td><strong>([^<]+)</strong>", results(response))


def test_urls():
    assert reverse("insights:audit_log") == LIST
    assert reverse("insights:audit_log_export") == EXPORT


@pytest.mark.parametrize(
    ("role", "status"), [(Role.ADMIN, 200), (Role.SALES, 403), (Role.BILLING, 403)]
)
def test_owners_and_admins_read_it_sales_and_billing_are_refused(
    role, status, tenant, other_tenant, client_for, log
):
    owner = client_for(tenant.owner)
    assert owner.get(LIST).status_code == 200
    client = client_for(member_of(tenant.reseller, role).user)
    assert client.get(LIST).status_code == status
    assert client.get(EXPORT).status_code == status
    # The ways in: the Settings page and the dashboard link to it only for those who may read it.
    link = f'href="{LIST}"'
    assert (link in client.get("/settings/").content.decode()) is (status == 200)
    assert (link in client.get(reverse("dashboard")).content.decode()) is (status == 200)
    assert link in owner.get("/settings/").content.decode()


def test_every_event_newest_first_with_who_what_customer_ip_and_changes(owner_client, tenant, log):
    response = owner_client.get(LIST)
    assert shown_actions(response) == [
        "Subscription suspended",
        "Licences added",
        "Customer invited",
    ]
    page = text(results(response))
    # The portal acted: "System"; a change made through the API names its key.
    assert "System" in page
    assert f"{log['admin'].email} through the API key PSA sync" in page
    assert "Licences: 5 → 8" in page
    assert "203.0.113.24" in page and "198.51.100.7" in page
    # The object as it reads now; the customer links to its page.
    subscription = log["events"]["licences"]
    assert str(subscription.object_repr) in page
    acme_url = reverse("customers:detail", kwargs={"customer_id": log["acme"].public_id})
    assert f'<a href="{acme_url}">Acme Iberia</a>' in response.content.decode()
    # Tenant B's event is not there.
    assert "Initech" not in response.content.decode()


def test_a_price_reads_with_its_currency_and_a_plan_by_its_name(owner_client, tenant):
    subscription = SubscriptionFactory(customer=tenant.customer)
    old_plan, new_plan = PlanFactory(), PlanFactory()
    record(
        tenant.reseller,
        "subscription.plan_changed",
        subscription,
        customer=tenant.customer,
        before={"monthly_price": "4.00", "plan_id": old_plan.pk},
        after={"monthly_price": "5.50", "plan_id": new_plan.pk},
    )
    page = text(results(owner_client.get(LIST)))
    assert "€4.00 → €5.50" in page
    assert f"{old_plan} → {new_plan}" in page


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"actor": "ADMIN"}, ["Licences added"]),  # replaced by the admin's email below
        ({"customer": "acme"}, ["Subscription suspended", "Licences added"]),
        ({"customer": "globex.nl"}, ["Customer invited"]),
        ({"action": "customer.invited"}, ["Customer invited"]),
        ({"date_from": "2026-11-05"}, ["Subscription suspended", "Licences added"]),
        ({"date_to": "2026-11-05"}, ["Licences added", "Customer invited"]),
        ({"date_from": "2026-11-05", "date_to": "2026-11-05"}, ["Licences added"]),
        ({"customer": "acme", "date_from": "2026-11-06"}, ["Subscription suspended"]),
        ({"customer": "acme", "action": "customer.invited"}, []),
    ],
)
def test_each_filter_and_combined(owner_client, log, query, expected):
    if query.get("actor") == "ADMIN":
        query = {"actor": log["admin"].email.upper()}
    assert shown_actions(owner_client.get(LIST, query)) == expected
    # The export takes the same filters.
    assert [row["action"] for row in export(owner_client, **query)] == expected


def test_the_customer_filter_takes_a_customer_id(owner_client, log):
    query = {"customer": log["globex"].public_id}
    assert shown_actions(owner_client.get(LIST, query)) == ["Customer invited"]


def test_the_actor_is_chosen_among_those_in_the_log_and_actions_are_grouped(owner_client, log):
    response = owner_client.get(LIST)
    form = response.content.decode()
    actor = form[form.index('name="actor"') : form.index("</select>", form.index('name="actor"'))]
    assert log["admin"].email in actor and log["events"]["invited"].actor_email in actor
    assert "initech" not in actor.lower()
    assert '<optgroup label="Subscriptions">' in form
    # An address in another case is the same person, chosen in the list.
    chosen = owner_client.get(LIST, {"actor": log["admin"].email.upper()}).content.decode()
    assert f'<option value="{log["admin"].email}" selected>' in chosen
    assert '<option value="subscription.licences_added">Licences added</option>' in form


def test_every_action_is_in_a_group():
    grouped = {family for _label, families in AUDIT_ACTION_GROUPS for family in families}
    assert {code.split(".")[0] for code in AUDIT_ACTION_LABELS} <= grouped


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"date_from": "2026-13-45"}, "date_from", "Enter a valid date."),
        (
            {"date_from": "2026-11-09", "date_to": "2026-11-02"},
            "date_to",
            "The end of the range is before its start.",
        ),
        ({"action": "customer.exploded"}, "action", "Select a valid choice."),
        ({"actor": "not an email"}, "actor", "Select a valid choice."),
        ({"customer": "x" * 101}, "customer", "Ensure this value has at most 100 characters"),
    ],
)
def test_bad_filters_say_why_next_to_the_field_and_keep_the_value(
    owner_client, log, query, field, message
):
    response = owner_client.get(LIST, query)
    assert response.status_code == 200
    html = response.content.decode()
    errors = re.search(rf'<small class="error" id="id_{field}_error">([^<]*)</small>', html)
    assert errors and message in errors.group(1)
    assert f'aria-describedby="id_{field}_error"' in html
    # The results alone (htmx) carry the message beside the field too.
    fragment = owner_client.get(LIST, query, headers={"HX-Request": "true"}).content.decode()
    assert re.search(
        rf'id="id_{field}_error" hx-swap-oob="true">[^<]*{re.escape(message)}', fragment
    )
    if field.startswith("date") or field == "customer":
        for name, value in query.items():
            assert f'value="{value}"' in html, name
    assert shown_actions(response) == []
    # The export refuses them as plainly.
    export_response = owner_client.get(EXPORT, query)
    assert export_response.status_code == 400
    assert message in export_response.content.decode()


def test_pages_of_fifty_whose_links_keep_the_filters(owner_client, tenant):
    for n in range(AUDIT_PAGE_SIZE + 10):
        record(
            tenant.reseller,
            "customer.updated",
            tenant.customer,
            customer=tenant.customer,
            before={"crm_id": f"{n}"},
            after={"crm_id": f"{n + 1}"},
            at=datetime(2026, 11, 1, 10, n, tzinfo=UTC),
        )
    record(tenant.reseller, "api_key.created", tenant.customer)  # filtered out
    query = {"action": "customer.updated", "date_from": "2026-11-01"}
    first = owner_client.get(LIST, query)
    assert len(shown_actions(first)) == AUDIT_PAGE_SIZE
    html = first.content.decode()
    next_link = re.search(r'<a href="(\?[^"]+)" hx-get="[^"]+" rel="next">', html)
    assert next_link
    next_url = next_link.group(1).replace("&amp;", "&")
    assert "action=customer.updated" in next_url and "date_from=2026-11-01" in next_url
    assert "CRM id: 59 → 60" in text(results(first))  # the newest first

    second = owner_client.get(LIST + next_url)
    assert len(shown_actions(second)) == 10
    assert "CRM id: 0 → 1" in text(results(second))
    previous = re.search(r'<a href="(\?[^"]+)" hx-get="[^"]+" rel="prev">', second.content.decode())
    assert previous
    previous_url = previous.group(1).replace("&amp;", "&")
    assert "action=customer.updated" in previous_url and "date_from=2026-11-01" in previous_url
    assert len(shown_actions(owner_client.get(LIST + previous_url))) == AUDIT_PAGE_SIZE


def test_htmx_gets_the_results_only(owner_client, log):
    response = owner_client.get(LIST, {"customer": "globex"}, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="results"')
    assert "<form" not in html
    assert shown_actions(response) == ["Customer invited"]
    # Without JavaScript the same filters come back as a whole page, the form filled in.
    page = owner_client.get(LIST, {"customer": "globex"}).content.decode()
    assert 'id="audit-filters"' in page and 'value="globex"' in page


def test_the_export_button_carries_the_filters(owner_client, log):
    html = owner_client.get(LIST, {"customer": "acme", "date_from": "2026-11-06"}).content.decode()
    assert f'href="{EXPORT}?customer=acme&amp;date_from=2026-11-06"' in html


def test_the_csv_columns_and_formulas_neutralised(owner_client, tenant, log):
    evil = CustomerFactory(reseller=tenant.reseller, organisation='=HYPERLINK("http://x.example")')
    record(
        tenant.reseller,
        "customer.updated",
        evil,
        actor=tenant.owner,
        customer=evil,
        before={"contact_name": "Pat"},
        after={"contact_name": "@SUM(A1)"},
        at=datetime(2026, 11, 20, 10, tzinfo=UTC),
    )
    rows = export(owner_client)
    assert [row["action_code"] for row in rows] == [
        "customer.updated",
        "subscription.suspended",
        "subscription.licences_added",
        "customer.invited",
    ]
    newest, _suspended, licences, invited = rows
    assert newest["organisation"] == '\'=HYPERLINK("http://x.example")'
    assert newest["object"].startswith("'=")
    assert newest["changes"] == "Contact name: Pat → @SUM(A1)"
    assert licences == {
        "time": "2026-11-05T10:00:00+00:00",
        "actor": log["admin"].email,
        "via": "PSA sync",
        "action": "Licences added",
        "action_code": "subscription.licences_added",
        "object_type": "subscriptions.subscription",
        "object": licences["object"],
        "customer_id": log["acme"].public_id,
        "organisation": "Acme Iberia",
        "ip": "203.0.113.24",
        "changes": "Licences: 5 → 8",
    }
    assert licences["object"].startswith("Acme Iberia")
    assert _suspended["actor"] == "System"
    assert invited["organisation"] == "Globex"
    # Tenant B's event is not in the file.
    assert "Initech" not in str(rows)


def test_another_resellers_events_and_customers_never_show(owner_client, tenant, other_tenant, log):
    theirs = other_tenant.customer
    # An event of tenant A that names tenant B's customer is not shown either.
    record(tenant.reseller, "customer.updated", theirs, customer=theirs)
    # Filtering by tenant B's customer: no rows, not an error.
    response = owner_client.get(LIST, {"customer": theirs.public_id})
    assert response.status_code == 200
    assert shown_actions(response) == []
    assert export(owner_client, customer=theirs.public_id) == []
    everything = owner_client.get(LIST)
    assert theirs.public_id not in everything.content.decode()
    assert len(shown_actions(everything)) == 3
    # An actor of tenant B only is not one of tenant A's choices; asked for, nothing matches.
    response = owner_client.get(LIST, {"actor": other_tenant.owner.email})
    assert response.status_code == 200 and shown_actions(response) == []


def test_a_customer_that_left_is_named_without_a_link(owner_client, tenant, log):
    acme = log["acme"]
    acme.status = "transferred_out"
    acme.save(update_fields=["status"])
    html = owner_client.get(LIST, {"customer": "acme"}).content.decode()
    assert "Acme Iberia" in html
    assert reverse("customers:detail", kwargs={"customer_id": acme.public_id}) not in html


def test_times_and_days_are_the_readers(owner_client, tenant):
    tenant.reseller.time_zone = "Europe/Madrid"
    tenant.reseller.save(update_fields=["time_zone"])
    record(
        tenant.reseller,
        "customer.updated",
        tenant.customer,
        customer=tenant.customer,
        before={"crm_id": "A"},
        after={"crm_id": "B"},
        at=datetime(2026, 12, 6, 23, 30, tzinfo=UTC),
    )
    response = owner_client.get(LIST)
    html = response.content.decode()
    assert '<time datetime="2026-12-07T00:30:00+01:00">' in html
    assert "Times in Europe/Madrid." in text(html)
    # The days of the filter are Madrid's: the event is on the 7th, not the 6th.
    assert shown_actions(owner_client.get(LIST, {"date_from": "2026-12-07"})) == [
        "Customer details changed"
    ]
    assert shown_actions(owner_client.get(LIST, {"date_to": "2026-12-06"})) == []
    assert [row["time"] for row in export(owner_client)] == ["2026-12-07T00:30:00+01:00"]
    assert export(owner_client, date_to="2026-12-06") == []


def events_of_several_kinds(tenant: Tenant, count: int) -> Iterator[AuditEvent]:
    actor = UserFactory()
    for n in range(count):
        customer = CustomerFactory(reseller=tenant.reseller)
        subscription = SubscriptionFactory(customer=customer)
        plans = PlanFactory(), PlanFactory()
        kind = n % 4
        if kind == 0:
            yield record(
                tenant.reseller,
                "subscription.plan_changed",
                subscription,
                actor=actor,
                customer=customer,
                before={"plan_id": plans[0].pk, "monthly_price": "4.00"},
                after={"plan_id": plans[1].pk, "monthly_price": "3.20"},
            )
        elif kind == 1:
            yield record(
                tenant.reseller,
                "customer.updated",
                customer,
                actor=actor,
                customer=customer,
                before={"organisation": "Old"},
                after={"organisation": "New"},
            )
        elif kind == 2:
            yield record(
                tenant.reseller,
                "membership.role_changed",
                tenant.reseller.memberships.get(user=tenant.owner),
                actor=actor,
                before={"role": "admin"},
                after={"role": "owner"},
            )
        else:
            yield record(
                tenant.reseller,
                "subscription.licences_added",
                subscription,
                customer=customer,
                before={"licences": 5},
                after={"licences": 8},
                via="PSA sync",
            )


def test_queries_do_not_grow_with_the_rows(owner_client, tenant, django_assert_max_num_queries):
    list(events_of_several_kinds(tenant, 4))
    with CaptureQueriesContext(connection) as few:
        assert len(shown_actions(owner_client.get(LIST))) == 4
    list(events_of_several_kinds(tenant, 56))
    with django_assert_max_num_queries(len(few)):
        assert len(shown_actions(owner_client.get(LIST))) == AUDIT_PAGE_SIZE
    # The export too: a batch's queries, however many rows.
    with CaptureQueriesContext(connection) as export_queries:
        assert len(export(owner_client)) == 60
    assert len(export_queries) <= len(few) + 2, [q["sql"][:80] for q in export_queries]
