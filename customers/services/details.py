"""A customer's details as the reseller enters them (NEW CUSTOMER, then Edit on the Manage
page, or staff in the admin): which fields, how they are checked, and the contact edits."""

from typing import Any
from urllib.parse import urlencode

from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _

from core.models import User
from customers.models import (
    Customer,
)
from customers.validators import email_domain, normalise_domain, normalise_phone
from resellers.models import Membership
from resellers.roles import Action, require
from resellers.services import (
    audit_record,
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


def _customer_lock(customer: Customer) -> Customer:
    # Resend, withdraw, edit and accept all read the status and then write it: lock the row so
    # two of them cannot interleave.
    return Customer.objects.select_for_update().select_related("reseller").get(pk=customer.pk)


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
