"""What each event says: the `data` of its payload, from the object it is about. Public ids,
never primary keys; amounts as strings with their currency."""

from typing import Any

from django.db.models import Model

from billing.models import Invoice
from customers.models import Customer
from resellers.models import Reseller
from subscriptions.models import Subscription


def _when(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def customer_data(customer: Customer) -> dict[str, Any]:
    return {
        "customer": {
            "id": customer.public_id,
            "organisation": customer.organisation,
            "domain": customer.domain,
            "customer_type": customer.customer_type,
            "status": customer.status,
            "contact_email": customer.contact_email,
            "crm_id": customer.crm_id,
        }
    }


def subscription_data(subscription: Subscription) -> dict[str, Any]:
    plan = subscription.plan
    return {
        "subscription": {
            "id": subscription.public_id,
            "customer_id": subscription.customer.public_id,
            "product": plan.product.sku,
            "plan": {"id": plan.public_id, "kind": plan.kind},
            "licences": subscription.licences,
            "status": subscription.status,
            "suspension_reason": subscription.suspension_reason or None,
            "payer": subscription.payer,
            "monthly_price": {
                "amount": str(subscription.monthly_price),
                "currency": subscription.currency,
            },
            "period_start": _when(subscription.period_start),
            "period_end": _when(subscription.period_end),
            "term_end": _when(subscription.term_end),
            "renewal_setting": subscription.renewal_setting,
        }
    }


def invoice_data(invoice: Invoice) -> dict[str, Any]:
    data: dict[str, Any] = {
        "invoice": {
            "id": invoice.public_id,
            "kind": invoice.kind,
            "number": invoice.number,
            "customer_id": invoice.customer.public_id,
            "status": invoice.status,
            "total": {"amount": str(invoice.total), "currency": invoice.currency},
            "issued_at": _when(invoice.issued_at),
            "due_date": _when(invoice.due_date),
            "paid_at": _when(invoice.paid_at),
        }
    }
    if invoice.corrects_id is not None:
        data["invoice"]["corrects"] = invoice.corrects.public_id if invoice.corrects else None
    return data


def payload_data(obj: Model) -> tuple[Reseller | None, dict[str, Any]]:
    """The reseller the event belongs to, and its data. None for what happens to a customer's
    subscriptions and invoices after it revoked its reseller's access (Customer.reseller_serving):
    those are no longer the reseller's to hear of."""
    if isinstance(obj, Customer):
        return obj.reseller, customer_data(obj)
    if isinstance(obj, Subscription):
        return obj.customer.reseller_serving, subscription_data(obj)
    if isinstance(obj, Invoice):
        return obj.reseller, invoice_data(obj)
    raise TypeError(f"No webhook payload for {type(obj).__name__}")
