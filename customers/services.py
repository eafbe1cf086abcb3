"""Writes for customers: invite (NEW CUSTOMER), accept the invitation. Every write is audited."""

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _

from core.emails import email_queue
from core.models import User
from customers.models import Customer, CustomerInvitation, CustomerMember
from customers.validators import email_domain, normalise_domain, normalise_phone
from resellers.models import Membership
from resellers.roles import Action, require
from resellers.services import (
    audit_record,
    invitation_check,
    invitation_claim,
    snapshot,
)

HELD_STATUSES = [Customer.Status.INVITED, Customer.Status.ACTIVE]
CUSTOMER_FIELDS = [
    "organisation",
    "domain",
    "customer_type",
    "contact_name",
    "contact_email",
    "education",
    "crm_id",
    "admin_name",
    "admin_address",
    "admin_alternate_email",
    "admin_phone",
    "language",
    "time_zone",
]


def _validate(customer: Customer, *, region: str) -> None:
    """Check a new customer; raise one ValidationError naming every field that is wrong."""
    errors: dict[str, list[str]] = {}

    def fail(field: str, error: ValidationError | str) -> None:
        messages = error.messages if isinstance(error, ValidationError) else [error]
        errors.setdefault(field, []).extend(messages)

    if customer.customer_type == Customer.Type.DOMAIN:
        if not customer.domain:
            fail("domain", _("A domain customer needs its Google domain."))
        else:
            try:
                customer.domain = normalise_domain(customer.domain)
            except ValidationError as error:
                fail("domain", error)
    else:
        customer.domain = ""
    contact_domain = email_domain(customer.contact_email)
    if customer.domain and "domain" not in errors and contact_domain != customer.domain:
        fail(
            "contact_email",
            _("The contact email must be an address of %(domain)s.") % {"domain": customer.domain},
        )
    alternate = customer.admin_alternate_email
    if alternate and customer.domain and email_domain(alternate) == customer.domain:
        fail(
            "admin_alternate_email",
            _(
                "The alternate email must be outside %(domain)s, so it still works if the "
                "domain's mail does not."
            )
            % {"domain": customer.domain},
        )
    try:
        customer.admin_phone = normalise_phone(customer.admin_phone, region=region)
    except ValidationError as error:
        fail("admin_phone", error)
    if customer.domain and "domain" not in errors:
        held = Customer.objects.filter(domain=customer.domain, status__in=HELD_STATUSES).first()
        if held is not None and held.reseller_id == customer.reseller_id:
            fail(
                "domain",
                format_html(
                    _('{} is already your customer: <a href="{}">open it</a>.'),
                    customer.domain,
                    reverse("customers:detail", kwargs={"customer_id": held.public_id}),
                ),
            )
        elif held is not None:
            fail(
                "domain",
                format_html(
                    _(
                        "{} is a customer of another reseller. Ask the customer for a transfer "
                        'token and use <a href="{}">Import with transfer token</a>.'
                    ),
                    customer.domain,
                    reverse("customers:list"),
                ),
            )
    try:
        # The domain constraint was checked above with a message that helps; the database
        # still enforces it against a race.
        customer.full_clean(exclude=["reseller"], validate_constraints=False)
    except ValidationError as error:
        for field, messages in error.message_dict.items():
            for message in messages:
                fail(field, message)
    if errors:
        raise ValidationError(errors)


def _send_invitation(invitation: CustomerInvitation, raw_token: str, inviter: User) -> None:
    customer = invitation.customer
    email_queue(
        to=invitation.email,
        template="customer_invitation",
        context={
            "reseller_name": customer.reseller.name,
            "organisation": customer.organisation,
            "contact_name": customer.contact_name,
            "inviter": inviter.display_name,
            "accept_url": settings.PORTAL_URL
            + reverse("customer_side:invitation", kwargs={"token": raw_token}),
            "expires_at": invitation.expires_at,
        },
        language=customer.language,
    )


@transaction.atomic
def customer_invite(*, membership: Membership, **fields: Any) -> Customer:
    """NEW CUSTOMER → Send invitation: the customer is listed as Invited and emailed a link."""
    require(membership.role, Action.CUSTOMER_INVITE)
    reseller = membership.reseller
    fields.setdefault("language", reseller.language)
    fields.setdefault("time_zone", reseller.time_zone)
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
    invitation = CustomerInvitation(
        customer=customer, email=customer.contact_email, invited_by=membership.user
    )
    raw = invitation.renew_token()
    invitation.save()
    audit_record(
        actor=membership.user,
        reseller=reseller,
        action="customer.invited",
        obj=customer,
        after=snapshot(customer, CUSTOMER_FIELDS),
        customer_public_id=customer.public_id,
    )
    _send_invitation(invitation, raw, membership.user)
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
    return customer
