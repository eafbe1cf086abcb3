from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.core.validators import MaxLengthValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from core.ids import PublicIdField
from core.money import HALF_CENT
from core.validators import validate_multi_line, validate_name
from customers.models import Customer
from resellers.models import Currency
from subscriptions.periods import TERM_MONTHS, Period
from subscriptions.pricing_models import CustomerPrice as CustomerPrice
from subscriptions.pricing_models import PriceRule as PriceRule
from subscriptions.pricing_models import PriceSource as PriceSource
from subscriptions.pricing_models import ResellerDiscount as ResellerDiscount
from subscriptions.pricing_models import ResellerTier as ResellerTier
from subscriptions.pricing_models import Tier as Tier
from subscriptions.pricing_models import TierDiscount as TierDiscount

TRIAL_MAX_LICENCES = 10


DESCRIPTION_MAX_LENGTH = 2000


class Product(models.Model):
    """Something the vendor sells by the licence, e.g. "Shared Contacts for Gmail"."""

    public_id = PublicIdField()
    name = models.CharField(_("name"), max_length=200, validators=[validate_name])
    sku = models.SlugField(_("SKU"), max_length=64, unique=True)
    description = models.TextField(
        _("description"),
        blank=True,
        max_length=DESCRIPTION_MAX_LENGTH,
        validators=[MaxLengthValidator(DESCRIPTION_MAX_LENGTH), validate_multi_line],
    )
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
    product = models.ForeignKey(
        Product, on_delete=models.PROTECT, related_name="plans", verbose_name=_("product")
    )
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    is_active = models.BooleanField(_("available for sale"), default=True)
    max_licences = models.PositiveIntegerField(
        _("maximum licences"),
        default=10000,
        help_text=_("The most licences one subscription to this plan may hold."),
    )

    class Meta:
        verbose_name = _("plan")
        verbose_name_plural = _("plans")
        ordering = ["product", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["product", "kind"], name="plan_one_per_kind"),
            models.CheckConstraint(
                condition=models.Q(max_licences__gte=1), name="plan_max_licences_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product} — {self.get_kind_display()}"

    @property
    def is_trial(self) -> bool:
        return self.kind == self.Kind.TRIAL

    @property
    def is_annual(self) -> bool:
        return self.kind in (self.Kind.ANNUAL_MONTHLY, self.Kind.ANNUAL_YEARLY)

    @property
    def months_per_period(self) -> int:
        """Months one billing period lasts (a trial's 30 days are not counted in months)."""
        return TERM_MONTHS if self.kind == self.Kind.ANNUAL_YEARLY else 1

    @property
    def licence_limit(self) -> int:
        """The plan's maximum, and for a trial at most 10."""
        if self.is_trial:
            return min(self.max_licences, TRIAL_MAX_LICENCES)
        return self.max_licences


def plan_change_timing(current: Plan, target: Plan) -> str | None:
    """When a subscription on `current` may move to `target` (a plan of the same product):
    "now", "at_term_end", or None if it may not."""
    if current.pk == target.pk or target.is_trial:
        return None
    if current.is_trial:
        return "now"  # start paid service
    if current.kind == Plan.Kind.FLEXIBLE and target.is_annual:
        return "now"
    if current.is_annual and target.kind == Plan.Kind.FLEXIBLE:
        return "at_term_end"
    return None


class PlanPrice(models.Model):
    """The price of one licence for one month, in one currency."""

    plan = models.ForeignKey(
        Plan, on_delete=models.CASCADE, related_name="prices", verbose_name=_("plan")
    )
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


class Payer(models.TextChoices):
    RESELLER_CARD = "reseller_card", _("Reseller card")
    CUSTOMER_CARD = "customer_card", _("Customer card")


class Subscription(models.Model):
    """A customer's licences of one product on one plan (Google Workspace's subscription)."""

    class Status(models.TextChoices):
        TRIAL = "trial", _("Trial")
        ACTIVE = "active", _("Active")
        SUSPENDED = "suspended", _("Suspended")
        CANCELLED = "cancelled", _("Cancelled")

    class SuspensionReason(models.TextChoices):
        PENDING_PAYMENT = "pending_payment", _("Payment pending")
        RESELLER_INITIATED = "reseller_initiated", _("Suspended by the reseller")
        TRIAL_ENDED = "trial_ended", _("Trial ended")

    class RenewalSetting(models.TextChoices):
        AUTO_RENEW = "auto_renew", _("Renew automatically")
        RENEW_WITH_COUNT = "renew_with_count", _("Renew with a set number of licences")
        CANCEL_AT_TERM_END = "cancel_at_term_end", _("Cancel at the end of the term")

    public_id = PublicIdField()
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="subscriptions", verbose_name=_("customer")
    )
    # The plan's product, kept on the row so the database holds "one live subscription per
    # product and customer".
    product = models.ForeignKey(
        Product, on_delete=models.PROTECT, related_name="+", verbose_name=_("product")
    )
    plan = models.ForeignKey(
        Plan, on_delete=models.PROTECT, related_name="subscriptions", verbose_name=_("plan")
    )
    currency = models.CharField(_("currency"), max_length=3, choices=Currency.choices)
    licences = models.PositiveIntegerField(_("licences"))
    status = models.CharField(_("status"), max_length=12, choices=Status.choices)
    suspension_reason = models.CharField(
        _("suspension reason"), max_length=20, choices=SuspensionReason.choices, blank=True
    )
    payer = models.CharField(_("paid with"), max_length=16, choices=Payer.choices)
    # Periods start on this day of each month (of anchor_month each year for annual_yearly).
    anchor_day = models.PositiveSmallIntegerField(_("billing day"))
    anchor_month = models.PositiveSmallIntegerField(_("billing month"))
    # The customer's price of the current period (subscriptions.pricing: set by the purchase
    # or plan change, then at each period's start): a price change applies from the next
    # period, an increase only once announced (PriceNotice).
    monthly_price = models.DecimalField(
        _("price per licence per month"), max_digits=10, decimal_places=2
    )
    period_start = models.DateField(_("current period starts"))
    period_end = models.DateField(_("next period starts"))
    # Annual plans: the 12-month commitment; trials: the 30 days. Flexible plans have none.
    term_start = models.DateField(_("term starts"), null=True, blank=True)
    term_end = models.DateField(_("term ends"), null=True, blank=True)
    renewal_setting = models.CharField(
        _("at the end of the term"),
        max_length=20,
        choices=RenewalSetting.choices,
        default=RenewalSetting.AUTO_RENEW,
    )
    renewal_licences = models.PositiveIntegerField(_("licences at renewal"), null=True, blank=True)
    scheduled_plan = models.ForeignKey(
        Plan,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("plan from the end of the term"),
    )
    # The scheduled plan's price per licence per month when the reseller confirmed the change
    # (what the page showed): the plan starts at no more than this (pricing.renewal_price); a
    # higher price reaches it only announced 30 days ahead, as any increase.
    scheduled_monthly_price = models.DecimalField(
        _("price per licence per month from the end of the term"),
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
    )
    # The term end the last reminder email was about: the reminder job sends one per term.
    reminder_sent_for = models.DateField(_("reminder sent for"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    status_changed_at = models.DateTimeField(_("status changed"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("cancelled"), null=True, blank=True)

    class Meta:
        verbose_name = _("subscription")
        verbose_name_plural = _("subscriptions")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "period_end"]),
            models.Index(fields=["status", "term_end"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(licences__gte=1), name="subscription_licences_positive"
            ),
            models.CheckConstraint(
                condition=~models.Q(status="trial") | models.Q(licences__lte=TRIAL_MAX_LICENCES),
                name="subscription_trial_at_most_10",
            ),
            models.CheckConstraint(
                condition=models.Q(anchor_day__gte=1, anchor_day__lte=31)
                & models.Q(anchor_month__gte=1, anchor_month__lte=12),
                name="subscription_anchor_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(period_start__lt=models.F("period_end")),
                name="subscription_period_not_empty",
            ),
            models.CheckConstraint(
                condition=models.Q(term_start__isnull=True, term_end__isnull=True)
                | models.Q(term_start__lt=models.F("term_end")),
                name="subscription_term_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(monthly_price__gte=0), name="subscription_price_not_negative"
            ),
            models.CheckConstraint(
                condition=models.Q(status="suspended", suspension_reason__gt="")
                | (~models.Q(status="suspended") & models.Q(suspension_reason="")),
                name="subscription_reason_iff_suspended",
            ),
            models.CheckConstraint(
                condition=models.Q(renewal_setting="renew_with_count", renewal_licences__gte=1)
                | (
                    ~models.Q(renewal_setting="renew_with_count")
                    & models.Q(renewal_licences__isnull=True)
                ),
                name="subscription_renewal_count_iff_set",
            ),
            models.CheckConstraint(
                condition=models.Q(status="cancelled", cancelled_at__isnull=False)
                | (~models.Q(status="cancelled") & models.Q(cancelled_at__isnull=True)),
                name="subscription_cancelled_at_iff_cancelled",
            ),
            models.UniqueConstraint(
                fields=["customer", "product"],
                condition=~models.Q(status="cancelled"),
                name="subscription_one_live_per_product",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer} — {self.plan}"

    @property
    def period(self) -> Period:
        return Period(self.period_start, self.period_end)

    @property
    def is_live(self) -> bool:
        return self.status != self.Status.CANCELLED

    @property
    def term_last_day(self) -> date | None:
        return self.term_end - timedelta(days=1) if self.term_end else None


# The statuses in which a paid subscription's periods go on, each charged in advance: suspended
# by the reseller or for a pending payment, the commitment and the licences are still held. The
# renewal job rolls these (subscriptions.services.jobs) and the forecast counts them.
PERIODS_ROLL_STATUSES = (Subscription.Status.ACTIVE, Subscription.Status.SUSPENDED)


class PriceNotice(models.Model):
    """An increase of a subscription's price announced to the customer (issue 16): a higher
    price applies from a period that starts at least 30 days after the customer was told.
    Appended once per increase by the daily notice job; the renewal honours it."""

    subscription = models.ForeignKey(
        Subscription,
        on_delete=models.PROTECT,
        related_name="price_notices",
        verbose_name=_("subscription"),
    )
    old_monthly_price = models.DecimalField(
        _("price per licence per month until then"), max_digits=10, decimal_places=2
    )
    new_monthly_price = models.DecimalField(
        _("new price per licence per month"), max_digits=10, decimal_places=2
    )
    currency = models.CharField(_("currency"), max_length=3, choices=Currency.choices)
    # The first period start at least 30 days after sent_at.
    applies_from = models.DateField(_("applies from"))
    sent_at = models.DateTimeField(_("sent"))

    class Meta:
        verbose_name = _("price increase notice")
        verbose_name_plural = _("price increase notices")
        ordering = ["-sent_at", "-id"]
        indexes = [models.Index(fields=["subscription", "applies_from"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(new_monthly_price__gt=models.F("old_monthly_price"))
                & models.Q(old_monthly_price__gte=0),
                name="pricenotice_is_an_increase",
            ),
            # The job announces one increase once, however often it runs.
            models.UniqueConstraint(
                fields=["subscription", "applies_from", "new_monthly_price"],
                name="pricenotice_once",
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.subscription}: {self.old_monthly_price} → {self.new_monthly_price} "
            f"{self.currency} ({self.applies_from})"
        )


class LicenceChange(models.Model):
    """The licence ledger: one row per change, appended and never updated."""

    class Kind(models.TextChoices):
        PURCHASE = "purchase", _("Purchase")
        ADD = "add", _("Licences added")
        REMOVE = "remove", _("Licences removed")
        RENEWAL = "renewal", _("Renewal")
        PLAN_CHANGE = "plan_change", _("Plan change")

    subscription = models.ForeignKey(
        Subscription,
        on_delete=models.PROTECT,
        related_name="licence_changes",
        verbose_name=_("subscription"),
    )
    order = models.ForeignKey(
        "Order",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="licence_changes",
        verbose_name=_("order"),
    )
    kind = models.CharField(_("change"), max_length=12, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("actor"),
    )
    # Kept as text too: the ledger outlives the person's account.
    actor_email = models.EmailField(_("by"), blank=True)
    plan = models.ForeignKey(
        Plan, on_delete=models.PROTECT, related_name="+", verbose_name=_("plan")
    )
    licences_before = models.PositiveIntegerField(_("before"))
    licences_after = models.PositiveIntegerField(_("after"))
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3, choices=Currency.choices)
    period_start = models.DateField(_("period starts"))
    period_end = models.DateField(_("period ends"))
    created_at = models.DateTimeField(_("time"), auto_now_add=True)

    class Meta:
        verbose_name = _("licence change")
        verbose_name_plural = _("licence ledger")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount__gte=0), name="licencechange_amount_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.licences_before} → {self.licences_after}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ValueError("The licence ledger is append-only.")
        super().save(*args, **kwargs)


class Charge(models.Model):
    """An amount owed, with what and which period it pays for; the billing run invoices it."""

    class Kind(models.TextChoices):
        PURCHASE = "purchase", _("First period")
        PRORATION = "proration", _("Licences added during the period")
        PERIOD = "period", _("Billing period")
        PLAN_CHANGE = "plan_change", _("Plan change")

    subscription = models.ForeignKey(
        Subscription,
        on_delete=models.PROTECT,
        related_name="charges",
        verbose_name=_("subscription"),
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="charges", verbose_name=_("customer")
    )
    order = models.ForeignKey(
        "Order",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="charges",
        verbose_name=_("order"),
    )
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    # Written in the customer's language when the charge is made: it goes on their invoice.
    description = models.CharField(_("description"), max_length=255)
    payer = models.CharField(_("paid with"), max_length=16, choices=Payer.choices)
    period_start = models.DateField(_("from"))
    period_end = models.DateField(_("until (exclusive)"))
    licences = models.PositiveIntegerField(_("licences"))
    unit_price = models.DecimalField(
        _("price per licence for the period"), max_digits=12, decimal_places=2
    )
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3, choices=Currency.choices)
    # What the charge was priced from, kept as it was when charged (issue 16): nothing is
    # recomputed later from today's prices. Per licence for the charged period, like
    # unit_price: the list price, the reseller's cost and its margin (unit_price - unit_cost).
    list_unit_price = models.DecimalField(
        _("list price per licence for the period"), max_digits=12, decimal_places=2
    )
    unit_cost = models.DecimalField(
        _("reseller cost per licence for the period"), max_digits=12, decimal_places=2
    )
    unit_margin = models.DecimalField(
        _("margin per licence for the period"), max_digits=12, decimal_places=2
    )
    # The charge's whole cost, rounded exactly as `amount` is; its margin is amount - cost.
    cost_amount = models.DecimalField(_("reseller cost"), max_digits=12, decimal_places=2)
    margin_amount = models.DecimalField(_("margin"), max_digits=12, decimal_places=2)
    # Per licence per month: what the period's prices came from.
    monthly_list_price = models.DecimalField(
        _("list price per licence per month"), max_digits=10, decimal_places=2
    )
    monthly_price = models.DecimalField(
        _("customer price per licence per month"), max_digits=10, decimal_places=2
    )
    monthly_cost = models.DecimalField(
        _("reseller cost per licence per month"), max_digits=10, decimal_places=2
    )
    price_source = models.CharField(_("price source"), max_length=16, choices=PriceSource.choices)
    # The rows the cost and the price came from (none: no such row applied). PROTECT: a row
    # a charge was priced from stays.
    tier = models.ForeignKey(
        Tier,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("tier"),
    )
    tier_discount = models.ForeignKey(
        TierDiscount,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("tier discount"),
    )
    reseller_discount = models.ForeignKey(
        ResellerDiscount,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("reseller discount"),
    )
    price_rule = models.ForeignKey(
        PriceRule,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("price book entry"),
    )
    customer_price = models.ForeignKey(
        CustomerPrice,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("special customer price"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    invoiced_at = models.DateTimeField(_("invoiced"), null=True, blank=True)

    class Meta:
        verbose_name = _("charge")
        verbose_name_plural = _("charges")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["customer", "invoiced_at"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount__gte=0), name="charge_amount_not_negative"
            ),
            models.CheckConstraint(
                condition=models.Q(period_start__lt=models.F("period_end")),
                name="charge_period_not_empty",
            ),
            # The renewal job charges each period once, however often it runs.
            models.UniqueConstraint(
                fields=["subscription", "period_start"],
                condition=models.Q(kind="period"),
                name="charge_one_per_period",
            ),
            models.CheckConstraint(
                condition=models.Q(cost_amount__gte=0, unit_cost__gte=0, monthly_cost__gte=0),
                name="charge_cost_not_negative",
            ),
            # The margin is what is left of the amount after the cost, to the cent (within
            # half a cent: core.money.HALF_CENT).
            models.CheckConstraint(
                condition=models.Q(
                    margin_amount__gt=models.F("amount") - models.F("cost_amount") - HALF_CENT,
                    margin_amount__lt=models.F("amount") - models.F("cost_amount") + HALF_CENT,
                )
                & models.Q(
                    unit_margin__gt=models.F("unit_price") - models.F("unit_cost") - HALF_CENT,
                    unit_margin__lt=models.F("unit_price") - models.F("unit_cost") + HALF_CENT,
                ),
                name="charge_margin_is_amount_less_cost",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.description}: {self.amount} {self.currency}"


class Order(models.Model):
    """One submitted order form. Its one-time key makes a double submit a single order."""

    class Kind(models.TextChoices):
        PURCHASE = "purchase", _("Purchase")
        ADD = "add", _("Add licences")
        REMOVE = "remove", _("Remove licences")

    public_id = PublicIdField()
    reference = models.CharField(_("order reference"), max_length=16, unique=True)
    key = models.CharField(_("form key"), max_length=64, unique=True)
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="orders", verbose_name=_("customer")
    )
    subscription = models.ForeignKey(
        Subscription,
        on_delete=models.PROTECT,
        related_name="orders",
        verbose_name=_("subscription"),
    )
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    licences_before = models.PositiveIntegerField(_("licences before"))
    licences_after = models.PositiveIntegerField(_("licences after"))
    amount = models.DecimalField(_("due now"), max_digits=12, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3, choices=Currency.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("ordered"), auto_now_add=True)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.reference
