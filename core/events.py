"""What happened, announced by the services that did it (issue 17's webhooks).

The apps below webhooks (customers, subscriptions, billing) cannot import it
(billing → subscriptions → customers → resellers; webhooks sits above them all), so a service
announces its change here, inside its transaction, and the listeners registered in their
AppConfig.ready record it in that same transaction: webhooks.apps registers
webhooks.services.event_announced, which writes the outbox row (webhooks.models.WebhookEvent).

Announced, each by one call in the service that makes the change:
- customers.services.invitations: "customer.invited", "customer.accepted";
- customers.services.customer_side: "customer.revoked";
- customers.services.transfers: "customer.transferred" (the customer's new record);
- subscriptions.services.orders: "subscription.created", "subscription.licences_changed";
- subscriptions.services.terms: "subscription.plan_changed", "subscription.cancelled";
- subscriptions.services.suspension: "subscription.suspended", "subscription.reactivated";
- subscriptions.services.jobs: "subscription.renewed", "subscription.cancelled" (term end);
- billing.services: "invoice.issued", "invoice.credited" (the credit note), "invoice.paid";
- billing.payments.services.charging: "payment.failed" (the invoice).
"invoice.overdue" has no service (an invoice becomes overdue by the calendar): the webhooks
app's own job announces it (webhooks.services.invoices_overdue_announce).
"""

from collections.abc import Callable

from django.db.models import Model

Listener = Callable[[str, Model], None]


class _Listeners:
    """Who hears the announcements (filled in AppConfig.ready)."""

    registered: list[Listener] = []


def event_listen(listener: Listener) -> None:
    """`listener(type, obj)` runs inside the transaction of each announced change."""
    if listener not in _Listeners.registered:
        _Listeners.registered.append(listener)


def event_announce(type: str, obj: Model) -> None:
    """Say that `type` happened to `obj` (call it in the transaction that made the change)."""
    for listener in _Listeners.registered:
        listener(type, obj)
