"""Invoices and credit notes: list (the Invoices page's filters, keyset cursors), get, the
stored PDF and the CSV export. One list holds both kinds, as on the page; `kind` narrows it.

Read only, through the page's form, selectors and CSV writer: the same filters, the same
balance, the same file. A credit note's amounts are positive, as on the document: what it
takes away from the invoice it corrects (`corrects`).
"""

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from django.db.models import QuerySet
from django.http import HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import Query, Router, Schema
from ninja.params.functions import Path
from pydantic import Field

from api.auth import ApiRequest, KeyAuth
from api.models import Scope
from api.problems import form_invalid
from api.routes.examples import CURSOR, CURSOR_DESCRIPTION, CUSTOMER_REF, eur, example, examples
from api.schemas import CENT, Money, money
from billing import facturx, selectors
from billing.forms import InvoiceFilterForm
from billing.models import Invoice, InvoiceLine
from billing.views import invoice_pdf_download
from core.csv import csv_response
from resellers.roles import Action, require

router = Router(tags=["Invoices and credit notes"])

# How long a caller should wait before asking again for a PDF the worker has not rendered yet
# (the page says the same: billing.views._pdf_response).
PDF_RETRY_AFTER = "10"


# Examples, for the docs and for schemathesis: Acme Iberia's December invoice for 25 licences
# of Shared Contacts, paid by the reseller's card; a Spanish business with a VAT ID, invoiced
# from Ireland, so the VAT is reverse-charged.


INVOICE_ID = "iV4mX7qC1sL9eR2u"
CREDIT_NOTE_ID = "cN6bH3tY8gJ0wQ5p"
ROW_EXAMPLE: dict[str, Any] = {
    "id": INVOICE_ID,
    "number": "INV-2026-000042",
    "kind": "invoice",
    "corrects": None,
    "customer": CUSTOMER_REF,
    "issue_date": "2026-12-01",
    "due_date": "2026-12-15",
    "status": "paid",
    "overdue": False,
    "payer": "reseller_card",
    "currency": "EUR",
    "subtotal": eur("80.00"),
    "vat_amount": eur("0.00"),
    "total": eur("80.00"),
    "balance": eur("0.00"),
    "refunded": eur("0.00"),
    "paid_at": "2026-12-01T06:02:17Z",
    "pdf_available": True,
}
CREDIT_NOTE_ROW_EXAMPLE: dict[str, Any] = {
    **ROW_EXAMPLE,
    "id": CREDIT_NOTE_ID,
    "number": "CN-2026-000007",
    "kind": "credit_note",
    "corrects": {"id": "Gq1wE4rT7yU0iO3p", "number": "INV-2026-000031"},
    "issue_date": "2026-11-20",
    "due_date": "2026-11-20",
    "subtotal": eur("12.80"),
    "total": eur("12.80"),
    "balance": None,
    "refunded": None,
    "paid_at": None,
}
LINE_EXAMPLE: dict[str, Any] = {
    "position": 1,
    "description": "Shared Contacts for Gmail — Annual, paid monthly: 25 licences, "
    "01/12/2026 - 31/12/2026",
    "period_start": "2026-12-01",
    "period_end": "2027-01-01",
    "licences": 25,
    "unit_price": eur("3.20"),
    "amount": eur("80.00"),
}
SELLER_EXAMPLE: dict[str, Any] = {
    "name": "Example Software Ltd",
    "address_lines": ["1 Example Quay", "Dublin D02 X285"],
    "country": "IE",
    "vat_id": "IE6388047V",
    "email": "billing@example.com",
}
BUYER_EXAMPLE: dict[str, Any] = {
    "name": "Acme Iberia",
    "address_lines": ["Calle de Serrano 21", "28001 Madrid"],
    "country": "ES",
    "vat_id": "ESB87654323",
    "email": "lucia.fernandez@acme-iberia.es",
}
PAYMENT_EXAMPLE: dict[str, Any] = {"amount": eur("80.00"), "received_at": "2026-12-01T06:02:17Z"}
REFUND_EXAMPLE: dict[str, Any] = {
    "amount": eur("12.80"),
    "status": "succeeded",
    "refunded_at": "2026-11-21T09:15:40Z",
}
DETAIL_EXAMPLE: dict[str, Any] = {
    **ROW_EXAMPLE,
    "vat_treatment": "reverse_charge",
    "vat_rate": "0.00",
    "lines": [LINE_EXAMPLE],
    "seller": SELLER_EXAMPLE,
    "buyer": BUYER_EXAMPLE,
    "payer_name": "Nimbus Cloud Partners",
    "pays_by_transfer": False,
    "credit_notes": [],
    "payments": [PAYMENT_EXAMPLE],
    "refunds": [],
}
CSV_EXAMPLE = (
    "invoice_number,kind,corrects,issue_date,due_date,customer_id,organisation,buyer_vat_id,"
    "buyer_country,payer,currency,line_position,description,period_start,period_end,licences,"
    "unit_price,line_amount,vat_treatment,vat_rate,invoice_subtotal,vat_amount,total,status,"
    "paid_at,balance,refunded\r\n"
    "INV-2026-000042,invoice,,2026-12-01,2026-12-15,q3VbH0x9LmT2aZ8c,Acme Iberia,ESB87654323,ES,"
    'reseller_card,EUR,1,"Shared Contacts for Gmail — Annual, paid monthly: 25 licences, '
    '01/12/2026 - 31/12/2026",2026-12-01,2027-01-01,25,3.20,80.00,reverse_charge,0.00,80.00,'
    "0.00,80.00,paid,2026-12-01T06:02:17+00:00,0.00,0.00\r\n"
)

InvoiceId = Annotated[
    str, Path(description="The invoice's or credit note's id.", example=INVOICE_ID)
]


class DocumentRef(Schema):
    id: str
    number: str

    model_config = examples(CREDIT_NOTE_ROW_EXAMPLE["corrects"])


class CustomerRef(Schema):
    id: str
    organisation: str

    model_config = examples(CUSTOMER_REF)


class InvoiceRow(Schema):
    id: str
    number: str
    kind: Literal["invoice", "credit_note"]
    # The invoice a credit note corrects; null on an invoice.
    corrects: DocumentRef | None
    customer: CustomerRef
    issue_date: date
    due_date: date
    status: Literal["open", "paid", "payment_failed", "credited"]
    # Unpaid (open or payment_failed) after its due date (not stored: "overdue" is a filter,
    # not a status).
    overdue: bool
    payer: Literal["reseller_card", "customer_card"]
    currency: str
    subtotal: Money
    vat_amount: Money
    total: Money
    # What the invoice still owes (negative: a refund owed); null on a credit note.
    balance: Money | None
    # Refunded so far; null on a credit note.
    refunded: Money | None
    paid_at: datetime | None
    pdf_available: bool

    model_config = examples(ROW_EXAMPLE, CREDIT_NOTE_ROW_EXAMPLE)


class Line(Schema):
    position: int
    description: str
    period_start: date | None
    # Exclusive, as on the document.
    period_end: date | None
    licences: int | None
    unit_price: Money
    amount: Money

    model_config = examples(LINE_EXAMPLE)


class Party(Schema):
    name: str
    address_lines: list[str]
    country: str
    vat_id: str
    email: str

    model_config = examples(SELLER_EXAMPLE, BUYER_EXAMPLE)


class PaymentOut(Schema):
    amount: Money
    received_at: datetime

    model_config = examples(PAYMENT_EXAMPLE)


class RefundOut(Schema):
    amount: Money
    # pending (to be refunded), succeeded or failed.
    status: str
    refunded_at: datetime | None

    model_config = examples(REFUND_EXAMPLE)


class InvoiceOut(InvoiceRow):
    vat_treatment: Literal["domestic", "reverse_charge", "eu_consumer", "outside_eu"]
    # Percent, as a decimal string ("21.00").
    vat_rate: str
    lines: list[Line]
    seller: Party
    buyer: Party
    # Who pays, as the document names them.
    payer_name: str
    # The document asks for a bank transfer rather than a card charge.
    pays_by_transfer: bool
    credit_notes: list[DocumentRef]
    payments: list[PaymentOut]
    refunds: list[RefundOut]

    model_config = examples(DETAIL_EXAMPLE)


class InvoicePage(Schema):
    items: list[InvoiceRow]
    count: int
    next_cursor: str | None
    previous_cursor: str | None

    model_config = examples(
        {
            "items": [ROW_EXAMPLE, CREDIT_NOTE_ROW_EXAMPLE],
            "count": 2,
            "next_cursor": None,
            "previous_cursor": None,
        }
    )


class PdfPending(Schema):
    title: str
    detail: str

    model_config = examples(
        {
            "title": "The PDF of INV-2026-000042 is being prepared",
            "detail": "It is rendered in the background shortly after the invoice is issued. "
            "Try again in a moment.",
        }
    )


# A query a form field would refuse is refused by the schema already, so that the published
# schema says what is accepted; the form then checks what a schema cannot (month or dates, not
# both; a range that ends before it starts).
NO_NUL = r"^[^\x00]*$"
MONTH = r"^(\d{4}-(0?[1-9]|1[0-2]))?$"
StatusFilter = Literal["", "open", "overdue", "payment_failed", "paid", "credited"]
PayerFilter = Literal["", "reseller_card", "customer_card"]


class InvoiceFilters(Schema):
    """The Invoices page's filters (billing.forms.InvoiceFilterForm), and `kind`."""

    customer: str = Field(
        "",
        max_length=selectors.CUSTOMER_QUERY_MAX_LENGTH,
        pattern=NO_NUL,
        description="A customer's ID, or part of its organisation name.",
        json_schema_extra=example("Acme Iberia"),
    )
    status: StatusFilter = Field("", json_schema_extra=example("paid"))
    payer: PayerFilter = Field("", json_schema_extra=example("reseller_card"))
    # No example: a month and dates at once are refused, and the dates have theirs.
    month: str = Field("", pattern=MONTH, description="YYYY-MM; instead of the dates.")
    date_from: date | None = Field(
        None, description="The first issue date.", json_schema_extra=example("2026-12-01")
    )
    date_to: date | None = Field(
        None, description="The last issue date.", json_schema_extra=example("2026-12-31")
    )
    kind: Literal["", "invoice", "credit_note"] = Field("", json_schema_extra=example("invoice"))


class ListFilters(InvoiceFilters):
    cursor: str = Field(
        "",
        description=CURSOR_DESCRIPTION,
        json_schema_extra=example(CURSOR),
    )


def _money(value: Decimal | None, currency: str) -> dict[str, str] | None:
    return None if value is None else money(value, currency)


def _ref(document: Invoice | None) -> dict[str, str] | None:
    return None if document is None else {"id": document.public_id, "number": document.number}


def _row(invoice: Invoice, *, today: date, balance: Decimal | None, refunded: Decimal) -> dict:
    currency = invoice.currency
    is_invoice = invoice.kind == Invoice.Kind.INVOICE
    return {
        "id": invoice.public_id,
        "number": invoice.number,
        "kind": invoice.kind,
        "corrects": _ref(invoice.corrects),
        "customer": {
            "id": invoice.customer.public_id,
            "organisation": invoice.customer.organisation,
        },
        "issue_date": invoice.issue_date,
        "due_date": invoice.due_date,
        "status": invoice.status,
        "overdue": selectors.invoice_is_overdue(invoice, today=today),
        "payer": invoice.payer,
        "currency": currency,
        "subtotal": _money(invoice.subtotal, currency),
        "vat_amount": _money(invoice.vat_amount, currency),
        "total": _money(invoice.total, currency),
        "balance": _money(balance, currency) if is_invoice else None,
        "refunded": _money(refunded, currency) if is_invoice else None,
        "paid_at": invoice.paid_at,
        "pdf_available": bool(invoice.pdf),
    }


def _party(snapshot: dict[str, Any] | None) -> dict[str, Any]:
    party = facturx.party(snapshot)
    return {
        "name": party.name,
        "address_lines": list(party.address_lines),
        "country": party.country,
        "vat_id": party.vat_id,
        "email": party.email,
    }


def _line(line: InvoiceLine, currency: str) -> dict[str, Any]:
    return {
        "position": line.position,
        "description": line.description,
        "period_start": line.period_start,
        "period_end": line.period_end,
        "licences": line.licences,
        "unit_price": _money(line.unit_price, currency),
        "amount": _money(line.amount, currency),
    }


def _detail(invoice: Invoice) -> dict[str, Any]:
    """What the invoice's page shows (billing.views._invoice_context), read the same way."""
    currency = invoice.currency
    is_invoice = invoice.kind == Invoice.Kind.INVOICE
    refunds = list(selectors.invoice_refunds(invoice=invoice))
    balance = selectors.invoice_balance(invoice) if is_invoice else None
    refunded = sum(
        (refund.amount for refund in refunds if refund.status == refund.Status.SUCCEEDED),
        Decimal("0.00"),
    )
    return {
        **_row(invoice, today=timezone.localdate(), balance=balance, refunded=refunded),
        "vat_treatment": invoice.vat_treatment,
        "vat_rate": f"{invoice.vat_rate.quantize(CENT):f}",
        "lines": [_line(line, currency) for line in invoice.lines.all()],
        "seller": _party(invoice.seller),
        "buyer": _party(invoice.buyer),
        "payer_name": selectors.invoice_payer_name(invoice),
        "pays_by_transfer": selectors.invoice_pays_by_transfer(invoice),
        "credit_notes": [_ref(note) for note in selectors.invoice_credit_notes(invoice=invoice)],
        "payments": [
            {"amount": _money(payment.amount, payment.currency), "received_at": payment.updated_at}
            for payment in selectors.invoice_payments_received(invoice=invoice)
        ],
        "refunds": [
            {
                "amount": _money(refund.amount, refund.currency),
                "status": refund.status,
                "refunded_at": refund.refunded_at,
            }
            for refund in refunds
        ],
    }


def _invoice(request: ApiRequest, invoice_id: str) -> Invoice:
    """The reseller's document, after its role may see invoices."""
    require(request.membership.role, Action.INVOICE_VIEW)
    return selectors.invoice_get(reseller=request.reseller, public_id=invoice_id)


def _filtered(request: ApiRequest, filters: InvoiceFilters) -> QuerySet[Invoice] | HttpResponse:
    """The reseller's documents through the page's filter form, or the form's errors (422)."""
    require(request.membership.role, Action.INVOICE_VIEW)
    form = InvoiceFilterForm(filters.dict(exclude={"kind", "cursor"}))
    if not form.is_valid():
        return form_invalid(form)
    invoices = selectors.invoice_list(reseller=request.reseller, **form.filters())
    return invoices.filter(kind=filters.kind) if filters.kind else invoices


@router.get(
    "/",
    response=InvoicePage,
    auth=KeyAuth(Scope.BILLING_READ),
    url_name="invoice_list",
    summary="List invoices and credit notes",
)
def invoice_list(request: ApiRequest, filters: Query[ListFilters]) -> HttpResponse | dict:
    """Every customer's invoices and credit notes, newest first (by issue date), 50 a page:
    follow `next_cursor`. Filters as on the Invoices page: `customer` (a customer's ID or part
    of its organisation name), `status` (open, overdue, payment_failed, paid, credited),
    `payer` (reseller_card, customer_card), `month` (YYYY-MM) or `date_from` and `date_to`
    (issue dates, both included); and `kind` (invoice, credit_note)."""
    invoices = _filtered(request, filters)
    if isinstance(invoices, HttpResponse):
        return invoices
    page = selectors.invoice_page(
        invoices=invoices.select_related("corrects"), cursor=filters.cursor
    )
    today = timezone.localdate()
    return {
        "items": [
            _row(invoice, today=today, balance=invoice.balance, refunded=invoice.refunded)
            for invoice in page.object_list
        ],
        "count": page.count,
        "next_cursor": page.next_cursor,
        "previous_cursor": page.previous_cursor,
    }


@router.get(
    "/export.csv",
    auth=KeyAuth(Scope.BILLING_READ),
    url_name="invoice_export",
    summary="Export invoices and credit notes as CSV",
    openapi_extra={
        "responses": {
            200: {
                "description": "The CSV",
                "content": {"text/csv": {"schema": {"type": "string"}, "example": CSV_EXAMPLE}},
            }
        }
    },
)
def invoice_export(request: ApiRequest, filters: Query[InvoiceFilters]) -> HttpResponseBase:
    """The filtered documents as the Invoices page exports them: CSV, one row per line, the
    documented columns (invoice_number, kind, corrects, issue_date, … balance, refunded)."""
    invoices = _filtered(request, filters)
    if isinstance(invoices, HttpResponse):
        return invoices
    return csv_response(
        filename=f"invoices-{timezone.localdate().isoformat()}.csv",
        header=selectors.INVOICE_CSV_COLUMNS,
        rows=selectors.invoice_export_rows(invoices=invoices),
    )


@router.get(
    "/{pid:invoice_id}",
    response=InvoiceOut,
    auth=KeyAuth(Scope.BILLING_READ),
    url_name="invoice_get",
    summary="Get an invoice or credit note",
)
def invoice_get(request: ApiRequest, invoice_id: InvoiceId) -> dict:
    """One invoice or credit note: what its page and its PDF say."""
    return _detail(_invoice(request, invoice_id))


@router.get(
    "/{pid:invoice_id}/pdf",
    response={202: PdfPending},
    auth=KeyAuth(Scope.BILLING_READ),
    url_name="invoice_pdf",
    summary="Download an invoice's PDF",
    openapi_extra={
        "responses": {
            200: {
                "description": "The stored PDF (PDF/A-3 with its Factur-X XML)",
                "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
            }
        }
    },
)
def invoice_pdf(request: ApiRequest, invoice_id: InvoiceId) -> HttpResponseBase:
    """The stored PDF, byte for byte the one the page serves. Until the worker has rendered it
    (seconds after issue): 202 with `Retry-After`, as the page does."""
    invoice = _invoice(request, invoice_id)
    download = invoice_pdf_download(invoice)
    if download is not None:
        return download
    # The page's words (templates/billing/invoice_pdf_pending.html), already translated.
    pending = JsonResponse(
        {
            "title": _("The PDF of %(number)s is being prepared") % {"number": invoice.number},
            "detail": _(
                "It is rendered in the background shortly after the invoice is issued. Try "
                "again in a moment."
            ),
        },
        status=202,
    )
    pending["Retry-After"] = PDF_RETRY_AFTER
    return pending
