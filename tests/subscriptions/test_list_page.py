"""The Subscriptions page (every customer's subscriptions, issue 18): its filters, each and
combined, sort, keyset pages whose links keep the filters, htmx fragment and plain GET, bad
filter values, empty states, roles, tenant isolation, the same number of queries on every page,
and its CSV."""

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.csv import cell_neutralise
from core.pagination import LAST
from customers.models import Customer
from resellers.roles import Role
from subscriptions.models import Plan, Subscription
from tests.factories import (
    CustomerFactory,
    SubscriptionFactory,
    Tenant,
    UserFactory,
    catalogue,
    member_of,
)
from tests.support.sessions import client_signed_in

URL = "/subscriptions/"
EXPORT = "/subscriptions/export.csv"
TODAY = date(2026, 3, 10)
Kind = Plan.Kind
Status = Subscription.Status
DASH = "\u2013"  # between the first and last row numbers shown


@pytest.fixture(autouse=True)
def _today():
    with time_machine.travel(datetime(2026, 3, 10, 9, tzinfo=UTC), tick=False):
        yield


def subscription(customer: Customer, plan: Plan, **fields: Any) -> Subscription:
    """A subscription written directly (SubscriptionFactory) on `plan`: an annual or trial plan
    gets a term, a suspended one a reason, a cancelled one its date."""
    if plan.kind != Kind.FLEXIBLE and "term_end" not in fields:
        fields["term_end"] = TODAY + timedelta(days=200)
    if fields.get("term_end"):
        fields.setdefault("term_start", fields["term_end"] - timedelta(days=365))
    if fields.get("status") == Status.SUSPENDED:
        fields.setdefault("suspension_reason", Subscription.SuspensionReason.PENDING_PAYMENT)
    if fields.get("status") == Status.CANCELLED:
        fields.setdefault("cancelled_at", datetime(2026, 2, 1, tzinfo=UTC))
    return SubscriptionFactory(customer=customer, plan=plan, **fields)


def get(client: Client, query: str = "", **headers: str) -> str:
    response = client.get(URL + query, headers=headers)
    assert response.status_code == 200
    return response.content.decode()


def shown(body: str) -> list[str]:
    """The subscriptions' public ids in the table, in order (from their rows' links)."""
    tbody = body.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in body else ""
    return re.findall(r'href="/subscriptions/([^/"]+)/"', tbody)


def ids(*subscriptions: Subscription) -> list[str]:
    return [s.public_id for s in subscriptions]


def csv_ids(*subscriptions: Subscription) -> list[str]:
    """The public ids as the CSV writes them: one that starts with "-" is neutralised like any
    cell that could start a formula (core.csv)."""
    return [cell_neutralise(s.public_id) for s in subscriptions]


def link(body: str, label: str) -> str:
    match = re.search(r'<a [^>]*href="([^"]*)"[^>]*>' + re.escape(label) + "</a>", body)
    assert match, f"no {label!r} link"
    return unescape(match.group(1))


def export(client: Client, query: str = "") -> list[dict[str, str]]:
    response: Any = client.get(EXPORT + query)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="subscriptions-2026-03-10.csv"'
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body, newline="")))


@pytest.fixture
def book(tenant: Tenant, other_tenant: Tenant, plans: dict[str, Plan]) -> dict[str, Subscription]:
    """Tenant A's subscriptions, one of each kind of thing a filter tells apart; tenant B has
    its own, which must never show."""
    calendar = catalogue(name="Calendar Sync", sku="calendar-sync")
    acme = CustomerFactory(
        reseller=tenant.reseller, organisation="Acme Iberia", domain="acme-iberia.es"
    )
    zeta = CustomerFactory(reseller=tenant.reseller, organisation="Zeta Labs", domain="zeta.io")
    left = CustomerFactory(
        reseller=tenant.reseller, organisation="Gone Away", status=Customer.Status.ACCESS_REVOKED
    )
    book = {
        "flexible": subscription(acme, plans[Kind.FLEXIBLE], licences=7),
        "annual_soon": subscription(
            zeta,
            plans[Kind.ANNUAL_MONTHLY],
            licences=12,
            monthly_price=Decimal("3.20"),
            term_end=TODAY + timedelta(days=40),
            renewal_setting=Subscription.RenewalSetting.RENEW_WITH_COUNT,
            renewal_licences=10,
        ),
        "yearly_late": subscription(
            acme,
            calendar[Kind.ANNUAL_YEARLY],
            licences=30,
            currency="USD",
            monthly_price=Decimal("4.00"),
            term_end=TODAY + timedelta(days=300),
            renewal_setting=Subscription.RenewalSetting.CANCEL_AT_TERM_END,
        ),
        "suspended": subscription(
            tenant.customer,
            plans[Kind.ANNUAL_YEARLY],
            licences=3,
            status=Status.SUSPENDED,
            term_end=TODAY + timedelta(days=20),
        ),
        "trial": subscription(
            zeta,
            calendar[Kind.TRIAL],
            licences=2,
            status=Status.TRIAL,
            monthly_price=Decimal("0.00"),
            term_end=TODAY + timedelta(days=10),
        ),
        "cancelled": subscription(
            tenant.customer, calendar[Kind.FLEXIBLE], status=Status.CANCELLED
        ),
    }
    # A customer that left the reseller: its subscriptions are no longer the reseller's to see.
    subscription(left, plans[Kind.FLEXIBLE], licences=99)
    # Tenant B's, on the same plans, with a name that matches tenant A's searches.
    other = CustomerFactory(reseller=other_tenant.reseller, organisation="Acme Other Reseller")
    subscription(other, plans[Kind.FLEXIBLE], licences=11)
    subscription(other_tenant.customer, plans[Kind.ANNUAL_MONTHLY], licences=4)
    return book


# --- filters ----------------------------------------------------------------------------------


def test_the_default_lists_the_live_subscriptions_of_current_customers_by_customer(
    owner_client, book
):
    body = get(owner_client)
    # By organisation (A to Z): Acme Iberia, Customer n (tenant A's own), Zeta Labs.
    acme = {book["flexible"].public_id, book["yearly_late"].public_id}
    zeta = {book["annual_soon"].public_id, book["trial"].public_id}
    rows = shown(body)
    assert set(rows[:2]) == acme and rows[2] == book["suspended"].public_id
    assert set(rows[3:]) == zeta
    assert "Gone Away" not in body and "Acme Other Reseller" not in body
    assert book["cancelled"].public_id not in rows
    assert "5 subscriptions" in body


def test_status_filter_each_and_all(owner_client, book):
    assert shown(get(owner_client, "?status=suspended")) == ids(book["suspended"])
    assert shown(get(owner_client, "?status=trial")) == ids(book["trial"])
    assert shown(get(owner_client, "?status=cancelled")) == ids(book["cancelled"])
    assert set(shown(get(owner_client, "?status=active"))) == set(
        ids(book["flexible"], book["annual_soon"], book["yearly_late"])
    )
    everything = shown(get(owner_client, "?status=all"))
    assert set(everything) == {s.public_id for s in book.values()}


def test_product_plan_renewal_and_currency_filters(owner_client, book, plans):
    product = plans[Kind.FLEXIBLE].product.public_id
    assert set(shown(get(owner_client, f"?product={product}"))) == set(
        ids(book["flexible"], book["annual_soon"], book["suspended"])
    )
    assert shown(get(owner_client, "?plan=flexible")) == ids(book["flexible"])
    assert set(shown(get(owner_client, "?plan=annual"))) == set(
        ids(book["annual_soon"], book["yearly_late"], book["suspended"])
    )
    assert shown(get(owner_client, "?plan=annual_yearly&status=all")) == ids(
        book["yearly_late"], book["suspended"]
    )
    assert shown(get(owner_client, "?renewal=cancel_at_term_end")) == ids(book["yearly_late"])
    assert shown(get(owner_client, "?renewal=renew_with_count")) == ids(book["annual_soon"])
    assert shown(get(owner_client, "?currency=USD")) == ids(book["yearly_late"])


def test_term_ends_before_keeps_terms_whose_last_day_is_before_the_date(owner_client, book):
    # The annual term ending in 40 days ends before day 41 (its last day is day 39), not before
    # day 40 - its term_end, the first day after it - minus one.
    day = TODAY + timedelta(days=40)
    assert book["annual_soon"].public_id in shown(get(owner_client, f"?term_ends_before={day}"))
    earlier = day - timedelta(days=1)
    assert book["annual_soon"].public_id not in shown(
        get(owner_client, f"?term_ends_before={earlier}")
    )
    # Flexible plans have no term: never listed by it.
    far = TODAY + timedelta(days=1000)
    assert book["flexible"].public_id not in shown(get(owner_client, f"?term_ends_before={far}"))


def test_annual_terms_ending_in_the_next_60_days(owner_client, book):
    """What a reseller asks of the page: annual terms ending in the next 60 days, soonest first."""
    day = TODAY + timedelta(days=61)
    body = get(owner_client, f"?plan=annual&term_ends_before={day}&sort=term_end")
    assert shown(body) == ids(book["suspended"], book["annual_soon"])


def test_customer_search_by_organisation_or_domain(owner_client, book):
    assert set(shown(get(owner_client, "?customer=acme"))) == set(
        ids(book["flexible"], book["yearly_late"])
    )
    assert set(shown(get(owner_client, "?customer=ZETA.IO"))) == set(
        ids(book["annual_soon"], book["trial"])
    )
    # Tenant B's customer is named Acme too: never found.
    assert "Acme Other Reseller" not in get(owner_client, "?customer=acme+other")
    # The box takes no more than a search is cut to.
    box = re.search(r'<input type="search" name="customer"[^>]*>', get(owner_client))
    assert box and 'maxlength="100"' in box.group(0)


def test_filters_combined(owner_client, book):
    assert shown(get(owner_client, "?customer=acme&currency=EUR&plan=flexible")) == ids(
        book["flexible"]
    )
    assert shown(get(owner_client, "?customer=acme&currency=EUR&plan=annual")) == []
    assert shown(get(owner_client, "?customer=zeta&status=trial&product=")) == ids(book["trial"])


def test_sorts(owner_client, book):
    live = [book[k] for k in ("flexible", "annual_soon", "yearly_late", "suspended", "trial")]
    by_licences = sorted(live, key=lambda s: s.licences)
    assert shown(get(owner_client, "?sort=licences")) == ids(*by_licences)
    assert shown(get(owner_client, "?sort=-licences")) == ids(*reversed(by_licences))
    # Term end: the term's end, or the current period's for a plan without one.
    by_end = sorted(live, key=lambda s: (s.term_end or s.period_end, s.pk))
    assert shown(get(owner_client, "?sort=term_end")) == ids(*by_end)
    assert shown(get(owner_client, "?sort=-created")) == ids(*sorted(live, key=lambda s: -s.pk))
    # An unknown sort falls back to the default, as on the Customers page.
    assert shown(get(owner_client, "?sort=bogus")) == shown(get(owner_client))


# --- the table ------------------------------------------------------------------------------------


def test_a_row_shows_what_a_reseller_needs(owner_client, book):
    body = get(owner_client, "?customer=zeta&plan=annual_monthly")
    row = body.split("<tbody>", 1)[1].split("</tr>", 1)[0]
    annual = book["annual_soon"]
    assert f'href="/customers/{annual.customer.public_id}/"' in row
    assert f'href="/subscriptions/{annual.public_id}/"' in row
    assert "Zeta Labs" in row and "zeta.io" in row
    assert "Shared Contacts for Gmail" in row and "Annual, paid monthly" in row
    assert '<span class="badge status-active">Active</span>' in row
    # 12 licences at €3.20 a month each: €38.40 a month.
    assert "€3.20" in row and "€38.40" in row
    assert "Renews on April 19, 2026" in row
    assert "Renew with a set number of licences: 10" in row
    assert "Reseller card" not in row  # the payer is in the CSV, not on the crowded list


def test_mrr_only_for_active_subscriptions(owner_client, book):
    suspended = get(owner_client, "?status=suspended").split("<tbody>", 1)[1]
    assert "Payment pending" in suspended
    # Its price shows; no MRR while suspended.
    assert (
        "€4.00" in suspended
        and "€12.00" not in suspended
        and '<td class="num">—</td>' in (suspended)
    )


# --- pages and htmx -------------------------------------------------------------------------


@pytest.fixture
def many(tenant: Tenant, plans: dict[str, Plan]) -> list[Subscription]:
    """62 live flexible EUR subscriptions of tenant A (one per customer), and 5 in USD."""
    made = []
    for n in range(62):
        customer = CustomerFactory(reseller=tenant.reseller, organisation=f"Org {n:02d}")
        made.append(subscription(customer, plans[Kind.FLEXIBLE], licences=n + 1))
    for n in range(5):
        customer = CustomerFactory(reseller=tenant.reseller, organisation=f"Dollar {n}")
        subscription(customer, plans[Kind.FLEXIBLE], currency="USD")
    return made


def test_pages_of_50_whose_links_keep_the_filters(owner_client, many):
    first = get(owner_client, "?currency=EUR&plan=flexible&sort=-licences")
    assert shown(first) == ids(*sorted(many, key=lambda s: -s.licences)[:50])
    assert f"1{DASH}50 of 62" in first
    following = link(first, "Next")
    for param in ("currency=EUR", "plan=flexible", "sort=-licences"):
        assert param in following
    second = get(owner_client, following)
    assert shown(second) == ids(*sorted(many, key=lambda s: -s.licences)[50:])
    assert f"51{DASH}62 of 62" in second
    back = link(second, "Previous")
    assert "currency=EUR" in back and "plan=flexible" in back
    assert shown(get(owner_client, back)) == shown(first)
    assert "currency=EUR" in link(second, "First")
    # The export link carries them too.
    assert parse_qs(urlsplit(link(first, "Export these as CSV")).query) == {
        "currency": ["EUR"],
        "plan": ["flexible"],
        "sort": ["-licences"],
    }


@pytest.mark.parametrize("sort", ["customer", "-customer", "term_end", "-term_end", "created"])
def test_walking_the_pages_forwards_and_back_meets_every_row_once(owner_client, many, sort):
    """Every sort's keys (a name, a date, a number) make cursors that lead on and back."""
    everything = shown(get(owner_client, f"?sort={sort}&status=all"))
    assert len(everything) == 50
    seen: list[str] = []
    body = get(owner_client, f"?sort={sort}")
    while True:
        seen += shown(body)
        if 'rel="next"' not in body:
            break
        body = get(owner_client, link(body, "Next"))
    assert len(seen) == len(set(seen)) == 67
    assert seen[:50] == everything
    back: list[str] = []
    body = get(owner_client, f"?sort={sort}&cursor={LAST}")
    while True:
        back = shown(body) + back
        if 'rel="prev"' not in body:
            break
        body = get(owner_client, link(body, "Previous"))
    assert back == seen


def test_htmx_gets_the_results_only_and_a_plain_get_the_whole_page(owner_client, book):
    page = get(owner_client, "?customer=zeta")
    assert "<header" in page and 'id="subscription-filters"' in page and 'id="results"' in page
    fragment = get(owner_client, "?customer=zeta", HX_Request="true")
    assert fragment.lstrip().startswith('<div id="results"')
    assert "<header" not in fragment and set(shown(fragment)) == set(
        ids(book["annual_soon"], book["trial"])
    )
    # The form works without JavaScript: a GET form to the page itself.
    assert re.search(r'<form method="get" action="/subscriptions/"', page)


def test_same_number_of_queries_on_every_page_filter_and_fragment(
    owner_client, many, django_assert_num_queries
):
    get(owner_client)  # session warmed up
    with CaptureQueriesContext(connection) as first_page:
        following = link(get(owner_client), "Next")
    # Read now: the next request empties the connection's log of queries.
    queries = len(first_page)
    for query in (
        following,
        f"?cursor={LAST}",
        "?customer=org+1&status=all",
        "?currency=EUR&plan=flexible&product=&sort=term_end",
        "?sort=-created&renewal=auto_renew",
    ):
        with django_assert_num_queries(queries):
            get(owner_client, query)
    with django_assert_num_queries(queries):
        get(owner_client, following, HX_Request="true")
    # An empty page asks once more, whether there is anything at all (what it then says).
    with django_assert_num_queries(queries + 1):
        body = get(owner_client, "?plan=annual&term_ends_before=2027-01-01&sort=term_end")
    assert "No subscriptions match these filters." in body


# --- bad filter values ------------------------------------------------------------------------


def test_an_unknown_status_product_or_plan_is_shown_beside_the_field(owner_client, book):
    for query, field in (
        ("?status=bogus", "status"),
        ("?product=0123456789abcdefghij", "product"),
        ("?plan=monthly", "plan"),
        ("?currency=XYZ", "currency"),
        ("?renewal=sometimes", "renewal"),
    ):
        body = get(owner_client, query)
        assert "Correct the filters to see subscriptions" in body, query
        assert re.search(
            rf'<small class="error" id="id_{field}_error">Select a valid choice', body
        ), query
        assert shown(body) == [], query


def test_a_malformed_date_keeps_what_was_typed_with_a_message(owner_client, book):
    body = get(owner_client, "?term_ends_before=2026-13-45&customer=acme")
    assert 'value="2026-13-45"' in body
    assert '<small class="error" id="id_term_ends_before_error">Enter a valid date.</small>' in body
    assert 'value="acme"' in body and shown(body) == []
    # Through htmx, the message beside the field follows out of band.
    fragment = get(owner_client, "?term_ends_before=2026-13-45", HX_Request="true")
    assert 'id="id_term_ends_before_error" hx-swap-oob="true">Enter a valid date.' in fragment
    fixed = get(owner_client, "?term_ends_before=2026-12-31", HX_Request="true")
    assert 'id="id_term_ends_before_error" hx-swap-oob="true"></small>' in fixed


def test_the_export_refuses_bad_filters_as_the_page_does(owner_client, book):
    response = owner_client.get(EXPORT + "?status=bogus&term_ends_before=soon")
    assert response.status_code == 400
    assert "Enter a valid date." in response.content.decode()


def test_a_stale_cursor_shows_the_first_page(owner_client, many):
    assert shown(get(owner_client, "?cursor=not-a-cursor")) == shown(get(owner_client))


# --- empty states -----------------------------------------------------------------------------


def test_no_subscriptions_yet(owner_client, tenant, other_tenant, plans):
    # Tenant B has some: they do not count.
    subscription(other_tenant.customer, plans[Kind.FLEXIBLE])
    body = get(owner_client)
    assert "Your customers have no subscriptions yet." in body
    assert "export.csv" not in body
    assert 'id="none-match"' not in body
    fragment = get(owner_client, "?status=all", HX_Request="true")
    assert "Your customers have no subscriptions yet." in fragment


def test_none_match_the_filters(owner_client, book):
    body = get(owner_client, "?customer=nobody")
    assert "No subscriptions match these filters." in body
    assert "no subscriptions yet" not in body


def test_only_cancelled_ones_offers_to_show_them(owner_client, tenant, plans):
    cancelled = subscription(tenant.customer, plans[Kind.FLEXIBLE], status=Status.CANCELLED)
    body = get(owner_client)
    assert "None of your customers' subscriptions is live." in body
    assert shown(get(owner_client, link(body, "Show cancelled ones too"))) == ids(cancelled)


# --- roles and tenancy ----------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.ADMIN, Role.SALES, Role.BILLING])
def test_every_role_sees_the_list_and_its_csv_read_only(tenant, book, client_for, role):
    client = client_for(member_of(tenant.reseller, role).user)
    body = get(client)
    assert len(shown(body)) == 5
    # Read-only: no form posts from this page.
    assert 'method="post"' not in body.split('id="results"', 1)[1]
    assert len(export(client)) == 5


def test_signed_out_and_outsiders_are_turned_away(client, db):
    assert client.get(URL).status_code == 302
    assert "/accounts/login/" in client.get(EXPORT)["Location"]
    outsider = client_signed_in(UserFactory())
    assert outsider.get(URL)["Location"] == reverse("resellers:apply")


def test_each_reseller_sees_only_its_own(other_tenant, book, client_for):
    client = client_for(other_tenant.owner)
    body = get(client, "?status=all")
    assert len(shown(body)) == 2
    assert "Acme Iberia" not in body and "Zeta Labs" not in body
    assert {row["Organisation"] for row in export(client, "?status=all")} == {
        "Acme Other Reseller",
        other_tenant.customer.organisation,
    }


# --- CSV ----------------------------------------------------------------------------------------


def test_the_csv_has_every_matching_row_not_only_a_page(owner_client, many):
    rows = export(owner_client, "?currency=EUR&sort=-licences")
    assert [row["Subscription ID"] for row in rows] == csv_ids(
        *sorted(many, key=lambda s: -s.licences)
    )


def test_the_csv_follows_the_filters_and_spells_each_column_out(owner_client, book):
    rows = export(owner_client, "?customer=zeta&status=all")
    assert [row["Subscription ID"] for row in rows] == csv_ids(book["annual_soon"], book["trial"])
    annual, trial = rows
    assert list(annual) == [
        "Subscription ID",
        "Customer ID",
        "Organisation",
        "Domain",
        "Product",
        "Plan",
        "Plan kind",
        "Status",
        "Suspension reason",
        "Licences",
        "Currency",
        "Price per licence per month",
        "MRR",
        "Current period starts",
        "Current period ends",
        "Term ends",
        "Renewal setting",
        "Licences at renewal",
        "Paid with",
        "Created",
    ]
    subscription = book["annual_soon"]
    assert annual == {
        "Subscription ID": cell_neutralise(subscription.public_id),
        "Customer ID": cell_neutralise(subscription.customer.public_id),
        "Organisation": "Zeta Labs",
        "Domain": "zeta.io",
        "Product": "Shared Contacts for Gmail",
        "Plan": "Annual, paid monthly",
        "Plan kind": "annual_monthly",
        "Status": "Active",
        "Suspension reason": "",
        "Licences": "12",
        "Currency": "EUR",
        "Price per licence per month": "3.20",
        "MRR": "38.40",
        "Current period starts": subscription.period_start.isoformat(),
        # Last days, as the pages show them.
        "Current period ends": (subscription.period_end - timedelta(days=1)).isoformat(),
        "Term ends": "2026-04-18",
        "Renewal setting": "Renew with a set number of licences",
        "Licences at renewal": "10",
        "Paid with": "Reseller card",
        "Created": "2026-03-10T09:00:00+00:00",
    }
    # Not active: no MRR.
    assert (trial["Status"], trial["MRR"], trial["Plan kind"]) == ("Trial", "", "trial")
    suspended = export(owner_client, "?status=suspended")[0]
    assert (suspended["Suspension reason"], suspended["MRR"]) == ("Payment pending", "")
    flexible = export(owner_client, "?plan=flexible")[0]
    assert (flexible["Term ends"], flexible["Licences at renewal"]) == ("", "")


def test_the_csv_in_the_users_language(owner_client, book):
    response = owner_client.get(EXPORT + "?status=suspended", HTTP_ACCEPT_LANGUAGE="es")
    header, row = b"".join(response.streaming_content).decode().splitlines()
    assert header.startswith("ID de suscripción,")
    # The labels, read when the view ran (the rows are written afterwards).
    assert "Suspendido" in row and "Pago pendiente" in row and "Anual, pago anual" in row


def test_the_page_in_the_users_language(owner_client, book):
    response = owner_client.get(URL + "?status=all", HTTP_ACCEPT_LANGUAGE="es")
    body = response.content.decode()
    assert response.status_code == 200 and len(shown(body)) == 6
    # The filters' choices and the rows' labels are read per request, not at import.
    assert '<option value="suspended">Suspendido</option>' in body
    assert "Anual, pago mensual" in body and "Pago pendiente" in body


@pytest.mark.parametrize("organisation", ["=1+2", "@SUM(A1)", "+cmd", "-2+3"])
def test_formula_cells_are_neutralised(owner_client, tenant, plans, organisation):
    customer = CustomerFactory(reseller=tenant.reseller, organisation=organisation)
    subscription(customer, plans[Kind.FLEXIBLE])
    response = owner_client.get(EXPORT)
    body = b"".join(response.streaming_content).decode()
    assert f'"\'{organisation}"' in body
    assert [row["Organisation"] for row in export(owner_client)] == [f"'{organisation}"]


def test_the_csv_is_one_query_however_many_rows(
    owner_client, tenant, plans, django_assert_num_queries
):
    few = CustomerFactory(reseller=tenant.reseller)
    subscription(few, plans[Kind.FLEXIBLE])
    export(owner_client)  # session warmed up
    with CaptureQueriesContext(connection) as one:
        assert len(export(owner_client)) == 1
    queries = len(one)
    for n in range(40):
        customer = CustomerFactory(reseller=tenant.reseller)
        subscription(customer, plans[Kind.ANNUAL_MONTHLY if n % 2 else Kind.FLEXIBLE])
    with django_assert_num_queries(queries):
        assert len(export(owner_client)) == 41
