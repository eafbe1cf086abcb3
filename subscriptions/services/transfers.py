"""A customer imported by another reseller: its subscriptions follow it to its new record
(customers.services.customer_transfer runs this through the customers.extensions hook
registered in SubscriptionsConfig.ready, inside its own transaction)."""

from django.db import transaction

from customers.models import Customer
from subscriptions.models import (
    Subscription,
)
from subscriptions.services.records import _audit


@transaction.atomic
def subscriptions_move(*, old_customer: Customer, new_customer: Customer) -> int:
    """The customer was imported by another reseller: its subscriptions, with their ledger,
    follow it to its new record. Orders and charges stay with the old record, under the
    reseller they were made for. Returns how many subscriptions moved."""
    moved = 0
    # Locked so an order in flight on the old record finishes before its subscription moves.
    for subscription in (
        Subscription.objects.select_for_update(of=("self",))
        .select_related("plan__product")
        .filter(customer_id=old_customer.pk)
        .order_by("id")
    ):
        subscription.customer = new_customer
        subscription.save(update_fields=["customer"])
        _audit(
            subscription,
            actor=None,
            action="subscription.transferred",
            before={"customer": old_customer.public_id},
            after={"customer": new_customer.public_id},
        )
        moved += 1
    return moved
