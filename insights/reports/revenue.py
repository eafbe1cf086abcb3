"""Revenue: the net amount (before VAT) of the documents issued in a range, in one currency,
by month of issue, by customer and by product.

Revenue is the invoices' subtotals less the credit notes' subtotals, by issue date (credit
notes are stored with positive amounts: commissions.margins.documents_issued signs them). By
product, an invoice counts its lines by their subscription's product and a credit note is shared
out over the products of the invoice it corrects, in proportion: commissions.margins'
documents_by_product, the split the Margin page makes. The margin is the reseller's, from the
charges the lines bill, a credit note taking back its share (commissions.margins' rules).
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.utils.translation import gettext as _

from commissions.margins import Document, documents_by_product, documents_issued, month_start
from insights.reports.common import ZERO, ReportFilters, current_customer_ids, months_between
from resellers.models import Reseller


@dataclass(frozen=True)
class RevenueLine:
    """One month, customer or product, or the total: what was invoiced, what credit notes
    took back (positive), and the margin (net of what the credit notes took back)."""

    key: str  # the month as YYYY-MM, the customer's public id, the product's SKU; "" for none
    name: str
    invoiced: Decimal
    credited: Decimal
    margin: Decimal
    month: date | None = None
    # The customer is still the reseller's: its row links to its page.
    is_current: bool = False

    @property
    def revenue(self) -> Decimal:
        return self.invoiced - self.credited


@dataclass(frozen=True)
class RevenueReport:
    filters: ReportFilters
    documents: int
    by_month: list[RevenueLine]
    by_customer: list[RevenueLine]
    by_product: list[RevenueLine]
    total: RevenueLine


class _Sums:
    """A line being added up."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.invoiced = self.credited = self.margin = ZERO

    def add(self, net: Decimal, margin: Decimal) -> None:
        if net < 0:
            self.credited -= net
        else:
            self.invoiced += net
        self.margin += margin

    def line(self, key: str, *, month: date | None = None, is_current: bool = False) -> RevenueLine:
        return RevenueLine(
            key=key,
            name=self.name,
            invoiced=self.invoiced,
            credited=self.credited,
            margin=self.margin,
            month=month,
            is_current=is_current,
        )


def _by_revenue(lines: list[RevenueLine]) -> list[RevenueLine]:
    """Most revenue first; then by name."""
    return sorted(lines, key=lambda line: (-line.revenue, line.name.casefold(), line.key))


def revenue_report(*, reseller: Reseller, filters: ReportFilters) -> RevenueReport:
    """The reseller's revenue in the filters' currency from documents issued in their range.
    Every month of the range has a line, with or without documents. Six queries, however many
    documents, customers and products."""
    documents = documents_issued(
        reseller_id=reseller.pk,
        currency=filters.currency,
        start=filters.start,
        end=filters.end_exclusive,
    )
    months = {month: _Sums("") for month in months_between(filters.start, filters.end)}
    customers: dict[int, tuple[Document, _Sums]] = {}
    products: dict[str, _Sums] = {}
    total = _Sums(_("Total"))
    for document, shares in documents_by_product(documents):
        months[month_start(document.issued_on)].add(document.net, document.margin)
        total.add(document.net, document.margin)
        customer = customers.setdefault(
            document.customer_id, (document, _Sums(document.customer_name))
        )[1]
        customer.add(document.net, document.margin)
        for share in shares:
            product = products.setdefault(share.sku, _Sums(share.name or _("Other")))
            product.add(share.net, share.margin)
    current = current_customer_ids(reseller=reseller, customer_ids=customers)
    return RevenueReport(
        filters=filters,
        documents=len(documents),
        by_month=[sums.line(f"{month:%Y-%m}", month=month) for month, sums in months.items()],
        by_customer=_by_revenue(
            [
                sums.line(document.customer_public_id, is_current=customer_id in current)
                for customer_id, (document, sums) in customers.items()
            ]
        ),
        by_product=_by_revenue([sums.line(sku) for sku, sums in products.items()]),
        total=total.line(""),
    )


# The CSV files: a row per month, customer or product. The columns and their order are a
# contract with the spreadsheets that read them: add at the end, never rename. Amounts: a dot
# as decimal separator, two decimals, no grouping. `margin` only for a role that may see it
# (Action.MARGIN_VIEW).
REVENUE_CSV_COLUMNS: dict[str, tuple[str, ...]] = {
    "revenue-by-month": ("month", "currency", "invoiced", "credited", "revenue"),
    "revenue-by-customer": (
        "customer_id",
        "customer",
        "currency",
        "invoiced",
        "credited",
        "revenue",
    ),
    "revenue-by-product": ("sku", "product", "currency", "invoiced", "credited", "revenue"),
}


def revenue_csv_header(report: str, *, with_margin: bool) -> tuple[str, ...]:
    columns = REVENUE_CSV_COLUMNS[report]
    return (*columns, "margin") if with_margin else columns


def revenue_csv_rows(
    revenue: RevenueReport, report: str, *, with_margin: bool
) -> Iterator[list[str]]:
    """The lines of one of the three tables (`report` a key of REVENUE_CSV_COLUMNS), in the
    page's order, without the total."""
    lines = {
        "revenue-by-month": revenue.by_month,
        "revenue-by-customer": revenue.by_customer,
        "revenue-by-product": revenue.by_product,
    }[report]
    currency = revenue.filters.currency
    for line in lines:
        figures = [f"{line.invoiced:.2f}", f"{line.credited:.2f}", f"{line.revenue:.2f}"]
        if with_margin:
            figures.append(f"{line.margin:.2f}")
        if report == "revenue-by-month":
            yield [line.key, currency, *figures]
        else:
            yield [line.key, line.name, currency, *figures]
