"""Billing periods and proration: pure functions, no database.

Periods start on the subscription's anchor day each month (each year, in the anchor month, for
`annual_yearly`). In a month without that day the period starts on the month's last day, and the
next one returns to the anchor day (Stripe's billing-cycle-anchor rule). A period runs from its
first day up to, but not including, the first day of the next one.

Proration lives here once, used by the order page's preview and by the order itself.
"""

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext

CENT = Decimal("0.01")
TRIAL_DAYS = 30
TERM_MONTHS = 12


def money_round(value: Decimal) -> Decimal:
    """The project's one rounding rule for money: half-up to the cent."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def day_in_month(year: int, month: int, anchor_day: int) -> date:
    """The anchor day in that month, or the month's last day if it is shorter."""
    return date(year, month, min(anchor_day, calendar.monthrange(year, month)[1]))


def add_months(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # exclusive: the first day of the next period

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def last_day(self) -> date:
        return self.end - timedelta(days=1)

    def contains(self, day: date) -> bool:
        return self.start <= day < self.end

    def remaining_days(self, on: date) -> int:
        """Days left on `on`, counting `on` itself."""
        if not self.contains(on):
            raise ValueError(f"{on} is outside {self}")
        return (self.end - on).days


def monthly_period(*, on: date, anchor_day: int) -> Period:
    """The monthly period that contains `on`."""
    this_month = day_in_month(on.year, on.month, anchor_day)
    if this_month <= on:
        start = this_month
        end = day_in_month(*add_months(on.year, on.month, 1), anchor_day)
    else:
        start = day_in_month(*add_months(on.year, on.month, -1), anchor_day)
        end = this_month
    return Period(start, end)


def yearly_period(*, on: date, anchor_day: int, anchor_month: int) -> Period:
    """The yearly period that contains `on`."""
    this_year = day_in_month(on.year, anchor_month, anchor_day)
    if this_year <= on:
        return Period(this_year, day_in_month(on.year + 1, anchor_month, anchor_day))
    return Period(day_in_month(on.year - 1, anchor_month, anchor_day), this_year)


def term_end(*, start: date, anchor_day: int) -> date:
    """End (exclusive) of a 12-month term that starts on a period start."""
    return day_in_month(*add_months(start.year, start.month, TERM_MONTHS), anchor_day)


def trial_end(*, start: date) -> date:
    """A trial started on `start` runs 30 days; on this day it ends."""
    return start + timedelta(days=TRIAL_DAYS)


def period_price(*, monthly_price: Decimal, months: int) -> Decimal:
    """Price of one licence for one billing period."""
    return monthly_price * months


def prorate(*, licences: int, period_price: Decimal, period: Period, on: date) -> Decimal:
    """What adding `licences` on `on` costs for the rest of `period`:
    `licences x period_price x R / D`, R the days left counting `on`, D the period's days,
    rounded half-up to the cent."""
    if licences < 0:
        raise ValueError("licences must not be negative")
    remaining = period.remaining_days(on)
    # Wide precision so the only rounding is money_round's: the exact quotient has at most a
    # few hundred as denominator, far from 40 significant digits.
    with localcontext(Context(prec=40)):
        exact = Decimal(licences) * period_price * remaining / period.days
    return money_round(exact)
