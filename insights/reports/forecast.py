"""Forecast: what the reseller's live subscriptions will be charged in the next 90 days, at
today's prices.

Each subscription on a paid plan, active or suspended (whose periods the job still charges:
subscriptions.models.PERIODS_ROLL_STATUSES), is rolled forward as the daily job rolls it
(subscriptions.services.jobs._start_next_period): every period start after today and within
the horizon is a charge of its licences x its price per licence per month x the period's
months (1, or 12 for annual_yearly). At the end of a term: cancel_at_term_end stops it,
renew_with_count renews with that many licences (at most the plan's limit), a plan change
scheduled for then applies. Periods and terms come from subscriptions.periods, the functions
the job uses; nothing here knows the anchor-day rule.

"Today's prices" is the subscription's current price per licence per month (Subscription.
monthly_price), also after a scheduled plan change: the new plan's price for the customer is
decided on the day it applies (special prices, price book, discounts), too costly to work out
for every subscription here. Such charges say so (`price_estimated`). Trials (until they are
converted, which only a person does, on no known date) and cancelled subscriptions bring
nothing.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing.selectors import billed_through_reseller_q
from commissions.margins import month_start
from customers.selectors import VISIBLE_STATUSES
from insights.reports.common import ZERO, months_between
from resellers.models import Reseller
from subscriptions.models import PERIODS_ROLL_STATUSES, Plan, Subscription
from subscriptions.periods import (
    money_round,
    monthly_period,
    period_price,
    term_end,
    yearly_period,
)

FORECAST_DAYS = 90

Renewal = Subscription.RenewalSetting

# What an expected charge is.
RENEWAL = "renewal"
MONTHLY = "monthly"
YEARLY = "yearly"
KIND_LABELS = {
    RENEWAL: gettext_lazy("Renewal of the term"),
    MONTHLY: gettext_lazy("Monthly period"),
    YEARLY: gettext_lazy("Yearly period"),
}


@dataclass(frozen=True)
class ExpectedCharge:
    day: date
    customer_id: int
    customer_public_id: str
    customer_name: str
    customer_is_current: bool
    subscription_public_id: str
    product: str
    plan: Plan
    licences: int
    unit_price: Decimal  # per licence per month
    months: int
    amount: Decimal
    kind: str  # RENEWAL, MONTHLY or YEARLY
    # After a plan change scheduled for the end of the term: counted at the current price.
    price_estimated: bool

    @property
    def kind_label(self) -> str:
        return str(KIND_LABELS[self.kind])


@dataclass(frozen=True)
class ForecastLine:
    """A month, a customer, or the total of the expected charges."""

    key: str  # the month as YYYY-MM, the customer's public id; "" for the total
    name: str
    charges: int
    amount: Decimal
    month: date | None = None
    is_current: bool = False


@dataclass(frozen=True)
class ForecastReport:
    currency: str
    after: date  # today: the charges are those of the days after it
    until: date  # the last day counted
    charges: list[ExpectedCharge]
    by_month: list[ForecastLine]
    by_customer: list[ForecastLine]
    total: ForecastLine

    @property
    def has_estimates(self) -> bool:
        return any(charge.price_estimated for charge in self.charges)


def _period_end(plan: Plan, *, anchor_day: int, anchor_month: int, start: date) -> date:
    """The end of the period starting on `start`: yearly periods for annual_yearly, monthly
    ones for the other plans (as subscriptions.services.prices._period_on chooses)."""
    if plan.kind == Plan.Kind.ANNUAL_YEARLY:
        return yearly_period(on=start, anchor_day=anchor_day, anchor_month=anchor_month).end
    return monthly_period(on=start, anchor_day=anchor_day).end


def expected_charges(
    subscription: Subscription, *, after: date, until: date
) -> Iterator[ExpectedCharge]:
    """The periods of `subscription` that start after `after` and on or before `until`, each as
    the charge the daily job would make on its first day at the subscription's price of today.
    Reads the subscription's plan, scheduled plan, product and customer (select them)."""
    plan = subscription.plan
    licences = subscription.licences
    ends = subscription.term_end
    setting = subscription.renewal_setting
    renewal_licences = subscription.renewal_licences
    scheduled = subscription.scheduled_plan
    anchor_month = subscription.anchor_month
    estimated = False
    customer = subscription.customer
    start = subscription.period_end
    while start <= until:
        renewal = ends is not None and start >= ends
        if renewal:
            if setting == Renewal.CANCEL_AT_TERM_END:
                return
            if scheduled is not None:
                plan, scheduled, estimated = scheduled, None, True
            if setting == Renewal.RENEW_WITH_COUNT:
                licences = min(renewal_licences or licences, plan.licence_limit)
            # The count chosen is for one renewal; the next term renews as it stands.
            setting, renewal_licences = Renewal.AUTO_RENEW, None
            if plan.is_annual:
                ends = term_end(start=start, anchor_day=subscription.anchor_day)
                anchor_month = start.month
            else:
                ends = None
        following = _period_end(
            plan, anchor_day=subscription.anchor_day, anchor_month=anchor_month, start=start
        )
        if start > after:
            months = plan.months_per_period
            yield ExpectedCharge(
                day=start,
                customer_id=customer.pk,
                customer_public_id=customer.public_id,
                customer_name=customer.organisation,
                customer_is_current=customer.status in VISIBLE_STATUSES,
                subscription_public_id=subscription.public_id,
                product=subscription.product.name,
                plan=plan,
                licences=licences,
                unit_price=subscription.monthly_price,
                months=months,
                amount=money_round(
                    licences * period_price(monthly_price=subscription.monthly_price, months=months)
                ),
                kind=RENEWAL if renewal else YEARLY if months > 1 else MONTHLY,
                price_estimated=estimated,
            )
        start = following


def forecast_report(*, reseller: Reseller, currency: str, today: date) -> ForecastReport:
    """The charges expected in the FORECAST_DAYS days after `today` from the reseller's active
    subscriptions in `currency`, by month, by customer and one by one (by day). One query,
    however many subscriptions."""
    until = today + timedelta(days=FORECAST_DAYS)
    subscriptions = (
        Subscription.objects.filter(
            # Not what a customer that revoked its reseller's access now pays itself.
            billed_through_reseller_q(),
            customer__reseller_id=reseller.pk,
            currency=currency,
            status__in=PERIODS_ROLL_STATUSES,
        )
        .exclude(plan__kind=Plan.Kind.TRIAL)
        .select_related("customer", "product", "plan", "scheduled_plan")
        .order_by("id")
    )
    charges = [
        charge
        for subscription in subscriptions
        for charge in expected_charges(subscription, after=today, until=until)
    ]
    charges.sort(key=lambda charge: (charge.day, charge.customer_name.casefold(), charge.product))
    months: dict[date, list[ExpectedCharge]] = {
        month: [] for month in months_between(today + timedelta(days=1), until)
    }
    customers: dict[int, list[ExpectedCharge]] = {}
    for charge in charges:
        months[month_start(charge.day)].append(charge)
        customers.setdefault(charge.customer_id, []).append(charge)
    by_customer = [
        ForecastLine(
            key=group[0].customer_public_id,
            name=group[0].customer_name,
            charges=len(group),
            amount=sum((charge.amount for charge in group), ZERO),
            is_current=group[0].customer_is_current,
        )
        for group in customers.values()
    ]
    by_customer.sort(key=lambda line: (-line.amount, line.name.casefold(), line.key))
    return ForecastReport(
        currency=currency,
        after=today,
        until=until,
        charges=charges,
        by_month=[
            ForecastLine(
                key=f"{month:%Y-%m}",
                name="",
                charges=len(group),
                amount=sum((charge.amount for charge in group), ZERO),
                month=month,
            )
            for month, group in months.items()
        ],
        by_customer=by_customer,
        total=ForecastLine(
            key="",
            name=_("Total"),
            charges=len(charges),
            amount=sum((charge.amount for charge in charges), ZERO),
        ),
    )


# The CSV: one row per expected charge. The columns are a contract with the spreadsheets that
# read it: add at the end, never rename.
FORECAST_CSV_COLUMNS: tuple[str, ...] = (
    "date",
    "customer_id",
    "customer",
    "subscription_id",
    "product",
    "plan",  # in the reader's language
    "licences",
    "unit_price",  # per licence per month, before VAT
    "months",
    "amount",  # before VAT; a dot as decimal separator, two decimals
    "currency",
    "kind",  # in the reader's language: renewal of the term, monthly or yearly period
    "price_estimated",  # "yes": a plan change scheduled, counted at the current price
)


def forecast_csv_rows(forecast: ForecastReport) -> list[list[str]]:
    """The expected charges as rows (FORECAST_CSV_COLUMNS), by day. Made at once, in the
    reader's language: a streamed response writes them after the request's language is gone."""
    return [
        [
            charge.day.isoformat(),
            charge.customer_public_id,
            charge.customer_name,
            charge.subscription_public_id,
            charge.product,
            str(charge.plan.get_kind_display()),
            str(charge.licences),
            f"{charge.unit_price:.2f}",
            str(charge.months),
            f"{charge.amount:.2f}",
            forecast.currency,
            charge.kind_label,
            "yes" if charge.price_estimated else "",
        ]
        for charge in forecast.charges
    ]
