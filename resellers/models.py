from django.conf import settings
from django.core.validators import MaxLengthValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _
from django_countries.fields import CountryField

from core.ids import PublicIdField
from core.languages import language_choices
from core.tokens import OneTimeToken
from core.validators import (
    ADDRESS_MAX_LENGTH,
    validate_multi_line,
    validate_name,
    validate_single_line,
    validate_time_zone,
)
from resellers.roles import Role

# One message wherever a reseller's postal address is missing (the forms, the services): its
# commission statements are self-billed invoices, which name the supplier with its full address
# (EU VAT directive art. 226).
ADDRESS_REQUIRED = _(
    "Enter the company's postal address: its commission statements name it as the supplier."
)


class Currency(models.TextChoices):
    EUR = "EUR", "EUR"
    USD = "USD", "USD"
    GBP = "GBP", "GBP"


class Reseller(models.Model):
    """A tenant: a company that resells the vendor's products to its customers."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending approval")
        ACTIVE = "active", _("Active")
        SUSPENDED = "suspended", _("Suspended")

    public_id = PublicIdField()
    name = models.CharField(_("company name"), max_length=200, validators=[validate_name])
    # The supplier's address on its commission statements, stored and printed as a customer's
    # (lines as typed; the country is its own field). Blank only for a reseller that applied
    # before it was asked: the application asks for it, and once set it cannot be removed.
    # A TextField's max_length reaches the forms only: the validator bounds it everywhere.
    address = models.TextField(
        _("postal address"),
        blank=True,
        max_length=ADDRESS_MAX_LENGTH,
        validators=[MaxLengthValidator(ADDRESS_MAX_LENGTH), validate_multi_line],
    )
    country = CountryField(_("country"))
    vat_id = models.CharField(
        _("VAT id"), max_length=32, blank=True, validators=[validate_single_line]
    )
    billing_email = models.EmailField(_("billing email"))
    currency = models.CharField(
        _("currency"), max_length=3, choices=Currency.choices, default=Currency.EUR
    )
    language = models.CharField(
        _("language"), max_length=8, choices=language_choices, default=settings.LANGUAGE_CODE
    )
    time_zone = models.CharField(
        _("time zone"), max_length=64, default="UTC", validators=[validate_time_zone]
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    status_changed_at = models.DateTimeField(_("status changed"), null=True, blank=True)

    class Meta:
        verbose_name = _("reseller")
        verbose_name_plural = _("resellers")
        ordering = ["name"]
        indexes = [models.Index(fields=["status"])]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class Membership(models.Model):
    """A user's place in a reseller's team, with one role."""

    public_id = PublicIdField()
    reseller = models.ForeignKey(
        Reseller, on_delete=models.CASCADE, related_name="memberships", verbose_name=_("reseller")
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="memberships",
        verbose_name=_("user"),
    )
    role = models.CharField(_("role"), max_length=10, choices=Role.choices)
    created_at = models.DateTimeField(_("joined"), auto_now_add=True)
    # When the user last chose to work in this reseller: sign-in lands there again.
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        ordering = ["reseller", "user__email"]
        constraints = [
            models.UniqueConstraint(fields=["reseller", "user"], name="membership_unique_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.reseller} ({self.get_role_display()})"


class TeamInvitation(OneTimeToken):
    """An invitation to join a reseller's team with a role, accepted by signing in with Google."""

    public_id = PublicIdField()
    reseller = models.ForeignKey(
        Reseller, on_delete=models.CASCADE, related_name="invitations", verbose_name=_("reseller")
    )
    email = models.EmailField(_("email"))
    role = models.CharField(_("role"), max_length=10, choices=Role.choices)
    language = models.CharField(
        _("language"), max_length=8, choices=language_choices, default=settings.LANGUAGE_CODE
    )
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

    class Meta:
        verbose_name = _("team invitation")
        verbose_name_plural = _("team invitations")
        ordering = ["-created_at"]
        indexes = [models.Index(Lower("email"), name="teaminvitation_email_ci")]

    def __str__(self) -> str:
        return f"{self.email} → {self.reseller}"


# What each audited action is called on the page; unknown actions show their code.
AUDIT_ACTION_LABELS = {
    "reseller.applied": _("Applied to become a partner"),
    "reseller.approved": _("Reseller approved"),
    "reseller.suspended": _("Reseller suspended"),
    "reseller.profile_updated": _("Company profile changed"),
    "membership.created": _("Team member added"),
    "membership.role_changed": _("Role changed"),
    "membership.removed": _("Team member removed"),
    "team_invitation.sent": _("Teammate invited"),
    "team_invitation.resent": _("Invitation sent again"),
    "team_invitation.withdrawn": _("Invitation withdrawn"),
    "team_invitation.accepted": _("Invitation accepted"),
    "customer.invited": _("Customer invited"),
    "customer.accepted": _("Customer accepted the invitation"),
    "customer.invitation_resent": _("Customer invitation sent again"),
    "customer.invitation_withdrawn": _("Customer invitation withdrawn"),
    "customer.updated": _("Customer details changed"),
    "customer.country_defaulted": _("Customer's country set to the reseller's"),
    "customer.access_revoked": _("Customer revoked the reseller's access"),
    "customer.transfer_token_created": _("Transfer token created"),
    "customer.transfer_token_withdrawn": _("Transfer token withdrawn"),
    "customer.transferred_out": _("Customer moved to another reseller"),
    "customer.transferred_in": _("Customer imported from another reseller"),
    "subscription.bought": _("Subscription bought"),
    "subscription.licences_added": _("Licences added"),
    "subscription.licences_removed": _("Licences removed"),
    "subscription.renewal_changed": _("Renewal setting changed"),
    "subscription.plan_changed": _("Plan changed"),
    "subscription.plan_change_scheduled": _("Plan change scheduled for the end of the term"),
    "subscription.plan_change_withdrawn": _("Scheduled plan change withdrawn"),
    "subscription.cancellation_scheduled": _("Cancellation scheduled for the end of the term"),
    "subscription.cancelled": _("Subscription cancelled"),
    "subscription.suspended": _("Subscription suspended"),
    "subscription.reactivated": _("Subscription reactivated"),
    "subscription.period_started": _("New billing period started"),
    "subscription.price_increase_announced": _("Price increase announced to the customer"),
    "subscription.renewed": _("Subscription renewed for a new term"),
    "subscription.trial_ended": _("Trial ended"),
    "subscription.transferred": _("Subscription moved with its customer to another reseller"),
    "subscription.payer_changed": _("Subscription now paid with the customer's card"),
    "subscription.payer_changed_to_reseller_card": _(
        "Subscription now paid with the reseller's card"
    ),
    "card_consent.requested": _("Customer asked to pay with its own card"),
    "card_consent.withdrawn": _("Request to pay with the customer's card withdrawn"),
    "card_consent.given": _("Customer agreed to pay with its own card"),
    "payment_card.saved": _("Payment card saved"),
    "payment_card.removed": _("Payment card removed"),
    "invoice.payment_failed": _("Card payment failed"),
    "invoice.issued": _("Invoice issued"),
    "invoice.paid": _("Invoice paid"),
    "invoice.credited": _("Invoice credited in full"),
    "credit_note.issued": _("Credit note issued"),
    "payment.received": _("Payment received"),
    "refund.owed": _("Refund owed"),
    "refund.succeeded": _("Refund made"),
    "refund.failed": _("Refund failed"),
    "price_rule.set": _("Price book entry set"),
    "statement.issued": _("Commission statement issued"),
    "statement.corrected": _("Commission statement corrected by a negative statement"),
    "statement.correction_requested": _("Correction of a commission statement requested"),
    "statement.reissued": _("Commission statement issued again for its month"),
    "statement.payout_recorded": _("Commission payout recorded"),
    "customer_price.set": _("Special customer price set"),
    "customer_price.ended": _("Special customer price ended"),
    "api_key.created": _("API key made"),
    "api_key.revoked": _("API key revoked"),
    "webhook_endpoint.created": _("Webhook endpoint added"),
    "webhook_endpoint.updated": _("Webhook endpoint's events changed"),
    "webhook_endpoint.disabled": _("Webhook endpoint disabled"),
    "webhook_endpoint.enabled": _("Webhook endpoint enabled"),
    "webhook_endpoint.deleted": _("Webhook endpoint deleted"),
    "webhook_endpoint.replayed": _("Webhook events sent again"),
}


class AuditEvent(models.Model):
    """One state change: who did what to which object, before and after. Never updated.

    The customer is kept as its public id rather than a foreign key: customers sit above
    resellers in the import order, and an audit row must outlive any object it names.
    """

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("actor"),
    )
    actor_email = models.EmailField(_("actor email"), blank=True)
    reseller = models.ForeignKey(
        Reseller,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="audit_events",
        verbose_name=_("reseller"),
    )
    customer_public_id = models.CharField(_("customer"), max_length=16, blank=True, db_index=True)
    action = models.CharField(_("action"), max_length=64)
    object_type = models.CharField(_("object type"), max_length=64)
    object_id = models.CharField(_("object id"), max_length=64)
    object_repr = models.CharField(_("object"), max_length=255)
    before = models.JSONField(_("before"), null=True, blank=True)
    after = models.JSONField(_("after"), null=True, blank=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    # "" through the pages; the API key's name for a write made through the API.
    via = models.CharField(_("API key"), max_length=100, blank=True, default="", db_default="")
    created_at = models.DateTimeField(_("time"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit log")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["reseller", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.action} {self.object_repr}"

    @property
    def action_label(self) -> str:
        return str(AUDIT_ACTION_LABELS.get(self.action, self.action))
