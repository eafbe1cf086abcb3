"""Staff console for billing. Issued invoices and credit notes are read-only here (no add, change
or delete: the billing run issues them, credit notes correct them); staff act on them with the
actions Issue credit note, Mark paid (manual gateway) and Render or restore the PDF; refunds
sent by transfer are recorded with Mark refunded. VAT rates are the one billing table staff
edit. Cards, payments, counters and Stripe events are for reading."""

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext, pgettext_lazy
from django.views.decorators.http import require_POST

from billing import selectors, services
from billing.models import (
    BillingHold,
    CustomerCardConsent,
    DocumentCounter,
    GatewayCustomer,
    Invoice,
    InvoiceLine,
    Payment,
    PaymentCard,
    Refund,
    StripeEvent,
    VatRate,
)
from billing.payments import selectors as payment_selectors
from billing.tasks import billing_run_daily, billing_run_left
from core.money import money_format
from core.selectors import BacklogLine, backlog_line
from customers.admin import ResellerFilter

# Issuing a credit note or marking paid writes audit rows per invoice in the request.
ACT_AT_ONCE = 100


class ReadOnlyAdmin(admin.ModelAdmin):
    """Browse only: rows are written by services and webhooks, never by hand."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [str(name) for name in self.fields or []]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class OverdueFilter(admin.SimpleListFilter):
    title = gettext_lazy("overdue")
    parameter_name = "overdue"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", gettext_lazy("Overdue: unpaid after the due date"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> QuerySet[Invoice]:
        if self.value() == "yes":
            return queryset.filter(selectors.invoices_overdue_q(today=timezone.localdate()))
        return queryset


class PdfProblemFilter(admin.SimpleListFilter):
    """Documents still without their PDF: missing WORK_REQUEUE_AFTER (2 minutes) after their
    issue and their last render was queued (billing.selectors.invoices_pdf_missing_q: the
    sweeper queues them again), or failed for good (staff were emailed; fix the cause, then use
    Render or restore the PDF)."""

    title = gettext_lazy("PDF: missing / failed")
    parameter_name = "pdf"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [
            ("missing", gettext_lazy("Missing a few minutes after issue")),
            ("failed", gettext_lazy("Failed for good")),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> QuerySet[Invoice]:
        if self.value() == "missing":
            return queryset.filter(selectors.invoices_pdf_missing_q(now=timezone.now()))
        if self.value() == "failed":
            return queryset.filter(selectors.invoices_pdf_failed_q())
        return queryset


class ChargeDueFilter(admin.SimpleListFilter):
    """Card invoices whose charge is overdue: what the sweeper queues again (billing.payments.
    selectors.invoices_charge_overdue)."""

    title = gettext_lazy("card charge")
    parameter_name = "charge"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("overdue", gettext_lazy("Overdue: its task was lost"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> QuerySet[Invoice]:
        if self.value() == "overdue":
            overdue = payment_selectors.invoices_charge_overdue(now=timezone.now())
            return queryset.filter(pk__in=overdue.values("pk"))
        return queryset


class InvoiceLineInline(ReadOnlyInline):
    model = InvoiceLine
    fields = [
        "position",
        "description",
        "period_start",
        "period_end",
        "licences",
        "unit_price",
        "amount",
    ]
    ordering = ["position"]


class CreditNoteInline(ReadOnlyInline):
    model = Invoice
    fk_name = "corrects"
    verbose_name = gettext_lazy("credit note")
    verbose_name_plural = gettext_lazy("credit notes")
    fields = ["number", "issue_date", "subtotal", "vat_amount", "total"]
    show_change_link = True


class PaymentInline(ReadOnlyInline):
    model = Payment
    fields = [
        "attempt",
        "created_at",
        "gateway",
        "amount",
        "currency",
        "status",
        "error",
        "recorded_by",
    ]
    ordering = ["attempt"]


class RefundInline(ReadOnlyInline):
    model = Refund
    fk_name = "invoice"
    fields = [
        "idempotency_key",
        "created_at",
        "credit_note",
        "method",
        "amount",
        "currency",
        "status",
        "error",
        "refunded_at",
        "recorded_by",
    ]
    ordering = ["created_at"]
    show_change_link = True


class CreditNoteForm(forms.Form):
    """The intermediate page of the action Issue credit note."""

    reason = forms.CharField(
        label=gettext_lazy("Reason"),
        max_length=200,
        help_text=gettext_lazy("Recorded in the audit log; printed on a partial credit note."),
    )
    amount = forms.DecimalField(
        label=gettext_lazy("Amount to credit, before VAT"),
        required=False,
        min_value=Decimal("0.01"),
        decimal_places=2,
        help_text=gettext_lazy(
            "Leave empty to credit everything not credited yet; VAT is added at the invoice's rate."
        ),
    )


def _party(snapshot: dict[str, Any]) -> str:
    return format_html_join(
        "",
        "<div><strong>{}</strong>: {}</div>",
        ((key, value) for key, value in snapshot.items() if value),
    )


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    list_display = [
        "number",
        "kind",
        "issue_date",
        "customer",
        "reseller",
        "payer",
        "total_display",
        "status",
        "due_date",
        "overdue",
    ]
    list_filter = [
        ResellerFilter,
        "status",
        "kind",
        OverdueFilter,
        PdfProblemFilter,
        ChargeDueFilter,
        "payer",
        "currency",
    ]
    search_fields = ["number", "customer__organisation", "customer__domain"]
    list_select_related = ["customer", "reseller"]
    show_full_result_count = False
    # Newest first by primary key: the primary key index serves it at any size.
    ordering = ["-id"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "number",
                    "kind",
                    "corrects",
                    "public_id",
                    "customer",
                    "reseller",
                    "payer",
                    "language",
                ]
            },
        ),
        (
            gettext_lazy("Dates"),
            {"fields": ["issue_date", "due_date", "issued_at"]},
        ),
        (
            gettext_lazy("Parties"),
            {"fields": ["seller_block", "buyer_block"]},
        ),
        (
            gettext_lazy("Amounts"),
            {
                "fields": [
                    "currency",
                    "vat_treatment",
                    "vat_rate",
                    "subtotal",
                    "vat_amount",
                    "total",
                ]
            },
        ),
        (
            gettext_lazy("Payment and document"),
            {
                "fields": [
                    "status",
                    "paid_at",
                    "payment_attempts",
                    "next_payment_attempt",
                    "pdf",
                    "pdf_sha256",
                ]
            },
        ),
    ]
    inlines = [InvoiceLineInline, CreditNoteInline, PaymentInline, RefundInline]
    actions = ["issue_credit_note", "mark_paid", "regenerate_pdf"]

    # Issued documents are read-only: the change page shows them, nothing saves or deletes.
    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [str(name) for fieldset in self.fieldsets or [] for name in fieldset[1]["fields"]]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_act_permission(self, request: HttpRequest) -> bool:
        """Staff who may change invoices may use the actions (the form itself saves nothing)."""
        return request.user.has_perm("billing.change_invoice")

    def get_urls(self) -> list[URLPattern]:
        invoice_now = self.admin_site.admin_view(require_POST(self.invoice_now_view))
        return [
            path("invoice-now/", invoice_now, name="billing_invoice_invoice_now"),
            *super().get_urls(),
        ]

    def invoice_now_view(self, request: HttpRequest) -> HttpResponse:
        """The "Billing health" box's button: today's billing run now rather than at its time
        (BILLING_RUN_AT) — for the demo, which has no scheduler, or when staff want charges
        invoiced at once. The same run as the nightly one: a customer invoiced today already
        gets its later charges on the next day's invoice (one invoice per customer a day)."""
        if not self.has_act_permission(request):
            raise PermissionDenied
        queued = billing_run_daily()
        if queued:
            messages.success(
                request,
                ngettext(
                    "%(count)d invoice queued to be issued.",
                    "%(count)d invoices queued to be issued.",
                    queued,
                )
                % {"count": queued},
            )
        else:
            messages.info(request, _("No charges are waiting to be invoiced today."))
        return redirect("admin:index")

    @admin.display(description=gettext_lazy("total"), ordering="total")
    def total_display(self, obj: Invoice) -> str:
        return money_format(obj.total, obj.currency)

    @admin.display(description=gettext_lazy("overdue"), boolean=True)
    def overdue(self, obj: Invoice) -> bool:
        return (
            obj.kind == Invoice.Kind.INVOICE
            and obj.status in selectors.UNPAID_STATUSES
            and obj.due_date < timezone.localdate()
        )

    @admin.display(description=gettext_lazy("seller"))
    def seller_block(self, obj: Invoice) -> str:
        return _party(obj.seller)

    @admin.display(description=gettext_lazy("buyer"))
    def buyer_block(self, obj: Invoice) -> str:
        return _party(obj.buyer)

    @admin.action(description=gettext_lazy("Issue a credit note"), permissions=["act"])
    def issue_credit_note(
        self, request: HttpRequest, queryset: QuerySet[Invoice]
    ) -> HttpResponse | None:
        invoices = list(queryset.select_related("customer", "reseller")[:2])
        if len(invoices) != 1:
            self.message_user(request, _("Select one invoice to credit at a time."), messages.ERROR)
            return None
        invoice = invoices[0]
        form = CreditNoteForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            try:
                note = services.credit_note_issue(
                    invoice=invoice,
                    reason=form.cleaned_data["reason"],
                    amount=form.cleaned_data["amount"],
                    by=request.user,  # type: ignore[arg-type]
                )
            except ValidationError as error:
                if hasattr(error, "error_dict"):
                    for field, errors in error.message_dict.items():
                        form.add_error(field if field in form.fields else None, errors)
                else:
                    form.add_error(None, error)
            else:
                url = reverse("admin:billing_invoice_change", args=[note.pk])
                self.message_user(
                    request,
                    format_html(
                        _("Credit note {number} issued for {invoice}."),
                        number=format_html('<a href="{}">{}</a>', url, note.number),
                        invoice=invoice.number,
                    ),
                    messages.SUCCESS,
                )
                return None
        context = {
            **self.admin_site.each_context(request),
            "title": _("Issue a credit note for %(number)s") % {"number": invoice.number},
            "opts": self.model._meta,
            "invoice": invoice,
            "total": money_format(invoice.total, invoice.currency),
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/billing/invoice/credit_note.html", context)

    @admin.action(
        description=gettext_lazy("Mark paid (bank transfer received)"), permissions=["act"]
    )
    def mark_paid(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> None:
        paid = 0
        for invoice in queryset.order_by("id")[:ACT_AT_ONCE]:
            try:
                services.invoice_mark_paid(invoice=invoice, by=request.user)  # type: ignore[arg-type]
            except ValidationError as error:
                self.message_user(request, " ".join(error.messages), messages.WARNING)
            else:
                paid += 1
        if paid:
            self.message_user(
                request,
                ngettext("%d invoice marked paid.", "%d invoices marked paid.", paid) % paid,
                messages.SUCCESS,
            )

    @admin.action(description=gettext_lazy("Render or restore the PDF"), permissions=["act"])
    def regenerate_pdf(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> None:
        asked = 0
        for invoice in queryset.order_by("id")[:ACT_AT_ONCE]:
            try:
                services.invoice_pdf_request(invoice=invoice)
            except ValidationError as error:
                self.message_user(request, " ".join(error.messages), messages.ERROR)
                return
            asked += 1
        self.message_user(
            request,
            ngettext(
                "The PDF of %d document will be made in a moment if it is missing; a damaged "
                "file is written back with the very bytes it was issued with.",
                "The PDFs of %d documents will be made in a moment if missing; a damaged "
                "file is written back with the very bytes it was issued with.",
                asked,
            )
            % asked,
            messages.SUCCESS,
        )


@admin.register(VatRate)
class VatRateAdmin(admin.ModelAdmin):
    list_display = ["country", "rate", "valid_from"]
    list_filter = ["valid_from"]
    search_fields = ["country"]
    ordering = ["country", "-valid_from"]


@admin.register(DocumentCounter)
class DocumentCounterAdmin(ReadOnlyAdmin):
    list_display = ["series", "year", "last_number"]
    ordering = ["series", "-year"]


class ProcessedFilter(admin.SimpleListFilter):
    title = gettext_lazy("processed")
    parameter_name = "processed"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [
            ("yes", gettext_lazy("Processed")),
            ("no", gettext_lazy("Not processed")),
            ("error", gettext_lazy("With an error")),
        ]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[StripeEvent]
    ) -> QuerySet[StripeEvent]:
        if self.value() == "yes":
            return queryset.filter(processed_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(processed_at__isnull=True)
        if self.value() == "error":
            return queryset.exclude(error="")
        return queryset


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    list_display = ["event_id", "type", "created", "received_at", "processed_at", "failed"]
    list_filter = [ProcessedFilter, "type"]
    search_fields = ["event_id", "type"]
    ordering = ["-id"]
    show_full_result_count = False
    fields = readonly_fields = (
        "event_id",
        "type",
        "created",
        "received_at",
        "processed_at",
        "error",
        "payload_pretty",
    )

    @admin.display(description=gettext_lazy("error"), boolean=True)
    def failed(self, obj: StripeEvent) -> bool:
        return bool(obj.error)

    @admin.display(description=gettext_lazy("payload"))
    def payload_pretty(self, obj: StripeEvent) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.payload, indent=2, sort_keys=True))


@admin.register(PaymentCard)
class PaymentCardAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "reseller", "customer", "exp_month", "exp_year", "is_default"]
    list_filter = ["is_default", "gateway", "brand"]
    search_fields = ["reseller__name", "customer__organisation", "last4"]
    list_select_related = ["reseller", "customer"]
    ordering = ["-id"]


class PaymentUnsettledFilter(admin.SimpleListFilter):
    """Card payment attempts unsettled and overdue: what the sweeper asks the gateway about
    again (billing.payments.selectors.payments_unsettled_overdue)."""

    title = gettext_lazy("unsettled")
    parameter_name = "unsettled"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("overdue", gettext_lazy("Overdue: no answer from the gateway"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Payment]) -> QuerySet[Payment]:
        if self.value() == "overdue":
            overdue = payment_selectors.payments_unsettled_overdue(now=timezone.now())
            return queryset.filter(pk__in=overdue.values("pk"))
        return queryset


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = ["invoice", "attempt", "gateway", "amount", "currency", "status", "created_at"]
    list_filter = [PaymentUnsettledFilter, "status", "gateway"]
    search_fields = ["invoice__number", "idempotency_key", "gateway_reference"]
    list_select_related = ["invoice"]
    ordering = ["-id"]
    show_full_result_count = False


class RefundOpenFilter(admin.SimpleListFilter):
    title = gettext_lazy("to do")
    parameter_name = "open"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", gettext_lazy("To be refunded or failed"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Refund]) -> QuerySet[Refund]:
        if self.value() == "yes":
            return queryset.filter(status__in=(Refund.Status.PENDING, Refund.Status.FAILED))
        return queryset


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    """Money owed back after a credit note on a paid invoice. Card refunds go through the
    gateway by themselves; staff send the others by bank transfer and record it here with the
    action (a card refund the gateway refused included)."""

    list_display = [
        "idempotency_key",
        "invoice",
        "credit_note",
        "method",
        "amount_display",
        "status",
        "created_at",
        "refunded_at",
    ]
    list_filter = [RefundOpenFilter, "status", "method", "currency"]
    search_fields = ["idempotency_key", "invoice__number", "gateway_reference"]
    list_select_related = ["invoice", "credit_note"]
    ordering = ["-id"]
    show_full_result_count = False
    actions = ["mark_refunded"]
    fields = readonly_fields = (
        "public_id",
        "invoice",
        "credit_note",
        "payment",
        "method",
        "gateway",
        "amount",
        "currency",
        "status",
        "idempotency_key",
        "gateway_reference",
        "error",
        "created_at",
        "refunded_at",
        "recorded_by",
    )

    def has_act_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("billing.change_invoice")

    @admin.display(description=gettext_lazy("amount"), ordering="amount")
    def amount_display(self, obj: Refund) -> str:
        return money_format(obj.amount, obj.currency)

    @admin.action(
        description=gettext_lazy("Mark refunded (bank transfer sent)"), permissions=["act"]
    )
    def mark_refunded(self, request: HttpRequest, queryset: QuerySet[Refund]) -> None:
        done = 0
        for refund in queryset.order_by("id")[:ACT_AT_ONCE]:
            try:
                services.refund_mark_refunded(refund=refund, by=request.user)  # type: ignore[arg-type]
            except ValidationError as error:
                self.message_user(
                    request,
                    f"{refund.idempotency_key}: {' '.join(error.messages)}",
                    messages.WARNING,
                )
            else:
                done += 1
        if done:
            self.message_user(
                request,
                ngettext("%d refund recorded.", "%d refunds recorded.", done) % done,
                messages.SUCCESS,
            )


@admin.register(CustomerCardConsent)
class CustomerCardConsentAdmin(ReadOnlyAdmin):
    list_display = ["subscription", "email", "created_at", "expires_at", "consumed_at"]
    search_fields = ["email"]
    list_select_related = ["subscription__customer", "subscription__plan__product"]
    ordering = ["-id"]
    # The token digest is never shown.
    exclude = ["token_hash"]


@admin.register(GatewayCustomer)
class GatewayCustomerAdmin(ReadOnlyAdmin):
    """Which Stripe Customer holds a reseller's or a customer's cards (for support: find the
    record in Stripe's dashboard)."""

    list_display = ["gateway_customer_id", "gateway", "reseller", "customer", "created_at"]
    list_filter = ["gateway"]
    search_fields = ["gateway_customer_id", "reseller__name", "customer__organisation"]
    list_select_related = ["reseller", "customer"]
    ordering = ["-id"]


class HoldStateFilter(admin.SimpleListFilter):
    title = gettext_lazy("state")
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [
            ("open", pgettext_lazy("billing hold state", "Open")),
            ("resolved", gettext_lazy("Resolved")),
        ]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[BillingHold]
    ) -> QuerySet[BillingHold]:
        if self.value() == "open":
            return queryset.filter(resolved_on__isnull=True)
        if self.value() == "resolved":
            return queryset.filter(resolved_on__isnull=False)
        return queryset


@admin.register(BillingHold)
class BillingHoldAdmin(ReadOnlyAdmin):
    """Customers whose charges the billing run left uninvoiced, and why (e.g. no country: no
    valid e-invoice could be made). Written by the run: it opens a hold, sees it again each day,
    and resolves it when it issues the customer's invoice. Staff fix the cause (the customer's
    details) and the next run does the rest."""

    list_display = [
        "customer",
        "reseller",
        "reason",
        "first_seen_on",
        "last_seen_on",
        "resolved_on",
    ]
    list_filter = [HoldStateFilter]
    search_fields = ["customer__organisation", "customer__domain", "reason"]
    list_select_related = ["customer__reseller"]
    ordering = ["-last_seen_on", "-id"]

    @admin.display(description=gettext_lazy("reseller"), ordering="customer__reseller__name")
    def reseller(self, hold: BillingHold) -> str:
        return hold.customer.reseller.name


# The admin index's "Background work" box: billing's lines (core.selectors.work_backlog), each
# linked to the filter above that lists exactly its rows.


def _filtered(changelist: str, list_filter: type[admin.SimpleListFilter], value: str) -> str:
    return f"{reverse(changelist)}?{list_filter.parameter_name}={value}"


def pdfs_backlog(*, now: datetime) -> list[BacklogLine]:
    """Documents without their PDF (billing.tasks.invoice_pdfs_sweep renders them again)."""
    return [
        backlog_line(
            key="pdfs-missing",
            label=_("Invoices without a PDF"),
            rows=Invoice.objects.filter(selectors.invoices_pdf_missing_q(now=now)),
            oldest_field="issued_at",
            url=_filtered("admin:billing_invoice_changelist", PdfProblemFilter, "missing"),
        )
    ]


def payments_backlog(*, now: datetime) -> list[BacklogLine]:
    """Card charges due and attempts unanswered (billing.payments.tasks.payments_sweep)."""
    return [
        backlog_line(
            key="charges-overdue",
            label=_("Card charges due"),
            rows=payment_selectors.invoices_charge_overdue(now=now),
            oldest_field="issued_at",
            url=_filtered("admin:billing_invoice_changelist", ChargeDueFilter, "overdue"),
        ),
        backlog_line(
            key="payments-unsettled",
            label=_("Card payments without an answer"),
            rows=payment_selectors.payments_unsettled_overdue(now=now),
            oldest_field="created_at",
            url=_filtered("admin:billing_payment_changelist", PaymentUnsettledFilter, "overdue"),
        ),
    ]


def invoices_backlog(*, now: datetime) -> list[BacklogLine]:
    """Customers today's billing run left without their invoice (billing.tasks.billing_run_left:
    what billing_run_sweep issues), linked to the customers' admin list."""
    customer_ids = sorted(
        {customer_id for customer_id, _payer, _currency in billing_run_left(now=now)}
    )
    # No customer left: "0", an id no row has (the list is empty, as the count says).
    ids = ",".join(str(customer_id) for customer_id in customer_ids[:BACKLOG_LINK_IDS]) or "0"
    return [
        BacklogLine(
            key="invoices-left",
            label=_("Customers still to invoice today"),
            count=len(customer_ids),
            oldest=None,
            url=f"{reverse('admin:customers_customer_changelist')}?id__in={ids}",
        )
    ]


# A link lists at most this many customers (the next sweeps issue the rest).
BACKLOG_LINK_IDS = 100


def invoices_queued_text(count: int) -> str:
    return ngettext("%(count)d invoice", "%(count)d invoices", count) % {"count": count}


def pdfs_queued_text(count: int) -> str:
    return ngettext("%(count)d PDF", "%(count)d PDFs", count) % {"count": count}


def payments_queued_text(count: int) -> str:
    return ngettext("%(count)d payment task", "%(count)d payment tasks", count) % {"count": count}
