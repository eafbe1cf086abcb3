"""The Customers page: search, status filter (former customers too), sort, keyset pages, htmx
fragment and plain GET, tenant isolation, and the same number of queries on every page."""

import importlib
import re
from datetime import timedelta
from html import unescape

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.pagination import LAST, keyset_cursor
from customers import selectors
from customers.models import Customer
from tests.factories import CustomerFactory

URL = "/customers/"
DASH = "\u2013"  # en dash, between the first and the last row number shown


def organisations(body: str) -> list[str]:
    """The organisation cells of the results table, in order."""
    tbody = body.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in body else ""
    return [unescape(cell) for cell in re.findall(r"<tr>\s*<td>([^<]*)</td>", tbody)]


def link(body: str, label: str) -> str:
    """The href of the link with this text (e.g. Next), as the browser would follow it."""
    match = re.search(r'<a [^>]*href="([^"]*)"[^>]*>' + re.escape(label) + "</a>", body)
    assert match, f"no {label!r} link"
    return unescape(match.group(1))


def get(client, query: str = "", **headers: str) -> str:
    response = client.get(URL + query, headers=headers)
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def many(tenant):
    """60 more customers of tenant A, one second apart (newest last), names in random order."""
    start = timezone.now() - timedelta(days=1)
    customers = []
    for n in range(60):
        customer = CustomerFactory(
            reseller=tenant.reseller,
            organisation=f"Org {(n * 37) % 60:02d}",
            domain=f"d{n:02d}.example",
            status=Customer.Status.INVITED if n % 3 == 0 else Customer.Status.ACTIVE,
        )
        Customer.objects.filter(pk=customer.pk).update(created_at=start + timedelta(seconds=n))
        customers.append(customer)
    return customers


# --- tenant isolation ------------------------------------------------------------------------


def test_list_and_search_show_only_this_resellers_customers(owner_client, tenant, other_tenant):
    CustomerFactory(reseller=other_tenant.reseller, organisation="Shared Name Ltd")
    CustomerFactory(reseller=tenant.reseller, organisation="Shared Name GmbH")
    body = get(owner_client)
    assert tenant.customer.organisation in body
    assert other_tenant.customer.organisation not in body
    assert organisations(get(owner_client, "?q=shared+name")) == ["Shared Name GmbH"]
    # Nor through a status of former customers, nor a sort.
    other_tenant.customer.status = Customer.Status.ACCESS_REVOKED
    other_tenant.customer.save()
    assert organisations(get(owner_client, "?status=access_revoked&sort=organisation")) == []


def test_search_by_domain_of_another_reseller_finds_nothing(owner_client, other_tenant):
    assert organisations(get(owner_client, f"?q={other_tenant.customer.domain}")) == []
    assert "No customer matches" in get(owner_client, f"?q={other_tenant.customer.domain}")


# --- search ----------------------------------------------------------------------------------


def test_search_matches_organisation_domain_and_email_case_insensitively(owner_client, tenant):
    CustomerFactory(reseller=tenant.reseller, organisation="Blue Harbour Dental", domain="bhd.es")
    CustomerFactory(reseller=tenant.reseller, organisation="Other", domain="harbourside.example")
    CustomerFactory(
        reseller=tenant.reseller,
        organisation="Team Alpha",
        domain="",
        customer_type=Customer.Type.TEAM,
        contact_email="HARBOUR.master@gmail.com",
    )
    CustomerFactory(reseller=tenant.reseller, organisation="Unrelated", domain="nothing.example")
    found = organisations(get(owner_client, "?q=  hArBoUr  "))
    assert sorted(found) == ["Blue Harbour Dental", "Other", "Team Alpha"]


def test_search_treats_like_wildcards_literally(owner_client, tenant):
    CustomerFactory(reseller=tenant.reseller, organisation="100% Cotton")
    CustomerFactory(reseller=tenant.reseller, organisation="1000 Cotton")
    assert organisations(get(owner_client, "?q=100%25")) == ["100% Cotton"]
    assert organisations(get(owner_client, "?q=_")) == []


def test_no_match_says_how_to_clear_the_search_and_keeps_the_filter(owner_client, tenant):
    body = get(owner_client, "?q=zzz&status=invited&sort=domain")
    assert "No customer matches “zzz”" in body
    assert link(body, "Clear the search") == "?status=invited&sort=domain"


# --- status filter and former customers ------------------------------------------------------


def test_default_view_shows_current_customers_only(owner_client, tenant):
    for status in Customer.Status.values:
        CustomerFactory(reseller=tenant.reseller, organisation=f"Is {status}", status=status)
    shown = organisations(get(owner_client))
    assert {"Is invited", "Is active", "Is cancelled"} <= set(shown)
    assert "Is access_revoked" not in shown and "Is transferred_out" not in shown


@pytest.mark.parametrize("status", ["access_revoked", "transferred_out"])
def test_former_customers_are_listed_on_request_without_a_link(owner_client, tenant, status):
    former = CustomerFactory(reseller=tenant.reseller, organisation="Gone Away", status=status)
    body = get(owner_client, f"?status={status}")
    assert organisations(body) == ["Gone Away"]
    assert f"/customers/{former.public_id}/" not in body
    assert "Manage" not in body.split("<tbody>", 1)[1]
    assert "no longer manage them" in body
    # They are not manageable: the customer page stays a 404.
    assert owner_client.get(f"/customers/{former.public_id}/").status_code == 404


def test_status_filter_offers_current_and_former_statuses(owner_client):
    body = get(owner_client)
    for value in ("invited", "active", "cancelled", "access_revoked", "transferred_out"):
        assert f'<option value="{value}"' in body
    assert 'label="Former"' in body


def test_current_status_filter_and_unknown_status(owner_client, tenant):
    CustomerFactory(reseller=tenant.reseller, organisation="Waiting Co", status="invited")
    assert organisations(get(owner_client, "?status=invited")) == ["Waiting Co"]
    assert tenant.customer.organisation in organisations(get(owner_client, "?status=bogus"))


def test_customer_former_list_selector_is_separate_from_customer_get(tenant):
    gone = CustomerFactory(reseller=tenant.reseller, status=Customer.Status.TRANSFERRED_OUT)
    assert list(selectors.customer_former_list(reseller=tenant.reseller)) == [gone]
    from django.http import Http404

    with pytest.raises(Http404):
        selectors.customer_get(reseller=tenant.reseller, public_id=gone.public_id)


# --- sort ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sort", "key"),
    [
        ("organisation", lambda c: (c.organisation.lower(), c.pk)),
        ("domain", lambda c: (c.domain, c.pk)),
        ("status", lambda c: (c.status, c.created_at, c.pk)),
        ("created", lambda c: (c.created_at, c.pk)),
    ],
)
@pytest.mark.parametrize("descending", [False, True])
def test_each_sort_orders_the_whole_list_across_pages(
    owner_client, tenant, many, sort, key, descending
):
    # 50 rows alike in every key but the primary key: page boundaries fall among them, where a
    # keyset without a unique last key would lose or repeat rows.
    Customer.objects.filter(pk__in=[c.pk for c in many[:50]]).update(
        organisation="Same Name", domain="", created_at=many[0].created_at
    )
    expected = [
        c.organisation
        for c in sorted(
            Customer.objects.filter(reseller=tenant.reseller, status__in=["invited", "active"]),
            key=key,
            reverse=descending,
        )
    ]
    seen: list[str] = []
    body = get(owner_client, f"?sort={'-' if descending else ''}{sort}")
    while True:
        seen += organisations(body)
        if 'rel="next"' not in body:
            break
        body = get(owner_client, link(body, "Next"))
    assert seen == expected


def test_column_headers_are_links_that_keep_search_and_filter(owner_client, tenant):
    body = get(owner_client, "?q=customer&status=active&sort=organisation")
    assert link(body, "Organisation") == "?q=customer&status=active&sort=-organisation"
    assert link(body, "Domain") == "?q=customer&status=active&sort=domain"
    assert link(body, "Created") == "?q=customer&status=active&sort=-created"  # newest first
    assert 'aria-sort="ascending"><a class="sort"' in body
    descending = get(owner_client, "?sort=-organisation")
    assert link(descending, "Organisation") == "?sort=organisation"
    assert 'aria-sort="descending"' in descending


def test_unknown_sort_falls_back_to_newest_first(owner_client, tenant, many):
    assert organisations(get(owner_client, "?sort=contact_email;drop")) == organisations(
        get(owner_client)
    )


# --- pages -----------------------------------------------------------------------------------


def test_pages_say_where_they_are_and_keep_search_filter_and_sort(owner_client, many):
    # 40 active of "Org" (20 invited are filtered out) plus tenant.customer, which does not match.
    first = get(owner_client, "?q=org&status=active&sort=domain")
    assert f"1{DASH}25 of 40" in first
    assert 'rel="prev"' not in first
    following = link(first, "Next")
    assert following.startswith("?q=org&status=active&sort=domain&cursor=")
    second = get(owner_client, following)
    assert f"26{DASH}40 of 40" in second and 'rel="next"' not in second
    back = get(owner_client, link(second, "Previous"))
    assert organisations(back) == organisations(first) and f"1{DASH}25 of 40" in back
    last = get(owner_client, link(first, "Last"))
    assert f"26{DASH}40 of 40" in last and organisations(last) == organisations(second)
    assert link(second, "First") == "?q=org&status=active&sort=domain"


def test_a_short_list_shows_its_size_and_no_page_links(owner_client, tenant):
    body = get(owner_client)
    assert "1 customer" in body and "Next" not in body and "Previous" not in body


def test_a_cursor_that_is_not_ours_or_for_another_sort_shows_the_first_page(owner_client, many):
    first = organisations(get(owner_client))
    assert organisations(get(owner_client, "?cursor=forged")) == first
    other_sort = keyset_cursor(sort="organisation", values=["org 10", 1], position=25)
    assert organisations(get(owner_client, f"?cursor={other_sort}")) == first


def test_a_page_emptied_meanwhile_offers_the_first_page(owner_client, tenant, many):
    body = get(owner_client)
    following = link(body, "Next")
    first_page = Customer.objects.filter(reseller=tenant.reseller).order_by("-created_at", "-id")
    Customer.objects.filter(reseller=tenant.reseller).exclude(
        pk__in=list(first_page.values_list("pk", flat=True)[:25])
    ).delete()
    emptied = get(owner_client, following)
    assert "This page is empty now" in emptied and link(emptied, "Go to the first page") == "?"


def test_same_number_of_queries_on_first_deep_last_page_and_search(
    owner_client, tenant, many, django_assert_num_queries
):
    CustomerFactory(reseller=tenant.reseller, status=Customer.Status.ACCESS_REVOKED)
    get(owner_client)  # session and caches warmed up
    with CaptureQueriesContext(connection) as first_page:
        get(owner_client)
    deep = keyset_cursor(
        sort=selectors.DEFAULT_CUSTOMER_SORT,
        values=[many[20].created_at, many[20].pk],
        position=40,
    )
    for query in (
        f"?cursor={deep}",
        f"?cursor={LAST}",
        "?q=org+1",
        "?q=org",  # counted: 60 customers
        "?q=org",  # the count known: the page's keys first, then its rows (deferred join)
        "?q=org&status=invited&sort=-organisation",
        "?status=access_revoked",
    ):
        with django_assert_num_queries(len(first_page)):
            get(owner_client, query)
    with django_assert_num_queries(len(first_page)):
        get(owner_client, f"?cursor={deep}", HX_Request="true")


def test_a_common_term_reads_the_page_keys_first_and_shows_the_same_rows(owner_client, many):
    counted = get(owner_client, "?q=org")
    with CaptureQueriesContext(connection) as queries:
        deferred = get(owner_client, "?q=org")
    assert any('"id" IN (SELECT' in query["sql"] for query in queries.captured_queries)
    assert re.findall(r"Org \d\d", deferred) == re.findall(r"Org \d\d", counted)
    assert "1\u201325 of 60" in deferred


# --- htmx and no JavaScript -------------------------------------------------------------------


def test_htmx_gets_the_results_fragment_and_plain_get_the_whole_page(owner_client, tenant):
    page = get(owner_client, "?q=customer")
    assert "<header" in page and 'name="q"' in page and 'id="results"' in page
    fragment = get(owner_client, "?q=customer", HX_Request="true")
    assert fragment.lstrip().startswith('<div id="results"')
    assert "<header" not in fragment and tenant.customer.organisation in fragment
    # Back button with an evicted htmx history cache: the whole page again.
    restored = get(
        owner_client, "?q=customer", HX_Request="true", HX_History_Restore_Request="true"
    )
    assert "<header" in restored
    response = owner_client.get(URL)
    assert "HX-Request" in response["Vary"]


def test_search_box_works_as_you_type_and_without_javascript(owner_client):
    body = get(owner_client)
    search = re.search(r"<input type=\"search\"[^>]*>", body, re.S)
    assert search
    box = search.group(0)
    assert 'hx-trigger="input changed delay:300ms, search"' in box
    assert 'hx-get="/customers/"' in box and 'hx-include="closest form"' in box
    form = body.split('<form method="get" action="/customers/"', 1)[1].split("</form>", 1)[0]
    assert 'hx-target="#results"' in form and '<button type="submit"' in form
    # A sort chosen in the results belongs to the form, so a new search keeps it.
    fragment = get(owner_client, "?sort=domain", HX_Request="true")
    assert '<input type="hidden" name="sort" value="domain" form="customer-filters">' in fragment
    assert 'id="customer-filters"' in body


def test_empty_state_for_a_new_reseller(client_for):
    from tests.factories import make_tenant

    empty = make_tenant("Empty Reseller")
    empty.customer.delete()
    body = client_for(empty.owner).get(URL).content.decode()
    assert "No customers yet. Use NEW CUSTOMER" in body


def test_empty_state_for_a_status_without_customers(owner_client):
    body = get(owner_client, "?status=transferred_out")
    assert "No customers with this status." in body
    assert link(body, "Show current customers") == "?"


# --- the search index (PostgreSQL) ------------------------------------------------------------


@pytest.mark.postgres
def test_trigram_index_serves_the_search(db):
    """The test database is built without migrations: apply the migration's SQL, then check
    that PostgreSQL answers the selector's search condition from the trigram index."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    migration = importlib.import_module("customers.migrations.0005_customer_search_text")
    sql, params = Customer.objects.filter(
        selectors.customer_search_q("harbour")
    ).query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        cursor.execute(migration.CREATE_SEARCH_INDEX)
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert f"Bitmap Index Scan on {migration.SEARCH_INDEX}" in plan, plan
    assert "Seq Scan" not in plan, plan


@pytest.mark.parametrize("name", ["0003_customer_search", "0005_customer_search_text"])
def test_search_migrations_do_nothing_outside_postgresql(name):
    migration = importlib.import_module(f"customers.migrations.{name}")
    executed: list[str] = []

    class Editor:
        class connection:
            vendor = "sqlite"

        def execute(self, sql: str, params: object = None) -> None:
            executed.append(sql)

    operations = [
        op for op in migration.Migration.operations if isinstance(op, migration.PostgreSQLOnlySQL)
    ]
    assert len(operations) == 2
    for operation in operations:
        operation.database_forwards("customers", Editor(), None, None)
        operation.database_backwards("customers", Editor(), None, None)
    assert executed == []


# --- kept from the foundation issue -----------------------------------------------------------


def test_dashboard_counts_are_real(owner_client, tenant):
    def figure(label: str) -> int:
        counts = owner_client.get("/dashboard/").context["customer_counts"]
        return {str(name): count for _value, name, count in counts}[label]

    before = figure("Invited")
    CustomerFactory(reseller=tenant.reseller, status=Customer.Status.INVITED)
    assert figure("Invited") == before + 1
    assert figure("Active") == 1


def test_customer_page_has_the_managing_banner(owner_client, tenant):
    body = owner_client.get(f"/customers/{tenant.customer.public_id}/").content.decode()
    assert "You are managing <strong>" in body and tenant.customer.domain in body


def test_the_total_follows_new_and_changed_customers_at_once(
    owner_client, tenant, django_capture_on_commit_callbacks
):
    assert "1 customer" in get(owner_client)
    with django_capture_on_commit_callbacks(execute=True):
        owner_client.post(
            "/customers/new/",
            {
                "contact_name": "Kim",
                "contact_email": "kim@fresh.example",
                "customer_type": "domain",
                "domain": "fresh.example",
                "organisation": "Fresh Org",
                "language": "en",
                "time_zone": "UTC",
                "country": "GB",
            },
        )
    assert "2 customers" in get(owner_client)
    assert "1 customer" in get(owner_client, "?q=fresh")
    fresh = Customer.objects.get(domain="fresh.example")
    assert "1 customer" in get(owner_client, "?status=invited")  # counted and kept
    with django_capture_on_commit_callbacks(execute=True):
        owner_client.post(f"/customers/{fresh.public_id}/invitation/withdraw/")
    assert "No customers with this status" in get(owner_client, "?status=invited")
    assert "1 customer" in get(owner_client, "?status=cancelled")
