"""The Customers page's CSV (issue 18): every customer the list shows with its search, status
and sort (not only a page), spelled out for a spreadsheet, formula cells neutralised, only the
reseller's own, for every role that sees customers, in a fixed number of queries."""

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.csv import cell_neutralise
from customers import selectors
from customers.models import Customer, CustomerInvitation
from resellers.roles import Role
from subscriptions.models import Plan, Subscription
from tests.factories import CustomerFactory, SubscriptionFactory, Tenant, catalogue, member_of

LIST = "/customers/"
EXPORT = "/customers/export.csv"
NOW = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _now():
    with time_machine.travel(NOW, tick=False):
        yield


def export(client: Client, query: str = "", **headers: str) -> list[dict[str, str]]:
    response: Any = client.get(EXPORT + query, headers=headers)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="customers-2026-03-10.csv"'
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body, newline="")))


def organisations(rows: list[dict[str, str]]) -> list[str]:
    return [row["Organisation"] for row in rows]


def listed(client: Client, query: str = "") -> list[str]:
    """The organisations of the list's page, in order (as tests/customers/test_list.py reads
    them)."""
    body = client.get(LIST + query).content.decode()
    tbody = body.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in body else ""
    return [unescape(cell) for cell in re.findall(r"<tr>\s*<td>([^<]*)</td>", tbody)]


@pytest.fixture
def customers(tenant: Tenant, other_tenant: Tenant, plans: dict[str, Plan]) -> dict[str, Customer]:
    """Tenant A's customers of every kind the filters tell apart; tenant B's must never show."""
    acme = CustomerFactory(
        reseller=tenant.reseller,
        organisation="Acme Iberia",
        domain="acme-iberia.es",
        contact_name="Marta Ruiz",
        contact_email="marta@acme-iberia.es",
        crm_id="CRM-42",
        country="ES",
        language="es",
        time_zone="Europe/Madrid",
        vat_id="ESB12345678",
        accepted_at=NOW - timedelta(days=3),
    )
    invited = CustomerFactory(
        reseller=tenant.reseller,
        organisation="Beta Invited",
        status=Customer.Status.INVITED,
        customer_type=Customer.Type.TEAM,
        domain="",
    )
    for days, token in ((20, "a"), (5, "b")):  # sent, then sent again: the first counts
        invitation = CustomerInvitation.objects.create(
            customer=invited, email=invited.contact_email, token_hash=token * 64
        )
        CustomerInvitation.objects.filter(pk=invitation.pk).update(
            created_at=NOW - timedelta(days=days)
        )
    former = CustomerFactory(
        reseller=tenant.reseller,
        organisation="Gone Away",
        status=Customer.Status.ACCESS_REVOKED,
    )
    # Acme: two live subscriptions (12 licences) and a cancelled one, which counts for nothing.
    SubscriptionFactory(customer=acme, plan=plans[Plan.Kind.FLEXIBLE], licences=5)
    SubscriptionFactory(
        customer=acme,
        plan=catalogue(name="Calendar Sync", sku="calendar-sync")[Plan.Kind.ANNUAL_MONTHLY],
        licences=7,
        monthly_price=Decimal("3.20"),
        term_start=NOW.date(),
        term_end=NOW.date() + timedelta(days=365),
    )
    SubscriptionFactory(
        customer=acme,
        plan=plans[Plan.Kind.ANNUAL_YEARLY],
        licences=3,
        status=Subscription.Status.CANCELLED,
        cancelled_at=NOW,
    )
    CustomerFactory(reseller=other_tenant.reseller, organisation="Acme Other Reseller")
    return {"acme": acme, "invited": invited, "former": former, "own": tenant.customer}


def test_the_csv_spells_each_customer_out(owner_client, customers):
    rows = {row["Organisation"]: row for row in export(owner_client)}
    acme = customers["acme"]
    assert rows["Acme Iberia"] == {
        "Customer ID": cell_neutralise(acme.public_id),
        "Organisation": "Acme Iberia",
        "Domain": "acme-iberia.es",
        "Customer type": "Domain customer",
        "Status": "Active",
        "Contact name": "Marta Ruiz",
        "Contact email": "marta@acme-iberia.es",
        "CRM id": "CRM-42",
        "Country": "ES",
        "Language": "es",
        "Time zone": "Europe/Madrid",
        "VAT id": "ESB12345678",
        "Invitation sent": "",
        "Accepted": "2026-03-07T09:30:00+00:00",
        "Live subscriptions": "2",
        "Licences": "12",
    }
    invited = rows["Beta Invited"]
    assert (invited["Customer type"], invited["Status"], invited["Domain"]) == (
        "Team customer",
        "Invited",
        "",
    )
    # The first invitation sent, not its resend.
    assert invited["Invitation sent"] == "2026-02-18T09:30:00+00:00"
    assert (invited["Accepted"], invited["Live subscriptions"], invited["Licences"]) == (
        "",
        "0",
        "0",
    )


def test_the_csv_has_the_lists_customers_with_its_filters_and_order(owner_client, customers):
    # The default: current customers, newest first, as the list.
    assert organisations(export(owner_client)) == listed(owner_client)
    assert "Gone Away" not in organisations(export(owner_client))
    for query in (
        "?q=acme",
        "?status=invited",
        "?status=access_revoked",
        "?sort=organisation",
        "?sort=-domain&q=e",
        "?q=nobody",
    ):
        assert organisations(export(owner_client, query)) == listed(owner_client, query), query
    assert organisations(export(owner_client, "?status=access_revoked")) == ["Gone Away"]
    assert organisations(export(owner_client, "?q=ACME")) == ["Acme Iberia"]


def test_unknown_values_fall_back_as_on_the_list(owner_client, customers):
    """The Customers page shows its default for a status or sort it does not know; its CSV reads
    the query string with the same form, so it does the same."""
    query = "?status=bogus&sort=sideways"
    assert organisations(export(owner_client, query)) == listed(owner_client, query)
    assert organisations(export(owner_client, query)) == organisations(export(owner_client))


def test_every_customer_not_only_a_page(owner_client, tenant):
    start = timezone.now() - timedelta(days=1)
    for n in range(selectors.CUSTOMER_PAGE_SIZE + 5):
        customer = CustomerFactory(reseller=tenant.reseller, organisation=f"Org {n:02d}")
        Customer.objects.filter(pk=customer.pk).update(created_at=start + timedelta(seconds=n))
    rows = export(owner_client, "?q=org&sort=organisation")
    assert organisations(rows) == [f"Org {n:02d}" for n in range(selectors.CUSTOMER_PAGE_SIZE + 5)]


def test_the_chunks_join_up(owner_client, tenant, plans, monkeypatch):
    """Customers are read and asked about in chunks: every row once, in order, each with its
    own licences, across the chunks' edges."""
    monkeypatch.setattr(selectors, "CUSTOMER_CSV_CHUNK_SIZE", 4)
    for n in range(10):
        customer = CustomerFactory(reseller=tenant.reseller, organisation=f"Org {n:02d}")
        SubscriptionFactory(customer=customer, plan=plans[Plan.Kind.FLEXIBLE], licences=n + 1)
    rows = export(owner_client, "?q=org&sort=organisation")
    assert [(row["Organisation"], row["Licences"]) for row in rows] == [
        (f"Org {n:02d}", str(n + 1)) for n in range(10)
    ]


@pytest.mark.parametrize("organisation", ["=1+2", "@SUM(A1)", "+cmd|' /C calc'!A0", "-2+3"])
def test_formula_cells_are_neutralised(owner_client, tenant, organisation):
    CustomerFactory(reseller=tenant.reseller, organisation=organisation, crm_id="=HYPERLINK(1)")
    response = owner_client.get(EXPORT + "?sort=organisation")
    body = b"".join(response.streaming_content).decode()
    assert '"\'=HYPERLINK(1)"' in body
    row = next(row for row in export(owner_client) if row["CRM id"])
    assert (row["Organisation"], row["CRM id"]) == (f"'{organisation}", "'=HYPERLINK(1)")


def test_only_the_resellers_own_customers(owner_client, other_tenant, customers, client_for):
    everything = organisations(export(owner_client, "?q=acme")) + organisations(
        export(owner_client, "?status=access_revoked")
    )
    assert "Acme Other Reseller" not in everything
    assert other_tenant.customer.organisation not in organisations(export(owner_client))
    theirs = organisations(export(client_for(other_tenant.owner)))
    assert set(theirs) == {"Acme Other Reseller", other_tenant.customer.organisation}


@pytest.mark.parametrize("role", [Role.ADMIN, Role.SALES, Role.BILLING])
def test_every_role_that_sees_customers_exports_them(tenant, customers, client_for, role):
    client = client_for(member_of(tenant.reseller, role).user)
    assert organisations(export(client)) == listed(client)
    assert len(listed(client)) == 3


def test_signed_out_is_sent_to_sign_in(client, db):
    response = client.get(EXPORT)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_list_links_to_the_csv_with_its_filters(owner_client, customers):
    body = owner_client.get(LIST + "?q=acme&status=active&sort=organisation").content.decode()
    match = re.search(r'<a [^>]*id="export-link"[^>]*href="([^"]*)"', body) or re.search(
        r'<a [^>]*href="([^"]*)"[^>]*id="export-link"', body
    )
    assert match
    url = urlsplit(unescape(match.group(1)))
    assert url.path == EXPORT
    assert parse_qs(url.query) == {"q": ["acme"], "status": ["active"], "sort": ["organisation"]}
    assert "Export these as CSV" in body
    # Sorted by a column through htmx, the link follows (it is part of the results).
    fragment = owner_client.get(LIST + "?sort=-domain", headers={"HX-Request": "true"})
    assert "/customers/export.csv?sort=-domain" in fragment.content.decode()
    # Nothing to export: no link.
    assert 'id="export-link"' not in owner_client.get(LIST + "?q=nobody").content.decode()


def test_a_fixed_number_of_queries_however_many_customers(
    owner_client, tenant, plans, django_assert_num_queries
):
    export(owner_client)  # session warmed up
    with CaptureQueriesContext(connection) as one:
        assert len(export(owner_client)) == 1
    queries = len(one)  # read now: the next request empties the connection's log
    for n in range(40):
        customer = CustomerFactory(reseller=tenant.reseller)
        SubscriptionFactory(customer=customer, plan=plans[Plan.Kind.FLEXIBLE], licences=n + 1)
        CustomerInvitation.objects.create(
            customer=customer, email=customer.contact_email, token_hash=f"{n:064x}"
        )
    with django_assert_num_queries(queries):
        rows = export(owner_client)
    assert len(rows) == 41
    assert sum(int(row["Licences"]) for row in rows) == sum(range(1, 41))
