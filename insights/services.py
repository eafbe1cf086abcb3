"""Writing the daily snapshots (insights.models.DailySnapshot).

`snapshots_take` runs every hour (Celery beat, "insights-snapshots"), for every reseller:
- today's rows (one per currency) from the live figures and today's money so far, not final;
- every earlier day still open, closed: a day captured during the day keeps the last figures
  captured (the run at :55 of its last hour) and gets its money recounted from the invoices,
  now that the day is over; a day never captured (the portal's first run, a day the job did not
  run) is replayed from the audit log (insights.snapshots.figures_replayed), as far back as the
  reseller's first subscription or invoice and at most BACKFILL_DAYS.

Idempotent: a rerun rewrites today's rows and leaves final ones alone.
"""

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from billing.models import Invoice
from billing.selectors import invoice_flows
from core.versions import version_bump
from insights.models import DailySnapshot
from insights.snapshots import SUBSCRIPTION_OBJECT, Figures, figures_live, figures_replayed
from resellers.models import AuditEvent, Reseller

# How far back a first run replays history.
BACKFILL_DAYS = 730
ZERO = Decimal("0.00")
VERSION_NAME = "insights"

_FIGURE_FIELDS = ["mrr", "margin", "licences", "subscriptions", "trials"]


def insights_changed(*, reseller_id: int | None, reseller_public_id: str | None = None) -> None:
    """Something the dashboard counts changed for this reseller: its figures are counted
    afresh from the commit on (insights.apps connects this to the models' saves)."""
    version_bump(name=VERSION_NAME, reseller_id=reseller_id, reseller_public_id=reseller_public_id)


def snapshots_take(*, today: date | None = None, reseller_ids: list[int] | None = None) -> int:
    """Write today's rows and close the days before; returns the rows written."""
    today = today or timezone.localdate()
    if reseller_ids is None:
        reseller_ids = list(Reseller.objects.order_by("id").values_list("id", flat=True))
    written = 0
    for reseller_id in reseller_ids:
        with transaction.atomic():
            written += _reseller_snapshots(reseller_id, today)
    return written


def _first_day(reseller_id: int, today: date) -> date | None:
    """The reseller's first day with a subscription or an invoice (None: neither yet)."""
    first_event = AuditEvent.objects.filter(
        reseller_id=reseller_id, object_type=SUBSCRIPTION_OBJECT
    ).aggregate(first=Min("created_at"))["first"]
    first_invoice = Invoice.objects.filter(reseller_id=reseller_id).aggregate(
        first=Min("issue_date")
    )["first"]
    days = [timezone.localdate(first_event)] if first_event else []
    if first_invoice:
        days.append(first_invoice)
    if not days:
        return None
    return max(min(days), today - timedelta(days=BACKFILL_DAYS))


def _reseller_snapshots(reseller_id: int, today: date) -> int:
    first = _first_day(reseller_id, today)
    if first is None:
        return 0
    # The days written, and the rows of those not closed yet (the last capture of each).
    written = set(
        DailySnapshot.objects.filter(reseller_id=reseller_id, day__gte=first, day__lt=today)
        .values_list("day", flat=True)
        .distinct()
    )
    captured: dict[date, dict[str, DailySnapshot]] = {}
    for row in DailySnapshot.objects.filter(
        reseller_id=reseller_id, day__gte=first, day__lt=today, final=False
    ):
        captured.setdefault(row.day, {})[row.currency] = row
    past = [first + timedelta(days=n) for n in range((today - first).days)]
    to_close = [day for day in past if day not in written or day in captured]
    never_captured = [day for day in to_close if day not in written]
    replayed = figures_replayed(reseller_ids=[reseller_id], days=never_captured)
    flows = invoice_flows(reseller_ids=[reseller_id], start=min([*to_close, today]), end=today)
    live = figures_live(reseller_ids=[reseller_id])
    currencies = sorted(
        {currency for rows_of_day in captured.values() for currency in rows_of_day}
        | {currency for figures in replayed.values() for (_r, currency) in figures}
        | {currency for (_r, currency, _d) in flows}
        | {currency for (_r, currency) in live}
    )
    new: list[DailySnapshot] = []
    for day in [*to_close, today]:
        for currency in currencies:
            if day == today:
                figures = live.get((reseller_id, currency), Figures())
            elif day in replayed:
                figures = replayed[day].get((reseller_id, currency), Figures())
            else:
                kept = captured[day].get(currency)
                figures = (
                    Figures(**{name: getattr(kept, name) for name in _FIGURE_FIELDS})
                    if kept
                    else Figures()
                )
            invoiced, paid = flows.get((reseller_id, currency, day), (ZERO, ZERO))
            new.append(
                DailySnapshot(
                    reseller_id=reseller_id,
                    currency=currency,
                    day=day,
                    **_figure_values(figures),
                    invoiced=invoiced,
                    paid=paid,
                    final=day != today,
                )
            )
    DailySnapshot.objects.bulk_create(
        new,
        batch_size=1000,
        update_conflicts=True,
        unique_fields=["reseller", "currency", "day"],
        update_fields=[*_FIGURE_FIELDS, "invoiced", "paid", "final", "computed_at"],
    )
    return len(new)


def _figure_values(figures: Figures) -> dict[str, Any]:
    return {name: getattr(figures, name) for name in _FIGURE_FIELDS}
