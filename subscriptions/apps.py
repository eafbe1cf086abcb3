from typing import TYPE_CHECKING

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from customers.models import Customer


class SubscriptionsConfig(AppConfig):
    name = "subscriptions"
    verbose_name = _("Catalogue and subscriptions")

    def ready(self) -> None:
        from customers import extensions
        from subscriptions.views import terms

        # terms: the customer's own read-only list, and what happens to subscriptions when
        # their customer moves to another reseller or revokes its reseller's access.
        extensions.section_register(
            side="customer", slot="subscriptions", renderer=terms.customer_side_section
        )
        extensions.on_transfer(_subscriptions_follow_customer)
        extensions.on_access_revoked(_subscriptions_pay_with_customer_card)

        # orders: the reseller's subscriptions section with Buy and Add licences, and the
        # Customers list's plan and licence columns (one query per page).
        from subscriptions.views import orders

        extensions.section_register(
            side="reseller", slot="subscriptions", renderer=orders.customer_section
        )
        extensions.row_summaries_register(orders.customer_row_summaries)


def _subscriptions_follow_customer(old: "Customer", new: "Customer") -> None:
    from subscriptions import services

    services.subscriptions_move(old_customer=old, new_customer=new)


def _subscriptions_pay_with_customer_card(customer: "Customer") -> None:
    from subscriptions import services

    services.subscriptions_payer_to_customer_card(customer=customer)
