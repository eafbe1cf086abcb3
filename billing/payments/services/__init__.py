"""Writes for payments: saved cards, the customer's consent to pay with its card, charging
issued invoices (with retries and suspension), refunds to the card, and Stripe's webhook
events.

Calls to the gateway (HTTP) happen outside database transactions where they can: a row lock is
never held while waiting for Stripe, except while one webhook event is processed (its own row,
so that two deliveries of it are processed once).

One module per concern: `cards`, `payers` (who pays, the customer's consent), `charging`,
`refunds`, `webhooks`. Callers import the package, `from billing.payments import services`,
and call `services.invoice_charge(...)`: the names below are its API.
"""

from billing.payments.services.cards import (
    customer_card_save,
    customer_card_setup_start,
    demo_card_save,
    payment_card_detach,
    reseller_card_save,
    reseller_card_setup_start,
)
from billing.payments.services.charging import (
    NO_CARD_ERROR,
    RETRY_DAYS,
    invoice_charge,
    invoice_charge_enqueue,
    payment_record,
    suspensions_lift_after_payment,
)
from billing.payments.services.payers import (
    card_consent_accept,
    card_consent_request,
    subscription_payer_reseller_card,
)
from billing.payments.services.refunds import refund_outcome_record, refund_process
from billing.payments.services.webhooks import (
    stripe_event_failed,
    stripe_event_process,
    stripe_event_store,
)

__all__ = [
    "NO_CARD_ERROR",
    "RETRY_DAYS",
    "card_consent_accept",
    "card_consent_request",
    "customer_card_save",
    "customer_card_setup_start",
    "demo_card_save",
    "invoice_charge",
    "invoice_charge_enqueue",
    "payment_card_detach",
    "payment_record",
    "refund_outcome_record",
    "refund_process",
    "reseller_card_save",
    "reseller_card_setup_start",
    "stripe_event_failed",
    "stripe_event_process",
    "stripe_event_store",
    "subscription_payer_reseller_card",
    "suspensions_lift_after_payment",
]
