"""The invoice as a document: what its PDF says and where it prints it. Positions are read
with pdfplumber (each word's box), so "fits its column" and "stays on the page" are measured,
not judged by eye."""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from io import BytesIO

import pdfplumber
import pytest
from django.conf import settings
from django.utils import translation

from billing import pdf
from billing.models import Invoice
from core.money import money_format
from resellers.models import Currency
from tests.billing_pdf_helpers import SELLER, buyer, issue

MM = 72 / 25.4  # PDF points per millimetre
PAGE_MARGIN_RIGHT = 15 * MM  # the template's @page margin
TOLERANCE = 0.5  # points: rounding in the PDF's text positions
LARGEST = "9999999.99"
LONG_WORD = "Telekommunikationsdienstleistungsunternehmensberatungsgesellschaft"


@dataclass(frozen=True)
class Column:
    x0: float
    x1: float


def _pages(content: bytes) -> list[tuple[float, list[dict], list[dict]]]:
    """(page width, words, rects) per page; words split on every space, no-break ones too."""
    with pdfplumber.open(BytesIO(content)) as document:
        return [
            (
                float(page.width),
                page.extract_words(x_tolerance=1, use_text_flow=True),
                list(page.rects),
            )
            for page in document.pages
        ]


def _line_columns(rects: list[dict]) -> list[Column]:
    """The lines table's five columns, from the rules under its headings (one per cell)."""
    rows: dict[int, set[tuple[float, float]]] = {}
    for rect in rects:
        if rect["height"] < 30:
            rows.setdefault(round(rect["top"]), set()).add(
                (round(rect["x0"], 1), round(rect["x1"], 1))
            )
    for cells in rows.values():
        if len(cells) == 5:
            return [Column(x0, x1) for x0, x1 in sorted(cells)]
    raise AssertionError(f"no heading row of five cells among {sorted(rows)}")


def _cell_text(words: list[dict], top: float, column: Column) -> tuple[str, list[dict]]:
    """The words printed on the row at `top` whose middle lies in `column`."""
    inside = sorted(
        (
            w
            for w in words
            if abs(w["top"] - top) < 1 and column.x0 <= (w["x0"] + w["x1"]) / 2 < column.x1
        ),
        key=lambda w: w["x0"],
    )
    return " ".join(w["text"] for w in inside), inside


def _flat(text: str) -> str:
    """Spaces as pdfplumber reads them (no-break and narrow no-break spaces are spaces)."""
    return " ".join(text.replace("\u00a0", " ").replace("\u202f", " ").split())


def _largest_invoice(customer, *, language: str, currency: str) -> Invoice:
    return issue(
        customer,
        language=language,
        currency=currency,
        vat_treatment=Invoice.VatTreatment.OUTSIDE_EU,
        vat_rate="0.00",
        buyer_data=buyer(customer, country="US", vat_id=""),
        lines=[
            (
                "Shared Contacts for Gmail — Flexible",
                1,
                LARGEST,
                LARGEST,
                date(2026, 1, 1),
                date(2026, 2, 1),
            ),
        ],
    )


@pytest.mark.django_db
@pytest.mark.parametrize("currency", Currency.values)
@pytest.mark.parametrize("language", [code for code, _name in settings.LANGUAGES])
def test_the_largest_amount_fits_its_column_in_every_language_and_currency(
    tenant, language, currency
):
    invoice = _largest_invoice(tenant.customer, language=language, currency=currency)
    with translation.override(language):
        largest = _flat(money_format(Decimal(LARGEST), currency))

    [(width, words, rects)] = _pages(pdf.invoice_pdf_render(invoice))

    right_edge = width - PAGE_MARGIN_RIGHT + TOLERANCE
    assert [w["text"] for w in words if w["x1"] > right_edge] == []
    columns = _line_columns(rects)
    unit_price, amount = columns[3], columns[4]
    [line_top] = [w["top"] for w in words if w["text"] == "Shared"]
    for column in (unit_price, amount):
        text, inside = _cell_text(words, line_top, column)
        assert text == largest, (column, text)
        assert all(
            column.x0 - TOLERANCE <= w["x0"] and w["x1"] <= column.x1 + TOLERANCE for w in inside
        ), (column, inside)


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["en", "de"])
def test_long_names_descriptions_and_addresses_wrap_inside_the_page(tenant, language):
    long_name = f"{LONG_WORD} Internationale Software- und Beratungsgesellschaft mbH & Co. KG"
    long_address = (
        f"Gewerbepark {LONG_WORD} Nord, Gebäude 7, Aufgang C, 4. Obergeschoss, Raum 4711\n"
        "80331 München"
    )
    invoice = issue(
        tenant.customer,
        language=language,
        seller_data={**SELLER, "name": long_name, "address": long_address},
        buyer_data=buyer(tenant.customer, organisation=long_name, address=long_address),
        lines=[
            (
                f"{LONG_WORD} — Shared Contacts for Gmail, Flexible plan, with every add-on that "
                "the customer ordered during the month, prorated from the day of the order",
                25,
                "4.00",
                "100.00",
                date(2026, 1, 1),
                date(2026, 2, 1),
            )
        ],
    )

    pages = _pages(pdf.invoice_pdf_render(invoice))

    for width, words, _rects in pages:
        right_edge = width - PAGE_MARGIN_RIGHT + TOLERANCE
        assert [w["text"] for w in words if w["x1"] > right_edge] == []
        assert [w["text"] for w in words if w["x0"] < PAGE_MARGIN_RIGHT - TOLERANCE] == []
    text = "".join(w["text"] for _width, words, _rects in pages for w in words)
    # Every long word is printed whole, over as many lines as it needs.
    assert text.count(LONG_WORD) >= 5
