"""The invoice looks the same: page 1 of fixed documents, rendered at 100 dpi, against reference
PNGs committed beside this file (tests/billing/pdf_visual/). The references were rendered from
the template as it was before its layout was made cheaper (flex boxes replaced by tables; no
pixel differs since), so any change of what a reader sees shows up here, not only a change of
the words.

Page 1 is rasterised by pypdfium2 (a dev dependency; PDFium comes in its wheel), so the image
does not depend on the machine's PDF tools; the fonts are the ones embedded in the PDF.

A reference that is missing is written and the test fails, so a new one is always looked at
before it is committed. When the look changes on purpose, delete the PNG, run the test, look
at the new file and commit it.
"""

from datetime import date
from pathlib import Path

import pypdfium2
import pytest
from PIL import Image, ImageChops

from billing import pdf
from billing.models import Invoice
from tests.support.pdf import SELLER, issue

REFERENCES = Path(__file__).parent / "pdf_visual"
DPI = 100
# A pixel differs when one of its channels moves by more than this (of 255): anti-aliasing of a
# glyph edge moved by a fraction of a pixel stays under it, a glyph or rule that moved does not.
CHANNEL_TOLERANCE = 48
# Share of page 1's pixels that may differ: about 190 of A4's 827 x 1169 at 100 dpi, a few
# glyph edges; one word moved or changed weight is several hundred, a rule moved a thousand.
PIXEL_TOLERANCE = 0.0002

BUYER = {
    "organisation": "Golden Harbour Dental Ltd",
    "address": "4 Harbour Road\nCork T12 AB34",
    "country": "IE",
    "vat_id": "IE8256796U",
    "email": "accounts@goldenharbour.example",
    "payer_name": "Example Reseller Ltd",
}
LONG_WORD = "Telekommunikationsdienstleistungsunternehmensberatungsgesellschaft"
LONG_NAME = f"{LONG_WORD} Internationale Software- und Beratungsgesellschaft mbH & Co. KG"
LONG_ADDRESS = (
    f"Gewerbepark {LONG_WORD} Nord, Gebäude 7, Aufgang C, 4. Obergeschoss, Raum 4711\n80331 München"
)
PRODUCTS = ("Shared Contacts for Gmail", "Shared Labels", "Drive Backup", "Signature Manager")


def _lines(count: int) -> list[tuple[str, int | None, str, str, date | None, date | None]]:
    return [
        (
            f"{PRODUCTS[n % len(PRODUCTS)]} — Flexible: {5 + n % 7} licences",
            5 + n % 7,
            "4.00",
            f"{(5 + n % 7) * 4}.00",
            date(2026, 1, 1),
            date(2026, 2, 1),
        )
        for n in range(count)
    ]


def _bank_transfer_reverse_charge(customer) -> Invoice:
    """Every block of an invoice: the parties with VAT ids, twelve lines, the VAT mention, the
    bank details to transfer to, the legal footer."""
    return issue(
        customer,
        number="INV-2026-000042",
        vat_treatment=Invoice.VatTreatment.REVERSE_CHARGE,
        vat_rate="0.00",
        seller_data={**SELLER, "payment_means": "transfer"},
        buyer_data={**BUYER, "country": "DE", "vat_id": "DE811569869"},
        lines=_lines(12),
    )


def _german_long_names(customer) -> Invoice:
    """Names and an address longer than their boxes, in German (longer labels), paid by card:
    where the header and the party boxes wrap."""
    return issue(
        customer,
        number="RE-2026-000007",
        language="de",
        vat_rate="19.00",
        seller_data={
            **SELLER,
            "name": LONG_NAME,
            "address": LONG_ADDRESS,
            "country": "DE",
            "payment_means": "card",
        },
        buyer_data={**BUYER, "organisation": LONG_NAME, "address": LONG_ADDRESS, "country": "DE"},
        lines=_lines(3),
    )


def _credit_note(customer) -> Invoice:
    original = _bank_transfer_reverse_charge(customer)
    return issue(
        customer,
        number="CN-2026-000003",
        kind=Invoice.Kind.CREDIT_NOTE,
        corrects=original,
        seller_data={**SELLER, "payment_means": "transfer"},
        buyer_data=BUYER,
        lines=_lines(2),
    )


DOCUMENTS = {
    "invoice_transfer_reverse_charge": _bank_transfer_reverse_charge,
    "invoice_de_long_names": _german_long_names,
    "credit_note": _credit_note,
}


def page_one_png(content: bytes) -> Image.Image:
    document = pypdfium2.PdfDocument(content)
    try:
        bitmap = document[0].render(scale=DPI / 72)
        return bitmap.to_pil().convert("RGB")
    finally:
        document.close()


def differing_pixels(expected: Image.Image, actual: Image.Image) -> int:
    """Pixels where one channel moved by more than CHANNEL_TOLERANCE."""
    difference = ImageChops.difference(expected, actual).convert("L")
    # convert("L") weighs the channels; the template is grey, so all three move alike.
    histogram = difference.histogram()
    return sum(histogram[CHANNEL_TOLERANCE + 1 :])


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_page_one_looks_as_before(tenant, name, tmp_path):
    actual = page_one_png(pdf.invoice_pdf_render(DOCUMENTS[name](tenant.customer)))

    reference = REFERENCES / f"{name}.png"
    if not reference.exists():
        REFERENCES.mkdir(exist_ok=True)
        actual.save(reference, optimize=True)
        pytest.fail(f"{reference} was missing: written; look at it, then commit it")
    with Image.open(reference) as stored:
        expected = stored.convert("RGB")

    assert actual.size == expected.size
    differing = differing_pixels(expected, actual)
    allowed = PIXEL_TOLERANCE * actual.width * actual.height
    if differing > allowed:
        actual.save(tmp_path / f"{name}.png")
        ImageChops.difference(expected, actual).save(tmp_path / f"{name}-difference.png")
    assert differing <= allowed, (
        f"{differing} pixels differ from {reference.name} (at most {allowed:.0f}); "
        f"this render and the difference are in {tmp_path}"
    )


def test_the_comparison_sees_a_moved_word():
    """The tolerance lets anti-aliasing through, not a change a reader would see: a word drawn
    2 pixels lower than in the reference fails."""
    from PIL import ImageDraw

    def page(offset: int) -> Image.Image:
        image = Image.new("RGB", (827, 1169), "white")
        ImageDraw.Draw(image).text((100, 100 + offset), "INV-2026-000042", fill="#111111")
        return image

    allowed = PIXEL_TOLERANCE * 827 * 1169
    assert differing_pixels(page(0), page(0)) == 0
    assert differing_pixels(page(0), page(2)) > allowed
