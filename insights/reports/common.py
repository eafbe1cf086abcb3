"""What the Reports page's four reports share: the filters they are read with, the currencies
a reseller can choose from, and which customers still have a page to link to."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from decimal import Decimal

from django.db.models import Q
from django.utils import timezone

from billing.selectors import invoice_list, invoice_totals
from commissions.margins import month_start, next_month
from customers.models import Customer
from customers.selectors import VISIBLE_STATUSES
from resellers.models import Reseller
from subscriptions.models import Subscription
from subscriptions.periods import add_months

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class ReportFilters:
    """The page's filters: issue dates (or times) from `start` to `end`, both included, and the
    currency of the amounts."""

    start: date
    end: date
    currency: str

    @property
    def end_exclusive(self) -> date:
        return self.end + timedelta(days=1)

    def instants(self, zone: tzinfo) -> tuple[datetime, datetime]:
        """The range as instants in `zone` (the reader's): from the first moment of `start` up
        to, not including, the first moment of the day after `end`."""
        return (
            timezone.make_aware(datetime.combine(self.start, time.min), zone),
            timezone.make_aware(datetime.combine(self.end_exclusive, time.min), zone),
        )


def months_between(start: date, end: date) -> list[date]:
    """The first days of the calendar months from `start`'s to `end`'s, both included."""
    months = []
    month = month_start(start)
    while month <= end:
        months.append(month)
        month = next_month(month)
    return months


def default_start(end: date) -> date:
    """The default range's first day: the first of the month 12 months before `end`'s, so
    that the range is the last 12 full months and `end`'s month so far."""
    year, month = add_months(end.year, end.month, -12)
    return date(year, month, 1)


def report_currencies(*, reseller: Reseller) -> list[str]:
    """The currencies of the reseller's invoices or its customers' subscriptions, the one its
    invoices brought the most revenue (net, credit notes taken off) in first, then by revenue
    and code; the reseller's own currency when it has neither. Two queries."""
    revenue = {
        totals.currency: totals.subtotal
        for totals in invoice_totals(invoices=invoice_list(reseller=reseller))
    }
    held = (
        Subscription.objects.filter(customer__reseller_id=reseller.pk)
        .exclude(currency__in=list(revenue))
        .values_list("currency", flat=True)
        .distinct()
        .order_by()
    )
    for currency in held:
        revenue[currency] = ZERO
    if not revenue:
        return [reseller.currency]
    return sorted(revenue, key=lambda currency: (-revenue[currency], currency))


def current_customer_ids(*, reseller: Reseller, customer_ids: Iterable[int]) -> set[int]:
    """Which of `customer_ids` the reseller still manages (customer_get finds them): their rows
    in the reports link to their page, those of a former customer do not. One query."""
    ids = set(customer_ids)
    if not ids:
        return set()
    return set(
        Customer.objects.filter(
            Q(pk__in=ids), reseller_id=reseller.pk, status__in=VISIBLE_STATUSES
        ).values_list("pk", flat=True)
    )
