"""The daily jobs' work for one subscription (subscriptions.tasks): start the next period and
charge it, end a trial, send the trial and term reminders, announce a price increase 30 days
ahead. `_catch_up` brings a subscription up to date before any other write reads its period."""

from collections.abc import Iterator
from datetime import date, timedelta

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from core.emails import email_queue
from core.events import event_announce
from customers.models import CustomerMember
from resellers.selectors import membership_managers
from subscriptions.models import (
    PERIODS_ROLL_STATUSES,
    Charge,
    LicenceChange,
    PriceNotice,
    Subscription,
)
from subscriptions.periods import (
    Period,
    term_end,
)
from subscriptions.pricing import (
    NOTICE_DAYS,
    NOTICE_WINDOW_DAYS,
    PriceQuote,
    increase_to_announce,
    renewal_price,
)
from subscriptions.services.charges import _amount, _charge
from subscriptions.services.prices import _period_on
from subscriptions.services.records import (
    Reason,
    Renewal,
    Status,
    _audit,
    _ledger,
    _lock,
    _plan_change_unschedule,
    _save,
    _set_status,
    _state,
)

TRIAL_REMINDER_DAYS = 7


TERM_REMINDER_DAYS = 30


def _end_trial(subscription: Subscription) -> None:
    before = _state(subscription)
    _set_status(subscription, Status.SUSPENDED, Reason.TRIAL_ENDED)
    _save(subscription)
    _audit(subscription, actor=None, action="subscription.trial_ended", before=before)
    event_announce("subscription.suspended", subscription)


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
    return not subscription.plan.is_trial and subscription.status in PERIODS_ROLL_STATUSES


def _start_next_period(subscription: Subscription) -> None:
    """Move from the period that just ended to the next one, applying the renewal settings and
    a scheduled plan change at the end of a term, and charge the new period in advance at the
    customer's price on its first day (pricing.renewal_price: an increase applies only once
    announced 30 days ahead; a decrease at once)."""
    before = _state(subscription)
    licences_before = subscription.licences
    start = subscription.period_end
    renewal = subscription.term_end is not None and start >= subscription.term_end
    plan_changed = False
    confirmed_price = None
    if renewal:
        if subscription.renewal_setting == Renewal.CANCEL_AT_TERM_END:
            _set_status(subscription, Status.CANCELLED)
            _save(subscription)
            _audit(subscription, actor=None, action="subscription.cancelled", before=before)
            event_announce("subscription.cancelled", subscription)
            return
        if subscription.scheduled_plan is not None:
            subscription.plan = subscription.scheduled_plan
            confirmed_price = subscription.scheduled_monthly_price
            _plan_change_unschedule(subscription)
            plan_changed = True
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
    # Priced as of its first day, price and cost alike; an increase only once announced.
    quote = renewal_price(
        subscription=subscription,
        start=start,
        plan_changed=plan_changed,
        confirmed_price=confirmed_price,
    )
    subscription.monthly_price = quote.customer_price
    subscription.period_start, subscription.period_end = period.start, period.end
    _save(subscription)
    months = plan.months_per_period
    amount = _amount(
        licences=subscription.licences,
        monthly_price=quote.customer_price,
        months=months,
        period=period,
    )[1]
    _charge(
        subscription,
        kind=Charge.Kind.PERIOD,
        period=period,
        licences=subscription.licences,
        quote=quote,
        months=months,
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
    if renewal:
        event_announce("subscription.renewed", subscription)


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
    for membership in membership_managers(reseller_id=customer.reseller_id):
        email_queue(
            to=membership.user.email,
            template=template,
            context=context,
            language=membership.user.language,
        )
    return True


# Price increase notices


PRICE_NOTICE_TEMPLATE = "price_increase_notice"


def _renewing_starts(subscription: Subscription) -> Iterator[date]:
    """The first days of the subscription's next periods on its current plan, in order; none
    from the end of a term at which it is cancelled or changes plan (that change was chosen
    and is priced when it applies)."""
    start = subscription.period_end
    while True:
        ends_term = subscription.term_end is not None and start >= subscription.term_end
        if ends_term and (
            subscription.scheduled_plan_id is not None
            or subscription.renewal_setting == Renewal.CANCEL_AT_TERM_END
        ):
            return
        yield start
        start = _period_on(
            plan=subscription.plan,
            anchor_day=subscription.anchor_day,
            anchor_month=subscription.anchor_month,
            on=start,
        ).end


def _price_notice_recipients(subscription: Subscription) -> list[str]:
    """The customer's contact and its administrators on the customer side, once each."""
    customer = subscription.customer
    emails = [customer.contact_email]
    members = CustomerMember.objects.filter(customer_id=customer.pk).select_related("user")
    for member in members.order_by("user__email"):
        if member.user.email not in emails:
            emails.append(member.user.email)
    return emails


def _increase_in_window(subscription: Subscription, today: date) -> PriceQuote | None:
    """The quote of the first period starting within NOTICE_WINDOW_DAYS that is to be
    announced as an increase (subscriptions.pricing.increase_to_announce), if any."""
    if subscription.status != Status.ACTIVE or subscription.plan.is_trial:
        return None
    window_end = today + timedelta(days=NOTICE_WINDOW_DAYS)
    for start in _renewing_starts(subscription):
        if start > window_end:
            return None
        if (quote := increase_to_announce(subscription=subscription, start=start)) is not None:
            return quote
    return None


@transaction.atomic
def subscription_send_price_notice(*, subscription_id: int, today: date) -> bool:
    """The notice job's step: if a period starting within NOTICE_WINDOW_DAYS would be priced
    higher than the subscription's price, record one PriceNotice that applies from the first
    period starting at least 30 days after today, and email the customer's contacts in the
    customer's language. An increase already announced (as high or higher, for a period not
    yet started) is not announced again: running it twice the same day sends one email."""
    # Most days nothing rises: read without the row's lock first, and lock only to announce.
    unlocked = Subscription.objects.select_related("plan", "customer").get(pk=subscription_id)
    if _increase_in_window(unlocked, today) is None:
        return False
    subscription = _lock(subscription_id)
    quote = _increase_in_window(subscription, today)
    if quote is None:
        return False
    earliest = today + timedelta(days=NOTICE_DAYS)
    applies_from = next(
        (start for start in _renewing_starts(subscription) if start >= earliest), None
    )
    if applies_from is None:
        return False  # the term ends (cancelled, or another plan) before it could apply
    notice = PriceNotice(
        subscription=subscription,
        old_monthly_price=subscription.monthly_price,
        new_monthly_price=quote.customer_price,
        currency=subscription.currency,
        applies_from=applies_from,
        sent_at=timezone.now(),
    )
    notice.full_clean(exclude=["subscription"])
    notice.save()
    customer = subscription.customer
    context = {
        "organisation": customer.organisation,
        "reseller_name": customer.reseller.name,
        "product": subscription.plan.product.name,
        "plan_kind": subscription.plan.kind,
        "licences": subscription.licences,
        "old_price": notice.old_monthly_price,
        "new_price": notice.new_monthly_price,
        "currency": notice.currency,
        "applies_from": notice.applies_from,
        "subscription_url": settings.PORTAL_URL
        + reverse(
            "my_subscriptions:detail",
            kwargs={"customer_id": customer.public_id, "subscription_id": subscription.public_id},
        ),
    }
    for email in _price_notice_recipients(subscription):
        email_queue(
            to=email, template=PRICE_NOTICE_TEMPLATE, context=context, language=customer.language
        )
    _audit(
        subscription,
        actor=None,
        action="subscription.price_increase_announced",
        before=None,
        after={
            "old_monthly_price": str(notice.old_monthly_price),
            "new_monthly_price": str(notice.new_monthly_price),
            "applies_from": notice.applies_from.isoformat(),
        },
    )
    return True
