"""The invoice as a document: what its PDF says and where it prints it. Positions are read
with pdfplumber (each word's box), so "fits its column" and "stays on the page" are measured,
not judged by eye."""

import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from io import BytesIO

import pdfplumber
import pytest
from django.conf import settings
from django.template.loader import render_to_string
from django.utils import translation

from billing import pdf, selectors
from billing.models import Invoice, Refund
from core.languages import language_from_locale
from core.models import User
from core.money import money_format
from customers import services as customer_services
from customers.models import Customer
from resellers import services as reseller_services
from resellers.models import Currency, Membership, Reseller, TeamInvitation
from tests.factories import InvoiceFactory, UserFactory
from tests.support.pdf import ISSUED_AT, SELLER, buyer, issue, pdf_text

MM = 72 / 25.4  # PDF points per millimetre
PAGE_MARGIN_RIGHT = 15 * MM  # the template's @page margin
TOLERANCE = 0.5  # points: rounding in the PDF's text positions
LARGEST = "9999999.99"
LONG_WORD = "Telekommunikationsdienstleistungsunternehmensberatungsgesellschaft"
STRIPE_KEYS = {
    "STRIPE_SECRET_KEY": "sk_test_x",
    "STRIPE_PUBLISHABLE_KEY": "pk_test_x",
    "STRIPE_WEBHOOK_SECRET": "whsec_x",
}


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


def _flowing(content: bytes) -> str:
    """The PDF's text with its line breaks as spaces (a sentence may wrap)."""
    return " ".join(pdf_text(content).split())


def _html(invoice: Invoice) -> str:
    with translation.override(invoice.language):
        return render_to_string(pdf.TEMPLATE, pdf.invoice_pdf_context(invoice))


def _credit_note(original: Invoice, *, number: str = "CN-2026-000001") -> Invoice:
    return issue(
        original.customer,
        number=number,
        kind=Invoice.Kind.CREDIT_NOTE,
        corrects=original,
        status=Invoice.Status.CREDITED,
        lines=[
            ("Credit: Shared Contacts for Gmail — Flexible", None, "40.00", "40.00", None, None)
        ],
        issued_at=ISSUED_AT + timedelta(days=3),
    )


@pytest.mark.django_db
def test_with_the_manual_gateway_the_invoice_asks_for_a_bank_transfer_not_a_card(tenant):
    assert selectors.invoice_pays_by_transfer(issue(tenant.customer, number="INV-2026-000099"))
    invoice = issue(tenant.customer)

    text = _flowing(pdf.invoice_pdf_render(invoice))

    for expected in (
        "Due date Feb. 14, 2026",
        "Payer Reseller A",
        "Payment method Bank transfer",
        "Please transfer €62.12 by Feb. 14, 2026 to the account below",
        "IBAN: IE29AIBK93115212345678 · BIC: AIBKIE2D",
        "Reference: INV-2026-000001",
    ):
        assert expected in text, expected
    for wrong in ("Reseller card", "Paid with", "card"):
        assert wrong not in text, wrong


@pytest.mark.django_db
def test_with_stripe_the_invoice_says_whose_card_is_charged_and_when(tenant, settings):
    for key, value in STRIPE_KEYS.items():
        setattr(settings, key, value)
    invoice = issue(tenant.customer)

    text = _flowing(pdf.invoice_pdf_render(invoice))

    assert "Payment method Card" in text
    assert "€62.12 will be charged to the card of Reseller A on Jan. 31, 2026." in text
    for wrong in ("transfer", "IE29AIBK93115212345678", "Paid with"):
        assert wrong not in text, wrong


@pytest.mark.django_db
def test_the_pdf_shows_no_payment_status_so_payment_does_not_change_it(tenant):
    invoice = issue(tenant.customer)
    before = _html(invoice)

    Invoice.objects.filter(pk=invoice.pk).update(
        status=Invoice.Status.PAID, paid_at=ISSUED_AT + timedelta(days=2)
    )
    invoice.refresh_from_db()

    assert _html(invoice) == before
    text = _flowing(pdf.invoice_pdf_render(invoice))
    assert "paid" not in text.lower()
    assert "Open" not in text
    context = pdf.invoice_pdf_context(invoice)
    assert not {"is_paid", "is_open"} & set(context)


@pytest.mark.django_db
def test_a_credit_note_on_an_unpaid_invoice_says_what_it_credits_and_asks_for_nothing(tenant):
    original = issue(tenant.customer)
    credit_note = _credit_note(original)

    text = _flowing(pdf.invoice_pdf_render(credit_note))

    assert "Amount credited: €49.20" in text
    assert "This credit note corrects invoice INV-2026-000001 of Jan. 31, 2026." in text
    assert "€49.20 is deducted from what invoice INV-2026-000001 still owes." in text
    for wrong in ("IE29AIBK93115212345678", "transfer", "Due date", "due", "Payer", "refunded"):
        assert wrong not in text, wrong


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "sentence"),
    [
        (Refund.Method.CARD, "€49.20 will be refunded to the card used for payment."),
        (Refund.Method.TRANSFER, "€49.20 will be refunded by bank transfer to your account."),
    ],
)
def test_a_credit_note_on_a_paid_invoice_says_how_it_is_refunded(tenant, method, sentence):
    original = issue(tenant.customer, status=Invoice.Status.PAID)
    credit_note = _credit_note(original)
    refund = Refund.objects.create(
        invoice=original,
        credit_note=credit_note,
        method=method,
        gateway="stripe" if method == Refund.Method.CARD else "manual",
        amount=Decimal("49.20"),
        currency="EUR",
        idempotency_key=f"{original.number}:refund:1",
    )
    before = _html(credit_note)

    text = _flowing(pdf.invoice_pdf_render(credit_note))

    assert "Amount credited: €49.20" in text
    assert sentence in text
    for wrong in ("IE29AIBK93115212345678", "Please transfer", "Due date", "deducted"):
        assert wrong not in text, wrong
    # The refund's progress is for the pages: the document says the same once it is made.
    refund.status = Refund.Status.SUCCEEDED
    refund.save(update_fields=["status"])
    assert _html(credit_note) == before


# British English: English messages, British dates


def _invite(tenant, **fields: str) -> Customer:
    return customer_services.customer_invite(
        membership=Membership.objects.get(user=tenant.owner, reseller=tenant.reseller),
        organisation=f"Acme ({fields['domain']})",
        contact_name="Sam Smith",
        contact_email=f"sam@{fields['domain']}",
        customer_type="domain",
        crm_id="",
        admin_name="",
        admin_address="",
        admin_alternate_email="",
        admin_phone="",
        time_zone="Europe/London",
        **fields,
    )


@pytest.mark.django_db
def test_british_english_is_a_language_of_every_language_field():
    assert dict(settings.LANGUAGES)["en-gb"] == "British English"
    for model in (User, Reseller, TeamInvitation, Customer, Invoice):
        assert "en-gb" in dict(model._meta.get_field("language").flatchoices), model


@pytest.mark.django_db
def test_gb_resellers_and_customers_read_british_english_by_default(tenant, other_tenant):
    reseller = reseller_services.reseller_apply(
        user=UserFactory(language="en"),
        name="Albion Cloud Ltd",
        country="GB",
        vat_id="",
        billing_email="billing@albion.example",
        currency="GBP",
    )
    assert reseller.language == "en-gb"

    assert _invite(tenant, domain="acme.co.uk", country="GB", language="en").language == "en-gb"
    # Another country keeps the language asked for, English included.
    assert _invite(tenant, domain="acme.com", country="US", language="en").language == "en"
    assert _invite(tenant, domain="acme.es", country="ES", language="es").language == "es"
    # Without a language the customer reads its reseller's, here British English.
    tenant.reseller.language = "en-gb"
    tenant.reseller.save(update_fields=["language"])
    assert _invite(tenant, domain="acme.ie", country="IE").language == "en-gb"


@pytest.mark.django_db
def test_a_gb_customers_invoice_has_british_dates(tenant):
    customer = _invite(tenant, domain="acme.co.uk", country="GB", language="en")
    invoice = issue(
        customer,
        language=customer.language,
        buyer_data=buyer(customer, address="1 High Street\nLondon EC1A 1BB", country="GB"),
    )

    text = _flowing(pdf.invoice_pdf_render(invoice))

    assert "Issue date 31 Jan 2026" in text
    assert "Due date 14 Feb 2026" in text
    assert "01/01/2026 \u2013 31/01/2026" in text  # day/month/year
    assert "01/31/2026" not in text and "Jan. 31" not in text
    assert "Invoice" in text and "Amount due: €62.12" in text  # English messages


@pytest.mark.django_db
def test_pages_in_british_english_show_british_dates(tenant, owner_client):
    invoice = InvoiceFactory(customer=tenant.customer, issue_date=date(2026, 12, 6))
    owner_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en-gb"

    listing = owner_client.get("/invoices/").content.decode()
    detail = owner_client.get(f"/invoices/{invoice.public_id}/").content.decode()

    assert "06/12/2026" in listing and "12/06/2026" not in listing
    assert "6 Dec 2026" in detail and "Dec. 6, 2026" not in detail
    assert '<html lang="en-gb"' in detail


@pytest.mark.django_db
def test_a_user_can_choose_british_english(tenant, owner_client):
    response = owner_client.post("/i18n/setlang/", {"language": "en-gb", "next": "/"})

    assert response.status_code == 302
    tenant.owner.refresh_from_db()
    assert tenant.owner.language == "en-gb"


def test_a_google_locale_picks_the_portals_variant_or_its_language():
    assert language_from_locale("en-GB") == "en-gb"
    assert language_from_locale("en") == "en"
    assert language_from_locale("en-US") == "en"
    assert language_from_locale("fr-CA") == "fr"
    assert language_from_locale("pt-BR") == ""


# Legal wording


@pytest.mark.django_db
def test_a_german_credit_note_is_a_rechnungskorrektur_not_a_gutschrift(tenant):
    """A "Gutschrift" is a self-billed invoice (Art. 226(10a) of the VAT directive, § 14 (2)
    UStG); the document that corrects an invoice is a "Rechnungskorrektur"."""
    original = issue(tenant.customer, language="de")
    credit_note = issue(
        tenant.customer,
        number="CN-2026-000001",
        language="de",
        kind=Invoice.Kind.CREDIT_NOTE,
        corrects=original,
        status=Invoice.Status.CREDITED,
        lines=[("Korrektur zu INV-2026-000001", None, "40.00", "40.00", None, None)],
    )

    text = _flowing(pdf.invoice_pdf_render(credit_note))

    assert "Rechnungskorrektur CN-2026-000001" in text
    assert "Diese Rechnungskorrektur korrigiert die Rechnung INV-2026-000001" in text
    assert "Gutschrift" not in text
    with translation.override("de"):
        # The pages, the emails and the admin say the same.
        for message in ("credit note", "Credit notes", "Issue a credit note", "Credit note issued"):
            assert "Rechnungskorrektur" in translation.gettext(message), message
        assert translation.gettext("Credited") == "Storniert"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("language", "label", "mention"),
    [
        ("de", "Steuerschuldnerschaft des Leistungsempfängers", "Artikel 196"),
        ("fr", "Autoliquidation", "article 196"),
        ("es", "Inversión del sujeto pasivo", "artículo 196"),
        ("nl", "Btw verlegd", "artikel 196"),
    ],
)
def test_a_reverse_charge_invoice_uses_each_countrys_legal_term(tenant, language, label, mention):
    invoice = issue(
        tenant.customer,
        language=language,
        vat_treatment=Invoice.VatTreatment.REVERSE_CHARGE,
        vat_rate="0.00",
    )

    text = _flowing(pdf.invoice_pdf_render(invoice))

    assert f"— {label}" in text  # beside the VAT line
    # The legal sentence (French puts a space before its colon).
    assert re.search(rf"{label} ?:", text) and mention in text and "ESA12345674" in text
