"""Writes for subscriptions: buy, change licences, renewal settings, plan changes, cancel,
suspend and reactivate, who pays, and the daily jobs' step for one subscription.

Every state change is audited. Every amount owed becomes a `Charge` that the billing run
invoices; every licence change is appended to the ledger (`LicenceChange`). Work on a
subscription happens under a row lock on it, so concurrent orders queue up.

One module per concern, as the pages are (subscriptions/views/):
- `orders`: buy, change or add licences (views.orders);
- `terms`: renewal settings, plan changes, cancel (views.terms);
- `suspension`: suspend and reactivate (resellers, staff, unpaid invoices);
- `payers`: who pays (billing.payments, and a customer revoking its reseller);
- `transfers`: subscriptions following a customer to another reseller;
- `jobs`: the daily jobs' work for one subscription (subscriptions.tasks), including the
  30-day notice of a price increase;
- `prices`: periods and the order preview, at the customer's price (subscriptions.pricing);
- `pricing`: the reseller's price book and its customers' special prices (the prices
  themselves are read by subscriptions.pricing);
- `charges`: what is owed, and billing marking it invoiced;
- `records`: the lock, ledger and audit every write shares (internal).

Callers import the package, `from subscriptions import services`, and call
`services.subscription_buy(...)`: the names below are its API.
"""

from subscriptions.services.charges import charges_mark_invoiced
from subscriptions.services.jobs import (
    TERM_REMINDER_DAYS,
    TRIAL_REMINDER_DAYS,
    subscription_expire_trial,
    subscription_renew_due,
    subscription_send_price_notice,
    subscription_send_reminder,
)
from subscriptions.services.orders import (
    ORDER_KEY_MAX_LENGTH,
    order_key_new,
    subscription_add_licences,
    subscription_buy,
    subscription_change_licences,
)
from subscriptions.services.payers import (
    subscription_set_payer,
    subscriptions_payer_to_customer_card,
)
from subscriptions.services.prices import (
    LicenceQuote,
    catalogue_price,
    subscription_preview_licences,
    subscription_preview_purchase,
)
from subscriptions.services.pricing import (
    customer_price_end,
    customer_price_set,
    price_rule_set,
)
from subscriptions.services.suspension import (
    subscription_reactivate,
    subscription_reactivate_after_payment,
    subscription_reactivate_by_staff,
    subscription_suspend,
    subscription_suspend_by_staff,
    subscription_suspend_for_payment,
)
from subscriptions.services.terms import (
    subscription_cancel,
    subscription_cancel_plan_change,
    subscription_change_plan,
    subscription_set_renewal,
)
from subscriptions.services.transfers import subscriptions_move

__all__ = [
    "ORDER_KEY_MAX_LENGTH",
    "TERM_REMINDER_DAYS",
    "TRIAL_REMINDER_DAYS",
    "LicenceQuote",
    "catalogue_price",
    "charges_mark_invoiced",
    "customer_price_end",
    "customer_price_set",
    "order_key_new",
    "price_rule_set",
    "subscription_add_licences",
    "subscription_buy",
    "subscription_cancel",
    "subscription_cancel_plan_change",
    "subscription_change_licences",
    "subscription_change_plan",
    "subscription_expire_trial",
    "subscription_preview_licences",
    "subscription_preview_purchase",
    "subscription_reactivate",
    "subscription_reactivate_after_payment",
    "subscription_reactivate_by_staff",
    "subscription_renew_due",
    "subscription_send_price_notice",
    "subscription_send_reminder",
    "subscription_set_payer",
    "subscription_set_renewal",
    "subscription_suspend",
    "subscription_suspend_by_staff",
    "subscription_suspend_for_payment",
    "subscriptions_move",
    "subscriptions_payer_to_customer_card",
]
