"""Licence changes: the licence ledger (subscriptions.models.LicenceChange) of the reseller's
customers' subscriptions in a range, by customer, in every currency (licences are not money).

Each entry counts by its difference, after - before: a purchase adds its licences (from 0), a
renewal with a new count or a plan change adds or removes the difference, one that keeps the
count is a change of 0. The range is of days in the reader's time zone.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import tzinfo

from django.db.models import Count, F, IntegerField, QuerySet, Sum, Value
from django.db.models.functions import Greatest
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.selectors import VISIBLE_STATUSES
from insights.reports.common import ReportFilters
from resellers.models import Reseller
from subscriptions.models import LicenceChange, Plan


@dataclass(frozen=True)
class LicenceLine:
    """A customer's licence changes in the range, or their total."""

    key: str  # the customer's public id; "" for the total
    name: str
    added: int
    removed: int
    changes: int
    is_current: bool = False

    @property
    def net(self) -> int:
        return self.added - self.removed


@dataclass(frozen=True)
class LicenceReport:
    filters: ReportFilters
    by_customer: list[LicenceLine]
    total: LicenceLine


def _ledger(*, reseller: Reseller, filters: ReportFilters, zone: tzinfo) -> QuerySet[LicenceChange]:
    start_at, end_at = filters.instants(zone)
    # The ledger follows a subscription that moved with its customer to another reseller: it
    # is the reseller's whose customer holds the subscription now.
    return LicenceChange.objects.filter(
        subscription__customer__reseller_id=reseller.pk,
        created_at__gte=start_at,
        created_at__lt=end_at,
    )


_DIFFERENCE = F("licences_after") - F("licences_before")
_NONE = Value(0, output_field=IntegerField())


def licence_report(*, reseller: Reseller, filters: ReportFilters, zone: tzinfo) -> LicenceReport:
    """The licences added and removed in the range, their net and the number of ledger entries,
    by customer (the largest net change, up or down, first). One query."""
    rows = (
        _ledger(reseller=reseller, filters=filters, zone=zone)
        .values(
            "subscription__customer__public_id",
            "subscription__customer__organisation",
            "subscription__customer__status",
        )
        .annotate(
            added=Sum(Greatest(_DIFFERENCE, _NONE)),
            removed=Sum(Greatest(F("licences_before") - F("licences_after"), _NONE)),
            changes=Count("id"),
        )
        .order_by()
    )
    lines = [
        LicenceLine(
            key=row["subscription__customer__public_id"],
            name=row["subscription__customer__organisation"],
            added=row["added"],
            removed=row["removed"],
            changes=row["changes"],
            is_current=row["subscription__customer__status"] in VISIBLE_STATUSES,
        )
        for row in rows
    ]
    lines.sort(key=lambda line: (-abs(line.net), -line.changes, line.name.casefold(), line.key))
    return LicenceReport(
        filters=filters,
        by_customer=lines,
        total=LicenceLine(
            key="",
            name=_("Total"),
            added=sum(line.added for line in lines),
            removed=sum(line.removed for line in lines),
            changes=sum(line.changes for line in lines),
        ),
    )


# The CSV: one row per ledger entry. The columns are a contract with the spreadsheets that read
# it: add at the end, never rename.
LICENCE_CSV_COLUMNS: tuple[str, ...] = (
    "time",  # ISO 8601 in the reader's time zone
    "customer_id",
    "customer",
    "subscription_id",
    "product",
    "plan",  # in the reader's language
    "kind",  # in the reader's language
    "before",
    "after",
    "difference",
    "by",  # the email of who made it; empty for the daily job
    "amount",  # charged for it, before VAT; a dot as decimal separator, two decimals
    "currency",
)

LICENCE_CSV_CHUNK_SIZE = 2000


def licence_csv_rows(
    *, reseller: Reseller, filters: ReportFilters, zone: tzinfo
) -> Iterator[list[str]]:
    """The ledger entries in the range, oldest first, one row each (LICENCE_CSV_COLUMNS): one
    query, read in chunks. The labels are read now, in the reader's language, as the rows are
    streamed after the request's language is gone."""
    kinds = {value: str(label) for value, label in LicenceChange.Kind.choices}
    plans = {value: str(label) for value, label in Plan.Kind.choices}
    rows = (
        _ledger(reseller=reseller, filters=filters, zone=zone)
        .order_by("created_at", "id")
        .values_list(
            "created_at",
            "subscription__customer__public_id",
            "subscription__customer__organisation",
            "subscription__public_id",
            "subscription__product__name",
            "plan__kind",
            "kind",
            "licences_before",
            "licences_after",
            "actor_email",
            "amount",
            "currency",
        )
    )

    def stream() -> Iterator[list[str]]:
        for row in rows.iterator(chunk_size=LICENCE_CSV_CHUNK_SIZE):
            (created, customer_id, name, subscription_id, product, plan, kind) = row[:7]
            before, after, by, amount, currency = row[7:]
            yield [
                timezone.localtime(created, zone).isoformat(),
                customer_id,
                name,
                subscription_id,
                product,
                plans.get(plan, plan),
                kinds.get(kind, kind),
                str(before),
                str(after),
                str(after - before),
                by,
                f"{amount:.2f}",
                currency,
            ]

    return stream()
