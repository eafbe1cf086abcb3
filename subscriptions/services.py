"""Writes for subscriptions: buy, change licences, renewal settings, plan changes, cancel,
suspend and reactivate, and the daily jobs' step for one subscription.

Every state change is audited. Every amount owed becomes a `Charge` that the billing run
invoices; every licence change is appended to the ledger (`LicenceChange`). Work on a
subscription happens under a row lock on it, so concurrent orders queue up.
"""

import contextlib
import secrets
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from core.emails import email_queue
from core.models import User
from customers.models import Customer
from resellers.models import Membership
from resellers.roles import Action, Role, require
from resellers.services import audit_record
from subscriptions.models import (
    Charge,
    LicenceChange,
    Order,
    Payer,
    Plan,
    PlanPrice,
    Subscription,
    plan_change_timing,
)
from subscriptions.periods import (
    TERM_MONTHS,
    Period,
    money_round,
    monthly_period,
    period_price,
    prorate,
    term_end,
    trial_end,
    yearly_period,
)

Status = Subscription.Status
Reason = Subscription.SuspensionReason
Renewal = Subscription.RenewalSetting

TRIAL_REMINDER_DAYS = 7
TERM_REMINDER_DAYS = 30
ORDER_KEY_MAX_LENGTH = 64
_REFERENCE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I


def order_key_new() -> str:
    """The one-time key an order form carries: the same key submitted twice is one order."""
    return secrets.token_urlsafe(24)


def _order_reference() -> str:
    return "ORD-" + "".join(secrets.choice(_REFERENCE_ALPHABET) for _ in range(8))


def _today() -> date:
    return timezone.localdate()


# Prices and periods


def catalogue_price(*, plan: Plan, currency: str) -> Decimal:
    """Today's catalogue price of one licence for one month; a trial is free."""
    price = (
        PlanPrice.objects.filter(plan=plan, currency=currency)
        .values_list("monthly_price", flat=True)
        .first()
    )
    if price is not None:
        return price
    if plan.is_trial:
        return Decimal("0.00")
    raise _invalid(
        "plan",
        _("%(plan)s is not offered in %(currency)s.") % {"plan": plan, "currency": currency},
        code="no_price",
    )


def _next_period_price(subscription: Subscription) -> Decimal:
    """The monthly price the next period will be charged at: the catalogue's of the day, or
    the current one if the plan is no longer priced in the subscription's currency."""
    with contextlib.suppress(ValidationError):
        return catalogue_price(plan=subscription.plan, currency=subscription.currency)
    return subscription.monthly_price


def _period_on(*, plan: Plan, anchor_day: int, anchor_month: int, on: date) -> Period:
    if plan.kind == Plan.Kind.ANNUAL_YEARLY:
        return yearly_period(on=on, anchor_day=anchor_day, anchor_month=anchor_month)
    return monthly_period(on=on, anchor_day=anchor_day)


def _current_period_and_price(subscription: Subscription, on: date) -> tuple[Period, Decimal]:
    """The period `on` falls in and the price per licence per month it is billed at.

    Normally the stored period; if the daily job has not started the next period yet, the one
    it will start, at today's catalogue price (what the job will charge)."""
    if on < subscription.period_end or subscription.plan.is_trial:
        return subscription.period, subscription.monthly_price
    period = _period_on(
        plan=subscription.plan,
        anchor_day=subscription.anchor_day,
        anchor_month=subscription.anchor_month,
        on=on,
    )
    return period, _next_period_price(subscription)


# Preview: the one calculation the order page shows and the order charges.


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
    # What each period will cost from the next one on, at today's catalogue price.
    recurring_amount: Decimal
    recurring_months: int

    @property
    def change(self) -> int:
        return self.new_count - self.current_count


def _quote(subscription: Subscription, new_count: int, on: date) -> LicenceQuote:
    plan = subscription.plan
    period, monthly = _current_period_and_price(subscription, on)
    months = plan.months_per_period
    unit = Decimal("0.00") if plan.is_trial else period_price(monthly_price=monthly, months=months)
    added = max(new_count - subscription.licences, 0)
    next_monthly = _next_period_price(subscription)
    recurring = Decimal("0.00")
    if not plan.is_trial:
        recurring = money_round(new_count * period_price(monthly_price=next_monthly, months=months))
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
    )


def _invalid(field: str, message: str, *, code: str) -> ValidationError:
    """A message for one form field, with a code the page (and the tests) can tell apart."""
    return ValidationError({field: ValidationError(message, code=code)})


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
    *, plan: Plan, licences: int, currency: str, on: date | None = None
) -> LicenceQuote:
    """What buying `licences` on `plan` would cost, as subscription_buy charges it: the first
    period, which starts today, in full (a trial is free), and per period from the next one.
    Raises the same ValidationError for the number as the order would."""
    on = on or _today()
    count = _check_count(plan, licences)
    # An unsaved subscription put on the plan as the order would: the quote reads its period.
    draft = Subscription(currency=currency, licences=0)
    _start_service(draft, plan=plan, today=on)
    return _quote(draft, count, on)


# Records: ledger, charges, audit


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


def _ledger(
    subscription: Subscription,
    *,
    kind: str,
    actor: User | None,
    before: int,
    amount: Decimal,
    period: Period,
    order: Order | None = None,
) -> LicenceChange:
    return LicenceChange.objects.create(
        subscription=subscription,
        order=order,
        kind=kind,
        actor=actor,
        actor_email=actor.email if actor else "",
        plan=subscription.plan,
        licences_before=before,
        licences_after=subscription.licences,
        amount=amount,
        currency=subscription.currency,
        period_start=period.start,
        period_end=period.end,
    )


STATE_FIELDS = [
    "status",
    "suspension_reason",
    "plan_id",
    "licences",
    "period_start",
    "period_end",
    "term_end",
    "renewal_setting",
    "renewal_licences",
    "scheduled_plan_id",
    "monthly_price",
]


def _state(subscription: Subscription) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for name in STATE_FIELDS:
        value = getattr(subscription, name)
        state[name] = value if value is None or isinstance(value, int | str) else str(value)
    return state


def _audit(
    subscription: Subscription,
    *,
    actor: User | None,
    action: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None = None,
) -> None:
    if after is None:
        after = _state(subscription)
    if before is not None:
        changed = [key for key in after if before.get(key) != after[key]]
        before = {key: before.get(key) for key in changed}
        after = {key: after[key] for key in changed}
    audit_record(
        actor=actor,
        reseller=subscription.customer.reseller,
        action=action,
        obj=subscription,
        before=before,
        after=after,
        customer_public_id=subscription.customer.public_id,
    )


def _save(subscription: Subscription) -> None:
    subscription.full_clean(exclude=["customer", "product", "plan", "scheduled_plan"])
    subscription.save()


# Locking and the jobs' work for one subscription


def _lock(subscription: Subscription | int) -> Subscription:
    # Lock the subscription row (only it, not the joined customer or plan): the licence count,
    # the period and the order keys are read and then written under this lock, so parallel
    # orders queue up and each one adds to the count the previous one left.
    pk = subscription if isinstance(subscription, int) else subscription.pk
    return (
        Subscription.objects.select_for_update(of=("self",))
        .select_related("customer__reseller", "plan__product", "scheduled_plan")
        .get(pk=pk)
    )


def _check_tenant(membership: Membership, subscription: Subscription) -> None:
    # The view found the subscription through the member's reseller; the write checks again.
    if subscription.customer.reseller_id != membership.reseller_id:
        raise PermissionDenied(_("This subscription belongs to another reseller."))


def _set_status(subscription: Subscription, status: str, reason: str = "") -> None:
    subscription.status = status
    subscription.suspension_reason = reason
    subscription.status_changed_at = timezone.now()
    if status == Status.CANCELLED:
        subscription.cancelled_at = subscription.status_changed_at


def _end_trial(subscription: Subscription) -> None:
    before = _state(subscription)
    _set_status(subscription, Status.SUSPENDED, Reason.TRIAL_ENDED)
    _save(subscription)
    _audit(subscription, actor=None, action="subscription.trial_ended", before=before)


def _trial_is_over(subscription: Subscription, today: date) -> bool:
    return (
        subscription.plan.is_trial
        and subscription.term_end is not None
        and subscription.term_end <= today
        and subscription.status != Status.CANCELLED
        and subscription.suspension_reason != Reason.TRIAL_ENDED
    )


def _rolls_over(subscription: Subscription) -> bool:
    """Paid service keeps its periods going while suspended by the reseller or for a pending
    payment: the commitment and the licences are still held."""
    return not subscription.plan.is_trial and subscription.status in (
        Status.ACTIVE,
        Status.SUSPENDED,
    )


def _start_next_period(subscription: Subscription) -> None:
    """Move from the period that just ended to the next one, applying the renewal settings and
    a scheduled plan change at the end of a term, and charge the new period in advance at the
    catalogue price of the day."""
    before = _state(subscription)
    licences_before = subscription.licences
    start = subscription.period_end
    renewal = subscription.term_end is not None and start >= subscription.term_end
    if renewal:
        if subscription.renewal_setting == Renewal.CANCEL_AT_TERM_END:
            _set_status(subscription, Status.CANCELLED)
            _save(subscription)
            _audit(subscription, actor=None, action="subscription.cancelled", before=before)
            return
        if subscription.scheduled_plan is not None:
            subscription.plan = subscription.scheduled_plan
            subscription.scheduled_plan = None
        if subscription.renewal_setting == Renewal.RENEW_WITH_COUNT:
            subscription.licences = min(
                subscription.renewal_licences or subscription.licences,
                subscription.plan.licence_limit,
            )
        # The renewal count is chosen for one renewal; the next term renews as it stands.
        subscription.renewal_setting = Renewal.AUTO_RENEW
        subscription.renewal_licences = None
        if subscription.plan.is_annual:
            subscription.term_start = start
            subscription.term_end = term_end(start=start, anchor_day=subscription.anchor_day)
            subscription.anchor_month = start.month
        else:
            subscription.term_start = subscription.term_end = None
    plan = subscription.plan
    period = Period(
        start,
        _period_on(
            plan=plan,
            anchor_day=subscription.anchor_day,
            anchor_month=subscription.anchor_month,
            on=start,
        ).end,
    )
    subscription.monthly_price = _next_period_price(subscription)
    subscription.period_start, subscription.period_end = period.start, period.end
    _save(subscription)
    unit = period_price(monthly_price=subscription.monthly_price, months=plan.months_per_period)
    amount = money_round(subscription.licences * unit)
    _charge(
        subscription,
        kind=Charge.Kind.PERIOD,
        period=period,
        licences=subscription.licences,
        unit_price=unit,
        amount=amount,
    )
    if renewal:
        _ledger(
            subscription,
            kind=LicenceChange.Kind.RENEWAL,
            actor=None,
            before=licences_before,
            amount=amount,
            period=period,
        )
    action = "subscription.renewed" if renewal else "subscription.period_started"
    _audit(subscription, actor=None, action=action, before=before)


def _catch_up(subscription: Subscription, today: date) -> bool:
    """Do what the daily jobs would have done by `today` (they may not have run yet): an
    order placed on the first day of a period is prorated over that period. Returns whether
    anything changed."""
    changed = False
    if _trial_is_over(subscription, today):
        _end_trial(subscription)
        changed = True
    while _rolls_over(subscription) and subscription.period_end <= today:
        _start_next_period(subscription)
        changed = True
    return changed


@transaction.atomic
def subscription_renew_due(*, subscription_id: int, today: date) -> bool:
    """The renewal job's step: start every period (and term) that has begun by `today`.
    Running it again the same day finds nothing to do."""
    subscription = _lock(subscription_id)
    if subscription.plan.is_trial:
        return False
    return _catch_up(subscription, today)


@transaction.atomic
def subscription_expire_trial(*, subscription_id: int, today: date) -> bool:
    """The trial job's step: a trial not converted by its 30th day is suspended."""
    subscription = _lock(subscription_id)
    if not _trial_is_over(subscription, today):
        return False
    _end_trial(subscription)
    return True


def _reminder_due(subscription: Subscription, today: date) -> bool:
    if subscription.term_end is None or today >= subscription.term_end:
        return False
    if subscription.reminder_sent_for is not None and (
        subscription.reminder_sent_for >= subscription.term_end
    ):
        return False
    if subscription.plan.is_trial:
        days = TRIAL_REMINDER_DAYS
        due = subscription.status == Status.TRIAL
    else:
        days = TERM_REMINDER_DAYS
        due = subscription.plan.is_annual and subscription.status == Status.ACTIVE
    return due and (subscription.term_end - today).days <= days


@transaction.atomic
def subscription_send_reminder(*, subscription_id: int, today: date) -> bool:
    """The reminder job's step: the reseller's owners and admins are told, once per term, that
    a trial ends in 7 days or an annual term in 30, in their own language."""
    subscription = _lock(subscription_id)
    if not _reminder_due(subscription, today):
        return False
    subscription.reminder_sent_for = subscription.term_end
    subscription.save(update_fields=["reminder_sent_for"])
    customer = subscription.customer
    template = (
        "subscription_trial_ending" if subscription.plan.is_trial else "subscription_term_ending"
    )
    context = {
        "reseller_name": customer.reseller.name,
        "organisation": customer.organisation,
        "domain": customer.domain,
        "product": subscription.plan.product.name,
        "plan_kind": subscription.plan.kind,
        "licences": subscription.licences,
        "ends_on": subscription.term_end,
        "renewal_setting": subscription.renewal_setting,
        "next_licences": subscription.renewal_licences or subscription.licences,
        "scheduled_plan_kind": subscription.scheduled_plan.kind
        if subscription.scheduled_plan
        else "",
        "customer_url": settings.PORTAL_URL
        + reverse("customers:detail", kwargs={"customer_id": customer.public_id}),
    }
    recipients = Membership.objects.filter(
        reseller_id=customer.reseller_id, role__in=[Role.OWNER, Role.ADMIN]
    ).select_related("user")
    for membership in recipients:
        email_queue(
            to=membership.user.email,
            template=template,
            context=context,
            language=membership.user.language,
        )
    return True


# Buying


def _start_service(subscription: Subscription, *, plan: Plan, today: date) -> Period:
    """Put the subscription on `plan` from `today`: a new billing anchor, first period and
    term. Returns the first period."""
    subscription.plan = plan
    subscription.product_id = plan.product_id
    subscription.anchor_day = today.day
    subscription.anchor_month = today.month
    subscription.monthly_price = catalogue_price(plan=plan, currency=subscription.currency)
    subscription.renewal_setting = Renewal.AUTO_RENEW
    subscription.renewal_licences = None
    subscription.scheduled_plan = None
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
    return period


def _order_for_key(
    order_key: str,
    *,
    customer_id: int,
    kind: str | None = None,
    subscription_id: int | None = None,
) -> Order | None:
    """The order this form's key already made (a double submit), if any; a key used for
    another customer, kind or subscription is refused."""
    if not order_key or len(order_key) > ORDER_KEY_MAX_LENGTH:
        raise ValidationError(_("This form has expired. Open the page again."), code="key")
    order = Order.objects.filter(key=order_key).select_related("subscription").first()
    if order is None:
        return None
    if (
        order.customer_id != customer_id
        or (kind is not None and order.kind != kind)
        or (subscription_id is not None and order.subscription_id != subscription_id)
    ):
        raise ValidationError(
            _("This form was already used for another order. Open the page again."), code="key"
        )
    return order


@transaction.atomic
def subscription_buy(
    *,
    membership: Membership,
    customer: Customer,
    plan: Plan,
    licences: int,
    payer: str,
    order_key: str,
) -> Order:
    """Buy a subscription for an Active customer: the first period is charged in full (a trial
    is free), the purchase is the ledger's first row. Submitting the same form twice returns
    the first order."""
    require(membership.role, Action.SUBSCRIPTION_BUY)
    if customer.reseller_id != membership.reseller_id:
        raise PermissionDenied(_("This customer belongs to another reseller."))
    # Lock the customer row: two purchases for one customer queue here, so the "one live
    # subscription per product" check and the order key check each see the other's result.
    customer = Customer.objects.select_for_update().select_related("reseller").get(pk=customer.pk)
    existing = _order_for_key(order_key, customer_id=customer.pk, kind=Order.Kind.PURCHASE)
    if existing is not None:
        return existing
    if customer.status == Customer.Status.INVITED:
        raise ValidationError(
            _(
                "%(organisation)s has not accepted the invitation yet. Licences can be bought "
                "for it once it has."
            )
            % {"organisation": customer.organisation},
            code="customer_invited",
        )
    if customer.status != Customer.Status.ACTIVE:
        raise ValidationError(
            _("Licences cannot be bought for a customer whose status is %(status)s.")
            % {"status": customer.get_status_display()},
            code="customer_inactive",
        )
    if not (plan.is_active and plan.product.is_active):
        raise _invalid("plan", _("This plan is no longer on sale."), code="plan")
    if payer not in Payer.values:
        raise _invalid("payer", _("Choose who pays."), code="payer")
    _check_count(plan, licences)
    held = Subscription.objects.filter(customer=customer, product_id=plan.product_id)
    if held.exclude(status=Status.CANCELLED).exists():
        raise _invalid(
            "plan",
            _(
                "%(organisation)s already has a subscription to %(product)s: add licences "
                "to it instead."
            )
            % {"organisation": customer.organisation, "product": plan.product.name},
            code="held",
        )
    if plan.is_trial and held.filter(plan__kind=Plan.Kind.TRIAL).exists():
        raise _invalid(
            "plan",
            _("%(organisation)s has already had a trial of %(product)s.")
            % {"organisation": customer.organisation, "product": plan.product.name},
            code="trial_used",
        )
    today = _today()
    subscription = Subscription(
        customer=customer,
        currency=customer.reseller.currency,
        licences=licences,
        payer=payer,
        created_by=membership.user,
    )
    period = _start_service(subscription, plan=plan, today=today)
    _save(subscription)
    unit = period_price(monthly_price=subscription.monthly_price, months=plan.months_per_period)
    amount = money_round(licences * unit)
    order = Order.objects.create(
        reference=_order_reference(),
        key=order_key,
        customer=customer,
        subscription=subscription,
        kind=Order.Kind.PURCHASE,
        licences_before=0,
        licences_after=licences,
        amount=amount,
        currency=subscription.currency,
        created_by=membership.user,
    )
    _ledger(
        subscription,
        kind=LicenceChange.Kind.PURCHASE,
        actor=membership.user,
        before=0,
        amount=amount,
        period=period,
        order=order,
    )
    _charge(
        subscription,
        kind=Charge.Kind.PURCHASE,
        period=period,
        licences=licences,
        unit_price=unit,
        amount=amount,
        order=order,
    )
    _audit(
        subscription,
        actor=membership.user,
        action="subscription.bought",
        before=None,
        after={**_state(subscription), "payer": payer, "order": order.reference},
    )
    return order


# Licences


def _order_licences(
    subscription: Subscription,
    *,
    membership: Membership,
    new_count: object,
    order_key: str,
    today: date,
) -> Order:
    count = _check_change(subscription, new_count)
    if count < subscription.licences:
        require(membership.role, Action.LICENCES_REMOVE)
    quote = _quote(subscription, count, today)
    before = _state(subscription)
    licences_before = subscription.licences
    adding = count > licences_before
    order = Order.objects.create(
        reference=_order_reference(),
        key=order_key,
        customer_id=subscription.customer_id,
        subscription=subscription,
        kind=Order.Kind.ADD if adding else Order.Kind.REMOVE,
        licences_before=licences_before,
        licences_after=count,
        amount=quote.due_now,
        currency=subscription.currency,
        created_by=membership.user,
    )
    subscription.licences = count
    subscription.save(update_fields=["licences"])
    _ledger(
        subscription,
        kind=LicenceChange.Kind.ADD if adding else LicenceChange.Kind.REMOVE,
        actor=membership.user,
        before=licences_before,
        amount=quote.due_now,
        period=quote.period,
        order=order,
    )
    _charge(
        subscription,
        kind=Charge.Kind.PRORATION,
        period=quote.period,
        licences=quote.change,
        unit_price=quote.unit_period_price,
        amount=quote.due_now,
        order=order,
        remaining_days=quote.remaining_days,
    )
    _audit(
        subscription,
        actor=membership.user,
        action="subscription.licences_added" if adding else "subscription.licences_removed",
        before={**before, "order": None},
        after={**_state(subscription), "order": order.reference, "amount": str(quote.due_now)},
    )
    return order


@transaction.atomic
def subscription_change_licences(
    *,
    membership: Membership,
    subscription: Subscription,
    new_count: int,
    expected_count: int,
    order_key: str,
) -> Order:
    """Order now on the Add licences page: set the count to `new_count`.

    `expected_count` is the count the page showed; if someone changed it since, nothing is
    ordered and the message gives the new count. Adding charges the rest of the current period
    (prorated); removing (flexible and trial only) takes effect at once with no credit. The
    same `order_key` twice returns the first order."""
    require(membership.role, Action.LICENCES_ADD)
    _check_tenant(membership, subscription)
    subscription = _lock(subscription)
    existing = _order_for_key(
        order_key, customer_id=subscription.customer_id, subscription_id=subscription.pk
    )
    if existing is not None:
        return existing
    today = _today()
    _catch_up(subscription, today)
    if subscription.licences != expected_count:
        raise ValidationError(
            {
                "licences": ValidationError(
                    _(
                        "Someone changed the number of licences to %(count)d while this page "
                        "was open. Check the new count and order again."
                    ),
                    code="stale",
                    params={"count": subscription.licences},
                )
            }
        )
    return _order_licences(
        subscription, membership=membership, new_count=new_count, order_key=order_key, today=today
    )


@transaction.atomic
def subscription_add_licences(
    *, membership: Membership, subscription: Subscription, quantity: int, order_key: str
) -> Order:
    """Add `quantity` licences to whatever the count is when the order is processed (an order
    of "+N" rather than a new total): parallel orders each add their own."""
    require(membership.role, Action.LICENCES_ADD)
    _check_tenant(membership, subscription)
    subscription = _lock(subscription)
    existing = _order_for_key(
        order_key, customer_id=subscription.customer_id, subscription_id=subscription.pk
    )
    if existing is not None:
        return existing
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
        raise _invalid("licences", _("Add at least 1 licence."), code="min")
    today = _today()
    _catch_up(subscription, today)
    return _order_licences(
        subscription,
        membership=membership,
        new_count=subscription.licences + quantity,
        order_key=order_key,
        today=today,
    )


# Renewal settings, plan changes, cancellation


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
        subscription.scheduled_plan = None
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
        _save(subscription)
        _audit(
            subscription, actor=actor, action="subscription.plan_change_scheduled", before=before
        )
        return subscription

    if subscription.plan.is_trial:
        # A trial suspended by the reseller is reactivated first; an ended one converts.
        if subscription.suspension_reason != Reason.TRIAL_ENDED:
            _check_orderable(subscription)
        period = _start_service(subscription, plan=plan, today=today)
        unit = period_price(monthly_price=subscription.monthly_price, months=plan.months_per_period)
        charged_period, charged_unit = period, unit
    else:
        # Flexible → annual, at once. The current period is paid already; the 12-month term
        # counts from its start, so the term ends on a billing day.
        _check_orderable(subscription)
        current = subscription.period
        subscription.plan = plan
        subscription.scheduled_plan = None
        subscription.monthly_price = catalogue_price(plan=plan, currency=subscription.currency)
        subscription.term_start = current.start
        subscription.term_end = term_end(start=current.start, anchor_day=subscription.anchor_day)
        subscription.anchor_month = current.start.month
        subscription.renewal_setting = Renewal.AUTO_RENEW
        subscription.renewal_licences = None
        charged_unit = Decimal("0.00")
        charged_period = current
        if plan.kind == Plan.Kind.ANNUAL_YEARLY:
            # One yearly period from now on: the paid month plus the other 11 months, charged now.
            subscription.period_end = subscription.term_end
            charged_period = Period(current.end, subscription.term_end)
            charged_unit = period_price(
                monthly_price=subscription.monthly_price, months=TERM_MONTHS - 1
            )
    _save(subscription)
    amount = money_round(subscription.licences * charged_unit)
    _ledger(
        subscription,
        kind=LicenceChange.Kind.PLAN_CHANGE,
        actor=actor,
        before=subscription.licences,
        amount=amount,
        period=charged_period,
    )
    _charge(
        subscription,
        kind=Charge.Kind.PLAN_CHANGE,
        period=charged_period,
        licences=subscription.licences,
        unit_price=charged_unit,
        amount=amount,
    )
    _audit(subscription, actor=actor, action="subscription.plan_changed", before=before)
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
    subscription.scheduled_plan = None
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
        subscription.scheduled_plan = None
        action = "subscription.cancellation_scheduled"
    else:
        _set_status(subscription, Status.CANCELLED)
        action = "subscription.cancelled"
    _save(subscription)
    _audit(subscription, actor=membership.user, action=action, before=before)
    return subscription


# Suspend and reactivate: reseller admins and owners, and vendor staff in the admin.


def _suspend(subscription: Subscription, *, actor: User | None) -> Subscription:
    subscription = _lock(subscription)
    _catch_up(subscription, _today())
    if subscription.status not in (Status.ACTIVE, Status.TRIAL):
        raise ValidationError(
            _("Only an active subscription or a running trial can be suspended."),
            code="not_active",
        )
    before = _state(subscription)
    _set_status(subscription, Status.SUSPENDED, Reason.RESELLER_INITIATED)
    _save(subscription)
    _audit(subscription, actor=actor, action="subscription.suspended", before=before)
    return subscription


def _reactivate(
    subscription: Subscription, *, actor: User | None, reasons: set[str]
) -> Subscription:
    subscription = _lock(subscription)
    _catch_up(subscription, _today())
    if subscription.status != Status.SUSPENDED:
        raise ValidationError(_("This subscription is not suspended."), code="not_suspended")
    if subscription.suspension_reason == Reason.TRIAL_ENDED:
        raise ValidationError(
            _("The trial has ended. Change to a paid plan to go on using it."),
            code="trial_ended",
        )
    if subscription.suspension_reason not in reasons:
        raise ValidationError(
            _("A subscription suspended for a pending payment is reactivated when it is paid."),
            code="pending_payment",
        )
    before = _state(subscription)
    _set_status(subscription, Status.TRIAL if subscription.plan.is_trial else Status.ACTIVE)
    _save(subscription)
    _audit(subscription, actor=actor, action="subscription.reactivated", before=before)
    return subscription


@transaction.atomic
def subscription_suspend(*, membership: Membership, subscription: Subscription) -> Subscription:
    require(membership.role, Action.SUBSCRIPTION_SUSPEND)
    _check_tenant(membership, subscription)
    return _suspend(subscription, actor=membership.user)


@transaction.atomic
def subscription_reactivate(*, membership: Membership, subscription: Subscription) -> Subscription:
    require(membership.role, Action.SUBSCRIPTION_SUSPEND)
    _check_tenant(membership, subscription)
    return _reactivate(subscription, actor=membership.user, reasons={Reason.RESELLER_INITIATED})


@transaction.atomic
def subscription_suspend_by_staff(*, subscription: Subscription, by: User) -> Subscription:
    return _suspend(subscription, actor=by)


@transaction.atomic
def subscription_reactivate_by_staff(*, subscription: Subscription, by: User) -> Subscription:
    """Staff may also lift a suspension for a pending payment (e.g. paid by bank transfer)."""
    return _reactivate(
        subscription, actor=by, reasons={Reason.RESELLER_INITIATED, Reason.PENDING_PAYMENT}
    )


# Payments (billing.payments): who pays, and suspension while an invoice stays unpaid. The
# caller holds the right to do it (a reseller's billing role, the customer's consent, the
# retry job), as with the access-revoked hook below.


@transaction.atomic
def subscription_set_payer(
    *, subscription: Subscription, payer: str, actor: User | None
) -> Subscription:
    """Pay the subscription with the reseller's card or the customer's card from now on."""
    if payer not in Payer.values:
        raise _invalid("payer", _("Choose who pays."), code="invalid")
    subscription = _lock(subscription)
    if subscription.status == Status.CANCELLED:
        raise ValidationError(_("This subscription is cancelled."), code="cancelled")
    before = subscription.payer
    if before == payer:
        return subscription
    subscription.payer = payer
    subscription.save(update_fields=["payer"])
    _audit(
        subscription,
        actor=actor,
        action=(
            "subscription.payer_changed"
            if payer == Payer.CUSTOMER_CARD
            else "subscription.payer_changed_to_reseller_card"
        ),
        before={"payer": before},
        after={"payer": payer},
    )
    return subscription


@transaction.atomic
def subscription_suspend_for_payment(*, subscription_id: int) -> bool:
    """An invoice for it stayed unpaid after the last retry: suspend it (pending payment).
    Only an active subscription is; one suspended for another reason keeps that reason."""
    subscription = _lock(subscription_id)
    _catch_up(subscription, _today())
    if subscription.status != Status.ACTIVE:
        return False
    before = _state(subscription)
    _set_status(subscription, Status.SUSPENDED, Reason.PENDING_PAYMENT)
    _save(subscription)
    _audit(subscription, actor=None, action="subscription.suspended", before=before)
    return True


@transaction.atomic
def subscription_reactivate_after_payment(*, subscription_id: int) -> bool:
    """The unpaid invoice was paid: lift a suspension for a pending payment (and only that)."""
    subscription = _lock(subscription_id)
    _catch_up(subscription, _today())
    if not (
        subscription.status == Status.SUSPENDED
        and subscription.suspension_reason == Reason.PENDING_PAYMENT
    ):
        return False
    before = _state(subscription)
    _set_status(subscription, Status.TRIAL if subscription.plan.is_trial else Status.ACTIVE)
    _save(subscription)
    _audit(subscription, actor=None, action="subscription.reactivated", before=before)
    return True


# What happens to subscriptions when their customer moves or revokes its reseller: hooks that
# customers.services runs inside its own transaction (registered in SubscriptionsConfig.ready).


@transaction.atomic
def subscriptions_move(*, old_customer: Customer, new_customer: Customer) -> int:
    """The customer was imported by another reseller: its subscriptions, with their ledger,
    follow it to its new record. Orders and charges stay with the old record, under the
    reseller they were made for. Returns how many subscriptions moved."""
    moved = 0
    # Locked so an order in flight on the old record finishes before its subscription moves.
    for subscription in (
        Subscription.objects.select_for_update(of=("self",))
        .select_related("plan__product")
        .filter(customer_id=old_customer.pk)
        .order_by("id")
    ):
        subscription.customer = new_customer
        subscription.save(update_fields=["customer"])
        _audit(
            subscription,
            actor=None,
            action="subscription.transferred",
            before={"customer": old_customer.public_id},
            after={"customer": new_customer.public_id},
        )
        moved += 1
    return moved


@transaction.atomic
def subscriptions_payer_to_customer_card(*, customer: Customer) -> int:
    """The customer revoked its reseller's access: its live subscriptions keep running, paid
    with the customer's own card from now on. Returns how many changed payer."""
    changed = 0
    for subscription in (
        Subscription.objects.select_for_update(of=("self",))
        .select_related("plan__product")
        .filter(customer_id=customer.pk)
        .exclude(status=Status.CANCELLED)
        .exclude(payer=Payer.CUSTOMER_CARD)
        .order_by("id")
    ):
        subscription.customer = customer  # the locked row, for the audit entry's reseller
        before = subscription.payer
        subscription.payer = Payer.CUSTOMER_CARD
        subscription.save(update_fields=["payer"])
        _audit(
            subscription,
            actor=None,
            action="subscription.payer_changed",
            before={"payer": before},
            after={"payer": subscription.payer},
        )
        changed += 1
    return changed


def charges_mark_invoiced(*, charge_ids: list[int], at: datetime) -> int:
    """The billing run put these charges on an invoice: never invoice them again. Called in the
    issuing transaction, which holds their row locks. Returns how many were marked."""
    return Charge.objects.filter(pk__in=charge_ids, invoiced_at__isnull=True).update(invoiced_at=at)
