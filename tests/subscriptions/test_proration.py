"""Billing periods and proration (SPEC: anchor-day periods; N x period_price x R / D, the day
of the change counts as remaining, half-up to the cent). Pure functions: no database."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from subscriptions.periods import (
    Period,
    day_in_month,
    money_round,
    monthly_period,
    period_price,
    prorate,
    term_end,
    trial_end,
    yearly_period,
)

D = Decimal


@pytest.mark.parametrize(
    ("anchor_day", "on", "start", "end"),
    [
        # An ordinary month, first and last day of the period.
        (15, date(2026, 4, 15), date(2026, 4, 15), date(2026, 5, 15)),
        (15, date(2026, 5, 14), date(2026, 4, 15), date(2026, 5, 15)),
        # Across the new year.
        (15, date(2026, 12, 20), date(2026, 12, 15), date(2027, 1, 15)),
        (15, date(2027, 1, 3), date(2026, 12, 15), date(2027, 1, 15)),
        # Anchor 31: February starts on its last day, March returns to the 31st.
        (31, date(2026, 2, 15), date(2026, 1, 31), date(2026, 2, 28)),
        (31, date(2026, 2, 28), date(2026, 2, 28), date(2026, 3, 31)),
        (31, date(2026, 3, 30), date(2026, 2, 28), date(2026, 3, 31)),
        (31, date(2026, 3, 31), date(2026, 3, 31), date(2026, 4, 30)),
        (31, date(2026, 5, 1), date(2026, 4, 30), date(2026, 5, 31)),
        # Leap year: February has a 29th.
        (31, date(2028, 2, 29), date(2028, 2, 29), date(2028, 3, 31)),
        (30, date(2028, 2, 10), date(2028, 1, 30), date(2028, 2, 29)),
        (30, date(2028, 2, 29), date(2028, 2, 29), date(2028, 3, 30)),
        (29, date(2028, 2, 29), date(2028, 2, 29), date(2028, 3, 29)),
        # Anchor 29 in a common year.
        (29, date(2027, 2, 1), date(2027, 1, 29), date(2027, 2, 28)),
        (29, date(2027, 2, 28), date(2027, 2, 28), date(2027, 3, 29)),
        (1, date(2026, 3, 1), date(2026, 3, 1), date(2026, 4, 1)),
    ],
)
def test_monthly_periods(anchor_day, on, start, end):
    assert monthly_period(on=on, anchor_day=anchor_day) == Period(start, end)


@pytest.mark.parametrize(
    ("anchor_day", "anchor_month", "on", "start", "end"),
    [
        (10, 3, date(2026, 3, 10), date(2026, 3, 10), date(2027, 3, 10)),
        (10, 3, date(2027, 3, 9), date(2026, 3, 10), date(2027, 3, 10)),
        # Anchored on 29 February: common years start on the 28th, leap years on the 29th.
        (29, 2, date(2028, 3, 1), date(2028, 2, 29), date(2029, 2, 28)),
        (29, 2, date(2029, 2, 28), date(2029, 2, 28), date(2030, 2, 28)),
        (29, 2, date(2031, 12, 31), date(2031, 2, 28), date(2032, 2, 29)),
        (31, 12, date(2027, 1, 1), date(2026, 12, 31), date(2027, 12, 31)),
    ],
)
def test_yearly_periods(anchor_day, anchor_month, on, start, end):
    period = yearly_period(on=on, anchor_day=anchor_day, anchor_month=anchor_month)
    assert period == Period(start, end)


def test_terms_and_trials():
    assert term_end(start=date(2026, 1, 31), anchor_day=31) == date(2027, 1, 31)
    assert term_end(start=date(2026, 2, 28), anchor_day=31) == date(2027, 2, 28)
    assert term_end(start=date(2027, 2, 28), anchor_day=29) == date(2028, 2, 29)
    assert trial_end(start=date(2026, 2, 10)) == date(2026, 3, 12)
    assert Period(date(2026, 2, 1), date(2026, 3, 1)).last_day == date(2026, 2, 28)


FEB_2026 = Period(date(2026, 2, 1), date(2026, 3, 1))  # 28 days
FEB_2028 = Period(date(2028, 2, 1), date(2028, 3, 1))  # 29 days
APR_2026 = Period(date(2026, 4, 1), date(2026, 5, 1))  # 30 days
JAN_2026 = Period(date(2026, 1, 1), date(2026, 2, 1))  # 31 days
ANCHOR_31_MARCH = Period(date(2026, 2, 28), date(2026, 3, 31))  # 31 days
YEAR_2026 = Period(date(2026, 3, 10), date(2027, 3, 10))  # 365 days
YEAR_LEAP = Period(date(2027, 6, 1), date(2028, 6, 1))  # 366 days


@pytest.mark.parametrize(
    ("licences", "monthly", "months", "period", "on", "expected"),
    [
        # First day of the period: the whole period.
        (1, "4.00", 1, FEB_2026, date(2026, 2, 1), "4.00"),
        # Last day: one day of 28.  4 / 28 = 0.142857…
        (1, "4.00", 1, FEB_2026, date(2026, 2, 28), "0.14"),
        # 30-day month, halfway: 3 x 4 x 15 / 30.
        (3, "4.00", 1, APR_2026, date(2026, 4, 16), "6.00"),
        # 31-day month: 2 x 4 x 21 / 31 = 5.4193…
        (2, "4.00", 1, JAN_2026, date(2026, 1, 11), "5.42"),
        # Leap February: 1 x 4 x 15 / 29 = 2.0689…
        (1, "4.00", 1, FEB_2028, date(2028, 2, 15), "2.07"),
        # Anchor 31 period from 28 February to 31 March; its last day.  10 x 4 / 31 = 1.2903…
        (10, "4.00", 1, ANCHOR_31_MARCH, date(2026, 3, 30), "1.29"),
        # Exactly half a cent rounds up, not to even: 3.15 / 30 = 0.105; 0.70 / 28 = 0.025.
        (1, "3.15", 1, APR_2026, date(2026, 4, 30), "0.11"),
        (1, "0.70", 1, FEB_2026, date(2026, 2, 28), "0.03"),
        # Yearly period (12 x monthly): 2 x 36 x 181 / 365 = 35.7041…
        (2, "3.00", 12, YEAR_2026, date(2026, 9, 10), "35.70"),
        # Leap yearly period: 1 x 36 x 92 / 366 = 9.0491…
        (1, "3.00", 12, YEAR_LEAP, date(2028, 3, 1), "9.05"),
        (1, "3.00", 12, YEAR_LEAP, date(2027, 6, 1), "36.00"),
        (0, "4.00", 1, FEB_2026, date(2026, 2, 10), "0.00"),
        (5, "0.00", 1, FEB_2026, date(2026, 2, 10), "0.00"),
    ],
)
def test_proration_table(licences, monthly, months, period, on, expected):
    unit = period_price(monthly_price=D(monthly), months=months)
    assert prorate(licences=licences, period_price=unit, period=period, on=on) == D(expected)


def test_a_day_outside_the_period_is_refused():
    with pytest.raises(ValueError):
        prorate(licences=1, period_price=D("4"), period=FEB_2026, on=date(2026, 3, 1))
    with pytest.raises(ValueError):
        prorate(licences=1, period_price=D("4"), period=FEB_2026, on=date(2026, 1, 31))


def test_one_rounding_rule():
    assert money_round(D("0.005")) == D("0.01")
    assert money_round(D("0.015")) == D("0.02")
    assert money_round(D("0.0049999")) == D("0.00")
    assert money_round(D("2.675")) == D("2.68")


# Property tests


anchor_days = st.integers(min_value=1, max_value=31)
days = st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31))
prices = st.decimals(min_value=0, max_value=D("9999.99"), places=2)


@st.composite
def periods_and_day(draw):
    anchor_day = draw(anchor_days)
    on = draw(days)
    if draw(st.booleans()):
        period = yearly_period(on=on, anchor_day=anchor_day, anchor_month=draw(st.integers(1, 12)))
        months = 12
    else:
        period = monthly_period(on=on, anchor_day=anchor_day)
        months = 1
    return period, on, months, anchor_day


@given(periods_and_day())
def test_the_period_holds_the_day_and_starts_on_the_anchor_day(data):
    period, on, months, anchor_day = data
    assert period.start <= on < period.end
    for day in (period.start, period.end):
        assert day == day_in_month(day.year, day.month, anchor_day)
    assert (28 if months == 1 else 365) <= period.days <= (31 if months == 1 else 366)
    # Periods follow one another with no gap and no overlap.
    if months == 1:
        assert monthly_period(on=period.end, anchor_day=anchor_day).start == period.end
        assert monthly_period(on=period.start - timedelta(days=1), anchor_day=anchor_day).end == (
            period.start
        )


@given(periods_and_day(), st.integers(min_value=0, max_value=50000), prices)
def test_proration_is_never_negative_nor_more_than_the_period(data, licences, monthly):
    period, on, months, _ = data
    unit = period_price(monthly_price=monthly, months=months)
    amount = prorate(licences=licences, period_price=unit, period=period, on=on)
    assert D(0) <= amount <= money_round(licences * unit)
    assert amount == amount.quantize(D("0.01"))


@given(
    periods_and_day(),
    st.lists(st.integers(min_value=1, max_value=500), min_size=2, max_size=8),
    prices,
)
def test_split_orders_add_up_within_a_cent_per_split(data, parts, monthly):
    period, on, months, _ = data
    unit = period_price(monthly_price=monthly, months=months)
    whole = prorate(licences=sum(parts), period_price=unit, period=period, on=on)
    split = sum(prorate(licences=n, period_price=unit, period=period, on=on) for n in parts)
    assert abs(split - whole) <= D("0.01") * (len(parts) - 1)


@given(periods_and_day(), st.integers(min_value=1, max_value=1000), prices)
def test_a_later_day_never_costs_more(data, licences, monthly):
    period, on, months, _ = data
    unit = period_price(monthly_price=monthly, months=months)
    today = prorate(licences=licences, period_price=unit, period=period, on=on)
    if on + timedelta(days=1) < period.end:
        tomorrow = prorate(
            licences=licences, period_price=unit, period=period, on=on + timedelta(days=1)
        )
        assert tomorrow <= today
    if on == period.start:
        assert today == money_round(licences * unit)
