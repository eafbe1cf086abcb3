"""The dashboard's figures read plainly from the subscriptions, the way a person checking the
dashboard by hand would read them (written here independently of insights/)."""

from decimal import Decimal

from customers.models import Customer
from resellers.models import Reseller
from subscriptions.models import Charge, Subscription


def plain_figures(reseller: Reseller) -> dict[str, tuple[Decimal, Decimal, int, int, int]]:
    """{currency: (MRR, margin, active licences, active subscriptions, trials)} of the
    reseller's current customers (not those that revoked its access or moved away)."""
    result: dict[str, list] = {}
    current = Subscription.objects.filter(customer__reseller=reseller).exclude(
        customer__status__in=[Customer.Status.ACCESS_REVOKED, Customer.Status.TRANSFERRED_OUT]
    )
    for subscription in current:
        row = result.setdefault(subscription.currency, [Decimal(0), Decimal(0), 0, 0, 0])
        if subscription.status == Subscription.Status.TRIAL:
            row[4] += 1
        if subscription.status != Subscription.Status.ACTIVE:
            continue
        latest = Charge.objects.filter(subscription=subscription).order_by("-id").first()
        cost = latest.monthly_cost if latest else subscription.monthly_price
        row[0] += subscription.licences * subscription.monthly_price
        row[1] += subscription.licences * (subscription.monthly_price - cost)
        row[2] += subscription.licences
        row[3] += 1
    return {currency: tuple(values) for currency, values in result.items() if any(values)}
