"""Writes for customers: invite (NEW CUSTOMER), resend or withdraw the invitation, edit the
contact details, accept the invitation. Every write is audited."""

import re
from datetime import timedelta
from typing import Any, Literal
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from core.emails import email_queue
from core.ids import PUBLIC_ID_PATTERN
from core.languages import language_for_country
from core.models import User
from core.ratelimit import Limit, limits_enforce
from core.tokens import TokenState, token_consume, token_digest, token_new
from customers import extensions
from customers.models import (
    COUNTRY_REQUIRED,
    Customer,
    CustomerInvitation,
    CustomerMember,
    TransferToken,
)
from customers.selectors import customer_admin_check
from customers.validators import email_domain, normalise_domain, normalise_phone
from resellers.models import Membership, Reseller
from resellers.roles import Action, Role, require
from resellers.services import (
    audit_record,
    invitation_check,
    invitation_claim,
    invitation_limits_enforce,
    snapshot,
)
from resellers.validators import normalise_vat_id

HELD_STATUSES = [Customer.Status.INVITED, Customer.Status.ACTIVE]
# What the reseller may change after NEW CUSTOMER; the domain and the type identify the customer.
CONTACT_FIELDS = [
    "organisation",
    "contact_name",
    "contact_email",
    "education",
    "country",
    "vat_id",
    "crm_id",
    "admin_name",
    "admin_address",
    "admin_alternate_email",
    "admin_phone",
    "language",
    "time_zone",
]
# Everything NEW CUSTOMER sets.
CUSTOMER_FIELDS = ["domain", "customer_type", *CONTACT_FIELDS]


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
        customer.vat_id = normalise_vat_id(country=str(customer.country), vat_id=customer.vat_id)
    except ValidationError as error:
        fail("vat_id", error)
    try:
        customer.admin_phone = normalise_phone(customer.admin_phone, region=region)
    except ValidationError as error:
        fail("admin_phone", error)
    if customer.domain and "domain" not in errors:
        held = (
            Customer.objects.filter(domain=customer.domain, status__in=HELD_STATUSES)
            .exclude(pk=customer.pk)
            .first()
        )
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
                    reverse("customers:import") + "?" + urlencode({"domain": customer.domain}),
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
    return customer


def _customer_lock(customer: Customer) -> Customer:
    # Resend, withdraw, edit and accept all read the status and then write it: lock the row so
    # two of them cannot interleave.
    return Customer.objects.select_for_update().select_related("reseller").get(pk=customer.pk)


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


@transaction.atomic
def customer_update_contact(
    *, membership: Membership, customer: Customer, **fields: Any
) -> Customer:
    """Edit the contact details; the audit entry keeps each changed field before and after."""
    require(membership.role, Action.CUSTOMER_EDIT)
    return _customer_update_contact(customer, actor=membership.user, fields=fields)


@transaction.atomic
def customer_update_contact_by_staff(*, customer: Customer, by: User, **fields: Any) -> Customer:
    """Vendor staff correct the contact details (the admin): the same checks and audit entry as
    the reseller's edit, with the staff user as actor."""
    return _customer_update_contact(customer, actor=by, fields=fields)


def customer_contact_check(*, customer: Customer) -> None:
    """The checks an edit of the contact details passes, on an unsaved change (the admin's form
    shows them next to the fields before anything is saved)."""
    _validate(customer, region=str(customer.reseller.country))


def _customer_update_contact(
    customer: Customer, *, actor: User, fields: dict[str, Any]
) -> Customer:
    unknown = set(fields) - set(CONTACT_FIELDS)
    if unknown:
        raise TypeError(sorted(unknown))
    customer = _customer_lock(customer)
    before = snapshot(customer, CONTACT_FIELDS)
    for field, value in fields.items():
        setattr(customer, field, value)
    _validate(customer, region=str(customer.reseller.country))
    after = snapshot(customer, CONTACT_FIELDS)
    changed = [field for field in CONTACT_FIELDS if before[field] != after[field]]
    if not changed:
        return customer
    customer.save(update_fields=changed)
    audit_record(
        actor=actor,
        reseller=customer.reseller,
        action="customer.updated",
        obj=customer,
        before={field: before[field] for field in changed},
        after={field: after[field] for field in changed},
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
    return customer


# The customer side: what a customer's own administrators do for their organisation.

TRANSFER_TOKEN_STATUSES = [Customer.Status.ACTIVE, Customer.Status.ACCESS_REVOKED]


def _transfer_tokens_withdraw_open(customer: Customer) -> int:
    return TransferToken.objects.filter(
        customer=customer, consumed_at__isnull=True, withdrawn_at__isnull=True
    ).update(withdrawn_at=timezone.now())


@transaction.atomic
def customer_access_revoke(*, customer: Customer, user: User) -> Customer:
    """The customer ends its reseller's access: it leaves the reseller's list at once, its
    subscriptions keep running (billed to the customer's own card) and the reseller is emailed."""
    customer_admin_check(customer=customer, user=user)
    # Locked so that a revoke cannot cross an import or another revoke of the same customer.
    customer = Customer.objects.select_for_update().select_related("reseller").get(pk=customer.pk)
    if customer.status != Customer.Status.ACTIVE:
        raise ValidationError(
            _("Only an organisation with an active reseller can revoke its access.")
        )
    before = customer.status
    customer.status = Customer.Status.ACCESS_REVOKED
    customer.save(update_fields=["status"])
    # The subscriptions keep running, now paid by the customer (the billing apps hook in).
    extensions.access_revoked_hooks_run(customer)
    # A token handed out before the revoke was meant for the old arrangement; the customer
    # makes a new one if it still wants to move.
    withdrawn = _transfer_tokens_withdraw_open(customer)
    after: dict[str, Any] = {"status": customer.status}
    if withdrawn:
        after["transfer_tokens_withdrawn"] = withdrawn
    reseller = customer.reseller
    audit_record(
        actor=user,
        reseller=reseller,
        action="customer.access_revoked",
        obj=customer,
        before={"status": before},
        after=after,
        customer_public_id=customer.public_id,
    )
    recipients = (
        reseller.memberships.filter(role__in=[Role.OWNER, Role.ADMIN])
        .select_related("user")
        .order_by("user__email")
    )
    for member in recipients:
        email_queue(
            to=member.user.email,
            template="customer_access_revoked",
            context={
                "reseller_name": reseller.name,
                "organisation": customer.organisation,
                "domain": customer.domain,
                "customer_id": customer.public_id,
                "revoked_by": user.email,
                "revoked_at": timezone.now(),
            },
            language=member.user.language,
        )
    return customer


@transaction.atomic
def transfer_token_create(*, customer: Customer, user: User, reseller_public_id: str) -> str:
    """A token that lets one named reseller import this customer (seed 004): 14 days, single
    use. Returns the raw token, which is shown once and never stored (only its digest is)."""
    customer_admin_check(customer=customer, user=user)
    # Locked so that two administrators generating at once leave exactly one open token.
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    if customer.status not in TRANSFER_TOKEN_STATUSES:
        raise ValidationError(
            _(
                "A transfer token can be made only for an active organisation or one that "
                "revoked its reseller's access."
            )
        )
    reseller_public_id = reseller_public_id.strip()
    to_reseller = (
        Reseller.objects.filter(public_id=reseller_public_id).first()
        if reseller_public_id
        else None
    )
    # Suspended and pending resellers get the same answer as unknown ids: nothing to learn here.
    if to_reseller is None or not to_reseller.is_active:
        raise ValidationError(
            {
                "reseller_id": _(
                    "No active reseller has this ID. Ask the reseller for the ID shown on its "
                    "Settings page."
                )
            }
        )
    if to_reseller.pk == customer.reseller_id:
        raise ValidationError(
            {
                "reseller_id": _(
                    "This is the ID of your current reseller. A transfer token is for moving to a "
                    "different reseller."
                )
            }
        )
    per_customer = settings.TRANSFER_TOKENS_PER_HOUR
    per_user = settings.TRANSFER_TOKENS_PER_HOUR_PER_USER
    limits_enforce(
        Limit(
            scope="transfer-tokens",
            key=customer.public_id,
            limit=per_customer,
            message=ngettext(
                "Your organisation can make at most %(limit)d transfer token an hour, and that "
                "limit has been reached.",
                "Your organisation can make at most %(limit)d transfer tokens an hour, and that "
                "limit has been reached.",
                per_customer,
            )
            % {"limit": per_customer},
            # Redis unreachable: refused, a transfer token hands the customer to another reseller.
            fail_open=False,
        ),
        Limit(
            scope="transfer-tokens-user",
            key=user.public_id,
            limit=per_user,
            message=ngettext(
                "You can make at most %(limit)d transfer token an hour, and that limit has been "
                "reached.",
                "You can make at most %(limit)d transfer tokens an hour, and that limit has been "
                "reached.",
                per_user,
            )
            % {"limit": per_user},
            fail_open=False,  # as above
        ),
    )
    withdrawn = _transfer_tokens_withdraw_open(customer)
    raw, digest = token_new()
    token = TransferToken(
        customer=customer,
        to_reseller=to_reseller,
        created_by=user,
        token_hash=digest,
        expires_at=timezone.now() + timedelta(days=settings.TRANSFER_TOKEN_VALID_DAYS),
    )
    token.full_clean()
    token.save()
    after: dict[str, Any] = {
        "to_reseller": to_reseller.name,
        "to_reseller_id": to_reseller.public_id,
        "expires_at": token.expires_at.isoformat(),
    }
    if withdrawn:
        after["transfer_tokens_withdrawn"] = withdrawn
    # No reseller on the row: neither the current reseller nor the named one (perhaps a typo)
    # should read of it in their audit log; the customer sees it in its activity.
    audit_record(
        actor=user,
        reseller=None,
        action="customer.transfer_token_created",
        obj=token,
        after=after,
        customer_public_id=customer.public_id,
    )
    return raw


@transaction.atomic
def transfer_token_withdraw(*, customer: Customer, user: User, token: TransferToken) -> None:
    """The token stops working at once; a used token cannot be withdrawn."""
    customer_admin_check(customer=customer, user=user)
    if token.customer_id != customer.pk:
        raise PermissionDenied(_("You do not administer this organisation."))
    updated = TransferToken.objects.filter(
        pk=token.pk, consumed_at__isnull=True, withdrawn_at__isnull=True
    ).update(withdrawn_at=timezone.now())
    if not updated:
        raise ValidationError(_("This transfer token was already used or withdrawn."))
    audit_record(
        actor=user,
        reseller=None,
        action="customer.transfer_token_withdrawn",
        obj=token,
        after={
            "to_reseller": token.to_reseller.name,
            "to_reseller_id": token.to_reseller.public_id,
        },
        customer_public_id=customer.public_id,
    )


# Moving a customer to another reseller: by the customer's transfer token (Import with transfer
# token) or by vendor staff (admin).

TransferVia = Literal["token", "staff"]


def _transfer_emails(old: Customer, new: Customer, *, via: TransferVia) -> None:
    """Both resellers' owners and admins, each in their own language, and the customer's contact
    in the customer's language."""
    identifier = new.domain or new.contact_email
    managers = [Role.OWNER, Role.ADMIN]
    for member in old.reseller.memberships.filter(role__in=managers).select_related("user"):
        email_queue(
            to=member.user.email,
            template="customer_transferred_out",
            # The new reseller is not named: which partner the customer chose is its own business.
            context={
                "organisation": old.organisation,
                "domain": identifier,
                "reseller_name": old.reseller.name,
                "customers_url": settings.PORTAL_URL
                + reverse("customers:list")
                + "?"
                + urlencode({"status": Customer.Status.TRANSFERRED_OUT}),
            },
            language=member.user.language,
        )
    for member in new.reseller.memberships.filter(role__in=managers).select_related("user"):
        email_queue(
            to=member.user.email,
            template="customer_transferred_in",
            context={
                "organisation": new.organisation,
                "domain": identifier,
                "reseller_name": new.reseller.name,
                "by_staff": via == "staff",
                "customer_url": settings.PORTAL_URL
                + reverse("customers:detail", kwargs={"customer_id": new.public_id}),
            },
            language=member.user.language,
        )
    email_queue(
        to=new.contact_email,
        template="customer_transferred",
        context={
            "contact_name": new.contact_name,
            "organisation": new.organisation,
            "old_reseller_name": old.reseller.name,
            "new_reseller_name": new.reseller.name,
            "portal_url": settings.PORTAL_URL + reverse("customer_side:home"),
        },
        language=new.language,
    )


@transaction.atomic
def customer_transfer(
    *,
    customer: Customer,
    to_reseller: Reseller,
    actor: User,
    via: TransferVia,
    country: str = "",
) -> Customer:
    """Move an organisation to `to_reseller`; returns its new record there.

    The new record keeps the organisation's country; `country` is used only when the record
    has none (saved before the country was required), and one of the two is needed.

    The old record is not moved: it stays with the old reseller as Transferred out, with that
    reseller's invoices and history. A new Active record for `to_reseller` copies the
    organisation's details and points back to it (`previous`), so the activity history follows
    (customers.selectors.customer_activity reads along that chain). The customer's administrators
    move to the new record; open invitations and transfer tokens of the old one die.

    Who may do this is the caller's check: customer_import (the customer's token) or vendor staff.
    """
    if via not in ("token", "staff"):
        raise ValueError(via)
    # Lock the old record: two imports of one customer (or an import and a staff move, or the
    # customer revoking access) must not both find it movable and each create a new record.
    old = Customer.objects.select_for_update().select_related("reseller").get(pk=customer.pk)
    if old.status not in TRANSFER_TOKEN_STATUSES:
        raise ValidationError(
            _("%(organisation)s cannot be moved while its status is %(status)s.")
            % {"organisation": old.organisation, "status": old.get_status_display()}
        )
    if old.reseller_id == to_reseller.pk:
        raise ValidationError(
            _("%(organisation)s is already a customer of %(reseller)s.")
            % {"organisation": old.organisation, "reseller": to_reseller.name}
        )
    if not to_reseller.is_active:
        raise ValidationError(
            _("%(reseller)s is not an active reseller.") % {"reseller": to_reseller.name}
        )
    country = str(old.country or country)
    if not country:
        raise ValidationError({"country": COUNTRY_REQUIRED})
    now = timezone.now()
    before = old.status
    # First: the domain constraint allows one record holding the domain, and the new one will.
    old.status = Customer.Status.TRANSFERRED_OUT
    old.save(update_fields=["status"])
    new = Customer(
        reseller=to_reseller,
        status=Customer.Status.ACTIVE,
        accepted_at=now,
        previous=old,
        **{field: getattr(old, field) for field in CUSTOMER_FIELDS if field != "country"},
        country=country,
    )
    # The domain constraint is left to the insert below, which answers with a clearer message.
    new.full_clean(validate_constraints=False)
    try:
        with transaction.atomic():
            new.save()
    except IntegrityError:
        # Only possible from access revoked: another reseller invited the domain meanwhile.
        raise ValidationError(
            {
                "domain": _(
                    "%(domain)s was invited by another reseller since it revoked its reseller's "
                    "access, so it cannot be moved now."
                )
                % {"domain": old.domain}
            }
        ) from None
    CustomerMember.objects.filter(customer=old).update(customer=new)
    old.invitations.filter(consumed_at__isnull=True, withdrawn_at__isnull=True).update(
        withdrawn_at=now
    )
    _transfer_tokens_withdraw_open(old)
    # Subscriptions follow the organisation from `old` to `new` in this same transaction (the
    # subscriptions app hooks in); invoices stay with the reseller that issued them.
    extensions.transfer_hooks_run(old, new)
    audit_record(
        # The old reseller is not told who imported its customer; vendor staff are named.
        actor=actor if via == "staff" else None,
        reseller=old.reseller,
        action="customer.transferred_out",
        obj=old,
        before={"status": before},
        after={"status": old.status, "via": via},
        customer_public_id=old.public_id,
    )
    audit_record(
        actor=actor,
        reseller=to_reseller,
        action="customer.transferred_in",
        obj=new,
        after={
            **snapshot(new, CUSTOMER_FIELDS),
            "status": new.status,
            "via": via,
            "previous": old.public_id,
        },
        customer_public_id=new.public_id,
    )
    _transfer_emails(old, new, via=via)
    return new


def _import_domain(value: str) -> str:
    """A domain customer's domain, in IDNA form."""
    value = value.strip()
    if not value:
        raise ValidationError({"domain": _("Enter the customer's Google domain.")})
    if re.fullmatch(PUBLIC_ID_PATTERN, value):
        # A customer ID has no dot, so it is never a domain: say what to do instead.
        raise ValidationError(
            {
                "domain": _(
                    "This looks like a customer ID. For a team customer, choose Team customer "
                    "and enter it as its customer ID."
                )
            }
        )
    try:
        return normalise_domain(value)
    except ValidationError as error:
        raise ValidationError({"domain": error.messages}) from None


def _import_customer_id(value: str) -> str:
    """A team customer's customer ID: the public id its organisation page shows."""
    value = value.strip()
    if not re.fullmatch(PUBLIC_ID_PATTERN, value):
        raise ValidationError(
            {
                "customer_id": _(
                    "Enter the customer ID shown on the customer's organisation page in this "
                    "portal: 16 letters, digits, hyphens or underscores."
                )
            }
        )
    return value


def _token_names(customer: Customer, customer_type: str, identifier: str) -> bool:
    """Whether the customer the token is for is the one the reseller named, by the type's
    identifier: a domain customer by its domain, a team customer by its customer ID."""
    if customer.customer_type != customer_type:
        return False
    if customer_type == Customer.Type.TEAM:
        return identifier == customer.public_id
    return identifier == customer.domain


@transaction.atomic
def customer_import(
    *,
    membership: Membership,
    token: str,
    customer_type: str = "",
    domain: str = "",
    customer_id: str = "",
    country: str = "",
) -> Customer:
    """Import with transfer token: the customer generated `token` for this reseller on its side;
    the organisation, its administrators, history and subscriptions move here. A domain
    customer is named by `domain`, a team customer (no domain) by `customer_id`; no
    `customer_type` means a domain customer. `country` is asked for only when the
    organisation's record has none."""
    # Importing is adding a customer by other means: whoever may invite one may import one.
    require(membership.role, Action.CUSTOMER_INVITE)
    reseller = membership.reseller
    if customer_type == Customer.Type.TEAM:
        field = "customer_id"
        identifier = _import_customer_id(customer_id)
        mismatch = _("This token does not match this customer ID.")
    else:
        customer_type, field = Customer.Type.DOMAIN, "domain"
        identifier = _import_domain(domain)
        mismatch = _("This token does not match this domain.")
    found = (
        TransferToken.objects.select_related("customer__reseller")
        .filter(token_hash=token_digest(token.strip()))
        .first()
    )
    if found is None or not _token_names(found.customer, customer_type, identifier):
        # One answer for both: a token must not tell whose it is to someone without its
        # customer's domain or ID, nor an ID whose customer it is to someone without its token.
        raise ValidationError({"token": mismatch})
    ask_again = _("Ask the customer to generate a new one.")
    used = _("This token was already used.") + " " + ask_again
    state = found.state
    if state == TokenState.EXPIRED:
        expired_on = formats.date_format(timezone.localtime(found.expires_at), "DATE_FORMAT")
        raise ValidationError(
            {"token": _("This token expired on %(date)s.") % {"date": expired_on} + " " + ask_again}
        )
    if state == TokenState.USED:
        raise ValidationError({"token": used})
    if state == TokenState.WITHDRAWN:
        raise ValidationError({"token": _("The customer withdrew this token.") + " " + ask_again})
    if found.to_reseller_id != reseller.pk:
        raise ValidationError(
            {
                "token": _(
                    "This token was issued for another reseller. Ask the customer for a token for "
                    "your reseller ID, %(reseller_id)s."
                )
                % {"reseller_id": reseller.public_id}
            }
        )
    customer = found.customer
    if customer.reseller_id == reseller.pk:
        raise ValidationError(
            {
                field: _("%(organisation)s is already your customer.")
                % {"organisation": customer.organisation}
            }
        )
    if customer.status not in TRANSFER_TOKEN_STATUSES:
        raise ValidationError(
            {
                field: _("%(organisation)s cannot be imported while its status is %(status)s.")
                % {"organisation": customer.organisation, "status": customer.get_status_display()}
            }
        )
    if not customer.country and not country:
        # Before the token is used: the reseller chooses the country and sends it again.
        raise ValidationError({"country": COUNTRY_REQUIRED})
    if not token_consume(TransferToken.objects.all(), pk=found.pk):
        # A concurrent import of the same token got there first (or it expired just now).
        raise ValidationError({"token": used})
    return customer_transfer(
        customer=customer,
        to_reseller=reseller,
        actor=membership.user,
        via="token",
        country=country,
    )
