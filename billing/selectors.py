"""Reads of invoices and credit notes: the reseller's Invoices page, its totals and CSV export,
one document, and the customer's own.

Every read of the reseller side takes `reseller=`: a document of another reseller is the same
404 as one that does not exist. Credit notes count against the totals whatever the sign of
their stored amounts, so the figures hold under either convention.
"""

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import (
    Case,
    CharField,
    Count,
    DecimalField,
    Expression,
    F,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Abs, Coalesce, Greatest, TruncDate
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.models import BillingHold, Invoice, Payment, Refund
from billing.payments.gateways import gateway
from core.ids import PUBLIC_ID_PATTERN
from core.pagination import KeysetPage, keyset_page
from core.sweeper import overdue_q
from customers.models import Customer
from resellers.models import Reseller
from subscriptions.models import Charge, Payer

INVOICE_PAGE_SIZE = 50
# Newest first; the primary key breaks ties among the many a billing run issues on one day.
# Index invoice_reseller_page (reseller, issue_date, id) serves these keyset pages.
INVOICE_SORT = "-issued"
CUSTOMER_QUERY_MAX_LENGTH = 100

# "Overdue" is not stored: an open invoice whose due date has passed.
OVERDUE = "overdue"
STATUS_FILTERS = (
    Invoice.Status.OPEN,
    OVERDUE,
    Invoice.Status.PAYMENT_FAILED,
    Invoice.Status.PAID,
    Invoice.Status.CREDITED,
)
# Still to be collected: open (overdue or not) or a failed payment.
UNPAID_STATUSES = (Invoice.Status.OPEN, Invoice.Status.PAYMENT_FAILED)

_PUBLIC_ID = re.compile(PUBLIC_ID_PATTERN)


@dataclass(frozen=True)
class InvoicePeriod:
    """Issue dates from `start` to `end`, both included; either may be open."""

    start: date | None = None
    end: date | None = None

    def __bool__(self) -> bool:
        return self.start is not None or self.end is not None


def invoices_overdue_q(*, today: date) -> Q:
    """Overdue: an invoice still unpaid after its due date, whether open or its card payment
    failed. The one rule, for the dashboard, the Invoices page, the API, the admin, the vendor
    overview and the invoice.overdue webhook."""
    return Q(kind=Invoice.Kind.INVOICE, status__in=UNPAID_STATUSES, due_date__lt=today)


def billed_through_reseller_q() -> Q:
    """The charges, or the subscriptions that make them (both have a payer and a customer),
    whose invoices go through the customer's reseller (the rule of
    billing.services._invoice_reseller, for a query): all but those a customer that revoked its
    reseller's access pays with its own card."""
    return Q(payer=Payer.RESELLER_CARD) | ~Q(customer__status=Customer.Status.ACCESS_REVOKED)


def invoice_is_overdue(invoice: Invoice, *, today: date | None = None) -> bool:
    """invoices_overdue_q for one invoice in hand."""
    today = today or timezone.localdate()
    return (
        invoice.kind == Invoice.Kind.INVOICE
        and invoice.status in UNPAID_STATUSES
        and invoice.due_date < today
    )


def invoice_customer_query_normalise(query: str) -> str:
    return " ".join(query.split())[:CUSTOMER_QUERY_MAX_LENGTH]


def invoice_list(
    *,
    reseller: Reseller,
    customer: str = "",
    status: str = "",
    period: InvoicePeriod | None = None,
    payer: str = "",
    today: date | None = None,
) -> QuerySet[Invoice]:
    """The invoices and credit notes issued to the reseller's customers, newest first.

    `customer` is a customer's public id or part of its organisation name; `status` one of
    STATUS_FILTERS ("open" includes the overdue ones); `period` bounds the issue date; `payer`
    a Payer. Unknown values filter nothing out (the form has already refused them)."""
    invoices = Invoice.objects.filter(reseller=reseller)
    customer = invoice_customer_query_normalise(customer)
    if customer:
        matches = Q(customer__organisation__icontains=customer)
        if _PUBLIC_ID.fullmatch(customer):
            matches |= Q(customer__public_id=customer)
        invoices = invoices.filter(matches)
    if status == OVERDUE:
        invoices = invoices.filter(invoices_overdue_q(today=today or timezone.localdate()))
    elif status in STATUS_FILTERS:
        invoices = invoices.filter(status=status)
    if period:
        if period.start is not None:
            invoices = invoices.filter(issue_date__gte=period.start)
        if period.end is not None:
            invoices = invoices.filter(issue_date__lte=period.end)
    if payer:
        invoices = invoices.filter(payer=payer)
    return invoices.order_by("-issue_date", "-id")


def invoice_page(*, invoices: QuerySet[Invoice], cursor: str = "") -> KeysetPage:
    """One page of `invoices` (from invoice_list) with its customers: one query at any depth."""
    return keyset_page(
        invoices_with_balance(invoices.select_related("customer")),
        keys=[F("issue_date"), F("id")],
        descending=True,
        cursor=cursor,
        size=INVOICE_PAGE_SIZE,
        sort=INVOICE_SORT,
    )


# What the billing run invoices


def charges_due(day: date) -> QuerySet[Charge]:
    """Charges not invoiced yet, created on `day` or before (in the portal's time zone)."""
    cutoff = timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min))
    return Charge.objects.filter(invoiced_at__isnull=True, created_at__lt=cutoff)


def billing_due(*, day: date) -> list[tuple[int, str, str]]:
    """(customer id, payer, currency) of the invoice each customer is due on `day`: at most one
    per customer per day (SPEC), for the payer and currency of its oldest charge not yet
    invoiced. The customer's other payer's or currency's charges come on a following day."""
    groups = (
        charges_due(day)
        .values("customer_id", "payer", "currency")
        .annotate(first=Min("created_at"), first_id=Min("id"))
        .order_by("customer_id", "first", "first_id")
        .values_list("customer_id", "payer", "currency")
    )
    due: dict[int, tuple[int, str, str]] = {}
    for customer_id, payer, currency in groups:
        due.setdefault(customer_id, (customer_id, payer, currency))
    return list(due.values())


# How an invoice is to be paid, decided when it is issued and kept in its seller snapshot
# (`seller["payment_means"]`), so that a later change of gateway never changes its documents
# or what its emails say.
PAYMENT_BY_CARD = "card"
PAYMENT_BY_TRANSFER = "transfer"


def payment_means_now() -> str:
    """Cards when the gateway takes them (Stripe, or the demo's: billing.payments.gateways),
    else bank transfer to the vendor's account (the manual gateway)."""
    return PAYMENT_BY_CARD if gateway().uses_cards else PAYMENT_BY_TRANSFER


def invoice_pays_by_transfer(invoice: Invoice) -> bool:
    """Whether the document asks for a bank transfer, as decided at its issue. Documents
    issued before that was recorded: the gateway configured now."""
    means = (invoice.seller or {}).get("payment_means") or payment_means_now()
    return bool(means == PAYMENT_BY_TRANSFER)


def invoice_payer_name(invoice: Invoice) -> str:
    """Who pays, as the document names them: the payer's name snapshotted at issue (the
    reseller, or the customer organisation), else the kind of card."""
    return str((invoice.buyer or {}).get("payer_name") or "") or str(invoice.get_payer_display())


# What an invoice still owes


_MONEY = DecimalField(max_digits=14, decimal_places=2)
_ZERO = Value(Decimal("0.00"), output_field=_MONEY)
ZERO = Decimal("0.00")


def _sum_of(rows: QuerySet[Any], *, by: str, field: str = "amount") -> Coalesce:
    """The sum of `field` over `rows` belonging to the outer invoice (a correlated subquery)."""
    summed = (
        rows.filter(**{by: OuterRef("pk")}).order_by().values(by).annotate(s=Sum(field)).values("s")
    )
    return Coalesce(Subquery(summed, output_field=_MONEY), _ZERO)


def balance_expression() -> Expression:
    """THE balance of an invoice, as a database expression: its total, less the credit notes
    that correct it, less the payments received, plus what was refunded (money given back is
    owed no more). Positive: still to be collected; zero: settled; negative: overpaid, a refund
    owed. All of an invoice's money is in its own currency. A credit note has no balance.

    `invoice_balance` and every page, CSV and total use this one definition."""
    owed = (
        F("total")
        - _credited()
        - _sum_of(Payment.objects.filter(status=Payment.Status.SUCCEEDED), by="invoice")
        + refunded_expression()
    )
    return Case(When(kind=Invoice.Kind.INVOICE, then=owed), default=_ZERO, output_field=_MONEY)


def _credited() -> Coalesce:
    """The totals of the credit notes that correct the outer invoice."""
    return _sum_of(
        Invoice.objects.filter(kind=Invoice.Kind.CREDIT_NOTE), by="corrects", field="total"
    )


def refunded_expression() -> Coalesce:
    """What was refunded of an invoice so far."""
    return _sum_of(Refund.objects.filter(status=Refund.Status.SUCCEEDED), by="invoice")


def invoices_with_balance(invoices: QuerySet[Invoice]) -> QuerySet[Invoice]:
    """`invoices`, each with its `balance` (balance_expression) and what was `refunded`, in
    one query."""
    return invoices.annotate(balance=balance_expression(), refunded=refunded_expression())


def invoice_balance(invoice: Invoice) -> Decimal:
    """What the invoice still owes now (see balance_expression): what a card is charged, what
    the pages and emails call due, what a refund pays back when it is below zero."""
    row = Invoice.objects.filter(pk=invoice.pk).values(balance=balance_expression()).get()
    return Decimal(row["balance"]).quantize(Decimal("0.01"))


def _signed(field: str) -> Case:
    """The amount as it counts: a credit note always takes away."""
    return Case(
        When(kind=Invoice.Kind.CREDIT_NOTE, then=-Abs(F(field))),
        default=F(field),
        output_field=DecimalField(max_digits=14, decimal_places=2),
    )


def _unpaid() -> Case:
    """What is still to be collected: the balance of each unpaid invoice."""
    return Case(
        When(
            Q(kind=Invoice.Kind.INVOICE, status__in=UNPAID_STATUSES),
            then=Greatest(balance_expression(), _ZERO),
        ),
        default=_ZERO,
        output_field=_MONEY,
    )


@dataclass(frozen=True)
class CurrencyTotals:
    currency: str
    documents: int
    subtotal: Decimal
    vat_amount: Decimal
    total: Decimal
    unpaid: Decimal


def invoice_totals(*, invoices: QuerySet[Invoice]) -> list[CurrencyTotals]:
    """Per currency, in one query: documents, net, VAT, total (credit notes subtracted) and what
    is still to be collected. billing.services stores a credit note's amounts as positive
    numbers; -ABS() keeps these sums right under either sign."""
    zero = Value(Decimal("0.00"), output_field=DecimalField(max_digits=14, decimal_places=2))
    rows = (
        invoices.order_by()
        .values("currency")
        .annotate(
            documents=Count("id"),
            subtotal_sum=Coalesce(Sum(_signed("subtotal")), zero),
            vat_sum=Coalesce(Sum(_signed("vat_amount")), zero),
            total_sum=Coalesce(Sum(_signed("total")), zero),
            unpaid_sum=Coalesce(Sum(_unpaid()), zero),
        )
        .order_by("currency")
    )
    return [
        CurrencyTotals(
            currency=row["currency"],
            documents=row["documents"],
            subtotal=row["subtotal_sum"],
            vat_amount=row["vat_sum"],
            total=row["total_sum"],
            unpaid=row["unpaid_sum"],
        )
        for row in rows
    ]


@dataclass(frozen=True)
class Outstanding:
    """What the reseller's customers still owe in one currency: `open` is every unpaid
    invoice's balance, `overdue` the part of it past its due date (both as the Invoices page's
    "Open" and "Overdue" filters select them); how many invoices are overdue and the earliest
    of their due dates."""

    currency: str
    open: Decimal
    overdue: Decimal
    overdue_invoices: int = 0
    oldest_due_date: date | None = None


def invoice_outstanding_by_reseller(
    *, reseller_ids: Iterable[int], today: date
) -> dict[int, list[Outstanding]]:
    """{reseller id: what is still to be collected per currency, and what of it is overdue},
    in one query however many resellers. A reseller owed nothing has no entry."""
    zero = Value(Decimal("0.00"), output_field=_MONEY)
    overdue = Case(
        When(invoices_overdue_q(today=today), then=_unpaid()), default=zero, output_field=_MONEY
    )
    rows = (
        Invoice.objects.filter(
            reseller_id__in=list(reseller_ids),
            kind=Invoice.Kind.INVOICE,
            status__in=UNPAID_STATUSES,
        )
        .order_by()
        .values("reseller_id", "currency")
        .annotate(
            open=Coalesce(Sum(_unpaid()), zero),
            overdue=Coalesce(Sum(overdue), zero),
            overdue_invoices=Count("pk", filter=invoices_overdue_q(today=today)),
            oldest_due_date=Min("due_date", filter=invoices_overdue_q(today=today)),
        )
        .order_by("reseller_id", "currency")
    )
    outstanding: dict[int, list[Outstanding]] = {}
    for row in rows:
        outstanding.setdefault(row["reseller_id"], []).append(
            Outstanding(
                currency=row["currency"],
                open=row["open"],
                overdue=row["overdue"],
                overdue_invoices=row["overdue_invoices"],
                oldest_due_date=row["oldest_due_date"],
            )
        )
    return outstanding


def invoice_outstanding(*, reseller: Reseller, today: date) -> list[Outstanding]:
    """Per currency, in one query: what is still to be collected, and what of it is overdue."""
    return invoice_outstanding_by_reseller(reseller_ids=[reseller.pk], today=today).get(
        reseller.pk, []
    )


def invoice_revenue_by_reseller(
    *, reseller_ids: Iterable[int], periods: dict[str, tuple[date, date]]
) -> dict[tuple[int, str], dict[str, Decimal]]:
    """{(reseller id, currency): {period name: revenue}} for each of `periods` (issue dates
    from its start until its end, exclusive), in one query however many resellers. Revenue is
    net, before VAT: the invoices' subtotals less the credit notes' (`_signed`, the "subtotal"
    of invoice_totals), whatever their status; the sum of the nets of
    commissions.margins.documents_issued, the revenue of the Reports page."""
    zero = Value(Decimal("0.00"), output_field=_MONEY)
    if not periods:
        return {}
    in_period = {
        name: Q(issue_date__gte=start, issue_date__lt=end) for name, (start, end) in periods.items()
    }
    rows = (
        Invoice.objects.filter(
            reseller_id__in=list(reseller_ids),
            issue_date__gte=min(start for start, _end in periods.values()),
            issue_date__lt=max(end for _start, end in periods.values()),
        )
        .order_by()
        .values("reseller_id", "currency")
        .annotate(
            **{
                f"net_{name}": Coalesce(Sum(_signed("subtotal"), filter=q), zero)
                for name, q in in_period.items()
            }
        )
    )
    revenue: dict[tuple[int, str], dict[str, Decimal]] = {}
    for row in rows:
        sums: dict[str, Any] = dict(row)
        revenue[(sums["reseller_id"], sums["currency"])] = {
            name: sums[f"net_{name}"] for name in periods
        }
    return revenue


def invoice_flows(
    *, reseller_ids: list[int], start: date, end: date
) -> dict[tuple[int, str, date], tuple[Decimal, Decimal]]:
    """Each day's money in [start, end] by reseller and currency, in two queries:
    {(reseller id, currency, day): (invoiced, paid)}.

    - invoiced: the totals of the invoices issued that day, less those of the credit notes
      issued that day (VAT included);
    - paid: the totals of the invoices paid that day (paid_at, in the portal's time zone),
      each less its credit notes."""
    zone = timezone.get_default_timezone()
    flows: dict[tuple[int, str, date], list[Decimal]] = {}
    issued = (
        Invoice.objects.filter(
            reseller_id__in=reseller_ids, issue_date__gte=start, issue_date__lte=end
        )
        .order_by()
        .values("reseller_id", "currency", "issue_date")
        .annotate(amount=Sum(_signed("total")))
    )
    for row in issued:
        key = (row["reseller_id"], row["currency"], row["issue_date"])
        flows.setdefault(key, [ZERO, ZERO])[0] += row["amount"]
    paid = (
        Invoice.objects.filter(
            reseller_id__in=reseller_ids,
            kind=Invoice.Kind.INVOICE,
            paid_at__gte=datetime.combine(start, time.min, tzinfo=zone),
            paid_at__lt=datetime.combine(end + timedelta(days=1), time.min, tzinfo=zone),
        )
        .annotate(day=TruncDate("paid_at", tzinfo=zone))
        .order_by()
        .values("reseller_id", "currency", "day")
        .annotate(amount=Sum(F("total") - _credited()))
    )
    for paid_row in paid:
        key = (paid_row["reseller_id"], paid_row["currency"], paid_row["day"])
        flows.setdefault(key, [ZERO, ZERO])[1] += paid_row["amount"]
    return {key: (invoiced, paid) for key, (invoiced, paid) in flows.items()}


def invoice_get(*, reseller: Reseller, public_id: str) -> Invoice:
    """One of the reseller's documents, with what its page shows beside it."""
    try:
        return Invoice.objects.select_related("customer", "corrects").get(
            reseller=reseller, public_id=public_id
        )
    except Invoice.DoesNotExist:
        raise Http404(_("No such invoice.")) from None


def invoice_list_of_customer(*, reseller: Reseller, customer: Customer) -> QuerySet[Invoice]:
    """The customer's documents the reseller issued them through, newest first."""
    return invoices_with_balance(
        Invoice.objects.filter(reseller=reseller, customer=customer).order_by("-issue_date", "-id")
    )


def invoice_list_for_customer_side(*, customer: Customer) -> QuerySet[Invoice]:
    """All of a customer's own documents, whoever its reseller was, newest first."""
    return Invoice.objects.filter(customer=customer).order_by("-issue_date", "-id")


def invoice_get_for_customer_side(*, customer: Customer, public_id: str) -> Invoice:
    try:
        return Invoice.objects.select_related("customer", "corrects").get(
            customer=customer, public_id=public_id
        )
    except Invoice.DoesNotExist:
        raise Http404(_("No such invoice.")) from None


def invoice_credit_notes(*, invoice: Invoice) -> QuerySet[Invoice]:
    return invoice.credit_notes.order_by("issue_date", "id")


def invoice_payments_received(*, invoice: Invoice) -> QuerySet[Payment]:
    """The money received for an invoice (by card or by transfer), oldest first."""
    return invoice.payments.filter(status=Payment.Status.SUCCEEDED).order_by("updated_at", "id")


def invoice_refunds(*, invoice: Invoice) -> QuerySet[Refund]:
    """The refunds of an invoice (or those a credit note caused), oldest first."""
    if invoice.kind == Invoice.Kind.CREDIT_NOTE:
        return invoice.credit_note_refunds.order_by("created_at", "id")
    return invoice.refunds.order_by("created_at", "id")


# CSV export for reconciliation: one row per invoice line. The columns and their order are a
# contract with the spreadsheets and scripts that read the file: add at the end, never rename.
INVOICE_CSV_COLUMNS: tuple[str, ...] = (
    "invoice_number",
    "kind",  # invoice | credit_note
    "corrects",  # the number a credit note corrects, else empty
    "issue_date",  # ISO 8601 (YYYY-MM-DD)
    "due_date",
    "customer_id",  # the customer's public id
    "organisation",  # the buyer's name as printed on the document
    "buyer_vat_id",
    "buyer_country",  # ISO 3166-1 alpha-2
    "payer",  # reseller_card | customer_card
    "currency",  # ISO 4217
    "line_position",  # empty for a document without lines
    "description",
    "period_start",
    "period_end",  # exclusive
    "licences",
    "unit_price",  # amounts: dot decimal separator, two decimals, no grouping
    "line_amount",
    "vat_treatment",  # domestic | reverse_charge | eu_consumer | outside_eu
    "vat_rate",  # percent
    "invoice_subtotal",
    "vat_amount",
    "total",
    "status",  # open | paid | payment_failed | credited (as stored; not "overdue")
    "paid_at",  # ISO 8601 date and time in UTC, empty if unpaid
    "balance",  # what the invoice still owes (negative: a refund owed); empty on a credit note
    "refunded",  # refunded so far; empty on a credit note
)
# Rows fetched per round trip from the server-side cursor: memory stays flat however many
# lines the export has.
INVOICE_CSV_CHUNK_SIZE = 2000


def invoice_export_rows(*, invoices: QuerySet[Invoice]) -> Iterator[list[str]]:
    """The CSV's data rows for `invoices` (from invoice_list), in INVOICE_CSV_COLUMNS order,
    streamed from one query: a LEFT JOIN on the lines, so a document without lines still has a
    row."""
    rows = (
        invoices.annotate(
            _organisation=Coalesce(
                KeyTextTransform("organisation", "buyer"),
                KeyTextTransform("name", "buyer"),
                F("customer__organisation"),
                output_field=CharField(),
            ),
            _buyer_vat_id=Coalesce(
                KeyTextTransform("vat_id", "buyer"), Value(""), output_field=CharField()
            ),
            _buyer_country=Coalesce(
                KeyTextTransform("country", "buyer"),
                F("customer__country"),
                output_field=CharField(),
            ),
            _balance=Case(When(kind=Invoice.Kind.INVOICE, then=balance_expression())),
            _refunded=Case(When(kind=Invoice.Kind.INVOICE, then=refunded_expression())),
        )
        .order_by("issue_date", "number", "lines__position")
        .values_list(
            "number",
            "kind",
            "corrects__number",
            "issue_date",
            "due_date",
            "customer__public_id",
            "_organisation",
            "_buyer_vat_id",
            "_buyer_country",
            "payer",
            "currency",
            "lines__position",
            "lines__description",
            "lines__period_start",
            "lines__period_end",
            "lines__licences",
            "lines__unit_price",
            "lines__amount",
            "vat_treatment",
            "vat_rate",
            "subtotal",
            "vat_amount",
            "total",
            "status",
            "paid_at",
            "_balance",
            "_refunded",
        )
    )
    for row in rows.iterator(chunk_size=INVOICE_CSV_CHUNK_SIZE):
        yield [_csv_value(value) for value in row]


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        # Amounts and rates have two decimals; a sum SQLite (the demo) made as a float, too.
        return f"{value.quantize(Decimal('0.01')):f}"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


# Billing health: what needs staff (the admin's index)


def invoices_pdf_missing_q(*, now: datetime) -> Q:
    """Issued documents with no stored PDF WORK_REQUEUE_AFTER (2 minutes) after their issue and
    after their render was last queued: a PDF is rendered within seconds, so its task was lost
    on the way (a worker died, Redis lost it, a render failed) and the sweeper queues it again."""
    return Q(pdf_sha256="") & overdue_q(
        due_field="issued_at", queued_field="pdf_queued_at", now=now
    )


def invoices_pdf_failed_q() -> Q:
    """Documents whose PDF failed for good (staff were emailed) and has not been made since."""
    return Q(pdf_failure_reported_at__isnull=False) & ~Q(pdf_error="")


@dataclass(frozen=True)
class BillingHealth:
    pdf_missing: int  # no PDF minutes after issue (its render is queued again)
    pdf_failed: int  # PDF failed for good, staff emailed
    holds_open: int  # customers the billing run leaves uninvoiced, and why
    refunds_to_make: int  # refunds pending, or failed at the gateway
    customers_to_invoice: int  # customers with charges today's billing run would invoice


def billing_health(*, now: datetime | None = None) -> BillingHealth:
    """The counts of what needs the vendor's staff, across all resellers (staff only)."""
    now = now or timezone.now()
    pdfs = Invoice.objects.aggregate(
        missing=Count("pk", filter=invoices_pdf_missing_q(now=now)),
        failed=Count("pk", filter=invoices_pdf_failed_q()),
    )
    return BillingHealth(
        pdf_missing=pdfs["missing"],
        pdf_failed=pdfs["failed"],
        holds_open=BillingHold.objects.filter(resolved_on__isnull=True).count(),
        refunds_to_make=Refund.objects.filter(
            status__in=(Refund.Status.PENDING, Refund.Status.FAILED)
        ).count(),
        customers_to_invoice=len(billing_due(day=timezone.localdate(now))),
    )
