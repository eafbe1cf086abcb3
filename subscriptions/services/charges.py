"""Charges, what a subscription owes: written by orders, plan changes and the daily job's new
period (`_charge`, worded as the customer's invoice line, with the quote it was priced from:
list price, the reseller's cost and margin), and marked invoiced by billing's run
(`charges_mark_invoiced`, billing.services.invoice_issue_for_customer), so a charge is
invoiced once."""

from datetime import date, datetime
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
    money_round,
    period_price,
    prorate,
)
from subscriptions.pricing import PriceQuote


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


def _amount(
    *,
    licences: int,
    monthly_price: Decimal,
    months: int,
    period: Period,
    prorated_on: date | None = None,
) -> tuple[Decimal, Decimal]:
    """One licence for the period and what `licences` of them owe: the whole period, or
    (`prorated_on`) the days left of it. The one calculation of a charge's amount, and of its
    cost from the monthly cost, so both are rounded alike."""
    unit = period_price(monthly_price=monthly_price, months=months)
    if prorated_on is None:
        return unit, money_round(licences * unit)
    return unit, prorate(licences=licences, period_price=unit, period=period, on=prorated_on)


def _charge(
    subscription: Subscription,
    *,
    kind: str,
    period: Period,
    licences: int,
    quote: PriceQuote,
    months: int,
    prorated_on: date | None = None,
    order: Order | None = None,
) -> Charge | None:
    """Charge `licences` for `period` at the quote's customer price (per licence per month,
    `months` of them per period; prorated from `prorated_on` to the period's end), keeping
    the quote: list price, the reseller's cost and margin, and the rows they came from."""
    if licences <= 0:
        return None  # a removal: never credited
    unit, amount = _amount(
        licences=licences,
        monthly_price=quote.customer_price,
        months=months,
        period=period,
        prorated_on=prorated_on,
    )
    if amount <= 0:
        return None  # nothing to bill: a trial, or a removal
    unit_cost, cost_amount = _amount(
        licences=licences,
        monthly_price=quote.cost,
        months=months,
        period=period,
        prorated_on=prorated_on,
    )
    remaining_days = period.remaining_days(prorated_on) if prorated_on else 0
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
        unit_price=unit,
        amount=amount,
        currency=subscription.currency,
        list_unit_price=period_price(monthly_price=quote.list_price, months=months),
        unit_cost=unit_cost,
        unit_margin=unit - unit_cost,
        cost_amount=cost_amount,
        margin_amount=amount - cost_amount,
        monthly_list_price=quote.list_price,
        monthly_price=quote.customer_price,
        monthly_cost=quote.cost,
        price_source=quote.source,
        tier_id=quote.tier_id,
        tier_discount_id=quote.tier_discount_id,
        reseller_discount_id=quote.reseller_discount_id,
        price_rule_id=quote.price_rule_id,
        customer_price_id=quote.customer_price_id,
    )


def charges_mark_invoiced(*, charge_ids: list[int], at: datetime) -> int:
    """The billing run put these charges on an invoice: never invoice them again. Called in the
    issuing transaction, which holds their row locks. Returns how many were marked."""
    return Charge.objects.filter(pk__in=charge_ids, invoiced_at__isnull=True).update(invoiced_at=at)
