"""API keys: a reseller's member scripts the portal with one, acting with the member's role.

The raw key is shown once, when it is made; only its SHA-256 is kept (core.tokens), as for the
one-time tokens. A key stops working when it is revoked, when it expires, when the member who
made it leaves the team (the membership is deleted: SET_NULL) or when that member's role is no
longer the one the key was made with.
"""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.ids import PublicIdField
from resellers.models import Membership, Reseller
from resellers.roles import Role

KEY_PREFIX = "ppk_"


class Scope(models.TextChoices):
    READ = "read", _("Read customers, subscriptions and the audit log")
    CUSTOMERS_WRITE = "customers:write", _("Invite and change customers")
    SUBSCRIPTIONS_WRITE = "subscriptions:write", _("Buy and change subscriptions")
    BILLING_READ = "billing:read", _("Read invoices and credit notes")


class ApiKey(models.Model):
    public_id = PublicIdField()
    reseller = models.ForeignKey(
        Reseller, on_delete=models.CASCADE, related_name="api_keys", verbose_name=_("reseller")
    )
    membership = models.ForeignKey(
        Membership,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="api_keys",
        verbose_name=_("made by"),
    )
    created_by_email = models.EmailField(_("made by"), editable=False)
    role = models.CharField(_("role"), max_length=10, choices=Role.choices, editable=False)
    name = models.CharField(_("name"), max_length=100)
    # The first characters of the key, shown in lists so that a person can tell keys apart.
    prefix = models.CharField(_("key starts with"), max_length=16, editable=False)
    key_hash = models.CharField(_("key hash"), max_length=64, unique=True, editable=False)
    scopes = models.JSONField(_("scopes"), default=list)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("made"), auto_now_add=True)

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_usable(self) -> bool:
        """Not revoked, not expired, and its member still in the team with the same role."""
        return (
            self.revoked_at is None
            and (self.expires_at is None or self.expires_at > timezone.now())
            and self.membership is not None
            and self.membership.role == self.role
        )
