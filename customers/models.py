from typing import cast

from django.conf import settings
from django.core.validators import MaxLengthValidator
from django.db import models
from django.db.models import Value
from django.db.models.functions import Concat, Lower, Upper
from django.utils.translation import gettext_lazy as _
from django_countries.fields import CountryField

from core.ids import PublicIdField
from core.languages import language_choices
from core.lookups import ContainsUpper
from core.tokens import OneTimeToken
from core.validators import (
    ADDRESS_MAX_LENGTH,
    validate_multi_line,
    validate_name,
    validate_single_line,
    validate_time_zone,
)
from resellers.models import Reseller

# One message wherever a customer's country is missing (forms, services, admin, imports): its
# invoices must name the buyer's country (Factur-X BT-55), and its VAT follows it.
COUNTRY_REQUIRED = _(
    "Choose the country where the organisation is established: its invoices need it."
)


class Customer(models.Model):
    """An organisation a reseller sells to: a Google domain, or an email-verified team."""

    # The names the partner console uses (seed 004: Domeinklant / Teamklant), wherever the type
    # is shown: the customer pages, the list, the forms.
    class Type(models.TextChoices):
        DOMAIN = "domain", _("Domain customer")
        TEAM = "team", _("Team customer")

    class Status(models.TextChoices):
        INVITED = "invited", _("Invited")
        ACTIVE = "active", _("Active")
        ACCESS_REVOKED = "access_revoked", _("Access revoked")
        TRANSFERRED_OUT = "transferred_out", _("Transferred out")
        CANCELLED = "cancelled", _("Cancelled")

    public_id = PublicIdField()
    reseller = models.ForeignKey(
        Reseller, on_delete=models.PROTECT, related_name="customers", verbose_name=_("reseller")
    )
    organisation = models.CharField(
        _("organisation name"), max_length=200, validators=[validate_name]
    )
    domain = models.CharField(_("Google domain"), max_length=253, blank=True)
    customer_type = models.CharField(
        _("customer type"), max_length=10, choices=Type.choices, default=Type.DOMAIN
    )
    contact_name = models.CharField(_("contact name"), max_length=200, validators=[validate_name])
    contact_email = models.EmailField(_("contact email"))
    education = models.BooleanField(_("education"), default=False)
    # The bill-to details: the vendor invoices the customer organisation (VAT follows them).
    country = CountryField(_("country"), error_messages={"blank": COUNTRY_REQUIRED})
    vat_id = models.CharField(
        _("VAT id"), max_length=32, blank=True, validators=[validate_single_line]
    )
    crm_id = models.CharField(
        _("CRM id"), max_length=100, blank=True, validators=[validate_single_line]
    )
    admin_name = models.CharField(
        _("admin contact name"), max_length=200, blank=True, validators=[validate_name]
    )
    # A TextField's max_length reaches the forms only: the validator bounds it everywhere.
    admin_address = models.TextField(
        _("postal address"),
        blank=True,
        max_length=ADDRESS_MAX_LENGTH,
        validators=[MaxLengthValidator(ADDRESS_MAX_LENGTH), validate_multi_line],
    )
    admin_alternate_email = models.EmailField(_("alternate email"), blank=True)
    admin_phone = models.CharField(
        _("phone"), max_length=32, blank=True, validators=[validate_single_line]
    )
    language = models.CharField(
        _("language"), max_length=8, choices=language_choices, default=settings.LANGUAGE_CODE
    )
    time_zone = models.CharField(
        _("time zone"), max_length=64, default="UTC", validators=[validate_time_zone]
    )
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.INVITED
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    accepted_at = models.DateTimeField(_("accepted"), null=True, blank=True)
    # Set on the row an import created: the same organisation as held by the previous reseller,
    # whose row stays behind as Transferred out (with that reseller's history and invoices).
    previous = models.OneToOneField(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="next",
        verbose_name=_("previous record"),
    )

    # What the Customers page searches: organisation, domain and contact email in capitals, kept
    # by the database. A search then compares one stored column per row instead of upper-casing
    # three (most of a common term's search time), and indexes can hold it.
    search_text = models.GeneratedField(
        verbose_name=_("search text"),
        expression=Upper(
            Concat(
                "organisation",
                Value("\n"),
                "domain",
                Value("\n"),
                "contact_email",
                output_field=models.TextField(),
            )
        ),
        output_field=models.TextField(),
        db_persist=True,
    )

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ["-created_at", "-id"]
        # One index per sort of the Customers page (customers.selectors.CUSTOMER_SORTS), led by
        # the reseller, so that any page of one reseller's list is an index seek.
        # The trigram index for search is PostgreSQL-only: migration 0005_customer_search_text.
        indexes = [
            # With the status and search text: the newest-first list and a search in it are
            # answered from the index alone (customers.selectors.customer_page).
            models.Index(
                fields=["reseller", "-created_at", "-id"],
                include=["status", "search_text"],
                name="customer_reseller_created_idx",
            ),
            models.Index(fields=["reseller", "status", "created_at", "id"]),
            # Narrow (one deduplicated entry list per status): counts a list's rows fastest.
            models.Index(fields=["reseller", "status"]),
            models.Index("reseller", Lower("organisation"), "id", name="customer_reseller_org_idx"),
            models.Index(fields=["reseller", "domain", "id"]),
        ]
        constraints = [
            # A domain is a customer of at most one reseller at a time, unless it has left.
            models.UniqueConstraint(
                fields=["domain"],
                condition=models.Q(status__in=["invited", "active"]) & ~models.Q(domain=""),
                name="customer_domain_held_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.organisation} ({self.domain})" if self.domain else self.organisation

    @property
    def reseller_serving(self) -> Reseller | None:
        """The reseller what happens to the customer now belongs to: none once the customer
        revoked its access. Its subscriptions keep running, billed to its own card, and what
        follows (invoices, events, the audit log) is the customer's and the vendor's."""
        return None if self.status == self.Status.ACCESS_REVOKED else self.reseller


# The lookup is found on the field itself, or on its output field when the table has an alias
# (a subquery).
_search_text = cast(models.GeneratedField, Customer._meta.get_field("search_text"))
_search_text.register_lookup(ContainsUpper)
assert _search_text.output_field is not None
_search_text.output_field.register_lookup(ContainsUpper)


class CustomerInvitation(OneTimeToken):
    """The link a customer's contact follows to accept a reseller; bound to the contact email."""

    public_id = PublicIdField()
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="invitations", verbose_name=_("customer")
    )
    email = models.EmailField(_("email"))
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("invited by"),
    )
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("accepted by"),
    )
    created_at = models.DateTimeField(_("sent"), auto_now_add=True)
    opened_at = models.DateTimeField(_("opened"), null=True, blank=True)

    class Meta:
        verbose_name = _("customer invitation")
        verbose_name_plural = _("customer invitations")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.email} → {self.customer}"


class CustomerMember(models.Model):
    """A person who administers a customer on the customer side (accepted its invitation)."""

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="members", verbose_name=_("customer")
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="customer_memberships",
        verbose_name=_("user"),
    )
    terms_accepted_at = models.DateTimeField(_("terms of service accepted"))
    created_at = models.DateTimeField(_("joined"), auto_now_add=True)

    class Meta:
        verbose_name = _("customer administrator")
        verbose_name_plural = _("customer administrators")
        constraints = [
            models.UniqueConstraint(fields=["customer", "user"], name="customermember_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.customer}"


class TransferToken(OneTimeToken):
    """A customer's permission for one named reseller to import it (seed 004): single use."""

    public_id = PublicIdField()
    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        related_name="transfer_tokens",
        verbose_name=_("customer"),
    )
    to_reseller = models.ForeignKey(
        Reseller,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("for reseller"),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("transfer token")
        verbose_name_plural = _("transfer tokens")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.customer} → {self.to_reseller}"
