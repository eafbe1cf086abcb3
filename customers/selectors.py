from django.db.models import Count, QuerySet
from django.http import Http404
from django.utils.translation import gettext as _

from customers.models import Customer
from resellers.models import Reseller

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
