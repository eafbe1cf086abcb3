"""NEW CUSTOMER and its invitation: invite (the customer is created and its contact emailed),
resend or withdraw the invitation, and the contact opening and accepting it (the accepting
person becomes the customer's administrator)."""

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from core.emails import email_queue
from core.events import event_announce
from core.languages import language_for_country
from core.models import User
from customers.models import (
    Customer,
    CustomerInvitation,
    CustomerMember,
)
from customers.services.details import CUSTOMER_FIELDS, _customer_lock, _validate
from resellers.models import Membership
from resellers.roles import Action, require
from resellers.services import (
    audit_record,
    invitation_check,
    invitation_claim,
    invitation_limits_enforce,
    snapshot,
)


def _invitation_send(
    customer: Customer, inviter: User, *, resend: bool = False
) -> CustomerInvitation:
    """A new link to the customer's contact: earlier open links die, the email is queued."""
    # After the checks, inside the transaction: bad input uses up nothing, a refusal saves nothing.
    invitation_limits_enforce(reseller=customer.reseller, user=inviter, resend=resend)
    customer.invitations.filter(consumed_at__isnull=True, withdrawn_at__isnull=True).update(
        withdrawn_at=timezone.now()
    )
    invitation = CustomerInvitation(
        customer=customer, email=customer.contact_email, invited_by=inviter
    )
    raw_token = invitation.renew_token()
    invitation.save()
    email_queue(
        to=invitation.email,
        template="customer_invitation",
        context={
            "reseller_name": customer.reseller.name,
            "organisation": customer.organisation,
            "contact_name": customer.contact_name,
            "inviter": inviter.display_name,
            "expires_at": invitation.expires_at,
        },
        language=customer.language,
        secrets={
            "accept_url": settings.PORTAL_URL
            + reverse("customer_side:invitation", kwargs={"token": raw_token})
        },
    )
    return invitation


@transaction.atomic
def customer_invite(*, membership: Membership, **fields: Any) -> Customer:
    """NEW CUSTOMER → Send invitation: the customer is listed as Invited and emailed a link."""
    require(membership.role, Action.CUSTOMER_INVITE)
    reseller = membership.reseller
    fields.setdefault("language", reseller.language)
    fields.setdefault("time_zone", reseller.time_zone)
    fields.setdefault("country", reseller.country)
    # English in the United Kingdom is British English (dates 06/12/2026).
    fields["language"] = language_for_country(fields["language"], str(fields["country"] or ""))
    unknown = set(fields) - set(CUSTOMER_FIELDS)
    if unknown:
        raise TypeError(sorted(unknown))
    customer = Customer(reseller=reseller, status=Customer.Status.INVITED, **fields)
    _validate(customer, region=str(reseller.country))
    try:
        with transaction.atomic():
            customer.save()
    except IntegrityError:
        # Another reseller took the domain between the check and the insert.
        raise ValidationError(
            {"domain": _("This domain was just added by another reseller.")}
        ) from None
    _invitation_send(customer, membership.user)
    audit_record(
        actor=membership.user,
        reseller=reseller,
        action="customer.invited",
        obj=customer,
        after=snapshot(customer, CUSTOMER_FIELDS),
        customer_public_id=customer.public_id,
    )
    event_announce("customer.invited", customer)
    return customer


@transaction.atomic
def customer_invitation_resend(*, membership: Membership, customer: Customer) -> Customer:
    """Send a new link to the contact email (the old link dies). A withdrawn invitation that
    is sent again puts the customer back to Invited."""
    require(membership.role, Action.CUSTOMER_INVITE)
    customer = _customer_lock(customer)
    if customer.accepted_at is not None or customer.status not in (
        Customer.Status.INVITED,
        Customer.Status.CANCELLED,
    ):
        raise ValidationError(
            _("%(organisation)s already accepted; there is no invitation to send.")
            % {"organisation": customer.organisation}
        )
    before = customer.status
    if customer.status == Customer.Status.CANCELLED:
        customer.status = Customer.Status.INVITED
        try:
            with transaction.atomic():
                customer.save(update_fields=["status"])
        except IntegrityError:
            raise ValidationError(
                _(
                    "%(domain)s has become a customer of another reseller since the invitation "
                    "was withdrawn."
                )
                % {"domain": customer.domain}
            ) from None
    invitation = _invitation_send(customer, membership.user, resend=True)
    audit_record(
        actor=membership.user,
        reseller=customer.reseller,
        action="customer.invitation_resent",
        obj=customer,
        before={"status": before},
        after={"status": customer.status, "email": invitation.email},
        customer_public_id=customer.public_id,
    )
    return customer


@transaction.atomic
def customer_invitation_withdraw(*, membership: Membership, customer: Customer) -> Customer:
    """The link stops working and the customer is listed as Cancelled (its domain is free)."""
    require(membership.role, Action.CUSTOMER_INVITE)
    customer = _customer_lock(customer)
    if customer.status != Customer.Status.INVITED:
        raise ValidationError(_("Only an invitation that was not accepted yet can be withdrawn."))
    customer.invitations.filter(consumed_at__isnull=True, withdrawn_at__isnull=True).update(
        withdrawn_at=timezone.now()
    )
    customer.status = Customer.Status.CANCELLED
    customer.save(update_fields=["status"])
    audit_record(
        actor=membership.user,
        reseller=customer.reseller,
        action="customer.invitation_withdrawn",
        obj=customer,
        before={"status": Customer.Status.INVITED},
        after={"status": customer.status},
        customer_public_id=customer.public_id,
    )
    return customer


def customer_invitation_opened(*, invitation: CustomerInvitation) -> None:
    """Record when the link was first opened (shown to the reseller)."""
    CustomerInvitation.objects.filter(pk=invitation.pk, opened_at__isnull=True).update(
        opened_at=timezone.now()
    )


@transaction.atomic
def customer_invitation_accept(
    *, invitation: CustomerInvitation, user: User, terms_accepted: bool
) -> Customer:
    """The invited contact, signed in with Google, accepts: the customer becomes Active."""
    invitation_check(invitation, user=user)
    if not terms_accepted:
        raise ValidationError({"terms": _("Accept the terms of service to continue.")})
    invitation_claim(invitation, user=user)
    now = timezone.now()
    customer = Customer.objects.select_for_update().get(pk=invitation.customer_id)
    before = customer.status
    customer.status = Customer.Status.ACTIVE
    customer.accepted_at = now
    customer.save(update_fields=["status", "accepted_at"])
    CustomerMember.objects.get_or_create(
        customer=customer, user=user, defaults={"terms_accepted_at": now}
    )
    audit_record(
        actor=user,
        reseller=customer.reseller,
        action="customer.accepted",
        obj=customer,
        before={"status": before},
        after={"status": customer.status},
        customer_public_id=customer.public_id,
    )
    event_announce("customer.accepted", customer)
    return customer
