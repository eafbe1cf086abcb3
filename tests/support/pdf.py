"""Issued documents written directly (no billing run), for the PDF tests and the benchmark."""

from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from io import BytesIO

import time_machine
from lxml import etree
from pypdf import PdfReader
from pypdf.generic import StreamObject

from billing.models import Invoice, InvoiceLine
from customers.models import Customer

ISSUED_AT = datetime(2026, 1, 31, 9, 30, tzinfo=UTC)
SELLER = {
    "name": "Example Software Ltd",
    "address": "1 Example Quay\nDublin D02 X285",
    "country": "IE",
    "vat_id": "IE6388047V",
    "email": "billing@example.com",
    "iban": "IE29AIBK93115212345678",
    "bic": "AIBKIE2D",
}
CENT = Decimal("0.01")

# (description, licences, unit price, amount, first day, day after the last)
Line = tuple[str, int | None, str, str, date | None, date | None]
JANUARY: list[Line] = [
    (
        "Shared Contacts for Gmail — Flexible",
        10,
        "4.00",
        "40.00",
        date(2026, 1, 1),
        date(2026, 2, 1),
    ),
    ("Shared Contacts for Gmail — Annual", 3, "3.50", "10.50", date(2026, 1, 1), date(2026, 2, 1)),
]


def buyer(customer: Customer, **overrides: str) -> dict[str, str]:
    data = {
        "organisation": customer.organisation,
        "address": "Calle Mayor 1\n28001 Madrid",
        "country": "ES",
        "vat_id": "ESA12345674",
        "email": customer.contact_email,
        "contact_name": customer.contact_name,
        "domain": customer.domain,
        "payer_name": customer.reseller.name,
    }
    data.update(overrides)
    return data


def issue(
    customer: Customer,
    *,
    number: str = "INV-2026-000001",
    language: str = "en",
    vat_treatment: str = Invoice.VatTreatment.DOMESTIC,
    vat_rate: str = "23.00",
    buyer_data: dict[str, str] | None = None,
    seller_data: dict[str, str] | None = None,
    lines: list[Line] | None = None,
    kind: str = Invoice.Kind.INVOICE,
    corrects: Invoice | None = None,
    status: str = Invoice.Status.OPEN,
    issued_at: datetime = ISSUED_AT,
    currency: str = "EUR",
    payer: str = "reseller_card",
) -> Invoice:
    """An issued invoice (or credit note) whose totals reconcile, issued at `issued_at`."""
    lines = JANUARY if lines is None else lines
    subtotal = sum((Decimal(line[3]) for line in lines), Decimal("0.00"))
    rate = Decimal(vat_rate)
    vat_amount = (subtotal * rate / 100).quantize(CENT, rounding=ROUND_HALF_UP)
    with time_machine.travel(issued_at, tick=False):
        invoice = Invoice.objects.create(
            kind=kind,
            number=number,
            corrects=corrects,
            customer=customer,
            reseller=customer.reseller,
            payer=payer,
            currency=currency,
            language=language,
            issue_date=issued_at.date(),
            due_date=issued_at.date() + timedelta(days=14),
            seller=SELLER if seller_data is None else seller_data,
            buyer=buyer_data if buyer_data is not None else buyer(customer),
            vat_treatment=vat_treatment,
            vat_rate=rate,
            subtotal=subtotal,
            vat_amount=vat_amount,
            total=subtotal + vat_amount,
            status=status,
            line_count=len(lines),
        )
    InvoiceLine.objects.bulk_create(
        InvoiceLine(
            invoice=invoice,
            position=position,
            description=description,
            licences=licences,
            unit_price=Decimal(unit_price),
            amount=Decimal(amount),
            period_start=start,
            period_end=end,
        )
        for position, (description, licences, unit_price, amount, start, end) in enumerate(
            lines, start=1
        )
    )
    return invoice


def many_lines(count: int) -> list[Line]:
    return [
        (
            f"Product {n} — Flexible",
            5 + n % 7,
            "4.00",
            f"{(5 + n % 7) * 4}.00",
            date(2026, 1, 1),
            date(2026, 2, 1),
        )
        for n in range(count)
    ]


def pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(BytesIO(content)).pages)


def pdf_attachment(content: bytes, name: str) -> bytes:
    files = PdfReader(BytesIO(content)).attachments
    assert list(files) == [name], list(files)
    [data] = files[name]
    return data


def xmp_tree(content: bytes) -> etree._Element:
    reader = PdfReader(BytesIO(content))
    stream = reader.root_object["/Metadata"].get_object()
    assert isinstance(stream, StreamObject)
    return etree.fromstring(stream.get_data())
