"""The version of a reseller's customer list, in Django's cache: what the Customers page keeps
(its totals, customers.selectors.customer_page) is stored under a key holding it, so a new
version makes every process count afresh at once.

It moves on in one place, here: any Customer saved or deleted (the receivers below, connected
in CustomersConfig.ready), after the commit, so that a page counted meanwhile cannot keep the
old figure. A bulk `QuerySet.update()` of customers sends no signal: none is written outside
migrations, and tests/customers/test_list.py checks that every service that changes a customer
moves the list on.
"""

import contextlib
import time
from typing import Any

from django.core.cache import cache
from django.db import transaction

from customers.models import Customer
from resellers.models import Reseller


def _key(reseller_public_id: str) -> str:
    # The public id, not the primary key: SQLite gives a rolled-back row's id again.
    return f"customers:list-version:{reseller_public_id}"


def customer_list_version(*, reseller: Reseller) -> int:
    """The current version of the reseller's customer list."""
    key = _key(reseller.public_id)
    version = cache.get(key)
    if version is None:
        # None yet, or evicted: start from a number no earlier version reached (the clock, in
        # nanoseconds), so that totals kept under an older one cannot come back.
        version = time.time_ns()
        cache.add(key, version, timeout=None)
    return int(version)


def customer_list_changed(*, reseller_id: int) -> None:
    """A customer of this reseller was added, changed or removed: from the commit on, its list
    has a new version."""

    def bump() -> None:
        public_id = (
            Reseller.objects.filter(pk=reseller_id).values_list("public_id", flat=True).first()
        )
        if public_id is None:
            return
        # No version kept (ValueError): the next page starts a new one.
        with contextlib.suppress(ValueError):
            cache.incr(_key(public_id))

    transaction.on_commit(bump)


def customer_saved_or_deleted(sender: type[Customer], instance: Customer, **kwargs: Any) -> None:
    """post_save and post_delete of Customer."""
    customer_list_changed(reseller_id=instance.reseller_id)
