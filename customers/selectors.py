from django.db.models import Count, QuerySet
from django.http import Http404
from django.utils.translation import gettext as _

from core.tokens import token_digest
from customers.models import Customer, CustomerInvitation
from resellers.models import AuditEvent, Reseller

# Statuses a reseller still sees in its customer list.
VISIBLE_STATUSES = [Customer.Status.INVITED, Customer.Status.ACTIVE, Customer.Status.CANCELLED]


def customer_list(*, reseller: Reseller, status: str = "") -> QuerySet[Customer]:
    customers = reseller.customers.filter(status__in=VISIBLE_STATUSES)
    if status:
        customers = customers.filter(status=status)
    return customers.order_by("-created_at", "-id")


def customer_get(*, reseller: Reseller, public_id: str) -> Customer:
    try:
        return customer_list(reseller=reseller).get(public_id=public_id)
    except Customer.DoesNotExist:
        raise Http404(_("No such customer.")) from None


def customer_counts_by_status(*, reseller: Reseller) -> dict[str, int]:
    rows = reseller.customers.values("status").annotate(n=Count("id")).order_by()
    return {row["status"]: row["n"] for row in rows}


def customer_invitation_by_token(*, raw_token: str) -> CustomerInvitation | None:
    return (
        CustomerInvitation.objects.select_related("customer__reseller", "invited_by")
        .filter(token_hash=token_digest(raw_token))
        .first()
    )


def customer_invitation_latest(*, customer: Customer) -> CustomerInvitation | None:
    return customer.invitations.order_by("-created_at").first()


def customers_of_user(*, user) -> QuerySet[Customer]:
    """The organisations a person administers on the customer side."""
    return Customer.objects.filter(members__user=user).select_related("reseller")


def customer_lineage_ids(*, customer: Customer) -> list[str]:
    """Public ids of this customer record and the records it was imported from, newest first."""
    ids = [customer.public_id]
    previous_id = customer.previous_id
    while previous_id is not None:
        public_id, previous_id = Customer.objects.values_list("public_id", "previous_id").get(
            pk=previous_id
        )
        ids.append(public_id)
    return ids


def customer_activity(*, customer: Customer, limit: int = 50) -> QuerySet[AuditEvent]:
    """What was done to or for the customer, including under a previous reseller (imports
    carry the history along)."""
    return AuditEvent.objects.filter(
        customer_public_id__in=customer_lineage_ids(customer=customer)
    ).select_related("actor", "reseller")[:limit]
