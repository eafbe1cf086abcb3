"""Keyset ("cursor") pagination: every page costs the same, however deep in the list.

OFFSET makes the database read and throw away every row before the page (on the Customers page
at 10,000 rows the deep pages were several times slower than the first); a keyset page starts
from the last row seen instead, with `WHERE (key1, key2) > (value1, value2)`, which an index on
(tenant, key1, key2) answers by seeking. So a sort's keys must all run in one direction and end
with a unique column, and an index must have them in that order.

A page is one query whatever its position: the rows, with the count (for "26-50 of 9,196").
Cursors are signed, carry the position for display and name the sort they belong to, so a
stale or edited one falls back to the first page instead of failing.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import Any

from django.core import signing
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Expression, F, Func, IntegerField, QuerySet, Subquery
from django.db.models.constants import LOOKUP_SEP
from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan, TupleLessThan
from django.utils.http import urlencode

LAST = "last"
_SALT = "core.pagination.keyset"
_AFTER, _BEFORE = "a", "b"


class _CursorSerializer:
    """JSON with datetimes to the microsecond (the database compares them to the row's value;
    DjangoJSONEncoder would cut them to milliseconds and skip rows)."""

    def dumps(self, obj: Any) -> bytes:
        def default(value: Any) -> str:
            # Dates too (the Invoices page seeks by issue date); a datetime is a date.
            if isinstance(value, date):
                return value.isoformat()
            raise TypeError(f"{type(value).__name__} cannot be a keyset cursor value")

        return json.dumps(obj, default=default, separators=(",", ":")).encode("latin-1")

    def loads(self, data: bytes) -> Any:
        return json.loads(data.decode("latin-1"))


@dataclass(frozen=True)
class KeysetPage:
    object_list: list[Any]
    count: int
    start: int  # rows before this page
    next_cursor: str | None
    previous_cursor: str | None

    @property
    def has_next(self) -> bool:
        return self.next_cursor is not None

    @property
    def has_previous(self) -> bool:
        return self.previous_cursor is not None

    @property
    def has_other_pages(self) -> bool:
        return self.has_next or self.has_previous

    @property
    def start_index(self) -> int:
        """1-based number of the first row shown (0 when there is none)."""
        return self.start + 1 if self.object_list else 0

    @property
    def end_index(self) -> int:
        return self.start + len(self.object_list)

    def links(self, params: Mapping[str, str] | None = None) -> dict[str, str]:
        """First, Previous, Next and Last as query strings that keep `params` (the list's
        filters, search and sort), "" where there is none; templates/_pagination.html shows
        them."""
        params = dict(params or {})

        def to(cursor: str | None) -> str:
            return "?" + urlencode({**params, "cursor": cursor}) if cursor else ""

        return {
            "first": "?" + urlencode(params) if self.has_previous else "",
            "previous": to(self.previous_cursor),
            "next": to(self.next_cursor),
            "last": to(LAST) if self.has_next else "",
        }


def keyset_page(
    queryset: QuerySet[Any],
    *,
    keys: Sequence[Expression | F],
    descending: bool,
    cursor: str,
    size: int,
    sort: str,
    count: int | None = None,
    rows_by_key: QuerySet[Any] | None = None,
) -> KeysetPage:
    """The page of `queryset` (filtered, not yet ordered) after or before `cursor` ("" for the
    first page, LAST for the last), ordered by `keys`, all ascending or all descending. `sort`
    names the ordering; a cursor made for another one is ignored. `count`, when given, is
    trusted as the number of rows of `queryset` instead of counting them.

    With `rows_by_key` (the same rows unfiltered, e.g. `Model.objects.values(...)`), the page's
    primary keys are found first and its rows then read from it by them ("deferred join"): for
    a filter that is costly per row and that an index covering the sort holds (the Customers
    search), PostgreSQL then scans that index alone and reads only the rows shown, instead of
    every row it tests."""
    direction, boundary, position = _cursor_decode(cursor, sort=sort, keys=len(keys))
    backwards = direction in (_BEFORE, LAST)
    # A key that is a field of the row itself is read from it (a .values() queryset must select
    # it); any other (Lower("organisation"), a related field) is annotated under its own name.
    names = [
        key.name  # type: ignore[attr-defined]
        if isinstance(key, F) and LOOKUP_SEP not in key.name  # type: ignore[attr-defined]
        else f"_keyset_{n}"
        for n, key in enumerate(keys)
    ]
    expressions = {
        name: key for name, key in zip(names, keys, strict=True) if name.startswith("_keyset_")
    }
    reading_down = descending != backwards
    comparison = TupleLessThan if reading_down else TupleGreaterThan
    ordering = [F(name).desc() if reading_down else F(name).asc() for name in names]
    if rows_by_key is None:
        rows_query = queryset.annotate(**expressions) if expressions else queryset
        if boundary is not None:
            rows_query = rows_query.filter(comparison(Tuple(*keys), boundary))
    else:
        page_keys = queryset.values("pk")
        if boundary is not None:
            page_keys = page_keys.filter(comparison(Tuple(*keys), boundary))
        page_keys = page_keys.order_by(
            *(key.desc() if reading_down else key.asc() for key in keys)
        )[: size + 1]
        rows_query = rows_by_key.filter(pk__in=page_keys)
        if expressions:
            rows_query = rows_query.annotate(**expressions)
    rows_query = rows_query.order_by(*ordering)
    # The total, unless the caller knows it (e.g. from a cache), rides along in the same query
    # (PostgreSQL runs the uncorrelated subquery once): one round trip per page. Only a page
    # left empty by a stale cursor asks again. COUNT(*), not COUNT(id): an index without the
    # primary key can then answer it alone.
    if count is None:
        count_all = Func(template="COUNT(*)", output_field=IntegerField())
        total = queryset.order_by().annotate(_n=count_all).values("_n")
        rows_query = rows_query.annotate(_keyset_count=Subquery(total, output_field=IntegerField()))
    rows = list(rows_query[: size + 1])
    if count is None:
        if rows:
            count = _row_value(rows[0], "_keyset_count")
        else:
            count = queryset.order_by().count() if boundary is not None else 0
    more = len(rows) > size
    rows = rows[:size]
    if direction == LAST and count % size:
        # The last page holds what is left over, so that it lines up with paging from the start.
        rows = rows[: count % size]
    if backwards:
        rows.reverse()

    # Where the page is: exact at both ends, carried in the cursor in between (so it can be off
    # by the rows added or removed since, until the reader reaches either end).
    if direction == LAST:
        start, has_next, has_previous = count - len(rows), False, count > len(rows)
    elif direction == _BEFORE:
        has_next, has_previous = True, more
        start = position - len(rows) if more else 0
    elif direction == _AFTER:
        has_next, has_previous = more, True
        start = position if more else count - len(rows)
    else:
        start, has_next, has_previous = 0, more, False
    start = max(0, min(start, count - len(rows)))

    def values(row: Any) -> list[Any]:
        return [_row_value(row, name) for name in names]

    return KeysetPage(
        object_list=rows,
        count=count,
        start=start,
        next_cursor=(
            keyset_cursor(sort=sort, values=values(rows[-1]), position=start + len(rows))
            if has_next and rows
            else None
        ),
        previous_cursor=(
            keyset_cursor(sort=sort, values=values(rows[0]), position=start, before=True)
            if has_previous and rows
            else None
        ),
    )


def _row_value(row: Any, name: str) -> Any:
    """A column of a row: a model instance, or a dictionary from a .values() queryset."""
    return row[name] if isinstance(row, dict) else getattr(row, name)


def keyset_cursor(*, sort: str, values: list[Any], position: int, before: bool = False) -> str:
    """The cursor of the page that starts right after the row with these key values, which has
    `position` rows before it (or, `before`, of the page that ends before the row at
    `position`)."""
    return signing.dumps(
        [sort, _BEFORE if before else _AFTER, values, position],
        salt=_SALT,
        serializer=_CursorSerializer,
    )


def _cursor_decode(cursor: str, *, sort: str, keys: int) -> tuple[str, list[Any] | None, int]:
    """(direction, key values, position); the first page for anything not made for `sort`."""
    first: tuple[str, None, int] = ("", None, 0)
    if cursor == LAST:
        return LAST, None, 0
    if not cursor:
        return first
    try:
        cursor_sort, direction, values, position = signing.loads(
            cursor, salt=_SALT, serializer=_CursorSerializer
        )
    except (signing.BadSignature, ValueError, TypeError):
        return first
    if cursor_sort != sort or direction not in (_AFTER, _BEFORE) or len(values) != keys:
        return first
    return direction, values, int(position)


class EstimatedCountPaginator(Paginator):
    """A paginator for the Django admin's lists of big tables: unfiltered, the count is
    PostgreSQL's own estimate of the table's rows (pg_class.reltuples, kept current by
    autovacuum) instead of a COUNT(*) over the whole table on every page. Filtered lists, small
    tables and other databases are counted exactly. Use as `ModelAdmin.paginator`."""

    exact_below = 10_000

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if (
            isinstance(queryset, QuerySet)
            and not queryset.query.where
            and not queryset.query.distinct
        ):
            connection = connections[queryset.db]
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                        [queryset.model._meta.db_table],
                    )
                    row = cursor.fetchone()
                # -1: never analysed yet.
                if row and row[0] >= self.exact_below:
                    return int(row[0])
        return super().count
