"""Prices and periods, and the preview: the one calculation the order page shows and the order
charges (`LicenceQuote`), at the customer's price (subscriptions.pricing). Also the checks an
order passes before anything is written."""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.utils import formats
from django.utils.translation import gettext as _

from customers.models import Customer
from subscriptions.models import (
    Plan,
    Subscription,
)
from subscriptions.periods import (
    Period,
    money_round,
    monthly_period,
    period_price,
    prorate,
    term_end,
    trial_end,
    yearly_period,
)
from subscriptions.pricing import (
    PriceQuote,
    current_period_quote,
    customer_price,
    renewal_price,
)

# catalogue_price lives with the other price reads; services re-exports it from here.
from subscriptions.pricing import catalogue_price as catalogue_price
from subscriptions.services.records import (
    Reason,
    Renewal,
    Status,
    _invalid,
    _plan_change_unschedule,
    _set_status,
    _today,
)


def _period_on(*, plan: Plan, anchor_day: int, anchor_month: int, on: date) -> Period:
    if plan.kind == Plan.Kind.ANNUAL_YEARLY:
        return yearly_period(on=on, anchor_day=anchor_day, anchor_month=anchor_month)
    return monthly_period(on=on, anchor_day=anchor_day)


def _current_period_and_price(subscription: Subscription, on: date) -> tuple[Period, PriceQuote]:
    """The period `on` falls in and the quote it is billed at: its price per licence per month
    and the reseller's cost on its first day.

    Normally the stored period at the subscription's price; if the daily job has not started
    the next period yet, the one it will start, at the price the job will charge."""
    if on < subscription.period_end or subscription.plan.is_trial:
        return subscription.period, current_period_quote(subscription=subscription)
    period = _period_on(
        plan=subscription.plan,
        anchor_day=subscription.anchor_day,
        anchor_month=subscription.anchor_month,
        on=on,
    )
    return period, renewal_price(subscription=subscription, start=period.start)


@dataclass(frozen=True)
class LicenceQuote:
    currency: str
    current_count: int
    new_count: int
    period: Period
    remaining_days: int
    # One licence for the whole current period, at the price locked for it.
    unit_period_price: Decimal
    # Prorated price of the licences added; removing licences is never credited.
    due_now: Decimal
    # What each period will cost from the next one on, at the price it will be charged.
    recurring_amount: Decimal
    recurring_months: int
    # What the current period is priced from (a charge snapshots it): the reseller's side.
    priced: PriceQuote
    # The reseller's cost of what is due now and of each later period, and its margin. Only
    # for members who may see margins (Action.MARGIN_VIEW); never for the customer.
    cost_now: Decimal
    recurring_cost: Decimal

    @property
    def change(self) -> int:
        return self.new_count - self.current_count

    @property
    def margin_now(self) -> Decimal:
        return self.due_now - self.cost_now

    @property
    def recurring_margin(self) -> Decimal:
        return self.recurring_amount - self.recurring_cost


def _quote(subscription: Subscription, new_count: int, on: date) -> LicenceQuote:
    plan = subscription.plan
    period, priced = _current_period_and_price(subscription, on)
    months = plan.months_per_period
    added = max(new_count - subscription.licences, 0)
    if plan.is_trial:
        unit = unit_cost = Decimal("0.00")
    else:
        unit = period_price(monthly_price=priced.customer_price, months=months)
        unit_cost = period_price(monthly_price=priced.cost, months=months)
    recurring = recurring_cost = Decimal("0.00")
    if not plan.is_trial:
        following = renewal_price(subscription=subscription, start=period.end)
        recurring = money_round(
            new_count * period_price(monthly_price=following.customer_price, months=months)
        )
        recurring_cost = money_round(
            new_count * period_price(monthly_price=following.cost, months=months)
        )
    return LicenceQuote(
        currency=subscription.currency,
        current_count=subscription.licences,
        new_count=new_count,
        period=period,
        remaining_days=period.remaining_days(on),
        unit_period_price=unit,
        due_now=prorate(licences=added, period_price=unit, period=period, on=on),
        recurring_amount=recurring,
        recurring_months=months,
        priced=priced,
        cost_now=prorate(licences=added, period_price=unit_cost, period=period, on=on),
        recurring_cost=recurring_cost,
    )


def _check_orderable(subscription: Subscription) -> None:
    if subscription.status == Status.CANCELLED:
        raise ValidationError(
            _("This subscription is cancelled: its licences can no longer be changed."),
            code="cancelled",
        )
    if subscription.status == Status.SUSPENDED:
        if subscription.suspension_reason == Reason.TRIAL_ENDED:
            raise ValidationError(
                _("The trial has ended. Change to a paid plan to go on using it."),
                code="trial_ended",
            )
        raise ValidationError(
            _(
                "This subscription is suspended (%(reason)s). It must be reactivated before "
                "its licences can be changed."
            )
            % {"reason": subscription.get_suspension_reason_display()},
            code="suspended",
        )


def _check_count(plan: Plan, count: object, *, field: str = "licences") -> int:
    if not isinstance(count, int) or isinstance(count, bool):
        raise _invalid(field, _("Enter a whole number of licences."), code="invalid")
    if count < 1:
        raise _invalid(
            field,
            _("A subscription needs at least 1 licence. To end it, cancel it instead."),
            code="min",
        )
    limit = plan.licence_limit
    if count > limit:
        message = (
            _("A trial has at most %(limit)d licences.")
            if plan.is_trial
            else _("This plan allows at most %(limit)d licences.")
        )
        raise _invalid(field, message % {"limit": limit}, code="max")
    return count


def _check_change(subscription: Subscription, new_count: object) -> int:
    """Everything about a new licence count that does not depend on who asks."""
    _check_orderable(subscription)
    count = _check_count(subscription.plan, new_count)
    if count == subscription.licences:
        raise _invalid(
            "licences",
            _("The subscription already has %(count)d licences.") % {"count": count},
            code="unchanged",
        )
    if count < subscription.licences and subscription.plan.is_annual:
        raise _invalid(
            "licences",
            _(
                "On an annual plan licences cannot be removed during the term. Set the "
                "number of licences for the renewal instead: it applies from %(date)s."
            )
            % {"date": formats.date_format(subscription.term_end or subscription.period_end)},
            code="annual_no_removal",
        )
    return count


def _start_service(
    subscription: Subscription, *, plan: Plan, today: date
) -> tuple[Period, PriceQuote]:
    """Put the subscription on `plan` from `today`: a new billing anchor, first period and
    term, at the customer's price of the day (a trial is free). Returns the first period and
    the quote it is priced with. Raises ValidationError if the plan has no price in the
    subscription's currency."""
    quote = customer_price(
        customer=subscription.customer, plan=plan, currency=subscription.currency, on=today
    )
    subscription.plan = plan
    subscription.product_id = plan.product_id
    subscription.anchor_day = today.day
    subscription.anchor_month = today.month
    subscription.monthly_price = quote.customer_price
    subscription.renewal_setting = Renewal.AUTO_RENEW
    subscription.renewal_licences = None
    _plan_change_unschedule(subscription)
    if plan.is_trial:
        period = Period(today, trial_end(start=today))
        subscription.term_start, subscription.term_end = period.start, period.end
        _set_status(subscription, Status.TRIAL)
    else:
        period = _period_on(plan=plan, anchor_day=today.day, anchor_month=today.month, on=today)
        if plan.is_annual:
            subscription.term_start = today
            subscription.term_end = term_end(start=today, anchor_day=today.day)
        else:
            subscription.term_start = subscription.term_end = None
        _set_status(subscription, Status.ACTIVE)
    subscription.period_start, subscription.period_end = period.start, period.end
    return period, quote


def subscription_preview_licences(
    *, subscription: Subscription, new_count: int, on: date | None = None
) -> LicenceQuote:
    """What ordering `new_count` licences would cost: due now (prorated) and per period from
    the next one. Raises the same ValidationError as the order would."""
    on = on or _today()
    _check_change(subscription, new_count)
    if subscription.plan.is_trial and subscription.term_end and on >= subscription.term_end:
        raise ValidationError(_("The trial has ended. Change to a paid plan to go on using it."))
    return _quote(subscription, new_count, on)


def subscription_preview_purchase(
    *, customer: Customer, plan: Plan, licences: int, currency: str, on: date | None = None
) -> LicenceQuote:
    """What buying `licences` on `plan` for `customer` would cost, as subscription_buy charges
    it: the first period, which starts today, in full at the customer's price (a trial is
    free), and per period from the next one. Raises the same ValidationError for the number
    as the order would."""
    on = on or _today()
    count = _check_count(plan, licences)
    # An unsaved subscription put on the plan as the order would: the quote reads its period.
    draft = Subscription(customer=customer, currency=currency, licences=0)
    _start_service(draft, plan=plan, today=on)
    return _quote(draft, count, on)
