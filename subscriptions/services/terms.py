"""Plans and terms (subscriptions.views.terms): renewal settings, plan changes (now or at the
term's end), cancelling a scheduled plan change, cancelling a subscription."""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from core.events import event_announce
from resellers.models import Membership
from resellers.roles import Action, require
from subscriptions.models import (
    Charge,
    LicenceChange,
    Plan,
    Subscription,
    plan_change_timing,
)
from subscriptions.periods import (
    TERM_MONTHS,
    Period,
    term_end,
)
from subscriptions.pricing import PriceQuote, customer_price, period_quote
from subscriptions.services.charges import _amount, _charge
from subscriptions.services.jobs import _catch_up
from subscriptions.services.prices import (
    _check_count,
    _check_orderable,
    _start_service,
)
from subscriptions.services.records import (
    Reason,
    Renewal,
    Status,
    _audit,
    _check_tenant,
    _invalid,
    _ledger,
    _lock,
    _plan_change_unschedule,
    _save,
    _set_status,
    _state,
    _today,
)


@transaction.atomic
def subscription_set_renewal(
    *,
    membership: Membership,
    subscription: Subscription,
    setting: str,
    licences: int | None = None,
) -> Subscription:
    """What happens at the end of an annual term: renew as is, renew with `licences`, or
    cancel. Lowering the count or cancelling takes the rights to remove or cancel."""
    require(membership.role, Action.LICENCES_ADD)
    _check_tenant(membership, subscription)
    subscription = _lock(subscription)
    _catch_up(subscription, _today())
    if subscription.status == Status.CANCELLED:
        raise ValidationError(_("This subscription is cancelled."), code="cancelled")
    if not subscription.plan.is_annual:
        raise ValidationError(_("Renewal settings apply to annual plans only."), code="not_annual")
    if setting not in Renewal.values:
        raise _invalid("setting", _("Choose what happens at renewal."), code="invalid")
    before = _state(subscription)
    if setting == Renewal.CANCEL_AT_TERM_END:
        require(membership.role, Action.SUBSCRIPTION_CANCEL)
        subscription.renewal_licences = None
        _plan_change_unschedule(subscription)
    elif setting == Renewal.RENEW_WITH_COUNT:
        count = _check_count(subscription.plan, licences, field="renewal_licences")
        if count < subscription.licences:
            require(membership.role, Action.LICENCES_REMOVE)
        subscription.renewal_licences = count
    else:
        subscription.renewal_licences = None
    subscription.renewal_setting = setting
    if _state(subscription) == before:
        return subscription
    _save(subscription)
    _audit(
        subscription, actor=membership.user, action="subscription.renewal_changed", before=before
    )
    return subscription


@transaction.atomic
def subscription_change_plan(
    *, membership: Membership, subscription: Subscription, plan: Plan
) -> Subscription:
    """Trial → paid plan starts paid service today (first period charged); flexible → annual
    takes effect at once, the term counting from the start of the current (paid) period;
    annual → flexible is scheduled for the end of the term (cancellable)."""
    require(membership.role, Action.SUBSCRIPTION_BUY)
    _check_tenant(membership, subscription)
    subscription = _lock(subscription)
    today = _today()
    _catch_up(subscription, today)
    if subscription.status == Status.CANCELLED:
        raise ValidationError(_("This subscription is cancelled."), code="cancelled")
    if plan.product_id != subscription.product_id:
        raise _invalid("plan", _("Choose a plan of the same product."), code="product")
    if not (plan.is_active and plan.product.is_active):
        raise _invalid("plan", _("This plan is no longer on sale."), code="plan")
    timing = plan_change_timing(subscription.plan, plan)
    if timing is None:
        raise _invalid(
            "plan",
            _("A subscription on %(current)s cannot change to %(target)s.")
            % {"current": subscription.plan.get_kind_display(), "target": plan.get_kind_display()},
            code="not_allowed",
        )
    before = _state(subscription)
    actor = membership.user
    if timing == "at_term_end":
        require(membership.role, Action.SUBSCRIPTION_CANCEL)
        if subscription.renewal_setting == Renewal.CANCEL_AT_TERM_END:
            raise ValidationError(
                _(
                    "This subscription is set to be cancelled at the end of its term. Change "
                    "the renewal setting first."
                ),
                code="cancelling",
            )
        subscription.scheduled_plan = plan
        # Its price of today, as the page showed it when the change was confirmed.
        subscription.scheduled_monthly_price = customer_price(
            customer=subscription.customer, plan=plan, currency=subscription.currency, on=today
        ).customer_price
        _save(subscription)
        _audit(
            subscription, actor=actor, action="subscription.plan_change_scheduled", before=before
        )
        return subscription

    charged_quote: PriceQuote | None
    if subscription.plan.is_trial:
        # A trial suspended by the reseller is reactivated first; an ended one converts.
        if subscription.suspension_reason != Reason.TRIAL_ENDED:
            _check_orderable(subscription)
        # Paid service from today, at the customer's price of the day.
        period, quote = _start_service(subscription, plan=plan, today=today)
        charged_period, charged_quote, months = period, quote, plan.months_per_period
    else:
        # Flexible → annual, at once. The current period is paid already; the 12-month term
        # counts from its start, so the term ends on a billing day.
        _check_orderable(subscription)
        current = subscription.period
        # The new plan at the customer's price of the day of the change.
        price = customer_price(
            customer=subscription.customer, plan=plan, currency=subscription.currency, on=today
        )
        subscription.plan = plan
        _plan_change_unschedule(subscription)
        subscription.monthly_price = price.customer_price
        subscription.term_start = current.start
        subscription.term_end = term_end(start=current.start, anchor_day=subscription.anchor_day)
        subscription.anchor_month = current.start.month
        subscription.renewal_setting = Renewal.AUTO_RENEW
        subscription.renewal_licences = None
        charged_period, charged_quote, months = current, None, 0
        if plan.kind == Plan.Kind.ANNUAL_YEARLY:
            # One yearly period from now on: the paid month plus the other 11 months, charged
            # now at the day's price and the reseller's cost on the first day they bill.
            subscription.period_end = subscription.term_end
            charged_period = Period(current.end, subscription.term_end)
            months = TERM_MONTHS - 1
            charged_quote = period_quote(
                cost_quote=customer_price(
                    customer=subscription.customer,
                    plan=plan,
                    currency=subscription.currency,
                    on=charged_period.start,
                ),
                price=price,
            )
    _save(subscription)
    amount = Decimal("0.00")
    if charged_quote is not None:
        amount = _amount(
            licences=subscription.licences,
            monthly_price=charged_quote.customer_price,
            months=months,
            period=charged_period,
        )[1]
    _ledger(
        subscription,
        kind=LicenceChange.Kind.PLAN_CHANGE,
        actor=actor,
        before=subscription.licences,
        amount=amount,
        period=charged_period,
    )
    if charged_quote is not None:
        _charge(
            subscription,
            kind=Charge.Kind.PLAN_CHANGE,
            period=charged_period,
            licences=subscription.licences,
            quote=charged_quote,
            months=months,
        )
    _audit(subscription, actor=actor, action="subscription.plan_changed", before=before)
    event_announce("subscription.plan_changed", subscription)
    return subscription


@transaction.atomic
def subscription_cancel_plan_change(
    *, membership: Membership, subscription: Subscription
) -> Subscription:
    """Withdraw a plan change scheduled for the end of the term."""
    require(membership.role, Action.SUBSCRIPTION_CANCEL)
    _check_tenant(membership, subscription)
    subscription = _lock(subscription)
    if subscription.scheduled_plan is None:
        raise ValidationError(_("No plan change is scheduled."), code="none_scheduled")
    before = _state(subscription)
    _plan_change_unschedule(subscription)
    _save(subscription)
    _audit(
        subscription,
        actor=membership.user,
        action="subscription.plan_change_withdrawn",
        before=before,
    )
    return subscription


@transaction.atomic
def subscription_cancel(*, membership: Membership, subscription: Subscription) -> Subscription:
    """Flexible and trial subscriptions end at once (no credit); annual ones at the end of the
    term (their renewal setting becomes "cancel at the end of the term")."""
    require(membership.role, Action.SUBSCRIPTION_CANCEL)
    _check_tenant(membership, subscription)
    subscription = _lock(subscription)
    _catch_up(subscription, _today())
    if subscription.status == Status.CANCELLED:
        raise ValidationError(_("This subscription is already cancelled."), code="cancelled")
    before = _state(subscription)
    if subscription.plan.is_annual:
        if subscription.renewal_setting == Renewal.CANCEL_AT_TERM_END:
            return subscription  # already set: a repeated click changes nothing
        subscription.renewal_setting = Renewal.CANCEL_AT_TERM_END
        subscription.renewal_licences = None
        _plan_change_unschedule(subscription)
        action = "subscription.cancellation_scheduled"
    else:
        _set_status(subscription, Status.CANCELLED)
        action = "subscription.cancelled"
    _save(subscription)
    _audit(subscription, actor=membership.user, action=action, before=before)
    if subscription.status == Status.CANCELLED:  # not a cancellation scheduled for the term end
        event_announce("subscription.cancelled", subscription)
    return subscription
