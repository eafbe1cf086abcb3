"""The reseller's margin on what its customers pay: reads, one function per money concept.

Nothing here is recomputed from today's prices: each charge keeps, from when it was made, its
amount, the reseller's cost and their difference, `margin_amount` (subscriptions.models.Charge,
issue 16). An invoice line bills one charge; the rest follows from the invoices.

The rules (issue 16, "Money records"):

- **An invoice's margin** is the sum of its lines' charges' `margin_amount`; a line without a
  charge earns nothing. Its **net** is its subtotal (before VAT); its **cost** is net - margin.
- **A credit note reverses margin in proportion** to what it credits of the invoice it corrects:
  margin = -(credit note subtotal / invoice subtotal) x the invoice's margin, half-up to the cent
  (subscriptions.periods.money_round). An invoice's credit notes are rounded cumulatively (each
  takes the rounded share of all of them so far less that of the ones before it), so notes that
  credit the whole invoice take back its whole margin, to the cent.
- **Earned** (what commission statements pay): when the customer's invoice is paid, whoever paid
  it (the reseller's card or the customer's), on the date of `paid_at`. A credit note of a paid
  invoice takes its margin back on its issue date, or on the invoice's payment date if it was
  issued while the invoice was still unpaid (the invoice is then earned net of it, in the month
  it is paid). A month's earnings never change once the month is over.
- **Refunded or written off earns nothing.** The portal has no other way to refund or write off
  an invoice than a credit note (billing.services.credit_note_issue): credited while unpaid (a
  write-off), it is never paid (status "credited", no `paid_at`) and neither it nor its notes
  earn anything; credited after it was paid (a refund), its notes take back what it earned, in
  the month they are issued, so that in total it earns nothing. A payment that arrives after the
  invoice was credited in full is refunded and earns nothing either (invoice_settle leaves such
  an invoice "credited", without `paid_at`).
- **Expected**: invoices issued and not (yet) paid (status open or payment failed), net of the
  credit notes issued on them so far: what they earn once paid.

Dates are the vendor's calendar (settings.TIME_ZONE, in which invoices are dated), not the
reader's time zone: the Margin page and the monthly statements count a payment in the same month.
"""

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, NamedTuple

from django.db.models import Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.models import Invoice, InvoiceLine
from billing.selectors import UNPAID_STATUSES
from resellers.models import Reseller
from subscriptions.periods import add_months, money_round

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class InvoiceMargin:
    """One paid invoice, or one credit note of a paid invoice, as a commission statement lists
    it: its net (subtotal) and margin, both negative for a credit note."""

    invoice_id: int
    number: str
    customer_id: int
    customer_name: str
    issued_on: date
    net: Decimal
    margin: Decimal


@dataclass(frozen=True)
class Document:
    """An invoice or credit note as it counts in a period: `net` and `margin` signed (a credit
    note negative); `invoice_id` is the invoice whose lines it splits by product (a credit
    note's: the invoice it corrects). The Margin page's and the Reports page's (insights.reports)
    figures are sums of these."""

    id: int
    number: str
    currency: str
    customer_id: int
    customer_public_id: str
    customer_name: str
    issued_on: date
    net: Decimal
    margin: Decimal
    invoice_id: int


_DOCUMENT_FIELDS = (
    "pk",
    "number",
    "currency",
    "customer_id",
    "customer__public_id",
    "customer__organisation",
    "issue_date",
    "subtotal",
)


def _document(row: dict[str, Any], *, net: Decimal, margin: Decimal, invoice_id: int) -> Document:
    """A document read with _DOCUMENT_FIELDS, counting `net` and `margin` (signed)."""
    return Document(
        id=row["pk"],
        number=row["number"],
        currency=row["currency"],
        customer_id=row["customer_id"],
        customer_public_id=row["customer__public_id"],
        customer_name=row["customer__organisation"],
        issued_on=row["issue_date"],
        net=net,
        margin=margin,
        invoice_id=invoice_id,
    )


# The margin of an invoice, as the lists read it: the sum of its lines' charges' margins.
INVOICE_MARGIN = Sum("lines__charge__margin_amount")


def _invoice_documents(invoices: QuerySet[Invoice]) -> list[Document]:
    """`invoices` as documents counting their subtotal and their margin (INVOICE_MARGIN)."""
    rows = invoices.annotate(margin=INVOICE_MARGIN).values(*_DOCUMENT_FIELDS, "margin")
    return [
        _document(
            row,
            net=row["subtotal"],
            margin=money_round(Decimal(row["margin"] or 0)),
            invoice_id=row["pk"],
        )
        for row in rows
    ]


def _day_start(day: date) -> datetime:
    """The first instant of `day` in the vendor's calendar (settings.TIME_ZONE)."""
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_default_timezone())


def month_start(day: date) -> date:
    """The first day of `day`'s month."""
    return day.replace(day=1)


def next_month(month: date) -> date:
    """The first day of the month after `month`'s."""
    year, number = add_months(month.year, month.month, 1)
    return date(year, number, 1)


def previous_month(month: date) -> date:
    """The first day of the month before `month`'s."""
    year, number = add_months(month.year, month.month, -1)
    return date(year, number, 1)


# One document's margin


def invoice_margin(invoice: Invoice) -> Decimal:
    """The margin of one invoice: the sum of its lines' charges' margins (a line without a
    charge earns nothing). For pages about one invoice; lists use the annotated reads below."""
    total = InvoiceLine.objects.filter(invoice_id=invoice.pk).aggregate(
        margin=Sum("charge__margin_amount")
    )["margin"]
    return money_round(Decimal(total or 0))


def credit_note_margin(credit_note: Invoice) -> Decimal:
    """The margin a credit note takes back (negative, or zero): its share of the margin of the
    invoice it corrects, in proportion to its subtotal (see the module's rules)."""
    return _credit_note_margins([credit_note.corrects_id])[credit_note.pk]


def _credit_note_margins(invoice_ids: Iterable[int | None]) -> dict[int, Decimal]:
    """The margin (negative) of every credit note of the invoices `invoice_ids`, by its id. Two
    queries, however many invoices.

    Each note takes back -(its subtotal / the invoice's subtotal) x the invoice's margin, rounded
    cumulatively in the order the notes were issued: the k-th note's margin is the rounded share
    of notes 1..k less the rounded share of notes 1..k-1, so a single note is rounded on its own
    and notes crediting the whole invoice take back exactly its margin."""
    ids = {pk for pk in invoice_ids if pk is not None}
    if not ids:
        return {}
    invoices = {
        pk: (subtotal, money_round(Decimal(margin or 0)))
        for pk, subtotal, margin in Invoice.objects.filter(pk__in=ids)
        .annotate(margin=INVOICE_MARGIN)
        .values_list("pk", "subtotal", "margin")
    }
    notes = (
        Invoice.objects.filter(corrects_id__in=ids, kind=Invoice.Kind.CREDIT_NOTE)
        .order_by("corrects_id", "issue_date", "number")
        .values_list("pk", "corrects_id", "subtotal")
    )
    margins: dict[int, Decimal] = {}
    credited: dict[int, Decimal] = defaultdict(Decimal)
    for pk, corrects_id, subtotal in notes:
        invoice_subtotal, invoice_margin = invoices[corrects_id]
        before = credited[corrects_id]
        after = before + abs(subtotal)
        credited[corrects_id] = after
        if not invoice_subtotal or not invoice_margin:
            margins[pk] = ZERO
            continue
        share_after = money_round(after * invoice_margin / invoice_subtotal)
        share_before = money_round(before * invoice_margin / invoice_subtotal)
        margins[pk] = share_before - share_after
    return margins


# Earned: what the statements pay


def _credit_note_documents(notes: list[dict[str, Any]]) -> list[Document]:
    """Credit notes (rows of _DOCUMENT_FIELDS and corrects_id) as documents: net and margin
    taken back, counted against the invoice each corrects."""
    note_margins = _credit_note_margins(row["corrects_id"] for row in notes)
    return [
        _document(
            row,
            net=-abs(row["subtotal"]),
            margin=note_margins[row["pk"]],
            invoice_id=row["corrects_id"],
        )
        for row in notes
    ]


def _earned_documents(
    *, reseller_id: int, currency: str | None, start: date, end: date
) -> list[Document]:
    """The invoices and credit notes of the reseller's customers whose margin is earned in
    [start, end) (all currencies if `currency` is None), ordered by issue date and number.
    Four queries, however many documents."""
    start_at, end_at = _day_start(start), _day_start(end)
    scope = Q(reseller_id=reseller_id)
    if currency is not None:
        scope &= Q(currency=currency)
    # Invoices paid in the period, whoever paid them (see the module's rules for "credited").
    documents = _invoice_documents(
        Invoice.objects.filter(
            scope, kind=Invoice.Kind.INVOICE, paid_at__gte=start_at, paid_at__lt=end_at
        )
    )
    # Credit notes of paid invoices, earned (taken back) on the later of their issue date and
    # the invoice's payment date.
    notes = list(
        Invoice.objects.filter(
            scope,
            Q(issue_date__gte=start) | Q(corrects__paid_at__gte=start_at),
            kind=Invoice.Kind.CREDIT_NOTE,
            issue_date__lt=end,
            corrects__paid_at__lt=end_at,
        ).values(*_DOCUMENT_FIELDS, "corrects_id")
    )
    documents += _credit_note_documents(notes)
    documents.sort(key=lambda document: (document.issued_on, document.number))
    return documents


def paid_invoice_margins(
    *, reseller_id: int, currency: str, start: date, end: date
) -> list[InvoiceMargin]:
    """What the reseller earned in `currency` from `start` until `end` (exclusive), one entry
    per document: each invoice of its customers paid in the period (by the date of `paid_at`),
    and each credit note of a paid invoice dated in the period (or, issued before the invoice
    was paid, in the period the invoice was paid). Ordered by issue date, then number.

    `net` is the subtotal paid (negative for a credit note), `margin` its margin (negative for
    a credit note: its share of the invoice's margin). The commission statements are made of
    these lines. Four queries, however many invoices."""
    return [
        InvoiceMargin(
            invoice_id=document.id,
            number=document.number,
            customer_id=document.customer_id,
            customer_name=document.customer_name,
            issued_on=document.issued_on,
            net=document.net,
            margin=document.margin,
        )
        for document in _earned_documents(
            reseller_id=reseller_id, currency=currency, start=start, end=end
        )
    ]


# Expected: issued, not (yet) paid


def _expected_documents(*, reseller_id: int, start: date, end: date) -> list[Document]:
    """The invoices of the reseller's customers issued in [start, end) and not paid (open, or
    their payment failed), each with the credit notes issued on it so far (negative): what they
    earn once paid. Four queries, however many documents."""
    documents = _invoice_documents(
        Invoice.objects.filter(
            reseller_id=reseller_id,
            kind=Invoice.Kind.INVOICE,
            status__in=UNPAID_STATUSES,
            issue_date__gte=start,
            issue_date__lt=end,
        )
    )
    if not documents:
        return documents
    ids = [document.id for document in documents]
    notes = Invoice.objects.filter(corrects_id__in=ids, kind=Invoice.Kind.CREDIT_NOTE).values(
        *_DOCUMENT_FIELDS, "corrects_id"
    )
    documents += _credit_note_documents(list(notes))
    documents.sort(key=lambda document: (document.issued_on, document.number))
    return documents


# Issued: what was invoiced, whatever has been paid


def documents_issued(*, reseller_id: int, currency: str, start: date, end: date) -> list[Document]:
    """The invoices and credit notes of the reseller's customers in `currency` issued from
    `start` until `end` (exclusive), whatever their status: each invoice with its subtotal and
    margin, each credit note with its subtotal and margin taken back (both negative). Their nets
    add up to the invoices' subtotals less the credit notes' (the revenue of the Reports page,
    insights.reports). Ordered by issue date and number; four queries, however many documents."""
    scope = Q(reseller_id=reseller_id, currency=currency, issue_date__gte=start, issue_date__lt=end)
    documents = _invoice_documents(Invoice.objects.filter(scope, kind=Invoice.Kind.INVOICE))
    notes = list(
        Invoice.objects.filter(scope, kind=Invoice.Kind.CREDIT_NOTE).values(
            *_DOCUMENT_FIELDS, "corrects_id"
        )
    )
    documents += _credit_note_documents(notes)
    documents.sort(key=lambda document: (document.issued_on, document.number))
    return documents


# The Margin page: a month's revenue, cost and margin by customer and by product


@dataclass(frozen=True)
class MarginLine:
    """Revenue (net, before VAT), cost and margin of one customer, one product or a total, in
    one currency. cost = revenue - margin, so the three always agree."""

    key: str  # the customer's public id, the product's SKU; "" for a total or no product
    name: str
    revenue: Decimal
    margin: Decimal

    @property
    def cost(self) -> Decimal:
        return self.revenue - self.margin

    @property
    def margin_percent(self) -> Decimal | None:
        """The margin's share of the revenue, in %; None without revenue."""
        if not self.revenue:
            return None
        return (self.margin * 100 / self.revenue).quantize(Decimal("0.1"))


@dataclass(frozen=True)
class CurrencyMargins:
    """One currency's figures: by customer, by product (each by name), and their total."""

    currency: str
    by_customer: list[MarginLine]
    by_product: list[MarginLine]
    total: MarginLine

    @property
    def tables(self) -> list[tuple[str, list[MarginLine]]]:
        """The two tables the page shows, named: ("customer", ...), ("product", ...)."""
        return [("customer", self.by_customer), ("product", self.by_product)]


@dataclass(frozen=True)
class MarginReport:
    """The Margin page of a month: what is earned (paid in the month) apart from what is
    expected (issued in the month, not paid yet), each per currency."""

    month: date  # its first day
    earned: list[CurrencyMargins]
    expected: list[CurrencyMargins]


# A line's product: its charge's subscription's, else (a line copied on a credit note) its own
# subscription's; none for a line that bills no subscription.
_LINE_PRODUCT_SKU = Coalesce("charge__subscription__product__sku", "subscription__product__sku")
_LINE_PRODUCT_NAME = Coalesce("charge__subscription__product__name", "subscription__product__name")


class ProductShare(NamedTuple):
    """A document's net and margin on one product (signed as the document's): `sku` and `name`
    empty for what bills no subscription."""

    sku: str
    name: str
    net: Decimal
    margin: Decimal


def _product_split(invoice_ids: set[int]) -> dict[int, list[ProductShare]]:
    """Each invoice's revenue and margin by product: {invoice id: [(SKU, name, revenue,
    margin)]}, in one query."""
    split: dict[int, list[ProductShare]] = defaultdict(list)
    if not invoice_ids:
        return split
    rows = (
        InvoiceLine.objects.filter(invoice_id__in=invoice_ids)
        .values("invoice_id", sku=_LINE_PRODUCT_SKU, name=_LINE_PRODUCT_NAME)
        .annotate(revenue=Sum("amount"), margin=Sum("charge__margin_amount"))
        .order_by("invoice_id", "sku")
    )
    for row in rows:
        split[row["invoice_id"]].append(
            ProductShare(
                row["sku"] or "",
                row["name"] or "",
                money_round(Decimal(row["revenue"] or 0)),
                money_round(Decimal(row["margin"] or 0)),
            )
        )
    return split


def _allocate(amount: Decimal, weights: list[Decimal]) -> list[Decimal]:
    """`amount` shared out in proportion to `weights`, each share rounded to the cent, the
    largest weight taking what rounding leaves, so that the shares add up to `amount` exactly.
    Without weights to go by, the first takes it all."""
    if not weights:
        return []
    total = sum(weights, Decimal(0))
    shares = (
        [money_round(amount * weight / total) for weight in weights]
        if total
        else [ZERO for _weight in weights]
    )
    biggest = max(range(len(weights)), key=lambda index: abs(weights[index]))
    shares[biggest] += amount - sum(shares, ZERO)
    return shares


def _by_product(document: Document, split: list[ProductShare]) -> list[ProductShare]:
    """The document's net and margin by product: an invoice's as its lines have them, a credit
    note's shared out like those of the invoice it corrects (it credits each in proportion)."""
    if not split:
        return [ProductShare("", "", document.net, document.margin)]
    if document.id == document.invoice_id:
        return split
    nets = _allocate(document.net, [share.net for share in split])
    margins = _allocate(document.margin, [share.margin for share in split])
    return [
        ProductShare(share.sku, share.name, net, margin)
        for share, net, margin in zip(split, nets, margins, strict=True)
    ]


def documents_by_product(documents: list[Document]) -> list[tuple[Document, list[ProductShare]]]:
    """Each document with its net and margin by product, which add up to the document's to the
    cent: an invoice's by its lines' subscriptions' products, a credit note's shared out over
    the products of the invoice it corrects in proportion to what each was invoiced (the one
    way the portal splits revenue by product). One query, however many documents."""
    split = _product_split({document.invoice_id for document in documents})
    return [(document, _by_product(document, split[document.invoice_id])) for document in documents]


def _summarise(documents: list[Document]) -> list[CurrencyMargins]:
    """The documents' figures per currency (by code), by customer and by product (by name)."""
    # {currency: {key: [name, revenue, margin]}}
    customers: dict[str, dict[str, list[Any]]] = defaultdict(dict)
    products: dict[str, dict[str, list[Any]]] = defaultdict(dict)
    for document, shares in documents_by_product(documents):
        entry = customers[document.currency].setdefault(
            document.customer_public_id, [document.customer_name, ZERO, ZERO]
        )
        entry[1] += document.net
        entry[2] += document.margin
        for sku, name, net, margin in shares:
            entry = products[document.currency].setdefault(sku, [name or _("Other"), ZERO, ZERO])
            entry[1] += net
            entry[2] += margin
    result = []
    for currency in sorted(customers):
        by_customer = _lines(customers[currency])
        result.append(
            CurrencyMargins(
                currency=currency,
                by_customer=by_customer,
                by_product=_lines(products[currency]),
                total=MarginLine(
                    key="",
                    name=_("Total"),
                    revenue=sum((line.revenue for line in by_customer), ZERO),
                    margin=sum((line.margin for line in by_customer), ZERO),
                ),
            )
        )
    return result


def _lines(entries: dict[str, list[Any]]) -> list[MarginLine]:
    lines = [
        MarginLine(key=key, name=name, revenue=revenue, margin=margin)
        for key, (name, revenue, margin) in entries.items()
    ]
    return sorted(lines, key=lambda line: (line.name.casefold(), line.key))


def margin_report(*, reseller: Reseller, month: date) -> MarginReport:
    """The reseller's Margin page for `month` (any day of it): per currency, the revenue (net),
    cost and margin by customer and by product of what its customers paid in the month (earned:
    the same documents as the statements', paid_invoice_margins) apart from what they were
    invoiced in the month and have not paid yet (expected). A constant number of queries,
    however many customers and invoices."""
    start = month_start(month)
    end = next_month(start)
    return MarginReport(
        month=start,
        earned=_summarise(
            _earned_documents(reseller_id=reseller.pk, currency=None, start=start, end=end)
        ),
        expected=_summarise(_expected_documents(reseller_id=reseller.pk, start=start, end=end)),
    )


# The Margin page's CSV: the same figures, a row per customer, product and total. The columns
# and their order are a contract with the spreadsheets that read the file: add at the end, never
# rename.
MARGIN_CSV_COLUMNS: tuple[str, ...] = (
    "month",  # YYYY-MM
    "status",  # earned (paid in the month) | expected (issued in the month, unpaid)
    "currency",  # ISO 4217
    "by",  # customer | product | total
    "id",  # the customer's public id, the product's SKU; empty for a total or no product
    "name",
    "revenue",  # net, before VAT; amounts: dot decimal separator, two decimals, no grouping
    "cost",
    "margin",
)


def margin_csv_rows(report: MarginReport) -> Iterator[list[str]]:
    """The report's rows in MARGIN_CSV_COLUMNS order: per status and currency, its customers,
    its products, then its total."""
    month = f"{report.month:%Y-%m}"
    for status, sections in (("earned", report.earned), ("expected", report.expected)):
        for section in sections:
            groups = (
                ("customer", section.by_customer),
                ("product", section.by_product),
                ("total", [section.total]),
            )
            for by, lines in groups:
                for line in lines:
                    yield [
                        month,
                        status,
                        section.currency,
                        by,
                        line.key,
                        line.name,
                        f"{line.revenue:.2f}",
                        f"{line.cost:.2f}",
                        f"{line.margin:.2f}",
                    ]
