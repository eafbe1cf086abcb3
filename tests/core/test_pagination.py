"""core.pagination: keyset pages at the ends, and the admin's estimated count."""

from urllib.parse import parse_qs

import pytest
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from core.pagination import LAST, EstimatedCountPaginator, keyset_page
from customers.models import Customer
from tests.factories import CustomerFactory, ResellerFactory


def page(cursor: str = "", size: int = 10):
    return keyset_page(
        Customer.objects.all(),
        keys=[F("id")],
        descending=False,
        cursor=cursor,
        size=size,
        sort="id",
    )


@pytest.mark.django_db
@pytest.mark.parametrize(("rows", "last_start"), [(30, 20), (25, 20), (10, 0)])
def test_last_page_lines_up_with_paging_from_the_start(rows, last_start):
    reseller = ResellerFactory()
    CustomerFactory.create_batch(rows, reseller=reseller)
    last = page(LAST)
    assert (last.start, last.count, last.has_next) == (last_start, rows, False)
    assert last.has_previous == (rows > 10)
    # Walking back from the last page meets the first page exactly.
    current = last
    while current.has_previous:
        current = page(current.previous_cursor)
    assert current.start == 0 and current.object_list == page().object_list


@pytest.mark.django_db
@pytest.mark.parametrize("descending", [False, True])
def test_rows_read_by_key_give_the_same_pages(descending):
    """The deferred join (rows_by_key) walks the same pages, forwards, backwards and from the
    end, in one query each, for a filtered list of dictionaries."""
    reseller = ResellerFactory()
    CustomerFactory.create_batch(23, reseller=reseller, status=Customer.Status.ACTIVE)
    CustomerFactory.create_batch(4, reseller=reseller, status=Customer.Status.INVITED)
    active = Customer.objects.filter(status=Customer.Status.ACTIVE).values("id", "organisation")

    def walk(cursor: str, **extra):
        return keyset_page(
            active,
            keys=[F("organisation"), F("id")],
            descending=descending,
            cursor=cursor,
            size=5,
            sort="org",
            count=23,
            **extra,
        )

    by_key = {"rows_by_key": Customer.objects.values("id", "organisation")}
    for cursor in ["", LAST]:
        plain, deferred = walk(cursor), walk(cursor, **by_key)
        seen = 0
        while True:
            assert deferred.object_list == plain.object_list
            assert (deferred.start, deferred.count) == (plain.start, plain.count)
            seen += len(plain.object_list)
            following = plain.next_cursor if cursor == "" else plain.previous_cursor
            if following is None:
                break
            with CaptureQueriesContext(connection) as queries:
                deferred = walk(following, **by_key)
            assert len(queries) == 1
            plain = walk(following)
        assert seen == 23


@pytest.mark.django_db
def test_empty_list_is_one_query_and_no_links():
    with CaptureQueriesContext(connection) as queries:
        empty = page()
    assert len(queries) == 1
    assert (empty.count, empty.start_index, empty.has_other_pages) == (0, 0, False)


def cursor_of(link: str) -> str:
    return parse_qs(link.removeprefix("?"))["cursor"][0]


@pytest.mark.django_db
def test_links_keep_the_lists_parameters_and_lead_where_the_cursors_do():
    reseller = ResellerFactory()
    CustomerFactory.create_batch(25, reseller=reseller)
    params = {"q": "café & co", "sort": "id"}
    first = page()
    bare = first.links()
    assert (bare["first"], bare["previous"]) == ("", "")
    assert bare["next"].startswith("?cursor=") and bare["last"] == f"?cursor={LAST}"
    links = first.links(params)
    assert links["first"] == links["previous"] == ""
    assert links["next"].startswith("?q=caf%C3%A9+%26+co&sort=id&cursor=")
    assert links["last"] == f"?q=caf%C3%A9+%26+co&sort=id&cursor={LAST}"
    second = page(cursor_of(links["next"]))
    assert second.start == 10
    middle = second.links(params)
    assert middle["first"] == "?q=caf%C3%A9+%26+co&sort=id"
    assert page(cursor_of(middle["previous"])).start == 0
    assert page(cursor_of(middle["next"])).start == 20
    last = page(LAST).links(params)
    assert last["next"] == last["last"] == ""
    assert last["first"] == "?q=caf%C3%A9+%26+co&sort=id"


@pytest.mark.postgres
@pytest.mark.django_db
def test_admin_paginator_estimates_an_unfiltered_count_and_counts_a_filtered_one():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    CustomerFactory.create_batch(3, status=Customer.Status.ACTIVE)
    CustomerFactory(status=Customer.Status.INVITED)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE customers_customer")

    class Estimating(EstimatedCountPaginator):
        exact_below = 1

    with CaptureQueriesContext(connection) as queries:
        assert Estimating(Customer.objects.order_by("-id"), 100).count == 4
    assert not any("COUNT(" in query["sql"] for query in queries.captured_queries)
    assert "pg_class" in queries.captured_queries[0]["sql"]

    with CaptureQueriesContext(connection) as queries:
        assert Estimating(Customer.objects.filter(status="invited"), 100).count == 1
    assert "COUNT(*)" in queries.captured_queries[0]["sql"]
    # Below the threshold the table is small: counted exactly.
    with CaptureQueriesContext(connection) as queries:
        assert EstimatedCountPaginator(Customer.objects.all(), 100).count == 4
    assert "COUNT(*)" in queries.captured_queries[-1]["sql"]
