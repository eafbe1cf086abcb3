"""The reseller's commission statements (models added with their own migrations).

The margins themselves are not stored here: they are read from the charges' snapshots
(subscriptions.models.Charge) by commissions.margins.

A `Statement` is a self-billing invoice (EU VAT directive 2006/112/EC, art. 224): the vendor
issues it on the reseller's behalf for the commission the reseller earned in a month, one per
reseller and currency, numbered in its own gapless series SB-YYYY-NNNNNN. The reseller is the
seller on it, the vendor the buyer. Once issued it never changes (model guard here, a trigger on
PostgreSQL: commissions/immutability.py); a correction is a negative statement in the same
series. Whether it was paid is told by its `Payout`s, never by the document.
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from billing.models import Invoice
from core.ids import PublicIdField
from core.immutability import IssuedDocument, IssuedDocumentLine
from core.languages import language_choices
from core.money import HALF_CENT
from resellers.models import Currency, Reseller


class IssuedStatementChanged(Exception):
    """An issued statement (or one of its lines) was about to change; issue a correction."""

    def __init__(self, number: str, field: str) -> None:
        super().__init__(f"{number}: issued statements cannot change ({field})")


class Statement(IssuedDocument):
    """A monthly self-billing commission statement (SB-YYYY-NNNNNN), or a correction of one."""

    class Kind(models.TextChoices):
        STATEMENT = "statement", _("Commission statement")
        CORRECTION = "correction", _("Correction")

    # The statement's VAT, by the reseller's situation (commissions.statements decides).
    VatTreatment = Invoice.VatTreatment

    # Written once, when the statement is issued; the model and the trigger refuse any later
    # change (core.immutability).
    Changed = IssuedStatementChanged
    IMMUTABLE_FIELDS = (
        "public_id",
        "kind",
        "number",
        "corrects",
        "reseller",
        "currency",
        "language",
        "period_start",
        "period_end",
        "issue_date",
        "seller",
        "buyer",
        "vat_treatment",
        "vat_rate",
        "subtotal",
        "vat_amount",
        "total",
        "issued_at",
        "line_count",
        "replaces",
    )

    public_id = PublicIdField()
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices, default=Kind.STATEMENT)
    number = models.CharField(_("number"), max_length=20, unique=True)
    corrects = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="corrections",
        verbose_name=_("corrects"),
    )
    # The month's statement issued again after this one was taken back (statement_reissue).
    replaces = models.OneToOneField(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="replacement",
        verbose_name=_("replaces"),
    )
    reseller = models.ForeignKey(
        Reseller, on_delete=models.PROTECT, related_name="statements", verbose_name=_("reseller")
    )
    currency = models.CharField(_("currency"), max_length=3, choices=Currency.choices)
    language = models.CharField(_("language"), max_length=8, choices=language_choices)
    # The month whose paid invoices earned the commission: its first day, and the first day of
    # the next month (exclusive, as every period in the project).
    period_start = models.DateField(_("month"))
    period_end = models.DateField(_("until (exclusive)"))
    issue_date = models.DateField(_("issue date"))
    # Snapshots as on the issue date: the seller is the reseller (name, address, country, VAT
    # id, email), the buyer the vendor (settings.VENDOR_*).
    seller = models.JSONField(_("seller"))
    buyer = models.JSONField(_("buyer"))
    vat_treatment = models.CharField(_("VAT"), max_length=16, choices=VatTreatment.choices)
    vat_rate = models.DecimalField(_("VAT rate (%)"), max_digits=5, decimal_places=2)
    # The net commission: the sum of the lines' margins.
    subtotal = models.DecimalField(_("commission"), max_digits=12, decimal_places=2)
    vat_amount = models.DecimalField(_("VAT"), max_digits=12, decimal_places=2)
    total = models.DecimalField(_("total"), max_digits=12, decimal_places=2)
    issued_at = models.DateTimeField(_("issued"), auto_now_add=True)
    line_count = models.PositiveIntegerField(_("lines"), default=0)
    # Written after issue: the rendered document, once (commissions.pdf).
    pdf = models.FileField(_("PDF"), upload_to="statements/%Y/", blank=True)
    pdf_sha256 = models.CharField(_("PDF SHA-256"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("commission statement")
        verbose_name_plural = _("commission statements")
        ordering = ["-period_start", "-number"]
        indexes = [
            models.Index(fields=["reseller", "-period_start"], name="statement_reseller_month"),
        ]
        constraints = [
            # One statement per reseller, currency and month: the monthly job may run twice, or
            # twice at once, and issues it once. Staff may issue a month again once its
            # statement was taken back (a replacement, one per statement: replaces is unique).
            models.UniqueConstraint(
                fields=["reseller", "currency", "period_start"],
                condition=models.Q(kind="statement", replaces__isnull=True),
                name="statement_one_per_month",
            ),
            models.CheckConstraint(
                condition=models.Q(
                    total__gt=models.F("subtotal") + models.F("vat_amount") - HALF_CENT,
                    total__lt=models.F("subtotal") + models.F("vat_amount") + HALF_CENT,
                ),
                name="statement_total_reconciles",
            ),
            models.CheckConstraint(
                condition=models.Q(kind="statement", corrects__isnull=True)
                | models.Q(kind="correction", corrects__isnull=False),
                name="statement_correction_corrects_one",
            ),
            models.CheckConstraint(
                condition=models.Q(period_end__gt=models.F("period_start")),
                name="statement_period_order",
            ),
        ]

    def __str__(self) -> str:
        return self.number


class StatementLine(IssuedDocumentLine):
    """One paid invoice (or credit note, negative) and the margin it earned the reseller."""

    DOCUMENT_FIELD = "statement"

    statement = models.ForeignKey(
        Statement, on_delete=models.PROTECT, related_name="lines", verbose_name=_("statement")
    )
    position = models.PositiveIntegerField(_("position"))
    invoice = models.ForeignKey(
        Invoice,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("invoice"),
    )
    # Snapshots, as the statement prints them.
    invoice_number = models.CharField(_("invoice number"), max_length=20)
    customer_name = models.CharField(_("customer"), max_length=255)
    invoice_date = models.DateField(_("invoice date"))
    net = models.DecimalField(_("net paid"), max_digits=12, decimal_places=2)
    margin = models.DecimalField(_("margin"), max_digits=12, decimal_places=2)

    class Meta:
        verbose_name = _("statement line")
        verbose_name_plural = _("statement lines")
        ordering = ["statement", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["statement", "position"], name="statementline_position"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.statement_id}/{self.position}: {self.invoice_number}"


class Payout(models.Model):
    """Money the vendor paid the reseller for a statement, recorded by staff. A statement is
    paid once its payouts add up to its total; the issued document itself never says so."""

    class Method(models.TextChoices):
        BANK_TRANSFER = "bank_transfer", _("Bank transfer")
        MANUAL = "manual", _("Manual")

    statement = models.ForeignKey(
        Statement, on_delete=models.PROTECT, related_name="payouts", verbose_name=_("statement")
    )
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    paid_on = models.DateField(_("paid on"))
    method = models.CharField(_("method"), max_length=16, choices=Method.choices)
    reference = models.CharField(_("reference"), max_length=80, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("recorded by"),
    )
    created_at = models.DateTimeField(_("recorded"), auto_now_add=True)

    class Meta:
        verbose_name = _("payout")
        verbose_name_plural = _("payouts")
        ordering = ["statement", "paid_on", "pk"]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="payout_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.statement_id}: {self.amount} ({self.paid_on})"
