"""Reseller roles and what each may do (after Microsoft Partner Center).

Checked in services: a template hiding a button is a convenience, not the rule.
"""

from enum import StrEnum

from django.core.exceptions import PermissionDenied
from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    OWNER = "owner", _("Owner")
    ADMIN = "admin", _("Admin")
    SALES = "sales", _("Sales")
    BILLING = "billing", _("Billing")


class Action(StrEnum):
    TEAM_MANAGE = "team.manage"
    PROFILE_EDIT = "profile.edit"
    CUSTOMER_VIEW = "customer.view"
    CUSTOMER_INVITE = "customer.invite"
    CUSTOMER_EDIT = "customer.edit"
    SUBSCRIPTION_BUY = "subscription.buy"
    LICENCES_ADD = "licences.add"
    LICENCES_REMOVE = "licences.remove"
    SUBSCRIPTION_CANCEL = "subscription.cancel"
    SUBSCRIPTION_SUSPEND = "subscription.suspend"
    INVOICE_VIEW = "invoice.view"
    PAYMENT_CARD_MANAGE = "payment_card.manage"
    # The price book and special prices (subscriptions.services.pricing).
    PRICES_MANAGE = "prices.manage"
    # The reseller's cost, discount and margin; sales sees customer prices only.
    MARGIN_VIEW = "margin.view"
    # API keys and webhook endpoints (api, webhooks): they act for the team, so owners and admins.
    API_KEYS_MANAGE = "api_keys.manage"
    WEBHOOKS_MANAGE = "webhooks.manage"
    # The reseller's whole audit log (each customer's page shows that customer's part).
    AUDIT_VIEW = "audit.view"


_SALES = {
    Action.CUSTOMER_VIEW,
    Action.CUSTOMER_INVITE,
    Action.CUSTOMER_EDIT,
    Action.SUBSCRIPTION_BUY,
    Action.LICENCES_ADD,
}
_ADMIN = _SALES | {
    Action.LICENCES_REMOVE,
    Action.SUBSCRIPTION_CANCEL,
    Action.SUBSCRIPTION_SUSPEND,
    Action.INVOICE_VIEW,
    Action.PRICES_MANAGE,
    Action.MARGIN_VIEW,
    Action.API_KEYS_MANAGE,
    Action.WEBHOOKS_MANAGE,
    Action.AUDIT_VIEW,
}
_BILLING = {
    Action.CUSTOMER_VIEW,
    Action.INVOICE_VIEW,
    Action.PAYMENT_CARD_MANAGE,
    Action.PRICES_MANAGE,
    Action.MARGIN_VIEW,
}

PERMISSIONS: dict[str, frozenset[Action]] = {
    Role.OWNER: frozenset(Action),
    Role.ADMIN: frozenset(_ADMIN),
    Role.SALES: frozenset(_SALES),
    Role.BILLING: frozenset(_BILLING),
}


def role_can(role: str, action: Action) -> bool:
    return action in PERMISSIONS.get(role, frozenset())


def require(role: str, action: Action) -> None:
    """Raise PermissionDenied (a 403 page) unless `role` may do `action`."""
    if not role_can(role, action):
        raise PermissionDenied(_("Your role does not allow this action."))
