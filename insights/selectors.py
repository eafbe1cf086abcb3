"""The dashboard's reads: today's figures (live, kept in the cache under the reseller's
"insights" version and the day), twelve months of history from the daily snapshots, the
renewals desk, the overdue invoices and the recent activity."""

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.db.models import Count, Q, QuerySet
from django.urls import reverse
from django.utils.translation import get_language

from billing.selectors import (
    OVERDUE,
    invoice_flows,
    invoice_list,
    invoice_outstanding,
    invoices_with_balance,
)
from commissions.margins import month_start, previous_month
from core.audit_format import audit_object_labels
from core.versions import cache_usable, version_get
from insights.models import DailySnapshot
from insights.services import VERSION_NAME
from insights.snapshots import LEFT_STATUSES, Figures, figures_live
from resellers.models import AuditEvent, Reseller
from resellers.selectors import audit_list
from subscriptions.models import Plan, Subscription

# How long figures are kept at most, even when nothing the version follows changed (a product
# renamed by staff, a price rule reaching its date).
FIGURES_SECONDS = 300
# Bump when Dashboard or its parts change shape.
KEY_FORMAT = 7
CHART_MONTHS = 12
TRIAL_DAYS_AHEAD = 7
MRR_CHANGE_DAYS = 30
RENEWAL_WINDOWS = (30, 60, 90)
DESK_ROWS = 10
OVERDUE_ROWS = 8
ACTIVITY_LINES = 8
ZERO = Decimal("0.00")


@dataclass(frozen=True)
class MonthPoint:
    """One month of a chart: the figures at its end (today's for the current month) and the
    money of the month."""

    month: date
    mrr: Decimal
    margin: Decimal
    licences: int
    invoiced: Decimal
    paid: Decimal


@dataclass(frozen=True)
class CurrencyDashboard:
    currency: str
    mrr: Decimal
    margin: Decimal
    # MRR_CHANGE_DAYS ago, from that day's snapshot (None: no snapshot that far back).
    mrr_before: Decimal | None
    margin_before: Decimal | None
    licences: int
    subscriptions: int
    trials: int
    open: Decimal
    overdue: Decimal
    months: list[MonthPoint] = field(default_factory=list)

    @property
    def mrr_change(self) -> Decimal | None:
        return None if self.mrr_before is None else self.mrr - self.mrr_before

    @property
    def margin_change(self) -> Decimal | None:
        return None if self.margin_before is None else self.margin - self.margin_before


@dataclass(frozen=True)
class DeskRow:
    """A line of the renewals desk."""

    public_id: str
    customer_public_id: str
    organisation: str
    product: str
    plan_kind: str
    licences: int
    renewal_licences: int | None
    renewal_setting: str
    term_last_day: date
    # Its links, made when the row is (the rows are kept in the cache).
    customer_url: str
    subscription_url: str
    renewal_url: str

    @property
    def plan_label(self) -> str:
        return f"{self.product} — {Plan.Kind(self.plan_kind).label}"

    @property
    def renewal_label(self) -> str:
        return str(Subscription.RenewalSetting(self.renewal_setting).label)


@dataclass(frozen=True)
class OverdueRow:
    public_id: str
    number: str
    organisation: str
    balance: Decimal
    currency: str
    due_date: date


@dataclass(frozen=True)
class Dashboard:
    today: date
    currencies: list[CurrencyDashboard]
    trials_ending: int
    renewals: dict[int, int]  # {days ahead: annual terms ending within them}
    # {days ahead: the first DESK_ROWS of them, soonest first}
    desk: dict[int, list[DeskRow]]
    overdue: list[OverdueRow]  # the oldest OVERDUE_ROWS overdue invoices
    licences_by_month: list[tuple[date, int]]
    # What the figures are kept under in the cache ("" when they were counted afresh and not
    # kept): what the page's fragments built from them are kept under too.
    key: str = ""


def chart_months(today: date) -> list[date]:
    """The first days of the twelve months shown, the current one last."""
    months = [month_start(today)]
    while len(months) < CHART_MONTHS:
        months.insert(0, previous_month(months[0]))
    return months


def _history(
    reseller: Reseller, months: list[date], today: date
) -> dict[str, dict[date, dict[str, Any]]]:
    """{currency: {month: {mrr, margin, licences (at the month's last snapshot), invoiced,
    paid (the month's sums)}}} for the months before today's, from the snapshots."""
    history: dict[str, dict[date, dict[str, Any]]] = defaultdict(dict)
    rows = (
        DailySnapshot.objects.filter(reseller=reseller, day__gte=months[0], day__lt=today)
        .order_by("currency", "day")
        .values_list("currency", "day", "mrr", "margin", "licences", "invoiced", "paid")
    )
    for currency, day, mrr, margin, licences, invoiced, paid in rows:
        point = history[currency].setdefault(month_start(day), {"invoiced": ZERO, "paid": ZERO})
        point.update(mrr=mrr, margin=margin, licences=licences)
        point["invoiced"] += invoiced
        point["paid"] += paid
    return history


def _before(reseller: Reseller, day: date) -> dict[str, tuple[Decimal, Decimal]]:
    return {
        currency: (mrr, margin)
        for currency, mrr, margin in DailySnapshot.objects.filter(
            reseller=reseller, day=day
        ).values_list("currency", "mrr", "margin")
    }


def _trials_ending(reseller: Reseller, today: date) -> int:
    return trials_ending_list(reseller=reseller, today=today).count()


def trials_ending_list(*, reseller: Reseller, today: date) -> QuerySet[Subscription]:
    """The reseller's trials that end within TRIAL_DAYS_AHEAD days (as the trial reminder
    counts them), soonest first; not those of customers that left it (as MRR counts)."""
    return (
        Subscription.objects.filter(
            customer__reseller=reseller,
            status=Subscription.Status.TRIAL,
            term_end__gt=today,
            term_end__lte=today + timedelta(days=TRIAL_DAYS_AHEAD),
        )
        .exclude(customer__status__in=LEFT_STATUSES)
        .order_by("term_end", "id")
    )


def _renewal_q(today: date, days: int) -> Q:
    return Q(
        status=Subscription.Status.ACTIVE,
        plan__kind__in=[Plan.Kind.ANNUAL_MONTHLY, Plan.Kind.ANNUAL_YEARLY],
        term_end__gt=today,
        term_end__lte=today + timedelta(days=days),
    )


def renewals_due(*, reseller: Reseller, today: date, days: int) -> QuerySet[Subscription]:
    """The reseller's annual terms ending within `days` days, soonest first: the renewals
    desk."""
    return (
        Subscription.objects.filter(_renewal_q(today, days), customer__reseller=reseller)
        .exclude(customer__status__in=LEFT_STATUSES)
        .select_related("customer", "plan__product", "scheduled_plan")
        .order_by("term_end", "id")
    )


def _desk(reseller: Reseller, today: date) -> dict[int, list[DeskRow]]:
    rows = [
        DeskRow(
            public_id=subscription.public_id,
            customer_public_id=subscription.customer.public_id,
            organisation=subscription.customer.organisation,
            product=subscription.plan.product.name,
            plan_kind=subscription.plan.kind,
            licences=subscription.licences,
            renewal_licences=subscription.renewal_licences,
            renewal_setting=subscription.renewal_setting,
            term_last_day=subscription.term_last_day or today,
            customer_url=reverse("customers:detail", args=[subscription.customer.public_id]),
            subscription_url=reverse("subscriptions:detail", args=[subscription.public_id]),
            renewal_url=reverse("dashboard_renewal", args=[subscription.public_id]),
        )
        for subscription in renewals_due(reseller=reseller, today=today, days=max(RENEWAL_WINDOWS))[
            :DESK_ROWS
        ]
    ]
    return {
        days: [row for row in rows if row.term_last_day < today + timedelta(days=days)]
        for days in RENEWAL_WINDOWS
    }


def _renewal_counts(reseller: Reseller, today: date) -> dict[int, int]:
    counts = (
        Subscription.objects.filter(
            _renewal_q(today, max(RENEWAL_WINDOWS)), customer__reseller=reseller
        )
        .exclude(customer__status__in=LEFT_STATUSES)
        .aggregate(
            **{
                f"within_{days}": Count("id", filter=Q(term_end__lte=today + timedelta(days=days)))
                for days in RENEWAL_WINDOWS
            }
        )
    )
    return {days: counts[f"within_{days}"] for days in RENEWAL_WINDOWS}


def _compute(reseller: Reseller, today: date) -> Dashboard:
    months = chart_months(today)
    live = {
        currency: figures
        for (_r, currency), figures in figures_live(reseller_ids=[reseller.pk]).items()
    }
    outstanding = {row.currency: row for row in invoice_outstanding(reseller=reseller, today=today)}
    history = _history(reseller, months, today)
    this_month = invoice_flows(reseller_ids=[reseller.pk], start=months[-1], end=today)
    before = _before(reseller, today - timedelta(days=MRR_CHANGE_DAYS))
    currencies = sorted(set(live) | set(outstanding) | set(history))
    dashboards = []
    licences_by_month: dict[date, int] = dict.fromkeys(months, 0)
    for currency in currencies:
        figures = live.get(currency, Figures())
        points = []
        for month in months:
            if month == months[-1]:
                invoiced = sum(
                    (v[0] for (_r, c, _d), v in this_month.items() if c == currency), ZERO
                )
                paid = sum((v[1] for (_r, c, _d), v in this_month.items() if c == currency), ZERO)
                point = MonthPoint(
                    month, figures.mrr, figures.margin, figures.licences, invoiced, paid
                )
            else:
                past = history.get(currency, {}).get(month, {})
                point = MonthPoint(
                    month,
                    past.get("mrr", ZERO),
                    past.get("margin", ZERO),
                    past.get("licences", 0),
                    past.get("invoiced", ZERO),
                    past.get("paid", ZERO),
                )
            licences_by_month[month] += point.licences
            points.append(point)
        owed = outstanding.get(currency)
        mrr_before = before.get(currency)
        dashboards.append(
            CurrencyDashboard(
                currency=currency,
                mrr=figures.mrr,
                margin=figures.margin,
                mrr_before=mrr_before[0] if mrr_before else None,
                margin_before=mrr_before[1] if mrr_before else None,
                licences=figures.licences,
                subscriptions=figures.subscriptions,
                trials=figures.trials,
                open=owed.open if owed else ZERO,
                overdue=owed.overdue if owed else ZERO,
                months=points,
            )
        )
    # The currency bringing in the most first.
    dashboards.sort(key=lambda entry: (-entry.mrr, entry.currency))
    return Dashboard(
        today=today,
        currencies=dashboards,
        trials_ending=_trials_ending(reseller, today),
        renewals=_renewal_counts(reseller, today),
        desk=_desk(reseller, today),
        overdue=_overdue(reseller, today),
        licences_by_month=sorted(licences_by_month.items()),
    )


def dashboard_figures(*, reseller: Reseller, today: date) -> Dashboard:
    """Today's figures and the charts' months, counted at most once per version of what they
    come from (a saved subscription, invoice or payment of the reseller moves it on; see
    insights.apps), per day, and per FIGURES_SECONDS."""
    version = version_get(name=VERSION_NAME, reseller=reseller)
    # KEY_FORMAT: a Dashboard pickled by older code is never read back by newer code.
    key = f"insights:dashboard:{KEY_FORMAT}:{reseller.public_id}:{version}:{today.isoformat()}"
    if not cache_usable():
        return _compute(reseller, today)
    found = cache.get(key)
    if isinstance(found, Dashboard):
        return found
    dashboard = replace(_compute(reseller, today), key=key)
    cache.set(key, dashboard, timeout=FIGURES_SECONDS)
    return dashboard


def _overdue(reseller: Reseller, today: date) -> list[OverdueRow]:
    """The oldest overdue invoices, with their balance (the Invoices page's "Overdue")."""
    invoices = (
        invoices_with_balance(invoice_list(reseller=reseller, status=OVERDUE, today=today))
        .select_related("customer")
        .order_by("due_date", "id")[:OVERDUE_ROWS]
    )
    return [
        OverdueRow(
            public_id=invoice.public_id,
            number=invoice.number,
            organisation=invoice.customer.organisation,
            balance=invoice.balance,  # type: ignore[attr-defined]  # invoices_with_balance
            currency=invoice.currency,
            due_date=invoice.due_date,
        )
        for invoice in invoices
    ]


def dashboard_activity(*, reseller: Reseller, list_version: int) -> list[tuple[AuditEvent, str]]:
    """The reseller's latest audit events, each with its object's name as it reads now in the
    reader's language (core.audit_format.audit_object_labels).

    Naming the objects takes a query per kind of object (subscriptions with their customers,
    plans and products; customers), which was most of the dashboard's time: the names are kept
    in Django's cache under the events shown, the language and the version of the reseller's
    customer list (`list_version`, as customers.selectors.customer_summary read it: one cache
    read fewer). So a new event, or any saved customer (its name, and the name of each of its
    subscriptions), names them afresh at once; whatever else changes a name is audited for the
    reseller (a plan or role changed, a profile edited), except a product renamed by staff in
    the admin or a person's new email address, which show within FIGURES_SECONDS.
    """
    events = list(audit_list(reseller=reseller)[:ACTIVITY_LINES])
    if not events:
        return []
    key = ":".join(
        [
            "dashboard:activity-names",
            reseller.public_id,
            str(list_version),
            get_language(),
            ",".join(str(event.pk) for event in events),
        ]
    )
    usable = cache_usable()
    labels: list[str] | None = cache.get(key) if usable else None
    if labels is None or len(labels) != len(events):
        labels = audit_object_labels(events)
        if usable:
            cache.set(key, labels, timeout=FIGURES_SECONDS)
    return list(zip(events, labels, strict=True))
