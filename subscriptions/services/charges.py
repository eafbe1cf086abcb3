"""Charges, what a subscription owes: written by orders, plan changes and the daily job's new
period (`_charge`, worded as the customer's invoice line), and marked invoiced by billing's
run (`charges_mark_invoiced`, billing.services.invoice_issue_for_customer), so a charge is
invoiced once."""

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.utils import formats, translation
from django.utils.translation import ngettext

from subscriptions.models import (
    Charge,
    Order,
    Subscription,
)
from subscriptions.periods import (
    Period,
)


def _describe(subscription: Subscription, kind: str, **details: Any) -> str:
    """A charge's line as the customer's invoice will show it, in the customer's language."""
    with translation.override(subscription.customer.language):
        period: Period = details["period"]
        values = {
            "plan": str(subscription.plan),
            "count": details["licences"],
            "start": formats.date_format(period.start, "SHORT_DATE_FORMAT"),
            "end": formats.date_format(period.last_day, "SHORT_DATE_FORMAT"),
        }
        if kind == Charge.Kind.PRORATION:
            values["days"] = details["remaining_days"]
            values["period_days"] = period.days
            text = ngettext(
                "%(plan)s: %(count)d licence added, %(days)d of %(period_days)d days "
                "(%(start)s - %(end)s)",
                "%(plan)s: %(count)d licences added, %(days)d of %(period_days)d days "
                "(%(start)s - %(end)s)",
                details["licences"],
            )
        else:
            text = ngettext(
                "%(plan)s: %(count)d licence, %(start)s - %(end)s",
                "%(plan)s: %(count)d licences, %(start)s - %(end)s",
                details["licences"],
            )
        return (text % values)[:255]


def _charge(
    subscription: Subscription,
    *,
    kind: str,
    period: Period,
    licences: int,
    unit_price: Decimal,
    amount: Decimal,
    order: Order | None = None,
    remaining_days: int = 0,
) -> Charge | None:
    if amount <= 0:
        return None  # nothing to bill: a trial, or a removal
    return Charge.objects.create(
        subscription=subscription,
        customer_id=subscription.customer_id,
        order=order,
        kind=kind,
        description=_describe(
            subscription, kind, period=period, licences=licences, remaining_days=remaining_days
        ),
        payer=subscription.payer,
        period_start=period.start,
        period_end=period.end,
        licences=licences,
        unit_price=unit_price,
        amount=amount,
        currency=subscription.currency,
    )


def charges_mark_invoiced(*, charge_ids: list[int], at: datetime) -> int:
    """The billing run put these charges on an invoice: never invoice them again. Called in the
    issuing transaction, which holds their row locks. Returns how many were marked."""
    return Charge.objects.filter(pk__in=charge_ids, invoiced_at__isnull=True).update(invoiced_at=at)
