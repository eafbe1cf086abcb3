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
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from django.db.models import Q, Sum
from django.utils import timezone

from billing.models import Invoice, InvoiceLine
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
class _Document:
    """An invoice or credit note as it counts in a period: `net` and `margin` signed (a credit
    note negative); `invoice_id` is the invoice whose lines it splits by product (a credit
    note's: the invoice it corrects)."""

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


def _document(row: dict[str, Any], *, net: Decimal, margin: Decimal, invoice_id: int) -> _Document:
    """A document read with _DOCUMENT_FIELDS, counting `net` and `margin` (signed)."""
    return _Document(
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


def _day_start(day: date) -> datetime:
    """The first instant of `day` in the vendor's calendar (settings.TIME_ZONE)."""
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_default_timezone())


def _paid_on(paid_at: datetime) -> date:
    return timezone.localtime(paid_at, timezone.get_default_timezone()).date()


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
        pk: (subtotal, Decimal(margin or 0))
        for pk, subtotal, margin in Invoice.objects.filter(pk__in=ids)
        .annotate(margin=Sum("lines__charge__margin_amount"))
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


def _earned_documents(
    *, reseller_id: int, currency: str | None, start: date, end: date
) -> list[_Document]:
    """The invoices and credit notes of the reseller's customers whose margin is earned in
    [start, end) (all currencies if `currency` is None), ordered by issue date and number.
    Four queries, however many documents."""
    start_at, end_at = _day_start(start), _day_start(end)
    scope = Q(reseller_id=reseller_id)
    if currency is not None:
        scope &= Q(currency=currency)
    # Invoices paid in the period, whoever paid them (see the module's rules for "credited").
    invoices = (
        Invoice.objects.filter(
            scope, kind=Invoice.Kind.INVOICE, paid_at__gte=start_at, paid_at__lt=end_at
        )
        .annotate(margin=Sum("lines__charge__margin_amount"))
        .values(*_DOCUMENT_FIELDS, "margin")
    )
    documents = [
        _document(
            row,
            net=row["subtotal"],
            margin=money_round(Decimal(row["margin"] or 0)),
            invoice_id=row["pk"],
        )
        for row in invoices
    ]
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
    note_margins = _credit_note_margins(row["corrects_id"] for row in notes)
    documents += [
        _document(
            row,
            net=-abs(row["subtotal"]),
            margin=note_margins[row["pk"]],
            invoice_id=row["corrects_id"],
        )
        for row in notes
    ]
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
