"""Who pays a subscription: the reseller's card, or the customer's own card once the customer
consents (an emailed link with a one-time token, accepted by the customer's administrator)."""

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from billing.models import (
    CustomerCardConsent,
)
from billing.payments import selectors
from billing.payments.services.cards import _cards_gateway
from core.emails import email_queue
from core.models import User
from core.ratelimit import Limit, limits_enforce
from core.tokens import token_consume, token_new
from customers.models import Customer
from customers.selectors import customer_admin_check
from resellers.models import Membership
from resellers.roles import Action, require
from resellers.services import audit_record
from subscriptions import services as subscription_services
from subscriptions.models import Payer, Subscription


def _check_subscription(membership: Membership, subscription: Subscription) -> None:
    require(membership.role, Action.PAYMENT_CARD_MANAGE)
    if subscription.customer.reseller_id != membership.reseller_id:
        raise PermissionDenied(_("This subscription belongs to another reseller."))
    if subscription.status == Subscription.Status.CANCELLED:
        raise ValidationError(_("This subscription is cancelled."), code="cancelled")


def _consents_withdraw(subscription: Subscription) -> int:
    return CustomerCardConsent.objects.filter(
        subscription=subscription, consumed_at__isnull=True, withdrawn_at__isnull=True
    ).update(withdrawn_at=timezone.now())


def consent_url(raw_token: str) -> str:
    return settings.PORTAL_URL + reverse("payments:card_consent", kwargs={"token": raw_token})


@transaction.atomic
def card_consent_request(
    *, membership: Membership, subscription: Subscription
) -> CustomerCardConsent:
    """Ask the customer's contact, by email, to agree that the customer's card pays this
    subscription. Until it agrees, the reseller's card stays in charge. Asking again sends a
    new link; the earlier one stops working."""
    _check_subscription(membership, subscription)
    _cards_gateway()
    # Locked: two requests at once leave one open link.
    subscription = Subscription.objects.select_for_update(of=("self",)).get(pk=subscription.pk)
    customer = subscription.customer
    if subscription.payer == Payer.CUSTOMER_CARD:
        raise ValidationError(
            _("This subscription is already paid with the customer's card."), code="already"
        )
    if customer.status != Customer.Status.ACTIVE or not customer.members.exists():
        raise ValidationError(
            _(
                "The customer has to accept your invitation before it can agree to pay with "
                "its own card."
            ),
            code="not_active",
        )
    per_reseller = settings.CARD_CONSENTS_PER_HOUR
    per_user = settings.CARD_CONSENTS_PER_HOUR_PER_USER
    limits_enforce(
        Limit(
            scope="card-consents",
            key=membership.reseller.public_id,
            limit=per_reseller,
            message=ngettext(
                "Your company can send at most %(limit)d card consent request an hour, and "
                "that limit has been reached.",
                "Your company can send at most %(limit)d card consent requests an hour, and "
                "that limit has been reached.",
                per_reseller,
            )
            % {"limit": per_reseller},
            # Redis unreachable: refused, a consent link lets a reseller charge a customer's card.
            fail_open=False,
        ),
        Limit(
            scope="card-consents-user",
            key=membership.user.public_id,
            limit=per_user,
            message=ngettext(
                "You can send at most %(limit)d card consent request an hour, and that limit "
                "has been reached.",
                "You can send at most %(limit)d card consent requests an hour, and that limit "
                "has been reached.",
                per_user,
            )
            % {"limit": per_user},
            fail_open=False,  # as above
        ),
    )
    _consents_withdraw(subscription)
    raw, digest = token_new()
    consent = CustomerCardConsent(
        subscription=subscription,
        email=customer.contact_email,
        requested_by=membership.user,
        token_hash=digest,
    )
    consent.full_clean()
    consent.save()
    email_queue(
        to=customer.contact_email,
        template="customer_card_consent",
        context={
            "contact_name": customer.contact_name,
            "organisation": customer.organisation,
            "reseller_name": customer.reseller.name,
            "product": subscription.product.name,
            "has_card": selectors.card_default(owner=customer) is not None,
            "expires_at": consent.expires_at,
        },
        language=customer.language,
        secrets={"consent_url": consent_url(raw)},
    )
    audit_record(
        actor=membership.user,
        reseller=membership.reseller,
        action="card_consent.requested",
        obj=subscription,
        after={"email": consent.email},
        customer_public_id=customer.public_id,
    )
    return consent


@transaction.atomic
def subscription_payer_reseller_card(
    *, membership: Membership, subscription: Subscription
) -> Subscription:
    """Pay with the reseller's card (again): no consent needed. A request to the customer that
    is still open is withdrawn."""
    _check_subscription(membership, subscription)
    if _consents_withdraw(subscription):
        audit_record(
            actor=membership.user,
            reseller=membership.reseller,
            action="card_consent.withdrawn",
            obj=subscription,
            customer_public_id=subscription.customer.public_id,
        )
    return subscription_services.subscription_set_payer(
        subscription=subscription, payer=Payer.RESELLER_CARD, actor=membership.user
    )


@transaction.atomic
def card_consent_accept(*, consent: CustomerCardConsent, user: User) -> Subscription:
    """The customer's administrator agrees: from now on the customer's card pays the
    subscription. It needs a saved card first."""
    subscription = consent.subscription
    customer = subscription.customer
    customer_admin_check(customer=customer, user=user)
    if selectors.card_default(owner=customer) is None:
        raise ValidationError(_("Add your organisation's card first."), code="no_card")
    if not token_consume(CustomerCardConsent.objects.all(), pk=consent.pk):
        raise ValidationError(_("This link was already used or withdrawn."), code="used")
    subscription = subscription_services.subscription_set_payer(
        subscription=subscription, payer=Payer.CUSTOMER_CARD, actor=user
    )
    audit_record(
        actor=user,
        reseller=customer.reseller,
        action="card_consent.given",
        obj=subscription,
        after={"payer": Payer.CUSTOMER_CARD.value},
        customer_public_id=customer.public_id,
    )
    return subscription
