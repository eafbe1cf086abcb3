"""Unbilled: the charges of the reseller's customers not invoiced yet (a charge is invoiced by
the next billing run: billing.selectors.charges_due), in one currency, as of now: by customer,
and each charge in the CSV."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, tzinfo
from decimal import Decimal

from django.db.models import Count, Min, QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.selectors import billed_through_reseller_q
from customers.selectors import VISIBLE_STATUSES
from insights.reports.common import ZERO
from resellers.models import Reseller
from subscriptions.models import Charge


@dataclass(frozen=True)
class UnbilledLine:
    """A customer's charges not invoiced yet, or their total."""

    key: str  # the customer's public id; "" for the total
    name: str
    charges: int
    amount: Decimal
    oldest: date | None  # the day the oldest was made, in the reader's time zone
    is_current: bool = False


@dataclass(frozen=True)
class UnbilledReport:
    currency: str
    by_customer: list[UnbilledLine]
    total: UnbilledLine


def _unbilled(*, reseller: Reseller, currency: str) -> QuerySet[Charge]:
    # Charge.customer: a charge stays with the customer record it was made for (a subscription
    # that follows its customer to another reseller leaves its charges behind).
    # Not those whose invoice will not be the reseller's (its customer revoked its access).
    return Charge.objects.filter(
        billed_through_reseller_q(),
        customer__reseller_id=reseller.pk,
        currency=currency,
        invoiced_at__isnull=True,
    )


def unbilled_report(*, reseller: Reseller, currency: str, zone: tzinfo) -> UnbilledReport:
    """The reseller's customers' charges in `currency` not invoiced yet, by customer (most
    first). One query, however many charges."""
    rows = (
        _unbilled(reseller=reseller, currency=currency)
        .values("customer_id", "customer__public_id", "customer__organisation", "customer__status")
        .annotate(charges=Count("id"), amount=Sum("amount"), oldest=Min("created_at"))
        .order_by()
    )
    lines = [
        UnbilledLine(
            key=row["customer__public_id"],
            name=row["customer__organisation"],
            charges=row["charges"],
            amount=row["amount"],
            oldest=timezone.localtime(row["oldest"], zone).date(),
            is_current=row["customer__status"] in VISIBLE_STATUSES,
        )
        for row in rows
    ]
    lines.sort(key=lambda line: (-line.amount, line.name.casefold(), line.key))
    return UnbilledReport(
        currency=currency,
        by_customer=lines,
        total=UnbilledLine(
            key="",
            name=_("Total"),
            charges=sum(line.charges for line in lines),
            amount=sum((line.amount for line in lines), ZERO),
            oldest=min((line.oldest for line in lines if line.oldest), default=None),
        ),
    )


# The CSV: one row per charge. The columns are a contract with the spreadsheets that read it:
# add at the end, never rename.
UNBILLED_CSV_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "customer",
    "subscription_id",
    "product",
    "kind",  # in the reader's language
    "period_start",
    "period_end",  # exclusive: the first day after the period
    "licences",
    "amount",  # before VAT; a dot as decimal separator, two decimals
    "currency",
    "created",  # ISO 8601 in the reader's time zone
)

UNBILLED_CSV_CHUNK_SIZE = 2000


def unbilled_csv_rows(*, reseller: Reseller, currency: str, zone: tzinfo) -> Iterator[list[str]]:
    """The charges not invoiced yet, one row each (UNBILLED_CSV_COLUMNS), by customer and age:
    one query, read in chunks. The labels are read now, in the reader's language, as the rows
    are streamed after the request's language and zone are gone."""
    labels = {value: str(label) for value, label in Charge.Kind.choices}
    rows = (
        _unbilled(reseller=reseller, currency=currency)
        .order_by("customer__organisation", "customer_id", "created_at", "id")
        .values_list(
            "customer__public_id",
            "customer__organisation",
            "subscription__public_id",
            "subscription__product__name",
            "kind",
            "period_start",
            "period_end",
            "licences",
            "amount",
            "currency",
            "created_at",
        )
    )

    def stream() -> Iterator[list[str]]:
        for row in rows.iterator(chunk_size=UNBILLED_CSV_CHUNK_SIZE):
            (customer_id, name, subscription_id, product, kind, start, end) = row[:7]
            licences, amount, row_currency, created = row[7:]
            yield [
                customer_id,
                name,
                subscription_id,
                product,
                labels.get(kind, kind),
                start.isoformat(),
                end.isoformat(),
                str(licences),
                f"{amount:.2f}",
                row_currency,
                timezone.localtime(created, zone).isoformat(),
            ]

    return stream()
