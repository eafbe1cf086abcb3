"""Where the apps above customers plug in (import order: billing → subscriptions → customers).

customers never imports subscriptions or billing, so what they add to a customer's pages, and
what they do when a customer changes, is registered here, in their `AppConfig.ready()`. Only
for this reaching up: inside one app a service calls its side effects by name.

Each hook, who fills it and who runs it:
- `section_register` (HTML for a named slot of a customer's page), run by `sections_render`:
  - reseller side, customers.views.customer_detail (Manage): "subscriptions"
    (subscriptions.views.orders.customer_section, subscriptions/apps.py) and "invoices"
    (billing.views.customer_section, billing/apps.py);
  - customer side, customers.views.my_organisation: "subscriptions"
    (subscriptions.views.terms.customer_side_section), "invoices"
    (billing.views.customer_side_section) and "payment_card"
    (billing.payments.views.customer_side_section).
- `on_transfer`, run by customers.services.customer_transfer inside its transaction:
  subscriptions.services.subscriptions_move (subscriptions/apps.py).
- `on_access_revoked`, run by customers.services.customer_access_revoke inside its
  transaction: subscriptions.services.subscriptions_payer_to_customer_card (subscriptions/apps.py).
- `row_summaries_register` (extra columns of the Customers list, one query per page), run by
  `row_summaries` from customers.views.customer_list:
  subscriptions.views.orders.customer_row_summaries (plan, licences; subscriptions/apps.py).
"""

from collections.abc import Callable
from typing import Any, Literal

from django.http import HttpRequest
from django.utils.safestring import SafeString

from customers.models import Customer

Side = Literal["reseller", "customer"]
SectionRenderer = Callable[[HttpRequest, Customer], SafeString]

_sections: dict[tuple[Side, str], SectionRenderer] = {}
_on_transfer: list[Callable[[Customer, Customer], None]] = []
_on_access_revoked: list[Callable[[Customer], None]] = []
_row_summaries: list[Callable[[list[int]], dict[int, dict[str, Any]]]] = []


def section_register(*, side: Side, slot: str, renderer: SectionRenderer) -> None:
    """`renderer(request, customer)` fills the `slot` section (e.g. "subscriptions") of the
    reseller's Manage page or the customer's own organisation page."""
    _sections[(side, slot)] = renderer


def sections_render(request: HttpRequest, customer: Customer, *, side: Side) -> dict[str, str]:
    return {
        slot: renderer(request, customer)
        for (registered_side, slot), renderer in _sections.items()
        if registered_side == side
    }


def on_transfer(hook: Callable[[Customer, Customer], None]) -> None:
    """`hook(old, new)` runs inside the transaction that moves a customer to a new reseller."""
    _on_transfer.append(hook)


def on_access_revoked(hook: Callable[[Customer], None]) -> None:
    """`hook(customer)` runs inside the transaction in which a customer revokes its reseller."""
    _on_access_revoked.append(hook)


def transfer_hooks_run(old: Customer, new: Customer) -> None:
    for hook in _on_transfer:
        hook(old, new)


def access_revoked_hooks_run(customer: Customer) -> None:
    for hook in _on_access_revoked:
        hook(customer)


def row_summaries_register(provider: Callable[[list[int]], dict[int, dict[str, Any]]]) -> None:
    """`provider(customer_ids)` returns, in one query for the whole page, extra values per
    customer id for the Customers list (e.g. {"plan": ..., "licences": ...})."""
    _row_summaries.append(provider)


def row_summaries(customer_ids: list[int]) -> dict[int, dict[str, Any]]:
    merged: dict[int, dict[str, Any]] = {pk: {} for pk in customer_ids}
    for provider in _row_summaries:
        for pk, values in provider(customer_ids).items():
            merged.setdefault(pk, {}).update(values)
    return merged
