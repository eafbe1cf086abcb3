"""Suspend and reactivate: by reseller admins and owners, by vendor staff in the admin, and for
a payment (billing.payments: an invoice unpaid after its last retry suspends, paying it lifts
that suspension and only that one). The caller of the payment ones holds the right to do it
(the retry job, the payment)."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from core.events import event_announce
from core.models import User
from resellers.models import Membership
from resellers.roles import Action, require
from subscriptions.models import (
    Subscription,
)
from subscriptions.services.jobs import _catch_up
from subscriptions.services.records import (
    Reason,
    Status,
    _audit,
    _check_tenant,
    _lock,
    _save,
    _set_status,
    _state,
    _today,
)


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
    event_announce("subscription.suspended", subscription)
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
    event_announce("subscription.reactivated", subscription)
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
    event_announce("subscription.suspended", subscription)
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
    event_announce("subscription.reactivated", subscription)
    return True
