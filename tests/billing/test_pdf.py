"""Invoice PDFs: PDF/A-3b with the Factur-X (EN 16931) XML attached, the contents a finance team
checks (parties, VAT ids, lines, totals, VAT wording, how and by when to pay), in the invoice's
language; two renders of the same document give the same bytes."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from io import BytesIO

import facturx
import pytest
import time_machine
from django.utils import translation
from lxml import etree
from pypdf import PdfReader
from pypdf.generic import ArrayObject

from billing import pdf
from billing.facturx import NS, invoice_facturx_xml
from billing.models import Invoice
from core.money import money_format
from tests.support.pdf import (
    ISSUED_AT,
    SELLER,
    buyer,
    issue,
    pdf_attachment,
    pdf_text,
    xmp_tree,
)

XMP_NS = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "pdfaid": "http://www.aiim.org/pdfa/ns/id/",
    "fx": "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#",
    "xmp": "http://ns.adobe.com/xap/1.0/",
}
STRIPE_KEYS = {
    "STRIPE_SECRET_KEY": "sk_test_x",
    "STRIPE_PUBLISHABLE_KEY": "pk_test_x",
    "STRIPE_WEBHOOK_SECRET": "whsec_x",
}


def _xmp_value(tree: etree._Element, name: str) -> list[str]:
    """A property written either as an attribute or as an element (both are valid XMP)."""
    return [str(v).strip() for v in tree.xpath(f"//@{name} | //{name}/text()", namespaces=XMP_NS)]


def _xml(invoice: Invoice) -> etree._Element:
    content = pdf.invoice_pdf_render(invoice)
    return etree.fromstring(pdf_attachment(content, "factur-x.xml"))


def _one(tree: etree._Element, path: str) -> str:
    values = tree.xpath(path, namespaces=NS)
    assert len(values) == 1, (path, values)
    value = values[0]
    return value if isinstance(value, str) else value.text


@pytest.mark.django_db
def test_the_pdf_is_pdfa_3b_with_the_facturx_xml_attached(tenant):
    invoice = issue(tenant.customer)

    content = pdf.invoice_pdf_render(invoice)

    assert content.startswith(b"%PDF-1.7")
    xmp = xmp_tree(content)
    assert _xmp_value(xmp, "pdfaid:part") == ["3"]
    assert _xmp_value(xmp, "pdfaid:conformance") == ["B"]
    # The Factur-X XMP properties and their PDF/A extension schema.
    assert _xmp_value(xmp, "fx:DocumentFileName") == ["factur-x.xml"]
    assert _xmp_value(xmp, "fx:DocumentType") == ["INVOICE"]
    assert _xmp_value(xmp, "fx:ConformanceLevel") == ["EN 16931"]
    assert "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#" in etree.tostring(xmp).decode()
    # Dates are the issue time, not the time of rendering.
    assert _xmp_value(xmp, "xmp:CreateDate") == ["2026-01-31T09:30:00+00:00"]

    reader = PdfReader(BytesIO(content))
    catalog = reader.root_object
    assert "/OutputIntents" in catalog
    files = catalog["/AF"]
    assert isinstance(files, ArrayObject)
    [filespec] = [ref.get_object() for ref in files]
    assert filespec["/F"] == "factur-x.xml"
    assert filespec["/AFRelationship"] == "/Alternative"
    assert filespec["/EF"]["/F"].get_object()["/Subtype"] in ("/text/xml", "/application/xml")

    xml = pdf_attachment(content, "factur-x.xml")
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931") is True
    # The library finds the XML where a Factur-X reader looks for it, and its level.
    filename, found = facturx.get_xml_from_pdf(content, check_xsd=True)
    assert (filename, found) == ("factur-x.xml", xml)
    assert facturx.get_level(etree.fromstring(xml)) == "en16931"


@pytest.mark.django_db
def test_the_pdf_shows_what_a_finance_team_checks(tenant):
    invoice = issue(tenant.customer)

    text = pdf_text(pdf.invoice_pdf_render(invoice))

    for expected in (
        "Invoice",
        "INV-2026-000001",
        SELLER["name"],
        "1 Example Quay",
        "IE6388047V",
        "billing@example.com",
        tenant.customer.organisation,
        "Calle Mayor 1",
        "Spain",
        "ESA12345674",
        "Jan. 31, 2026",  # issue date
        "Feb. 14, 2026",  # due date
        "Shared Contacts for Gmail — Flexible",
        "01/01/2026 \u2013 01/31/2026",  # the period, its last day inclusive
        "€4.00",
        "€10.50",
        "€50.50",  # subtotal
        "VAT 23 %",
        "€11.62",  # VAT
        "€62.12",  # total
        "Bank transfer",  # the manual gateway: no card is charged
        tenant.reseller.name,  # who pays
        "Amount due: €62.12",
        "IE29AIBK93115212345678",  # the manual gateway's bank details
        "AIBKIE2D",
    ):
        assert expected in text, expected
    assert "Reverse charge" not in text


@pytest.mark.django_db
def test_the_xml_states_the_same_invoice(tenant):
    invoice = issue(tenant.customer)

    xml = _xml(invoice)

    doc = "/rsm:CrossIndustryInvoice"
    trade = f"{doc}/rsm:SupplyChainTradeTransaction"
    settlement = f"{trade}/ram:ApplicableHeaderTradeSettlement"
    seller = f"{trade}/ram:ApplicableHeaderTradeAgreement/ram:SellerTradeParty"
    buyer_party = f"{trade}/ram:ApplicableHeaderTradeAgreement/ram:BuyerTradeParty"
    assert _one(xml, f"{doc}/rsm:ExchangedDocumentContext//ram:ID") == "urn:cen.eu:en16931:2017"
    assert _one(xml, f"{doc}/rsm:ExchangedDocument/ram:ID") == "INV-2026-000001"
    assert _one(xml, f"{doc}/rsm:ExchangedDocument/ram:TypeCode") == "380"
    assert _one(xml, f"{doc}/rsm:ExchangedDocument//udt:DateTimeString") == "20260131"
    assert _one(xml, f"{seller}/ram:SpecifiedTaxRegistration/ram:ID") == "IE6388047V"
    assert _one(xml, f"{seller}/ram:SpecifiedTaxRegistration/ram:ID/@schemeID") == "VA"
    assert _one(xml, f"{seller}/ram:PostalTradeAddress/ram:CountryID") == "IE"
    assert _one(xml, f"{buyer_party}/ram:Name") == tenant.customer.organisation
    assert _one(xml, f"{buyer_party}/ram:SpecifiedTaxRegistration/ram:ID") == "ESA12345674"
    assert _one(xml, f"{buyer_party}/ram:PostalTradeAddress/ram:CountryID") == "ES"

    items = xml.xpath(f"{trade}/ram:IncludedSupplyChainTradeLineItem", namespaces=NS)
    assert len(items) == 2
    first = items[0]
    assert _one(first, ".//ram:SpecifiedTradeProduct/ram:Name") == (
        "Shared Contacts for Gmail — Flexible"
    )
    assert _one(first, ".//ram:BilledQuantity") == "10"
    assert _one(first, ".//ram:NetPriceProductTradePrice/ram:ChargeAmount") == "4.00"
    assert _one(first, ".//ram:LineTotalAmount") == "40.00"
    assert _one(first, ".//ram:ApplicableTradeTax/ram:CategoryCode") == "S"
    period = ".//ram:BillingSpecifiedPeriod/ram:{}/udt:DateTimeString"
    assert _one(first, period.format("StartDateTime")) == "20260101"
    assert _one(first, period.format("EndDateTime")) == "20260131"

    tax = f"{settlement}/ram:ApplicableTradeTax"
    assert _one(xml, f"{tax}/ram:CategoryCode") == "S"
    assert _one(xml, f"{tax}/ram:RateApplicablePercent") == "23.00"
    assert _one(xml, f"{tax}/ram:BasisAmount") == "50.50"
    assert _one(xml, f"{tax}/ram:CalculatedAmount") == "11.62"
    totals = f"{settlement}/ram:SpecifiedTradeSettlementHeaderMonetarySummation"
    assert _one(xml, f"{totals}/ram:LineTotalAmount") == "50.50"
    assert _one(xml, f"{totals}/ram:TaxBasisTotalAmount") == "50.50"
    assert _one(xml, f"{totals}/ram:TaxTotalAmount") == "11.62"
    assert _one(xml, f"{totals}/ram:TaxTotalAmount/@currencyID") == "EUR"
    assert _one(xml, f"{totals}/ram:GrandTotalAmount") == "62.12"
    assert _one(xml, f"{totals}/ram:DuePayableAmount") == "62.12"
    assert _one(xml, f"{settlement}/ram:InvoiceCurrencyCode") == "EUR"
    assert _one(xml, f"{settlement}/ram:SpecifiedTradePaymentTerms//udt:DateTimeString") == (
        "20260214"
    )
    means = f"{settlement}/ram:SpecifiedTradeSettlementPaymentMeans"
    assert _one(xml, f"{means}/ram:TypeCode") == "58"  # SEPA credit transfer
    assert _one(xml, f"{means}//ram:IBANID") == "IE29AIBK93115212345678"
    assert _one(xml, f"{means}//ram:BICID") == "AIBKIE2D"


@pytest.mark.django_db
def test_a_reverse_charge_invoice_says_so_with_the_buyers_vat_id(tenant):
    invoice = issue(
        tenant.customer,
        vat_treatment=Invoice.VatTreatment.REVERSE_CHARGE,
        vat_rate="0.00",
        buyer_data=buyer(
            tenant.customer, country="DE", vat_id="DE136695976", address="Hauptstr. 5"
        ),
    )

    content = pdf.invoice_pdf_render(invoice)

    text = pdf_text(content)
    assert "Reverse charge" in text
    assert "VAT 0 %" in text
    assert "Customer VAT id: DE136695976" in text
    assert "€50.50" in text  # total = subtotal
    xml = etree.fromstring(pdf_attachment(content, "factur-x.xml"))
    tax = "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax"
    assert _one(xml, f"{tax}/ram:CategoryCode") == "AE"
    assert _one(xml, f"{tax}/ram:ExemptionReasonCode") == "VATEX-EU-AE"
    assert _one(xml, f"{tax}/ram:ExemptionReason") == "Reverse charge"
    assert _one(xml, f"{tax}/ram:CalculatedAmount") == "0.00"
    # BR-AE-02: both VAT ids.
    assert xml.xpath("//ram:SpecifiedTaxRegistration/ram:ID/text()", namespaces=NS) == [
        "IE6388047V",
        "DE136695976",
    ]
    assert facturx.xml_check_xsd(etree.tostring(xml), flavor="factur-x", level="en16931")


@pytest.mark.django_db
def test_an_invoice_outside_the_eu_is_outside_the_scope_of_eu_vat(tenant):
    invoice = issue(
        tenant.customer,
        vat_treatment=Invoice.VatTreatment.OUTSIDE_EU,
        vat_rate="0.00",
        buyer_data=buyer(tenant.customer, country="US", vat_id="", address="1 Main St\nBoston MA"),
    )

    content = pdf.invoice_pdf_render(invoice)

    text = pdf_text(content)
    assert "Outside the scope of EU VAT" in text
    assert "United States" in text
    xml = etree.fromstring(pdf_attachment(content, "factur-x.xml"))
    tax = "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax"
    assert _one(xml, f"{tax}/ram:CategoryCode") == "O"
    assert _one(xml, f"{tax}/ram:ExemptionReasonCode") == "VATEX-EU-O"
    assert not xml.xpath(f"{tax}/ram:RateApplicablePercent", namespaces=NS)
    # BR-O-02: no VAT id in the XML; the seller is identified by BT-29 instead (BR-CO-26).
    assert not xml.xpath("//ram:SpecifiedTaxRegistration", namespaces=NS)
    assert _one(xml, "//ram:SellerTradeParty/ram:ID") == "IE6388047V"
    assert facturx.xml_check_xsd(etree.tostring(xml), flavor="factur-x", level="en16931")


@pytest.mark.django_db
def test_a_credit_note_refers_to_the_invoice_it_corrects(tenant):
    original = issue(tenant.customer)
    credit_note = issue(
        tenant.customer,
        number="CN-2026-000001",
        kind=Invoice.Kind.CREDIT_NOTE,
        corrects=original,
        status=Invoice.Status.CREDITED,
        lines=[
            ("Credit: Shared Contacts for Gmail — Flexible", None, "40.00", "40.00", None, None)
        ],
        issued_at=ISSUED_AT + timedelta(days=3),
    )

    content = pdf.invoice_pdf_render(credit_note)

    text = pdf_text(content)
    assert "Credit note" in text
    assert "CN-2026-000001" in text
    assert "INV-2026-000001 of Jan. 31, 2026" in text
    assert "IE29AIBK93115212345678" not in text  # nothing to pay
    xml = etree.fromstring(pdf_attachment(content, "factur-x.xml"))
    assert _one(xml, "//rsm:ExchangedDocument/ram:TypeCode") == "381"
    reference = "//ram:InvoiceReferencedDocument"
    assert _one(xml, f"{reference}/ram:IssuerAssignedID") == "INV-2026-000001"
    assert _one(xml, f"{reference}//qdt:DateTimeString") == "20260131"
    assert _one(xml, "//ram:GrandTotalAmount") == "49.20"
    assert facturx.xml_check_xsd(etree.tostring(xml), flavor="factur-x", level="en16931")


@pytest.mark.django_db
def test_a_credit_note_stored_with_negative_amounts_states_positive_ones(tenant):
    original = issue(tenant.customer)
    credit_note = issue(
        tenant.customer,
        number="CN-2026-000002",
        kind=Invoice.Kind.CREDIT_NOTE,
        corrects=original,
        lines=[("Credit", 10, "4.00", "-40.00", None, None)],
    )

    xml = invoice_facturx_xml(credit_note, pays_by_transfer=True)

    tree = etree.fromstring(xml)
    assert _one(tree, "//ram:GrandTotalAmount") == "49.20"
    assert _one(tree, "//ram:BilledQuantity") == "10"
    assert _one(tree, "//ram:NetPriceProductTradePrice/ram:ChargeAmount") == "4.00"


@pytest.mark.django_db
def test_a_spanish_customers_invoice_is_in_spanish(tenant):
    invoice = issue(tenant.customer, language="es")

    text = pdf_text(pdf.invoice_pdf_render(invoice))

    assert "31 de enero de 2026" in text
    assert "14 de febrero de 2026" in text
    assert "España" in text and "Irlanda" in text
    with translation.override("es"):
        assert money_format(Decimal("62.12"), "EUR") in text
        assert "62,12" in text
        flowing = " ".join(text.split())  # a table cell may wrap a label over two lines
        for word in ("Invoice", "Licences", "Amount", "Total", "Bank transfer"):
            assert translation.gettext(word) in flowing, word
    assert "Jan. 31, 2026" not in text
    assert "€62.12" not in text


@pytest.mark.django_db
def test_a_paid_invoice_prints_no_payment_status(tenant):
    invoice = issue(tenant.customer, status=Invoice.Status.PAID)
    invoice.paid_at = datetime(2026, 2, 3, 10, 0, tzinfo=UTC)
    invoice.save(update_fields=["paid_at"])

    content = pdf.invoice_pdf_render(invoice)

    text = pdf_text(content)
    # Paid or not shows on the pages and in the receipt; the document is as it was issued.
    assert "Paid" not in text
    assert "Open" not in text
    # Nor does the XML: it states what was due at issue.
    xml = etree.fromstring(pdf_attachment(content, "factur-x.xml"))
    assert not xml.xpath("//ram:TotalPrepaidAmount", namespaces=NS)
    assert _one(xml, "//ram:DuePayableAmount") == "62.12"


@pytest.mark.django_db
def test_with_stripe_the_card_pays_and_no_bank_details_are_printed(tenant, settings):
    for key, value in STRIPE_KEYS.items():
        setattr(settings, key, value)
    invoice = issue(tenant.customer)

    content = pdf.invoice_pdf_render(invoice)

    text = pdf_text(content)
    assert "IE29AIBK93115212345678" not in text
    assert "will be charged to the card of" in text
    xml = etree.fromstring(pdf_attachment(content, "factur-x.xml"))
    assert _one(xml, "//ram:SpecifiedTradeSettlementPaymentMeans/ram:TypeCode") == "48"
    assert not xml.xpath("//ram:IBANID", namespaces=NS)


@pytest.mark.django_db
def test_bank_details_come_from_the_settings_when_the_snapshot_has_none(tenant, settings):
    settings.VENDOR_BANK_IBAN = "DE89 3704 0044 0532 0130 00"
    settings.VENDOR_BANK_BIC = "COBADEFFXXX"
    invoice = issue(
        tenant.customer,
        seller_data={key: value for key, value in SELLER.items() if key not in ("iban", "bic")},
    )

    content = pdf.invoice_pdf_render(invoice)

    assert "DE89370400440532013000" in pdf_text(content)
    xml = etree.fromstring(pdf_attachment(content, "factur-x.xml"))
    assert _one(xml, "//ram:IBANID") == "DE89370400440532013000"


@pytest.mark.django_db
def test_a_prorated_line_is_one_unit_at_its_amount_in_the_xml(tenant):
    invoice = issue(
        tenant.customer,
        lines=[
            ("Shared Contacts — 17 days", 10, "4.00", "21.94", date(2026, 1, 15), date(2026, 2, 1))
        ],
    )

    xml = etree.fromstring(invoice_facturx_xml(invoice, pays_by_transfer=True))

    assert _one(xml, "//ram:BilledQuantity") == "1"
    assert _one(xml, "//ram:NetPriceProductTradePrice/ram:ChargeAmount") == "21.94"
    assert _one(xml, "//ram:IncludedSupplyChainTradeLineItem//ram:LineTotalAmount") == "21.94"
    assert _one(xml, "//ram:AssociatedDocumentLineDocument/ram:IncludedNote/ram:Content") == (
        "10 licences at 4.00"
    )


@pytest.mark.django_db
def test_the_xml_check_rejects_an_invalid_document(tenant):
    """The XSD check is real: the same XML without its mandatory currency fails it."""
    invoice = issue(tenant.customer)
    tree = etree.fromstring(invoice_facturx_xml(invoice, pays_by_transfer=True))
    currency = tree.xpath("//ram:InvoiceCurrencyCode", namespaces=NS)[0]
    currency.getparent().remove(currency)

    with pytest.raises(Exception, match="not valid against the official XML Schema"):
        facturx.xml_check_xsd(etree.tostring(tree), flavor="factur-x", level="en16931")


@pytest.mark.django_db
def test_rendering_is_deterministic_whatever_the_payment_state(tenant):
    invoice = issue(tenant.customer)

    first = pdf.invoice_pdf_render(invoice)
    with time_machine.travel(ISSUED_AT + timedelta(days=40), tick=False):
        later = pdf.invoice_pdf_render(invoice)
    assert first == later

    # The issued document never changes (issue 10): paying it leaves its bytes as they were.
    Invoice.objects.filter(pk=invoice.pk).update(
        status=Invoice.Status.PAID, paid_at=ISSUED_AT + timedelta(days=2)
    )
    invoice.refresh_from_db()
    assert pdf.invoice_pdf_render(invoice) == first


@pytest.mark.django_db
def test_a_long_invoice_runs_over_pages_with_every_line(tenant):
    from tests.support.pdf import many_lines

    invoice = issue(tenant.customer, lines=many_lines(60))

    content = pdf.invoice_pdf_render(invoice)

    reader = PdfReader(BytesIO(content))
    assert len(reader.pages) >= 2
    text = pdf_text(content)
    assert all(f"Product {n} — Flexible" in text for n in range(60))
    assert f"Page 1 / {len(reader.pages)}" in text
    xml = pdf_attachment(content, "factur-x.xml")
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
