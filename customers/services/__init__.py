"""Writes for customers. Every write is audited.

One module per concern:
- `details`: the details a reseller enters and edits (NEW CUSTOMER, Edit contact details);
- `invitations`: invite, resend or withdraw the invitation, the contact accepting it;
- `customer_side`: what a customer's own administrators do (revoke access, transfer tokens);
- `transfers`: moving a customer to another reseller (transfer token import, staff).

Callers import the package, `from customers import services`, and call
`services.customer_invite(...)`: the names below are its API.
"""

from customers.services.customer_side import (
    TRANSFER_TOKEN_STATUSES,
    customer_access_revoke,
    transfer_token_create,
    transfer_token_withdraw,
)
from customers.services.details import (
    CONTACT_FIELDS,
    CUSTOMER_FIELDS,
    customer_contact_check,
    customer_update_contact,
    customer_update_contact_by_staff,
)
from customers.services.invitations import (
    customer_invitation_accept,
    customer_invitation_opened,
    customer_invitation_resend,
    customer_invitation_withdraw,
    customer_invite,
)
from customers.services.transfers import customer_import, customer_transfer

__all__ = [
    "CONTACT_FIELDS",
    "CUSTOMER_FIELDS",
    "TRANSFER_TOKEN_STATUSES",
    "customer_access_revoke",
    "customer_contact_check",
    "customer_import",
    "customer_invitation_accept",
    "customer_invitation_opened",
    "customer_invitation_resend",
    "customer_invitation_withdraw",
    "customer_invite",
    "customer_transfer",
    "customer_update_contact",
    "customer_update_contact_by_staff",
    "transfer_token_create",
    "transfer_token_withdraw",
]
