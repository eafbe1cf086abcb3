"""Invoices, credit notes, VAT rates, payment cards and Stripe events.

The vendor issues every invoice to the customer organisation; the reseller is kept on it so
the reseller's Invoices page can list it (none on what a customer that revoked its reseller's
access is invoiced for since: customers.models.Customer.reseller_serving). An issued document
never changes (model guard here, a trigger on PostgreSQL): only its payment state and its
rendered PDF are written afterwards.
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from django_countries.fields import CountryField

from core.ids import PublicIdField
from core.immutability import IssuedDocument, IssuedDocumentLine
from core.languages import language_choices
from core.money import HALF_CENT
from core.tokens import OneTimeToken
from customers.models import Customer
from resellers.models import Currency, Reseller
from subscriptions.models import Charge, Payer, Subscription


class VatRate(models.Model):
    """The standard VAT rate of an EU country from a date on; staff keep this table current."""

    country = CountryField(_("country"))
    rate = models.DecimalField(_("rate (%)"), max_digits=5, decimal_places=2)
    valid_from = models.DateField(_("valid from"))

    class Meta:
        verbose_name = _("VAT rate")
        verbose_name_plural = _("VAT rates")
        ordering = ["country", "-valid_from"]
        constraints = [
            models.UniqueConstraint(fields=["country", "valid_from"], name="vatrate_one_per_day"),
            models.CheckConstraint(
                condition=models.Q(rate__gte=0) & models.Q(rate__lt=100), name="vatrate_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.country} {self.rate} % ({self.valid_from})"


class DocumentCounter(models.Model):
    """The last number given in one series and year. Locked (SELECT … FOR UPDATE) by the
    transaction that issues a document, so numbers are gapless: a rolled-back issue rolls its
    number back too."""

    series = models.CharField(_("series"), max_length=4)
    year = models.PositiveIntegerField(_("year"))
    last_number = models.PositiveIntegerField(_("last number"), default=0)

    class Meta:
        verbose_name = _("document counter")
        verbose_name_plural = _("document counters")
        constraints = [
            models.UniqueConstraint(fields=["series", "year"], name="documentcounter_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.series}-{self.year}: {self.last_number}"


class IssuedInvoiceChanged(Exception):
    """An issued invoice or credit note was about to change; issue a credit note instead."""

    def __init__(self, number: str, field: str) -> None:
        super().__init__(f"{number}: issued documents cannot change ({field})")


class Invoice(IssuedDocument):
    """An invoice (INV-YYYY-NNNNNN) or a credit note (CN-YYYY-NNNNNN) correcting one."""

    class Kind(models.TextChoices):
        INVOICE = "invoice", _("Invoice")
        CREDIT_NOTE = "credit_note", _("Credit note")

    class Status(models.TextChoices):
        OPEN = "open", pgettext_lazy("invoice status", "Open")
        PAID = "paid", _("Paid")
        PAYMENT_FAILED = "payment_failed", _("Payment failed")
        CREDITED = "credited", _("Credited")

    class VatTreatment(models.TextChoices):
        DOMESTIC = "domestic", _("Domestic VAT")
        REVERSE_CHARGE = "reverse_charge", _("Reverse charge")
        EU_CONSUMER = "eu_consumer", _("VAT of the buyer's country")
        OUTSIDE_EU = "outside_eu", _("Outside the scope of EU VAT")

    # Written once, when the document is issued; the model and the trigger refuse any later
    # change (core.immutability).
    Changed = IssuedInvoiceChanged
    IMMUTABLE_FIELDS = (
        "public_id",
        "kind",
        "number",
        "corrects",
        "customer",
        "reseller",
        "payer",
        "currency",
        "language",
        "issue_date",
        "due_date",
        "seller",
        "buyer",
        "vat_treatment",
        "vat_rate",
        "subtotal",
        "vat_amount",
        "total",
        "issued_at",
        "line_count",
    )

    public_id = PublicIdField()
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices, default=Kind.INVOICE)
    number = models.CharField(_("number"), max_length=20, unique=True)
    corrects = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="credit_notes",
        verbose_name=_("corrects"),
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="invoices", verbose_name=_("customer")
    )
    reseller = models.ForeignKey(
        Reseller,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="invoices",
        verbose_name=_("reseller"),
    )
    payer = models.CharField(_("paid with"), max_length=16, choices=Payer.choices)
    currency = models.CharField(_("currency"), max_length=3, choices=Currency.choices)
    language = models.CharField(_("language"), max_length=8, choices=language_choices)
    issue_date = models.DateField(_("issue date"))
    due_date = models.DateField(_("due date"))
    # Snapshots: the parties as they were on the issue date (name, address, country, VAT id).
    seller = models.JSONField(_("seller"))
    buyer = models.JSONField(_("buyer"))
    vat_treatment = models.CharField(_("VAT"), max_length=16, choices=VatTreatment.choices)
    vat_rate = models.DecimalField(_("VAT rate (%)"), max_digits=5, decimal_places=2)
    subtotal = models.DecimalField(_("subtotal"), max_digits=12, decimal_places=2)
    vat_amount = models.DecimalField(_("VAT"), max_digits=12, decimal_places=2)
    total = models.DecimalField(_("total"), max_digits=12, decimal_places=2)
    issued_at = models.DateTimeField(_("issued"), auto_now_add=True)
    # Written after issue: payment and the rendered document.
    status = models.CharField(
        _("payment status"), max_length=16, choices=Status.choices, default=Status.OPEN
    )
    paid_at = models.DateTimeField(_("paid"), null=True, blank=True)
    payment_attempts = models.PositiveSmallIntegerField(_("payment attempts"), default=0)
    next_payment_attempt = models.DateField(_("next payment attempt"), null=True, blank=True)
    # When a card charge was last queued by the sweeper, whose task was lost (core.sweeper).
    payment_queued_at = models.DateTimeField(_("charge queued"), null=True, blank=True)
    pdf = models.FileField(_("PDF"), upload_to="invoices/%Y/", blank=True)
    pdf_sha256 = models.CharField(_("PDF SHA-256"), max_length=64, blank=True)
    # The PDF's delivery, recorded so that nothing is sent twice and nothing is left unsent:
    # when the "invoice issued" email was queued, how often rendering was tried, its last
    # error, and when staff were told that it fails for good.
    pdf_emailed_at = models.DateTimeField(_("PDF emailed"), null=True, blank=True)
    # When its render was last queued (at issue, then by the sweeper): one still without a PDF
    # WORK_REQUEUE_AFTER later is queued again (core.sweeper).
    pdf_queued_at = models.DateTimeField(_("PDF render queued"), null=True, blank=True)
    pdf_attempts = models.PositiveSmallIntegerField(_("PDF render attempts"), default=0)
    pdf_error = models.TextField(_("PDF render error"), blank=True)
    pdf_failure_reported_at = models.DateTimeField(
        _("PDF failure reported to staff"), null=True, blank=True
    )
    # How many lines the document was issued with (fixed at issue): no line is added later.
    line_count = models.PositiveSmallIntegerField(_("lines"), default=0)

    class Meta:
        verbose_name = _("invoice")
        verbose_name_plural = _("invoices")
        ordering = ["-issue_date", "-number"]
        indexes = [
            # The Invoices page's keyset pages: (issue date, id) after the reseller, so that a
            # page seeks even among the thousands a billing run issues on one day.
            models.Index(fields=["reseller", "issue_date", "id"], name="invoice_reseller_page"),
            models.Index(fields=["customer", "-issue_date"]),
            models.Index(fields=["status", "due_date"]),
            # The sweeper's and the health count's "issued, still without a PDF": few rows.
            models.Index(
                fields=["issued_at"], condition=models.Q(pdf_sha256=""), name="invoice_pdf_missing"
            ),
        ]
        constraints = [
            # To the cent. As "within half a cent" rather than "=": SQLite (the demo) adds
            # decimals as floats; on PostgreSQL's numeric(12, 2) the two mean the same.
            models.CheckConstraint(
                condition=models.Q(
                    total__gt=models.F("subtotal") + models.F("vat_amount") - HALF_CENT,
                    total__lt=models.F("subtotal") + models.F("vat_amount") + HALF_CENT,
                ),
                name="invoice_total_reconciles",
            ),
            models.CheckConstraint(
                condition=models.Q(kind="invoice", corrects__isnull=True)
                | models.Q(kind="credit_note", corrects__isnull=False),
                name="invoice_credit_note_corrects_one",
            ),
        ]

    def __str__(self) -> str:
        return self.number


class InvoiceLine(IssuedDocumentLine):
    """One line: a charge of a subscription (or, on a credit note, the amount it corrects)."""

    DOCUMENT_FIELD = "invoice"

    invoice = models.ForeignKey(
        Invoice, on_delete=models.PROTECT, related_name="lines", verbose_name=_("invoice")
    )
    position = models.PositiveSmallIntegerField(_("position"))
    charge = models.OneToOneField(
        Charge,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="invoice_line",
        verbose_name=_("charge"),
    )
    subscription = models.ForeignKey(
        Subscription,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("subscription"),
    )
    description = models.CharField(_("description"), max_length=255)
    period_start = models.DateField(_("from"), null=True, blank=True)
    period_end = models.DateField(_("until (exclusive)"), null=True, blank=True)
    licences = models.PositiveIntegerField(_("licences"), null=True, blank=True)
    unit_price = models.DecimalField(_("unit price"), max_digits=12, decimal_places=2)
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)

    class Meta:
        verbose_name = _("invoice line")
        verbose_name_plural = _("invoice lines")
        ordering = ["invoice", "position"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "position"], name="invoiceline_position"),
        ]

    def __str__(self) -> str:
        return f"{self.invoice_id}/{self.position}: {self.description}"


class PaymentCard(models.Model):
    """A saved card (a Stripe PaymentMethod) of a reseller or of a customer. Only what is
    needed to show it is kept: brand, last four digits, expiry."""

    reseller = models.ForeignKey(
        Reseller,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="cards",
        verbose_name=_("reseller"),
    )
    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="cards",
        verbose_name=_("customer"),
    )
    gateway = models.CharField(_("gateway"), max_length=16, default="stripe")
    gateway_customer_id = models.CharField(_("gateway customer"), max_length=64)
    gateway_payment_method_id = models.CharField(_("payment method"), max_length=64, unique=True)
    brand = models.CharField(_("brand"), max_length=20)
    last4 = models.CharField(_("last four digits"), max_length=4)
    exp_month = models.PositiveSmallIntegerField(_("expiry month"))
    exp_year = models.PositiveSmallIntegerField(_("expiry year"))
    is_default = models.BooleanField(_("default"), default=True)
    created_at = models.DateTimeField(_("added"), auto_now_add=True)

    class Meta:
        verbose_name = _("payment card")
        verbose_name_plural = _("payment cards")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(reseller__isnull=True) ^ models.Q(customer__isnull=True),
                name="paymentcard_one_owner",
            ),
            models.UniqueConstraint(
                fields=["reseller"],
                condition=models.Q(is_default=True, reseller__isnull=False),
                name="paymentcard_one_default_per_reseller",
            ),
            models.UniqueConstraint(
                fields=["customer"],
                condition=models.Q(is_default=True, customer__isnull=False),
                name="paymentcard_one_default_per_customer",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.brand} •••• {self.last4}"


class GatewayCustomer(models.Model):
    """The gateway's own customer record (a Stripe Customer) of a reseller or a customer: the
    record its cards are saved to, kept before any card exists so a second card setup reuses it."""

    reseller = models.ForeignKey(
        Reseller,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("reseller"),
    )
    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("customer"),
    )
    gateway = models.CharField(_("gateway"), max_length=16, default="stripe")
    gateway_customer_id = models.CharField(_("gateway customer"), max_length=64, unique=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("gateway customer")
        verbose_name_plural = _("gateway customers")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(reseller__isnull=True) ^ models.Q(customer__isnull=True),
                name="gatewaycustomer_one_owner",
            ),
            models.UniqueConstraint(
                fields=["gateway", "reseller"],
                condition=models.Q(reseller__isnull=False),
                name="gatewaycustomer_one_per_reseller",
            ),
            models.UniqueConstraint(
                fields=["gateway", "customer"],
                condition=models.Q(customer__isnull=False),
                name="gatewaycustomer_one_per_customer",
            ),
        ]

    def __str__(self) -> str:
        return self.gateway_customer_id


class CustomerCardConsent(OneTimeToken):
    """The link a customer follows to agree that its card pays a subscription (seed 003's
    "Use customer card?"); until it agrees, the reseller's card stays in charge."""

    public_id = PublicIdField()
    subscription = models.ForeignKey(
        Subscription,
        on_delete=models.CASCADE,
        related_name="card_consents",
        verbose_name=_("subscription"),
    )
    email = models.EmailField(_("email"))
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("requested by"),
    )
    created_at = models.DateTimeField(_("requested"), auto_now_add=True)

    class Meta:
        verbose_name = _("customer card consent")
        verbose_name_plural = _("customer card consents")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.subscription} → {self.email}"


class Payment(models.Model):
    """One attempt to collect an invoice, off-session, with an idempotency key derived from
    the invoice number and the attempt."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    invoice = models.ForeignKey(
        Invoice, on_delete=models.PROTECT, related_name="payments", verbose_name=_("invoice")
    )
    attempt = models.PositiveSmallIntegerField(_("attempt"))
    gateway = models.CharField(_("gateway"), max_length=16)
    idempotency_key = models.CharField(_("idempotency key"), max_length=80, unique=True)
    gateway_reference = models.CharField(_("gateway reference"), max_length=80, blank=True)
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3, choices=Currency.choices)
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.PENDING
    )
    error = models.CharField(_("error"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    # Who recorded a payment by hand (staff, manual gateway); None for the gateway's.
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("recorded by"),
    )
    # The card charged, as its owner knows it ("Visa •••• 4242"): the receipt names this one,
    # even after the card on file changed. Empty for a bank transfer.
    card_label = models.CharField(_("card"), max_length=40, blank=True)
    # When the payer's receipt was queued (once per payment).
    receipt_emailed_at = models.DateTimeField(_("receipt emailed"), null=True, blank=True)

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "attempt"], name="payment_attempt_once"),
        ]

    def __str__(self) -> str:
        return f"{self.invoice} #{self.attempt}: {self.status}"


class Refund(models.Model):
    """Money owed back to the payer: a credit note on an invoice already paid. Created in the
    transaction that makes the invoice overpaid (the credit note, or a payment that succeeded
    after it), for the amount overpaid. By card it is refunded through the gateway with an
    idempotency key (never twice); paid by transfer, staff refund it and record it here."""

    class Method(models.TextChoices):
        CARD = "card", _("Refund to the card")
        TRANSFER = "transfer", _("Bank transfer")

    class Status(models.TextChoices):
        PENDING = "pending", _("To be refunded")
        SUCCEEDED = "succeeded", _("Refunded")
        FAILED = "failed", _("Refund failed")

    public_id = PublicIdField()
    invoice = models.ForeignKey(
        Invoice, on_delete=models.PROTECT, related_name="refunds", verbose_name=_("invoice")
    )
    credit_note = models.ForeignKey(
        Invoice,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="credit_note_refunds",
        verbose_name=_("credit note"),
    )
    payment = models.ForeignKey(
        Payment,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="refunds",
        verbose_name=_("payment"),
    )
    method = models.CharField(_("method"), max_length=12, choices=Method.choices)
    gateway = models.CharField(_("gateway"), max_length=16)
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3, choices=Currency.choices)
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.PENDING
    )
    idempotency_key = models.CharField(_("idempotency key"), max_length=80, unique=True)
    gateway_reference = models.CharField(_("gateway reference"), max_length=80, blank=True)
    error = models.CharField(_("error"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    refunded_at = models.DateTimeField(_("refunded"), null=True, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("recorded by"),
    )

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="refund_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.idempotency_key}: {self.amount} {self.currency} ({self.status})"


class BillingHold(models.Model):
    """A customer whose charges the billing run left for a later run, and why (for staff):
    its invoice could not be issued (e.g. no country, so no valid e-invoice). Open until a
    run issues the customer's invoice."""

    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        related_name="billing_holds",
        verbose_name=_("customer"),
    )
    reason = models.CharField(_("reason"), max_length=500)
    first_seen_on = models.DateField(_("first held on"))
    last_seen_on = models.DateField(_("last held on"))
    resolved_on = models.DateField(_("resolved on"), null=True, blank=True)

    class Meta:
        verbose_name = _("billing hold")
        verbose_name_plural = _("billing holds")
        ordering = ["-last_seen_on"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer"],
                condition=models.Q(resolved_on__isnull=True),
                name="billinghold_one_open_per_customer",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer}: {self.reason}"


class StripeEvent(models.Model):
    """A webhook event, stored once by its id before it is processed (by a Celery task)."""

    event_id = models.CharField(_("event id"), max_length=80, unique=True)
    type = models.CharField(_("type"), max_length=80)
    payload = models.JSONField(_("payload"))
    created = models.DateTimeField(_("created at Stripe"))
    received_at = models.DateTimeField(_("received"), auto_now_add=True)
    processed_at = models.DateTimeField(_("processed"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("Stripe event")
        verbose_name_plural = _("Stripe events")
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"
