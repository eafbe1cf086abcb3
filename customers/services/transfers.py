"""Moving a customer to another reseller: by the customer's transfer token (the new
reseller's Import with transfer token) or by vendor staff (admin). The apps above customers
move what is theirs through customers.extensions, inside the same transaction."""

import re
from typing import Literal
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from core.emails import email_queue
from core.events import event_announce
from core.ids import PUBLIC_ID_PATTERN
from core.models import User
from core.tokens import TokenState, token_consume, token_digest
from customers import extensions
from customers.models import (
    COUNTRY_REQUIRED,
    Customer,
    CustomerMember,
    TransferToken,
)
from customers.services.customer_side import TRANSFER_TOKEN_STATUSES, _transfer_tokens_withdraw_open
from customers.services.details import CUSTOMER_FIELDS
from customers.validators import normalise_domain
from resellers.models import Membership, Reseller
from resellers.roles import Action, Role, require
from resellers.services import (
    audit_record,
    snapshot,
)

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
    event_announce("customer.transferred", new)
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
