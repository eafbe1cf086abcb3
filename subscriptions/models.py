from django.db import models
from django.utils.translation import gettext_lazy as _

from core.ids import PublicIdField
from resellers.models import Currency


class Product(models.Model):
    """Something the vendor sells by the licence, e.g. "Shared Contacts for Gmail"."""

    public_id = PublicIdField()
    name = models.CharField(_("name"), max_length=200)
    sku = models.SlugField(_("SKU"), max_length=64, unique=True)
    description = models.TextField(_("description"), blank=True)
    is_active = models.BooleanField(_("available for sale"), default=True)

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Plan(models.Model):
    """How a product is sold: commitment and billing cycle (Google Workspace's plan kinds)."""

    class Kind(models.TextChoices):
        FLEXIBLE = "flexible", _("Flexible")
        ANNUAL_MONTHLY = "annual_monthly", _("Annual, paid monthly")
        ANNUAL_YEARLY = "annual_yearly", _("Annual, paid yearly")
        TRIAL = "trial", _("Trial")

    public_id = PublicIdField()
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="plans")
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    is_active = models.BooleanField(_("available for sale"), default=True)

    class Meta:
        verbose_name = _("plan")
        verbose_name_plural = _("plans")
        ordering = ["product", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["product", "kind"], name="plan_one_per_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.product} — {self.get_kind_display()}"


class PlanPrice(models.Model):
    """The price of one licence for one month, in one currency."""

    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="prices")
    currency = models.CharField(_("currency"), max_length=3, choices=Currency.choices)
    monthly_price = models.DecimalField(
        _("price per licence per month"), max_digits=10, decimal_places=2
    )

    class Meta:
        verbose_name = _("plan price")
        verbose_name_plural = _("plan prices")
        ordering = ["plan", "currency"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "currency"], name="planprice_one_per_currency"),
            models.CheckConstraint(
                condition=models.Q(monthly_price__gte=0), name="planprice_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.plan}: {self.monthly_price} {self.currency}"
