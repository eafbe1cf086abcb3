"""The version of a reseller's customer list (core.versions, name "customers"): what the
Customers page keeps (its totals, customers.selectors.customer_page) and the dashboard's
customer summary are stored under a key holding it.

It moves on in one place, here: any Customer saved or deleted (the receivers below, connected
in CustomersConfig.ready). A bulk `QuerySet.update()` of customers sends no signal: none is
written outside migrations, and tests/customers/test_list.py checks that every service that
changes a customer moves the list on.
"""

from typing import Any

from core.versions import version_bump, version_get
from customers.models import Customer
from resellers.models import Reseller

NAME = "customers"


def customer_list_version(*, reseller: Reseller) -> int:
    """The current version of the reseller's customer list."""
    return version_get(name=NAME, reseller=reseller)


def customer_list_changed(*, reseller_id: int, reseller_public_id: str | None = None) -> None:
    """A customer of this reseller was added, changed or removed: from the commit on, its list
    has a new version."""
    version_bump(name=NAME, reseller_id=reseller_id, reseller_public_id=reseller_public_id)


def customer_saved_or_deleted(sender: type[Customer], instance: Customer, **kwargs: Any) -> None:
    """post_save and post_delete of Customer."""
    reseller = instance._state.fields_cache.get("reseller")
    customer_list_changed(
        reseller_id=instance.reseller_id,
        reseller_public_id=reseller.public_id if reseller is not None else None,
    )
