"""Reseller economics, the catalogue side (issue 16): discount tiers, per-reseller overrides, the
reseller's price book and its customers' special prices. Imported by subscriptions.models, so
Django sees these models; what the rows mean for a price is subscriptions.pricing.

A discount, price book entry or special price takes effect from a day (`valid_from`) and is
never rewritten: a new price or discount is a new row, and on any day the latest row whose
`valid_from` is on or before it applies. A reseller's tier is not dated: after a move to
another tier, every day is quoted with the new tier's rates, past days included (charges will
keep what they were quoted). All amounts are per licence per month, like PlanPrice.
"""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from core.validators import validate_name
from customers.models import Customer
from resellers.models import Currency, Reseller

# A discount is a share of the list price below 100 %: 0.00 to 99.99.
PERCENT_MAX = Decimal("99.99")
PERCENT_VALIDATORS = [MinValueValidator(Decimal("0")), MaxValueValidator(PERCENT_MAX)]


class PriceSource(models.TextChoices):
    """Where the customer's price of a period came from (a Charge keeps it)."""

    SPECIAL_PRICE = "special_price", _("Special customer price")  # CustomerPrice
    PRICE_RULE = "price_rule", _("Price book")  # PriceRule
    LIST_PRICE = "list_price", _("List price")  # no entry: the catalogue's price
    # The period keeps the price the subscription had: an increase not announced 30 days
    # ahead (or above what was announced), or licences added at the current period's price.
    PERIOD_PRICE = "period_price", _("Price kept for the period")


class Tier(models.Model):
    """A named discount on the list price that staff give resellers, e.g. "Gold"; its rates
    are its TierDiscount rows."""

    name = models.CharField(_("name"), max_length=100, unique=True, validators=[validate_name])
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("discount tier")
        verbose_name_plural = _("discount tiers")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


def _one_per_day(owner: str) -> list[models.BaseConstraint]:
    """One discount a day per owner and product, and one a day per owner for every product.
    Two partial constraints rather than one with nulls_distinct=False: "every product" (no
    product) is one row per day too, on every database."""
    return [
        models.UniqueConstraint(
            fields=[owner, "product", "valid_from"],
            condition=models.Q(product__isnull=False),
            name="%(class)s_one_per_product_and_day",
        ),
        models.UniqueConstraint(
            fields=[owner, "valid_from"],
            condition=models.Q(product__isnull=True),
            name="%(class)s_one_for_all_per_day",
        ),
    ]


class DatedDiscount(models.Model):
    """A discount in % of the list price, for one product or (no product) for every product,
    from a day on: what a tier's rate and staff's override of one reseller's rate share."""

    product = models.ForeignKey(
        "subscriptions.Product",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("product"),
        help_text=_("Leave empty for every product."),
    )
    percent = models.DecimalField(
        _("discount (%)"), max_digits=5, decimal_places=2, validators=PERCENT_VALIDATORS
    )
    valid_from = models.DateField(_("valid from"))

    class Meta:
        abstract = True
        constraints = [
            models.CheckConstraint(
                condition=models.Q(percent__gte=0, percent__lt=100),
                name="%(class)s_percent_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.owner_label()}: {self.percent} % ({self.valid_from})"

    def owner_label(self) -> str:
        raise NotImplementedError


class TierDiscount(DatedDiscount):
    """A tier's discount in % of the list price, for one product or (no product) for every
    product, from a day on."""

    tier = models.ForeignKey(
        Tier, on_delete=models.CASCADE, related_name="discounts", verbose_name=_("tier")
    )

    class Meta(DatedDiscount.Meta):
        verbose_name = _("tier discount")
        verbose_name_plural = _("tier discounts")
        ordering = ["tier", "product", "-valid_from"]
        constraints = [*DatedDiscount.Meta.constraints, *_one_per_day("tier")]

    def owner_label(self) -> str:
        return str(self.tier)


class ResellerTier(models.Model):
    """The tier a reseller is in (one at a time; a reseller without one gets no tier
    discount)."""

    reseller = models.OneToOneField(
        Reseller,
        on_delete=models.CASCADE,
        related_name="tier_assignment",
        verbose_name=_("reseller"),
    )
    tier = models.ForeignKey(
        Tier, on_delete=models.PROTECT, related_name="reseller_tiers", verbose_name=_("tier")
    )
    assigned_at = models.DateTimeField(_("assigned"), auto_now=True)

    class Meta:
        verbose_name = _("reseller tier")
        verbose_name_plural = _("reseller tiers")
        ordering = ["reseller__name"]

    def __str__(self) -> str:
        return f"{self.reseller}: {self.tier}"


class ResellerDiscount(DatedDiscount):
    """Staff's override of one reseller's tier discount, for one product or (no product) for
    every product, from a day on."""

    reseller = models.ForeignKey(
        Reseller,
        on_delete=models.CASCADE,
        related_name="discount_overrides",
        verbose_name=_("reseller"),
    )

    class Meta(DatedDiscount.Meta):
        verbose_name = _("reseller discount")
        verbose_name_plural = _("reseller discounts")
        ordering = ["reseller", "product", "-valid_from"]
        constraints = [*DatedDiscount.Meta.constraints, *_one_per_day("reseller")]

    def owner_label(self) -> str:
        return str(self.reseller)


class PriceRule(models.Model):
    """One entry of a reseller's price book: what its customers pay for a plan in a currency
    from a day on. Appended, never updated: on a day the latest `valid_from` on or before it
    wins (the latest row of that day if there are several)."""

    class Kind(models.TextChoices):
        LIST = "list", _("List price")
        MARKUP = "markup", _("Markup on cost")
        FIXED = "fixed", _("Fixed price")

    reseller = models.ForeignKey(
        Reseller, on_delete=models.PROTECT, related_name="price_rules", verbose_name=_("reseller")
    )
    plan = models.ForeignKey(
        "subscriptions.Plan",
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("plan"),
    )
    currency = models.CharField(_("currency"), max_length=3, choices=Currency.choices)
    kind = models.CharField(_("customer price"), max_length=8, choices=Kind.choices)
    markup_percent = models.DecimalField(
        _("markup on cost (%)"),
        max_digits=7,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0"))],
    )
    price = models.DecimalField(
        _("price per licence per month"),
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0"))],
    )
    valid_from = models.DateField(_("valid from"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("price book entry")
        verbose_name_plural = _("price book entries")
        ordering = ["reseller", "plan", "currency", "-valid_from", "-id"]
        indexes = [models.Index(fields=["reseller", "plan", "currency", "-valid_from"])]
        constraints = [
            # Each kind carries exactly the value it needs.
            models.CheckConstraint(
                condition=models.Q(kind="list", markup_percent__isnull=True, price__isnull=True)
                | models.Q(kind="markup", markup_percent__isnull=False, markup_percent__gte=0)
                & models.Q(price__isnull=True)
                | models.Q(kind="fixed", price__isnull=False, price__gte=0)
                & models.Q(markup_percent__isnull=True),
                name="pricerule_kind_fields",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.plan} ({self.currency}): {self.get_kind_display()} ({self.valid_from})"


class CustomerPrice(models.Model):
    """A special price for one customer: one licence of a plan for a month, in a currency,
    from `valid_from` until the day before `ends_on` (exclusive, like a billing period's end;
    no `ends_on`: until replaced). It comes before the reseller's price book. Of those valid on
    a day, the latest `valid_from` wins (then the latest entered): a short offer over a standing
    special price ends back at the standing one. Appended; only `ends_on` is set later
    (customer_price_end)."""

    reseller = models.ForeignKey(
        Reseller,
        on_delete=models.PROTECT,
        related_name="customer_prices",
        verbose_name=_("reseller"),
    )
    customer = models.ForeignKey(
        Customer,
        on_delete=models.PROTECT,
        related_name="special_prices",
        verbose_name=_("customer"),
    )
    plan = models.ForeignKey(
        "subscriptions.Plan",
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("plan"),
    )
    currency = models.CharField(_("currency"), max_length=3, choices=Currency.choices)
    price = models.DecimalField(
        _("price per licence per month"),
        max_digits=10,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("0"))],
    )
    valid_from = models.DateField(_("valid from"))
    ends_on = models.DateField(
        _("ends on"),
        null=True,
        blank=True,
        help_text=_("The first day the special price no longer applies. Empty: no end."),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("special customer price")
        verbose_name_plural = _("special customer prices")
        ordering = ["reseller", "customer", "plan", "currency", "-valid_from", "-id"]
        indexes = [models.Index(fields=["customer", "plan", "currency", "-valid_from"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(price__gte=0), name="customerprice_not_negative"
            ),
            # ends_on == valid_from: withdrawn before it applied on any day.
            models.CheckConstraint(
                condition=models.Q(ends_on__isnull=True)
                | models.Q(ends_on__gte=models.F("valid_from")),
                name="customerprice_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer} — {self.plan}: {self.price} {self.currency} ({self.valid_from})"
