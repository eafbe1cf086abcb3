"""Who pays a subscription: the reseller's card or the customer's own. The caller holds the
right to change it (a reseller's billing role or the customer's consent, billing.payments;
customers.services when a customer revokes its reseller's access, through the
customers.extensions hook registered in SubscriptionsConfig.ready)."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from core.models import User
from customers.models import Customer
from subscriptions.models import (
    Payer,
    Subscription,
)
from subscriptions.services.records import Status, _audit, _invalid, _lock


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
