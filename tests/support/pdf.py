"""The PDF tests' invoice (fixed parties, lines and issue time) and readers of what a PDF holds."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from io import BytesIO

from lxml import etree
from pypdf import PdfReader
from pypdf.generic import StreamObject

from billing.models import Invoice
from customers.models import Customer
from tests.factories import InvoiceFactory, Line

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
    vat_rate: str = "23.00",
    lines: list[Line] | None = None,
    issued_at: datetime = ISSUED_AT,
    seller_data: dict[str, str] | None = None,
    buyer_data: dict[str, str] | None = None,
    **fields: object,
) -> Invoice:
    """The invoice the PDF tests read: tests.factories.InvoiceFactory with the parties, lines,
    number and issue time the documents are checked against."""
    return InvoiceFactory(
        customer=customer,
        seller=SELLER if seller_data is None else seller_data,
        buyer=buyer(customer) if buyer_data is None else buyer_data,
        number=number,
        language=language,
        vat_treatment=fields.pop("vat_treatment", Invoice.VatTreatment.DOMESTIC),
        vat_rate=Decimal(vat_rate),
        lines=JANUARY if lines is None else lines,
        issued_at=issued_at,
        due_date=issued_at.date() + timedelta(days=14),
        **fields,
    )


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
