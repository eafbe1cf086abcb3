"""Recurring revenue, defined once: what a subscription brings in each month at its customer's
price (MRR), and the reseller's margin in it. The dashboard, its daily snapshots (live and
replayed from the audit log) and the lists all use these.

- A subscription counts while it is **active**: trials bring nothing in, a suspended one is not
  being paid for, a cancelled one is over.
- Its MRR is licences x the customer's price per licence per month (`monthly_price`, the price
  of the current period; an annual_yearly plan's price is kept per month too).
- Its margin is licences x (that price - the reseller's cost per licence per month), the cost
  as the charge of its latest period snapshotted it (Charge.monthly_cost). Without a charge yet
  there is no cost to go by, and no margin is counted.
"""

from decimal import Decimal

from django.db.models import (
    DecimalField,
    Expression,
    F,
    OuterRef,
    Q,
    Subquery,
)
from django.db.models.functions import Coalesce

from subscriptions.models import Charge, Subscription

MRR_STATUSES = (Subscription.Status.ACTIVE,)
_MONEY = DecimalField(max_digits=14, decimal_places=2)
ZERO = Decimal("0.00")


def counts_in_mrr() -> Q:
    """The subscriptions whose licences count in MRR."""
    return Q(status__in=MRR_STATUSES)


def monthly_cost_expression() -> Subquery:
    """The reseller's cost per licence per month of the subscription, as its latest charge has
    it (None without a charge)."""
    latest = Charge.objects.filter(subscription_id=OuterRef("pk")).order_by("-id")
    return Subquery(latest.values("monthly_cost")[:1], output_field=_MONEY)


def mrr_expression() -> Expression:
    """A subscription's MRR as a database expression over Subscription rows (filter with
    counts_in_mrr() first)."""
    return F("licences") * F("monthly_price")


def margin_expression() -> Expression:
    """The reseller's monthly margin in a subscription's MRR (filter with counts_in_mrr())."""
    cost = Coalesce(monthly_cost_expression(), F("monthly_price"), output_field=_MONEY)
    return F("licences") * (F("monthly_price") - cost)


def subscription_mrr(*, status: str, licences: int, monthly_price: Decimal) -> Decimal:
    """A subscription's MRR from its state (the replay of its history)."""
    if status not in MRR_STATUSES:
        return ZERO
    return licences * monthly_price


def subscription_margin(
    *, status: str, licences: int, monthly_price: Decimal, monthly_cost: Decimal | None
) -> Decimal:
    """The reseller's monthly margin in a subscription's MRR, from its state."""
    if status not in MRR_STATUSES or monthly_cost is None:
        return ZERO
    return licences * (monthly_price - monthly_cost)
