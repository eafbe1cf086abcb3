"""The vendor's overview of every reseller, for staff (the admin page "Vendor overview",
admin:vendor_overview, registered in insights.apps): the resellers by revenue, what they are
owed and overdue, the documents without a PDF, the failing webhooks and emails, and the
applications waiting for approval.

The figures come from the apps' own definitions: revenue from
billing.selectors.invoice_revenue_by_reseller (the Reports page's), MRR from
insights.snapshots.figures_live (the dashboard's), open and overdue from
billing.selectors.invoice_outstanding_by_reseller (the dashboard's), the PDFs from
billing.selectors.billing_health (the admin index's), the webhooks from webhooks.selectors' and
the emails from core.selectors' conditions, which the admin's list filters use too: each count
links to the admin's list of exactly its rows. Every section is a fixed number of grouped
queries, however many resellers; a section is read only for staff who may view its model.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.db.models import Count, Min, Q
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.models import Invoice
from billing.selectors import (
    UNPAID_STATUSES,
    BillingHealth,
    Outstanding,
    billing_health,
    invoice_outstanding_by_reseller,
    invoice_revenue_by_reseller,
)
from commissions.margins import month_start, next_month
from core.models import OutboundEmail
from core.selectors import emails_failed_q, emails_overdue_q
from customers.models import Customer
from insights.snapshots import Figures, figures_live
from resellers.models import Reseller
from subscriptions.periods import add_months
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.selectors import deliveries_failed_recently_q, deliveries_retrying_q

# Lines shown per table at most; the page says how many more there are.
TOP = 50
ZERO = Decimal("0.00")


def _changelist(model: type[Any], **params: str) -> str:
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    return f"{url}?{urlencode(params)}" if params else url


@dataclass(frozen=True)
class ResellerRef:
    pk: int
    public_id: str
    name: str
    currency: str
    status: str
    created_at: datetime

    @property
    def change_url(self) -> str:
        return reverse("admin:resellers_reseller_change", args=[self.pk])


def _resellers() -> dict[int, ResellerRef]:
    """Every reseller, by name: one query, shared by the sections."""
    return {
        row["pk"]: ResellerRef(**row)
        for row in Reseller.objects.order_by("name", "pk").values(
            "pk", "public_id", "name", "currency", "status", "created_at"
        )
    }


@dataclass(frozen=True)
class Top[T]:
    """The first TOP lines of a table, and how many more there are."""

    lines: list[T]
    more: int = 0

    @classmethod
    def of(cls, lines: list[T]) -> "Top[T]":
        return cls(lines=lines[:TOP], more=max(len(lines) - TOP, 0))


# 1. Resellers by revenue


@dataclass(frozen=True)
class Periods:
    """This month, and the twelve months up to and including it (starts included, end
    excluded)."""

    month_start: date
    year_start: date
    end: date

    @classmethod
    def of(cls, today: date) -> "Periods":
        start = month_start(today)
        year, month = add_months(start.year, start.month, -11)
        return cls(month_start=start, year_start=date(year, month, 1), end=next_month(start))


@dataclass(frozen=True)
class RevenueLine:
    """One reseller's figures in one currency."""

    reseller: ResellerRef
    currency: str
    month: Decimal
    year: Decimal
    mrr: Decimal
    customers: int  # active customers, in any currency
    month_url: str
    year_url: str
    customers_url: str


def resellers_by_revenue(
    *, resellers: dict[int, ResellerRef], periods: Periods
) -> Top[RevenueLine]:
    """Every active reseller, a line per currency it has revenue or MRR in (its own currency
    when neither), by currency and then by its revenue over the twelve months, largest first.
    Three queries."""
    active = {pk: ref for pk, ref in resellers.items() if ref.status == Reseller.Status.ACTIVE}
    revenue = invoice_revenue_by_reseller(
        reseller_ids=active,
        periods={
            "month": (periods.month_start, periods.end),
            "year": (periods.year_start, periods.end),
        },
    )
    figures = figures_live(reseller_ids=active)
    customers = dict(
        Customer.objects.filter(reseller_id__in=list(active), status=Customer.Status.ACTIVE)
        .order_by()
        .values("reseller_id")
        .annotate(count=Count("pk"))
        .values_list("reseller_id", "count")
    )
    keys = set(revenue) | {key for key, values in figures.items() if values.mrr}
    with_figures = {pk for pk, _currency in keys}
    keys |= {(pk, ref.currency) for pk, ref in active.items() if pk not in with_figures}
    lines = []
    for pk, currency in keys:
        ref = active[pk]
        nets = revenue.get((pk, currency), {})
        documents = {"reseller": ref.public_id, "currency__exact": currency}
        lines.append(
            RevenueLine(
                reseller=ref,
                currency=currency,
                month=nets.get("month", ZERO),
                year=nets.get("year", ZERO),
                mrr=figures.get((pk, currency), Figures()).mrr,
                customers=customers.get(pk, 0),
                month_url=_changelist(
                    Invoice,
                    **documents,
                    issue_date__gte=periods.month_start.isoformat(),
                    issue_date__lt=periods.end.isoformat(),
                ),
                year_url=_changelist(
                    Invoice,
                    **documents,
                    issue_date__gte=periods.year_start.isoformat(),
                    issue_date__lt=periods.end.isoformat(),
                ),
                customers_url=_changelist(
                    Customer, reseller=ref.public_id, status__exact=Customer.Status.ACTIVE
                ),
            )
        )
    lines.sort(
        key=lambda line: (
            line.currency,
            -line.year,
            line.reseller.name.casefold(),
            line.reseller.pk,
        )
    )
    return Top.of(lines)


# 2. Open and overdue by reseller


@dataclass(frozen=True)
class OutstandingLine:
    reseller: ResellerRef
    outstanding: Outstanding
    open_url: str
    overdue_url: str


def overdue_by_reseller(*, resellers: dict[int, ResellerRef], today: date) -> Top[OutstandingLine]:
    """Per reseller and currency with unpaid invoices, what is open and what of it overdue,
    by currency and then by the amount overdue, largest first. One query."""
    outstanding = invoice_outstanding_by_reseller(reseller_ids=resellers, today=today)
    lines = []
    for pk, amounts in outstanding.items():
        ref = resellers[pk]
        for amount in amounts:
            scope = {"reseller": ref.public_id, "currency__exact": amount.currency}
            lines.append(
                OutstandingLine(
                    reseller=ref,
                    outstanding=amount,
                    open_url=_changelist(
                        Invoice,
                        **scope,
                        kind__exact=Invoice.Kind.INVOICE,
                        status__in=",".join(UNPAID_STATUSES),
                    ),
                    overdue_url=_changelist(Invoice, **scope, overdue="yes"),
                )
            )
    lines.sort(
        key=lambda line: (
            line.outstanding.currency,
            -line.outstanding.overdue,
            -line.outstanding.open,
            line.reseller.name.casefold(),
            line.reseller.pk,
        )
    )
    return Top.of(lines)


# 4. Webhooks


@dataclass(frozen=True)
class WebhookLine:
    reseller: ResellerRef
    disabled_failing: int
    disabled_by_member: int
    retrying: int
    failed: int

    def _endpoints(self, reason: str) -> str:
        return _changelist(
            WebhookEndpoint, reseller=self.reseller.public_id, disabled_reason__exact=reason
        )

    def _deliveries(self, problem: str) -> str:
        return _changelist(WebhookDelivery, reseller=self.reseller.public_id, problem=problem)

    @property
    def disabled_failing_url(self) -> str:
        return self._endpoints(WebhookEndpoint.DisabledReason.FAILING)

    @property
    def disabled_by_member_url(self) -> str:
        return self._endpoints(WebhookEndpoint.DisabledReason.BY_MEMBER)

    @property
    def retrying_url(self) -> str:
        return self._deliveries("retrying")

    @property
    def failed_url(self) -> str:
        return self._deliveries("failed")


def webhook_problems(*, resellers: dict[int, ResellerRef], now: datetime) -> Top[WebhookLine]:
    """Per reseller with any: its endpoints disabled (after failing, or by a member), its
    deliveries failed and waiting to be tried again, and those given up in the last 7 days;
    the most disabled by failures and given up first. Two queries."""
    Reason = WebhookEndpoint.DisabledReason
    endpoints = {
        row["reseller_id"]: row
        for row in WebhookEndpoint.objects.filter(disabled_at__isnull=False)
        .order_by()
        .values("reseller_id")
        .annotate(
            failing=Count("pk", filter=Q(disabled_reason=Reason.FAILING)),
            member=Count("pk", filter=Q(disabled_reason=Reason.BY_MEMBER)),
        )
    }
    retrying, failed = deliveries_retrying_q(), deliveries_failed_recently_q(now=now)
    deliveries = {
        row["endpoint__reseller_id"]: row
        for row in WebhookDelivery.objects.filter(retrying | failed)
        .order_by()
        .values("endpoint__reseller_id")
        .annotate(retrying=Count("pk", filter=retrying), failed=Count("pk", filter=failed))
    }
    no_endpoints = {"failing": 0, "member": 0}
    no_deliveries = {"retrying": 0, "failed": 0}
    lines = [
        WebhookLine(
            reseller=resellers[pk],
            disabled_failing=endpoints.get(pk, no_endpoints)["failing"],
            disabled_by_member=endpoints.get(pk, no_endpoints)["member"],
            retrying=deliveries.get(pk, no_deliveries)["retrying"],
            failed=deliveries.get(pk, no_deliveries)["failed"],
        )
        for pk in set(endpoints) | set(deliveries)
    ]
    lines.sort(
        key=lambda line: (
            -line.disabled_failing,
            -line.failed,
            -line.retrying,
            -line.disabled_by_member,
            line.reseller.name.casefold(),
            line.reseller.pk,
        )
    )
    return Top.of(lines)


# 5. Emails


@dataclass(frozen=True)
class EmailLine:
    template: str  # the kind of email: its template's name
    failed: int
    overdue: int  # its task was lost, or its worker died mid-send (core.selectors)
    oldest: datetime

    def _emails(self, delivery: str) -> str:
        return _changelist(OutboundEmail, delivery=delivery, template__exact=self.template)

    @property
    def failed_url(self) -> str:
        return self._emails("failed")

    @property
    def overdue_url(self) -> str:
        return self._emails("overdue")


def email_problems(*, now: datetime) -> list[EmailLine]:
    """Per kind of email, those failed and those overdue (the admin's Delivery filter), by
    kind. One query."""
    failed, overdue = emails_failed_q(), emails_overdue_q(now=now)
    return [
        EmailLine(
            template=row["template"],
            failed=row["failed"],
            overdue=row["overdue"],
            oldest=row["oldest"],
        )
        for row in OutboundEmail.objects.filter(failed | overdue)
        .order_by()
        .values("template")
        .annotate(
            failed=Count("pk", filter=failed),
            overdue=Count("pk", filter=overdue),
            oldest=Min("created_at"),
        )
        .order_by("template")
    ]


# 6. Applications


def applications_waiting(*, resellers: dict[int, ResellerRef]) -> Top[ResellerRef]:
    """The resellers waiting for approval, the longest waiting first."""
    pending = [ref for ref in resellers.values() if ref.status == Reseller.Status.PENDING]
    return Top.of(sorted(pending, key=lambda ref: (ref.created_at, ref.pk)))


# The page


@dataclass
class VendorOverview:
    """What the staff user may see: a section is None without the view permission of its
    model."""

    today: date
    periods: Periods
    revenue: Top[RevenueLine] | None = None
    outstanding: Top[OutstandingLine] | None = None
    health: BillingHealth | None = None
    webhooks: Top[WebhookLine] | None = None
    emails: list[EmailLine] | None = None
    applications: Top[ResellerRef] | None = None
    links: dict[str, str] = field(default_factory=dict)


def vendor_overview(*, may: Iterable[str], now: datetime) -> VendorOverview:
    """The sections whose permission (app_label.view_model) is in `may`."""
    may = set(may)
    today = timezone.localdate(now)
    overview = VendorOverview(today=today, periods=Periods.of(today))
    invoices = "billing.view_invoice" in may
    resellers_seen = "resellers.view_reseller" in may
    webhooks_seen = bool({"webhooks.view_webhookendpoint", "webhooks.view_webhookdelivery"} & may)
    resellers = _resellers() if invoices or resellers_seen or webhooks_seen else {}
    if invoices and resellers_seen:
        overview.revenue = resellers_by_revenue(resellers=resellers, periods=overview.periods)
    if invoices:
        overview.outstanding = overdue_by_reseller(resellers=resellers, today=today)
        overview.health = billing_health(now=now)
    if webhooks_seen:
        overview.webhooks = webhook_problems(resellers=resellers, now=now)
    if "core.view_outboundemail" in may:
        overview.emails = email_problems(now=now)
    if resellers_seen:
        overview.applications = applications_waiting(resellers=resellers)
        overview.links["applications"] = _changelist(
            Reseller, status__exact=Reseller.Status.PENDING
        )
    return overview


PERMISSIONS = (
    "billing.view_invoice",
    "resellers.view_reseller",
    "customers.view_customer",
    "webhooks.view_webhookendpoint",
    "webhooks.view_webhookdelivery",
    "core.view_outboundemail",
)


def vendor_overview_page(request: HttpRequest) -> HttpResponse:
    """The admin's Vendor overview (staff with a second factor: AdminSite.admin_view)."""
    may = {perm for perm in PERMISSIONS if request.user.has_perm(perm)}
    context = {
        **admin.site.each_context(request),
        "title": _("Vendor overview"),
        "overview": vendor_overview(may=may, now=timezone.now()),
    }
    return TemplateResponse(request, "admin/vendor_overview.html", context)
