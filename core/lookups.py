"""`field__contains_upper=term`: for a column kept in capitals (customers' search_text), the
term upper-cased by the database: `column LIKE UPPER('%term%')`.

`icontains` would upper-case the column too, for every row it tests; `contains` with an
`Upper(Value(term))` makes Django build the pattern in SQL (REPLACE() for each wildcard),
which costs more to compile. Here the term is escaped like any LIKE pattern in Python and only
upper-cased by the database, so both sides follow its rules, and on PostgreSQL the pattern is
a constant when planning (a trigram index can serve it).
"""

from typing import Any

from django.db.models.lookups import Contains


class ContainsUpper(Contains):
    lookup_name = "contains_upper"

    def get_rhs_op(self, connection: Any, rhs: str) -> str:
        # icontains' right-hand side: UPPER(%s) on PostgreSQL, a case-blind LIKE on SQLite.
        return connection.operators["icontains"] % rhs
