"""Invoices written directly with the ORM, every non-null field set, for the page tests and the
URL sweeps (no billing run, numbering or VAT rules: those have their own tests)."""

import itertools
from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal

from django.core.files.base import ContentFile
from django.utils import timezone

from billing.models import Invoice, InvoiceLine
from customers.models import Customer
from resellers.models import Reseller

_numbers = itertools.count(1)
CENT = Decimal("0.01")
# What a PDF starts with; enough for the download tests (the PDF part tests real rendering).
FAKE_PDF = b"%PDF-1.7\n% fake invoice for tests\n%%EOF\n"


def invoice_create(
    customer: Customer,
    *,
    kind: str = Invoice.Kind.INVOICE,
    corrects: Invoice | None = None,
    issue_date: date | None = None,
    due_date: date | None = None,
    payer: str = "reseller_card",
    currency: str = "EUR",
    status: str = Invoice.Status.OPEN,
    subtotal: Decimal = Decimal("100.00"),
    vat_rate: Decimal = Decimal("21.00"),
    vat_treatment: str = Invoice.VatTreatment.DOMESTIC,
    lines: int = 1,
    pdf: bytes | None = None,
    descriptions: Sequence[str] = (),
    reseller: Reseller | None = None,
    **fields: object,
) -> Invoice:
    issue_date = issue_date or timezone.localdate()
    series = "CN" if kind == Invoice.Kind.CREDIT_NOTE else "INV"
    vat_amount = (subtotal * vat_rate / 100).quantize(CENT)
    invoice = Invoice.objects.create(
        kind=kind,
        number=f"{series}-{issue_date.year}-{next(_numbers):06d}",
        corrects=corrects,
        customer=customer,
        reseller=reseller or customer.reseller,
        payer=payer,
        currency=currency,
        language=customer.language,
        issue_date=issue_date,
        due_date=due_date or issue_date + timedelta(days=14),
        seller={
            "name": "Example Software Ltd",
            "address": "1 Vendor Street\nLondon",
            "country": "GB",
            "vat_id": "GB123456789",
            "email": "billing@vendor.example",
        },
        buyer={
            "organisation": customer.organisation,
            "address": "2 Customer Road\nMadrid",
            "country": str(customer.country) or "ES",
            "vat_id": customer.vat_id,
            "email": customer.contact_email,
        },
        vat_treatment=vat_treatment,
        vat_rate=vat_rate,
        subtotal=subtotal,
        vat_amount=vat_amount,
        total=subtotal + vat_amount,
        status=status,
        line_count=lines,
        **fields,
    )
    share = (subtotal / lines).quantize(CENT) if lines else Decimal(0)
    InvoiceLine.objects.bulk_create(
        InvoiceLine(
            invoice=invoice,
            position=position,
            description=(
                descriptions[position - 1]
                if position <= len(descriptions)
                else f"Workspace Business, line {position}"
            ),
            period_start=issue_date,
            period_end=issue_date + timedelta(days=30),
            licences=5,
            unit_price=(share / 5).quantize(CENT),
            amount=share if position < lines else subtotal - share * (lines - 1),
        )
        for position in range(1, lines + 1)
    )
    if pdf is not None:
        invoice.pdf.save(f"{invoice.number}.pdf", ContentFile(pdf), save=False)
        invoice.save(update_fields=["pdf"])
    return invoice
