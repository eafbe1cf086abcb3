"""A commission statement's documents: the Factur-X XML (self-billed invoice, type code 389)
valid against the EN 16931 XSD for each VAT situation and for a correction, the PDF/A-3 that
carries it in the reseller's language, stored once, and the CSV of its lines; both name the
reseller (the supplier) with the postal address it had on the issue date."""

from datetime import date
from decimal import Decimal

import pytest
from django.utils import translation
from lxml import etree

from billing.facturx import NS, FacturXInvalid, self_billed_facturx_xml
from commissions import pdf, statements
from commissions.models import Statement
from core.money import money_format
from resellers.models import Membership
from resellers.services import reseller_update_profile
from tests.factories import UserFactory, statement_for
from tests.support.pdf import pdf_attachment, pdf_text, xmp_tree

D = Decimal
MAY = date(2026, 5, 1)


def xml_of(statement: Statement) -> etree._Element:
    return etree.fromstring(
        self_billed_facturx_xml(statements.statement_facturx_document(statement))
    )


def one(tree: etree._Element, path: str) -> str:
    values = tree.xpath(path, namespaces=NS)
    assert len(values) == 1, (path, values)
    value = values[0]
    return value if isinstance(value, str) else value.text


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("country", "vat_id", "category", "rate"),
    [
        ("IE", "IE6388047V", "S", "23.00"),
        ("DE", "DE136695976", "AE", "0.00"),
        ("US", "", "O", None),
    ],
)
def test_the_xml_is_a_valid_self_billed_invoice_389(tenant, country, vat_id, category, rate):
    tenant.reseller.country, tenant.reseller.vat_id = country, vat_id
    tenant.reseller.save()
    statement = statement_for(tenant.customer, ("10.00", "-2.50", "30.00"), month=MAY)

    tree = xml_of(statement)  # raises FacturXInvalid unless the XSD accepts it

    assert one(tree, "//rsm:ExchangedDocument/ram:TypeCode") == "389"
    assert one(tree, "//rsm:ExchangedDocument/ram:ID") == statement.number
    # The reseller sells its services; the vendor buys and issues.
    assert one(tree, "//ram:SellerTradeParty/ram:Name") == tenant.reseller.name
    assert one(tree, "//ram:SellerTradeParty//ram:CountryID") == country
    assert one(tree, "//ram:BuyerTradeParty/ram:Name") == statement.buyer["name"]
    assert (
        one(tree, "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:CategoryCode")
        == category
    )
    if rate is not None:
        assert (
            one(
                tree,
                "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:RateApplicablePercent",
            )
            == rate
        )
    if category == "AE":
        # BR-AE-02: both VAT ids.
        assert one(tree, "//ram:SellerTradeParty//ram:ID[@schemeID='VA']") == "DE136695976"
        assert (
            one(tree, "//ram:BuyerTradeParty//ram:ID[@schemeID='VA']") == statement.buyer["vat_id"]
        )
    lines = tree.xpath("//ram:IncludedSupplyChainTradeLineItem", namespaces=NS)
    assert len(lines) == 3
    assert tree.xpath("//ram:BilledQuantity/text()", namespaces=NS) == ["1", "-1", "1"]
    assert one(tree, "//ram:TaxBasisTotalAmount") == "37.50"
    assert one(tree, "//ram:GrandTotalAmount") == str(statement.total)
    assert (
        one(tree, "//ram:BillingSpecifiedPeriod/ram:StartDateTime/udt:DateTimeString") == "20260501"
    )
    assert (
        one(tree, "//ram:BillingSpecifiedPeriod/ram:EndDateTime/udt:DateTimeString") == "20260531"
    )


@pytest.mark.django_db
def test_a_corrections_xml_is_negative_and_refers_to_the_statement(tenant):
    statement = statement_for(tenant.customer, ("10.00",), month=MAY)
    correction = statements.statement_correct(statement=statement, actor=UserFactory())

    tree = xml_of(correction)

    assert one(tree, "//rsm:ExchangedDocument/ram:TypeCode") == "389"
    assert one(tree, "//ram:GrandTotalAmount") == "-10.00"
    assert one(tree, "//ram:InvoiceReferencedDocument/ram:IssuerAssignedID") == statement.number


@pytest.mark.django_db
def test_the_xml_check_refuses_an_invalid_statement(tenant):
    statement = statement_for(tenant.customer, ("10.00",), month=MAY)
    document = statements.statement_facturx_document(statement)
    with pytest.raises(FacturXInvalid) as error:
        self_billed_facturx_xml(
            type(document)(**{**document.__dict__, "seller": {**document.seller, "country": ""}})
        )
    assert error.value.code == "seller_country"
    with pytest.raises(FacturXInvalid) as error:
        # An amount that is not an xs:decimal: the XSD check is real.
        self_billed_facturx_xml(type(document)(**{**document.__dict__, "subtotal": D("NaN")}))
    assert error.value.code == "xsd"


@pytest.mark.django_db
def test_the_pdf_is_pdfa_3b_with_the_389_xml_in_the_resellers_language_spanish(tenant):
    tenant.reseller.country, tenant.reseller.vat_id, tenant.reseller.language = (
        "ES",
        "ESA12345674",
        "es",
    )
    tenant.reseller.save()
    statement = statement_for(tenant.customer, ("1234.50",), month=MAY)

    content = pdf.statement_pdf_render(statement)

    assert content.startswith(b"%PDF-1.7")
    xmp = etree.tostring(xmp_tree(content)).decode()
    assert "<pdfaid:part>3</pdfaid:part>" in xmp or 'pdfaid:part="3"' in xmp
    tree = etree.fromstring(pdf_attachment(content, "factur-x.xml"))
    assert one(tree, "//rsm:ExchangedDocument/ram:TypeCode") == "389"
    raw = pdf_text(content)
    text = " ".join(raw.split())  # a table cell may wrap a label over two lines
    assert statement.number in text and tenant.customer.organisation in text
    assert "España" in text and "Irlanda" in text
    with translation.override("es"):
        assert money_format(D("1234.50"), "EUR") in raw
        assert "1.234,50" in text
        for word in ("Issue date", "Currency", "Total", "VAT id", "Reverse charge"):
            assert translation.gettext(word) in text, word
        assert translation.gettext("Issue date") != "Issue date"
    assert "€1,234.50" not in text


@pytest.mark.django_db
def test_the_pdf_is_stored_once_with_its_hash(tenant):
    statement = statement_for(tenant.customer, ("10.00",), month=MAY)

    assert pdf.statement_pdf_store(statement_id=statement.pk) is True
    assert pdf.statement_pdf_store(statement_id=statement.pk) is False

    statement.refresh_from_db()
    assert statement.pdf.name == f"statements/{statement.issue_date.year}/{statement.number}.pdf"
    with statement.pdf.open("rb") as stored:
        content = stored.read()
    assert pdf.statement_pdf_render(statement) == content  # deterministic
    import hashlib

    assert hashlib.sha256(content).hexdigest() == statement.pdf_sha256


@pytest.mark.django_db
def test_issuing_queues_the_pdf_after_commit(tenant, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        statement = statement_for(tenant.customer, ("10.00",), month=MAY)
    statement.refresh_from_db()
    assert statement.pdf_sha256 and statement.pdf.name.endswith(f"{statement.number}.pdf")


# --- The supplier's postal address (EU VAT directive art. 226) ----------------------------------

ADDRESS = "Calle Mayor 1, 3º B\n28013 Madrid"


def seller_address(tree: etree._Element) -> list[str]:
    """The lines of the seller's PostalTradeAddress, in order, with its country last."""
    return [
        element.text
        for element in tree.xpath("//ram:SellerTradeParty/ram:PostalTradeAddress/*", namespaces=NS)
    ]


@pytest.mark.django_db
def test_the_statement_names_the_reseller_with_its_postal_address(tenant):
    tenant.reseller.country, tenant.reseller.vat_id, tenant.reseller.address = (
        "ES",
        "ESA12345674",
        f"  {ADDRESS}\r\n\n",
    )
    tenant.reseller.save()
    statement = statement_for(tenant.customer, ("10.00",), month=MAY)

    assert statement.seller["address"] == tenant.reseller.address
    tree = xml_of(statement)  # raises FacturXInvalid unless the XSD accepts it
    assert seller_address(tree) == ["Calle Mayor 1, 3º B", "28013 Madrid", "ES"]
    content = pdf.statement_pdf_render(statement)
    attached = etree.fromstring(pdf_attachment(content, "factur-x.xml"))
    assert seller_address(attached) == seller_address(tree)
    text = " ".join(pdf_text(content).split())
    # Under "Supplier", as an invoice shows its buyer: name, address lines, country.
    assert f"{tenant.reseller.name} Calle Mayor 1, 3º B 28013 Madrid Spain" in text


@pytest.mark.django_db
def test_a_long_address_fits_the_three_lines_of_the_xml(tenant):
    tenant.reseller.address = "Unit 4\nThe Maltings\nStation Road\nBristol\nBS1 6QH"
    tenant.reseller.save()
    statement = statement_for(tenant.customer, ("10.00",), month=MAY)

    tree = xml_of(statement)

    assert seller_address(tree) == [
        "Unit 4",
        "The Maltings",
        "Station Road, Bristol, BS1 6QH",
        "GB",
    ]
    text = " ".join(pdf_text(pdf.statement_pdf_render(statement)).split())
    assert "Unit 4 The Maltings Station Road Bristol BS1 6QH" in text


@pytest.mark.django_db
def test_an_issued_statement_keeps_the_address_it_was_issued_with(tenant):
    tenant.reseller.address = ADDRESS
    tenant.reseller.save()
    statement = statement_for(tenant.customer, ("10.00",), month=MAY)
    owner = Membership.objects.get(reseller=tenant.reseller, user=tenant.owner)
    reseller_update_profile(membership=owner, address="Gran Vía 2\n28013 Madrid")

    statement.refresh_from_db()
    assert statement.seller["address"] == ADDRESS
    assert seller_address(xml_of(statement))[:2] == ["Calle Mayor 1, 3º B", "28013 Madrid"]
    assert "Gran Vía" not in pdf_text(pdf.statement_pdf_render(statement))
    # A correction is a new document, issued now: it names the supplier as it is today.
    correction = statements.statement_correct(statement=statement, actor=UserFactory())
    assert seller_address(xml_of(correction))[:2] == ["Gran Vía 2", "28013 Madrid"]


@pytest.mark.django_db
def test_a_reseller_without_an_address_still_gets_a_valid_statement(tenant):
    assert tenant.reseller.address == ""
    statement = statement_for(tenant.customer, ("10.00",), month=MAY)

    assert seller_address(xml_of(statement)) == ["GB"]
