"""Parallel orders on one subscription, on real PostgreSQL: threads, each with its own
database connection, released together by a barrier."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from subscriptions import services
from subscriptions.models import Charge, LicenceChange, Order, Subscription
from tests.factories import buy, catalogue, owner_of
from tests.support.concurrency import in_parallel

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def subscription(tenant, other_tenant) -> Subscription:
    plans = catalogue()
    return buy(owner_of(tenant), plans["flexible"], licences=10)


def test_fifty_parallel_orders_of_one_licence_add_fifty(tenant, subscription):
    owner = owner_of(tenant)

    def order(n: int) -> object:
        return services.subscription_add_licences(
            membership=owner, subscription=subscription, quantity=1, order_key=f"order-{n}"
        )

    results, errors = in_parallel(50, order)
    assert errors == [] and len(results) == 50
    subscription.refresh_from_db()
    assert subscription.licences == 60
    added = LicenceChange.objects.filter(subscription=subscription, kind="add")
    assert added.count() == 50
    # Each order started from the count the previous one left: a chain 10 → 11 → … → 60.
    assert sorted(added.values_list("licences_before", "licences_after")) == [
        (n, n + 1) for n in range(10, 60)
    ]
    assert Order.objects.filter(kind="add").count() == 50
    charges = Charge.objects.filter(kind="proration")
    assert charges.count() == 50 and len({c.amount for c in charges}) == 1
    first = charges.first()
    assert first is not None
    assert sum(c.amount for c in charges) == 50 * first.amount > Decimal(0)


def test_the_same_order_key_submitted_in_parallel_is_one_order(tenant, subscription):
    owner = owner_of(tenant)

    def order(n: int) -> object:
        return services.subscription_change_licences(
            membership=owner,
            subscription=subscription,
            new_count=12,
            expected_count=10,
            order_key="one-form",
        )

    results, errors = in_parallel(10, order)
    assert errors == []
    assert len({o.pk for o in results}) == 1
    subscription.refresh_from_db()
    assert subscription.licences == 12
    assert Order.objects.filter(key="one-form").count() == 1
    assert LicenceChange.objects.filter(kind="add").count() == 1


def test_parallel_pages_with_the_same_count_let_one_through(tenant, subscription):
    owner = owner_of(tenant)

    def order(n: int) -> object:
        return services.subscription_change_licences(
            membership=owner,
            subscription=subscription,
            new_count=11,
            expected_count=10,
            order_key=f"page-{n}",
        )

    results, errors = in_parallel(20, order)
    assert len(results) == 1 and len(errors) == 19
    assert all(isinstance(e, ValidationError) for e in errors)
    assert {e.error_dict["licences"][0].code for e in errors} == {"stale"}  # type: ignore[attr-defined]
    subscription.refresh_from_db()
    assert subscription.licences == 11
    assert LicenceChange.objects.filter(kind="add").count() == 1
