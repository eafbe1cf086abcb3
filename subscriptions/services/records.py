"""What every subscription write shares: the row lock, the status change, the licence ledger
(`LicenceChange`), the audit entry with the state before and after, and the tenant check.
Package-internal: the other services modules import these; callers use the services."""

from datetime import date
from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _

from core.models import User
from resellers.models import Membership
from resellers.services import audit_record
from subscriptions.models import (
    LicenceChange,
    Order,
    Subscription,
)
from subscriptions.periods import (
    Period,
)

Status = Subscription.Status


Reason = Subscription.SuspensionReason


Renewal = Subscription.RenewalSetting


def _today() -> date:
    return timezone.localdate()


def _invalid(field: str, message: str, *, code: str) -> ValidationError:
    """A message for one form field, with a code the page (and the tests) can tell apart."""
    return ValidationError({field: ValidationError(message, code=code)})


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
        reseller=subscription.customer.reseller_serving,
        action=action,
        obj=subscription,
        before=before,
        after=after,
        customer_public_id=subscription.customer.public_id,
    )


def _save(subscription: Subscription) -> None:
    # Each field's own rules are checked here. What needs the database (the related rows, the
    # unique public id, the table's constraints: the services' own invariants) PostgreSQL checks
    # on the write itself; full_clean would ask it first, a query for each, in a savepoint each.
    subscription.full_clean(
        exclude=["customer", "product", "plan", "scheduled_plan", "created_by"],
        validate_unique=False,
        validate_constraints=False,
    )
    subscription.save()


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


def _plan_change_unschedule(subscription: Subscription) -> None:
    """No plan change at the end of the term any more: the plan and the price confirmed with it
    (Subscription.scheduled_monthly_price) go together."""
    subscription.scheduled_plan = None
    subscription.scheduled_monthly_price = None


def _set_status(subscription: Subscription, status: str, reason: str = "") -> None:
    subscription.status = status
    subscription.suspension_reason = reason
    subscription.status_changed_at = timezone.now()
    if status == Status.CANCELLED:
        subscription.cancelled_at = subscription.status_changed_at
