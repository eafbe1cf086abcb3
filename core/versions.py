"""Versions of what a reseller's pages keep in Django's cache: a figure is stored under a key
holding the version of what it was counted from, so a new version makes every process count
afresh at once, and nothing needs deleting.

Each kind of data has its own version per reseller (`name`: "customers" for the Customers
page's totals, customers.list_version; "insights" for the dashboard's figures,
insights.versions). A version moves on in one place per kind: the receivers its app connects in
AppConfig.ready, after the commit, so that a page counted meanwhile cannot keep the old figure.
"""

import contextlib
import time

from django.core.cache import cache
from django.db import connection, transaction

from resellers.models import Reseller


def _key(name: str, reseller_public_id: str) -> str:
    # The public id, not the primary key: SQLite gives a rolled-back row's id again.
    return f"{name}:version:{reseller_public_id}"


def version_get(*, name: str, reseller: Reseller) -> int:
    """The current version of the reseller's `name` data."""
    key = _key(name, reseller.public_id)
    version = cache.get(key)
    if version is None:
        # None yet, or evicted: start from a number no earlier version reached (the clock, in
        # nanoseconds), so that figures kept under an older one cannot come back.
        version = time.time_ns()
        cache.add(key, version, timeout=None)
    return int(version)


class _Bump:
    """The on-commit move of one version."""

    def __init__(self, name: str, reseller_id: int, public_id: str | None) -> None:
        self.name = name
        self.reseller_id = reseller_id
        self.public_id = public_id

    def __call__(self) -> None:
        public_id = self.public_id or (
            Reseller.objects.filter(pk=self.reseller_id).values_list("public_id", flat=True).first()
        )
        if public_id is None:
            return
        # No version kept (ValueError): the next page starts a new one.
        with contextlib.suppress(ValueError):
            cache.incr(_key(self.name, public_id))


def version_bump(
    *, name: str, reseller_id: int | None, reseller_public_id: str | None = None
) -> None:
    """The reseller's `name` data changed: from the commit on, it has a new version. Give the
    reseller's public id when it is at hand (it saves a query after the commit)."""
    if reseller_id is None:
        return
    bump = _Bump(name, reseller_id, reseller_public_id)
    transaction.on_commit(bump)


def cache_usable() -> bool:
    """Whether what is kept under a version holds for this connection: not inside a transaction
    that changed data and has yet to commit. Such a transaction sees its own writes, and the
    version moves on only when it commits; so it counts afresh and keeps nothing (what it would
    keep might yet be rolled back)."""
    return not (connection.in_atomic_block and connection.run_on_commit)
