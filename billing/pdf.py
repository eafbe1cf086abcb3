"""The PDF of an invoice or credit note: WeasyPrint renders templates/billing/invoice_pdf.html
(styled by templates/billing/invoice_pdf.css) in the invoice's language as PDF/A-3b, with its
Factur-X (EN 16931) XML attached, in one pass: no post-processing of the PDF.

Rendering is deterministic: the PDF's dates are the invoice's issue time, its identifier is
derived from its content, nothing is fetched, the fonts carry no render time. The same document
gives the same bytes, so a stored PDF's SHA-256 tells whether rendering again would change
anything. It is rendered once, when issued (invoice_pdf_store): its bytes never change after,
and a render that would differ is refused.
"""

import functools
import gc
import hashlib
import logging
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, NoReturn

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import InterfaceError, OperationalError, transaction
from django.template.loader import render_to_string
from django.utils import formats, translation
from django.utils.translation import gettext
from django_countries import countries

from billing import facturx
from billing.models import Invoice, InvoiceLine, Refund
from billing.notifications import invoice_email_send, invoice_pdf_failure_report
from billing.selectors import invoice_payer_name, invoice_pays_by_transfer
from billing.vat import vat_legal_mention
from core.money import money_format

# WeasyPrint (with Pango, fontTools and pydyf) is imported where a PDF is rendered, not here:
# loading it took most of each process's start (manage.py, every web and Celery worker).
if TYPE_CHECKING:
    import pydyf
    from weasyprint import CSS, HTML
    from weasyprint.text.fonts import FontConfiguration
    from weasyprint.urls import URLFetcher

logger = logging.getLogger(__name__)

PDF_VARIANT = "pdf/a-3b"
TEMPLATE = "billing/invoice_pdf.html"
STYLESHEET = "billing/invoice_pdf.css"
PDF_ERROR_MAX = 2000

# Without HarfBuzz-Subset (the Dockerfile installs it; a development machine may lack it)
# WeasyPrint subsets fonts with fontTools, which stamps each subset with the time it was
# written (the font's head.modified) unless SOURCE_DATE_EPOCH says which time to use (the
# reproducible-builds convention). With the clock in its bytes no render would ever match the
# SHA-256 recorded at issue, so the stamp is fixed here. Never change it: renders of the
# documents already issued must keep matching.
FONT_SUBSET_TIMESTAMP = "1767225600"  # 2026-01-01T00:00:00Z
os.environ["SOURCE_DATE_EPOCH"] = FONT_SUBSET_TIMESTAMP

# The Factur-X PDF/A extension schema and its four properties (Factur-X 1.0, section 6.2.2);
# WeasyPrint adds this RDF to the PDF/A identification it writes itself.
FACTURX_XMP = """<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
    xmlns:fx="urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#"
    xmlns:pdfaExtension="http://www.aiim.org/pdfa/ns/extension/"
    xmlns:pdfaSchema="http://www.aiim.org/pdfa/ns/schema#"
    xmlns:pdfaProperty="http://www.aiim.org/pdfa/ns/property#">
  <rdf:Description rdf:about="">
    <fx:DocumentType>INVOICE</fx:DocumentType>
    <fx:DocumentFileName>{filename}</fx:DocumentFileName>
    <fx:Version>1.0</fx:Version>
    <fx:ConformanceLevel>{level}</fx:ConformanceLevel>
  </rdf:Description>
  <rdf:Description rdf:about="">
    <pdfaExtension:schemas>
      <rdf:Bag>
        <rdf:li rdf:parseType="Resource">
          <pdfaSchema:schema>Factur-X PDFA Extension Schema</pdfaSchema:schema>
          <pdfaSchema:namespaceURI>urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#</pdfaSchema:namespaceURI>
          <pdfaSchema:prefix>fx</pdfaSchema:prefix>
          <pdfaSchema:property>
            <rdf:Seq>
{properties}
            </rdf:Seq>
          </pdfaSchema:property>
        </rdf:li>
      </rdf:Bag>
    </pdfaExtension:schemas>
  </rdf:Description>
</rdf:RDF>
"""
FACTURX_XMP_PROPERTY = """              <rdf:li rdf:parseType="Resource">
                <pdfaProperty:name>{name}</pdfaProperty:name>
                <pdfaProperty:valueType>Text</pdfaProperty:valueType>
                <pdfaProperty:category>external</pdfaProperty:category>
                <pdfaProperty:description>{description}</pdfaProperty:description>
              </rdf:li>"""
FACTURX_XMP_PROPERTIES = (
    ("DocumentFileName", "The name of the embedded XML document"),
    ("DocumentType", "The type of the hybrid document in capital letters, e.g. INVOICE"),
    ("Version", "The actual version of the standard applying to the embedded XML document"),
    ("ConformanceLevel", "The conformance level of the embedded XML document"),
)


def facturx_xmp() -> bytes:
    properties = "\n".join(
        FACTURX_XMP_PROPERTY.format(name=name, description=description)
        for name, description in FACTURX_XMP_PROPERTIES
    )
    return FACTURX_XMP.format(
        filename=facturx.FACTURX_FILENAME,
        level=facturx.FACTURX_XMP_LEVEL,
        properties=properties,
    ).encode()


@functools.cache
def _no_fetching() -> "URLFetcher":
    """The template is self-contained: any URL in it is a mistake, never a request."""
    from weasyprint.urls import URLFetcher

    class _NoFetching(URLFetcher):
        def fetch(self, url: str, headers: dict[str, str] | None = None) -> NoReturn:
            raise ValueError(f"invoice PDFs fetch nothing ({url})")

    # One per process: building a URLFetcher loads the system's CA certificates (~0.2 s).
    return _NoFetching()


_per_thread = threading.local()


def _font_config() -> "FontConfiguration":
    """One font configuration per thread, kept: WeasyPrint's default, a new one per document,
    leaves about 0.3 MiB behind in Pango and fontconfig each time (RSS grew by 110 MiB over 500
    renders in benchmarks/invoice_pdf.py; with this it levels off after the first few)."""
    config = getattr(_per_thread, "font_config", None)
    if config is None:
        from weasyprint.text.fonts import FontConfiguration

        config = _per_thread.font_config = FontConfiguration()
    return config


def _stylesheet() -> "CSS":
    """The template's stylesheet, parsed once per thread and kept (with the font configuration
    it was parsed for): in a <style> element WeasyPrint parsed it again for every document."""
    stylesheet = getattr(_per_thread, "stylesheet", None)
    if stylesheet is None:
        from weasyprint import CSS

        stylesheet = _per_thread.stylesheet = CSS(
            string=render_to_string(STYLESHEET),
            url_fetcher=_no_fetching(),
            font_config=_font_config(),
        )
    return stylesheet


# The rules of WeasyPrint's user-agent stylesheet (weasyprint/css/html5_ua.css) that give every
# element of every document a ::marker and five footnote and note pseudo-elements.
UA_PSEUDO_ELEMENT_RULES = re.compile(
    r"^::(?:marker|footnote-call|footnote-marker|note-call|note-marker|note-callback) "
    r"\{[^{}\n]*\}\n",
    re.MULTILINE,
)
UA_PSEUDO_ELEMENT_RULE_COUNT = 6


@functools.cache
def _document_html() -> type["HTML"]:
    """WeasyPrint's HTML class, with its user-agent stylesheet less the rules that give every
    element a ::marker and the footnote and note pseudo-elements (footnote-call and -marker,
    note-call, -marker and -callback).

    Those six universal rules made WeasyPrint compute six pseudo-element styles for each element
    of the document, none of them ever used (the documents have no list items, footnotes or
    notes): six out of seven computed styles of a render, about 36 for each invoice line, kept
    until the render ends and then freed by the garbage collection at its end. Without them a
    render takes about a tenth less CPU at every length and writes the very same bytes (the
    PDFs already issued keep matching their SHA-256). The stylesheet is otherwise WeasyPrint's
    own, read from the installed package; should an upgrade change those rules, documents are
    rendered with the stylesheet as it is (logged), never with a stylesheet cut wrongly."""
    from weasyprint import CSS, HTML
    from weasyprint.css.counters import CounterStyle
    from weasyprint.html import UA

    user_agent, removed = UA_PSEUDO_ELEMENT_RULES.subn("", UA)
    if removed != UA_PSEUDO_ELEMENT_RULE_COUNT:
        logger.warning(
            "WeasyPrint's user-agent stylesheet has %d of the %d pseudo-element rules expected: "
            "documents are rendered with it unchanged",
            removed,
            UA_PSEUDO_ELEMENT_RULE_COUNT,
        )
        return HTML
    # Its @counter-style rules are parsed into a counter style of its own: each render takes a
    # copy of WeasyPrint's (HTML._ua_counter_style), which has them already.
    stylesheet = CSS(string=user_agent, counter_style=CounterStyle())

    class _DocumentHTML(HTML):
        def _ua_stylesheets(self, forms: bool = False) -> list["CSS"]:
            # Documents have no form fields; WeasyPrint's form stylesheet if one ever does.
            return [stylesheet, *super()._ua_stylesheets(forms)[1:]]

    return _DocumentHTML


# How many renders run now in this process, and whether the cyclic garbage collector was on when
# the first of them paused it (see _collector_paused).
_pause_lock = threading.Lock()
_pauses = 0
_collector_was_enabled = False


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while WeasyPrint renders, and the render's own cycles
    collected at the end.

    A render allocates tens of thousands of linked objects (boxes, styles, Pango layouts) that
    stay alive until it ends and are then freed by reference counting. While it runs, the
    collector's young collections walk them again and again, and once they outnumber a quarter
    of the process's long-lived objects a full collection walks every object in the process
    (Django's, WeasyPrint's: about 190,000 in the benchmark's worker), about 120 ms: each
    100-line invoice triggered one, a 10-line invoice one in five. Paused, none of that walking
    happens; what the render leaves in cycles is collected at its end (a collection of the young
    generations, a few milliseconds), so nothing is left for whatever runs next. The collector is
    process-wide: renders in several threads pause it once, and the last one to end turns it back
    on if it was on."""
    global _pauses, _collector_was_enabled
    with _pause_lock:
        if _pauses == 0:
            _collector_was_enabled = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pauses -= 1
            resume = _pauses == 0 and _collector_was_enabled
            if resume:
                gc.enable()
        if resume:
            gc.collect(1)


@dataclass(frozen=True)
class PdfLine:
    """A line as printed, its dates and amounts already in the invoice's language."""

    description: str
    period: str
    licences: str
    unit_price: str
    amount: str


def _pdf_lines(lines: list[InvoiceLine], currency: str) -> list[PdfLine]:
    """Formatted once per distinct value: a long invoice repeats the same periods and prices,
    and formatting (babel, Django's date formats) is a good part of each line's cost."""
    money = functools.cache(lambda amount: money_format(amount, currency))
    day = functools.cache(lambda value: formats.date_format(value, "SHORT_DATE_FORMAT"))
    return [
        PdfLine(
            description=line.description,
            # period_end is exclusive: print the last day the line covers.
            period=(
                f"{day(line.period_start)} \u2013 {day(line.period_end - timedelta(days=1))}"
                if line.period_start and line.period_end
                else ""
            ),
            licences="" if line.licences is None else str(line.licences),
            unit_price=money(line.unit_price),
            amount=money(line.amount),
        )
        for line in lines
    ]


def _country_name(code: str) -> str:
    return str(countries.name(code)) if code else ""


@dataclass(frozen=True)
class PdfRefund:
    """How a credit note's amount goes back to the payer, as decided when it was issued."""

    amount: Decimal
    by_card: bool


def _pdf_refunds(credit_note: Invoice) -> list[PdfRefund]:
    """The refunds the credit note made owed, recorded in the transaction that issued it.
    Their amount and method only: their status changes later, the document does not."""
    return [
        PdfRefund(amount=amount, by_card=method == Refund.Method.CARD)
        for method, amount in credit_note.credit_note_refunds.order_by("pk").values_list(
            "method", "amount"
        )
    ]


def invoice_pdf_context(invoice: Invoice) -> dict[str, object]:
    """What the template shows; call it with the invoice's language active.

    Only what is fixed when the document is issued: how the invoice is to be paid (by the card
    of whoever pays, or by bank transfer with the manual gateway) and by when, never whether it
    was paid, which the pages and the payment receipt tell. A credit note asks for nothing: it
    says what it credits and how the amount is refunded if the invoice was paid."""
    seller, buyer = facturx.party(invoice.seller), facturx.party(invoice.buyer)
    iban, bic = facturx.bank_account(invoice)
    by_transfer = invoice_pays_by_transfer(invoice)
    is_credit_note = invoice.kind == Invoice.Kind.CREDIT_NOTE
    return {
        "invoice": invoice,
        "is_credit_note": is_credit_note,
        "title": gettext("Credit note") if is_credit_note else gettext("Invoice"),
        "seller": seller,
        "seller_country": _country_name(seller.country),
        "buyer": buyer,
        "buyer_country": _country_name(buyer.country),
        "lines": _pdf_lines(list(invoice.lines.all()), invoice.currency),
        "vat": facturx.vat_category(invoice),
        "vat_mention": vat_legal_mention(
            treatment=invoice.vat_treatment,
            buyer_vat_id=buyer.vat_id,
            buyer_country=_country_name(buyer.country),
        ),
        # Who pays: the reseller's name for the reseller card, the organisation for the
        # customer's (billing.services snapshots it at issue).
        "payer_name": invoice_payer_name(invoice),
        "is_reverse_charge": invoice.vat_treatment == Invoice.VatTreatment.REVERSE_CHARGE,
        "is_outside_eu": invoice.vat_treatment == Invoice.VatTreatment.OUTSIDE_EU,
        "is_eu_consumer": invoice.vat_treatment == Invoice.VatTreatment.EU_CONSUMER,
        "pays_by_transfer": by_transfer,
        "refunds": _pdf_refunds(invoice) if is_credit_note else [],
        "iban": iban,
        "bic": bic,
        "portal_name": settings.PORTAL_NAME,
        "created": invoice.issued_at.isoformat(timespec="seconds"),
    }


def invoice_pdf_render(invoice: Invoice) -> bytes:
    """The invoice's PDF/A-3b with its Factur-X XML attached, in the invoice's language."""
    with _collector_paused():
        # In a function of its own, so that the document is gone when the collector runs.
        return _pdf_render(invoice)


def _pdf_render(invoice: Invoice) -> bytes:
    xml = facturx.invoice_facturx_xml(invoice, pays_by_transfer=invoice_pays_by_transfer(invoice))
    with translation.override(invoice.language):
        html = render_to_string(TEMPLATE, invoice_pdf_context(invoice))
    return _facturx_pdf_write(html=html, xml=xml, created=invoice.issued_at)


def facturx_pdf_render(*, html: str, xml: bytes, created: datetime) -> bytes:
    """A PDF/A-3b of `html` (styled by the invoices' stylesheet) with the Factur-X `xml`
    attached, dated `created`: how invoices are rendered, for the other documents that carry a
    Factur-X XML (the commission statements, commissions.pdf)."""
    with _collector_paused():
        return _facturx_pdf_write(html=html, xml=xml, created=created)


def _facturx_pdf_write(*, html: str, xml: bytes, created: datetime) -> bytes:
    from weasyprint import Attachment

    document = _document_html()(string=html, url_fetcher=_no_fetching()).render(
        pdf_variant=PDF_VARIANT, font_config=_font_config(), stylesheets=[_stylesheet()]
    )
    document.metadata.attachments = [
        Attachment(
            string=xml,
            url_fetcher=_no_fetching(),
            name=facturx.FACTURX_FILENAME,
            description="Factur-X XML",
            created=created,
            modified=created,
            # Factur-X: "Alternative" for the EN 16931 profile (the XML is the same invoice).
            relationship="Alternative",
        )
    ]
    document.metadata.xmp_metadata = [facturx_xmp()]
    return document.write_pdf(pdf_variant=PDF_VARIANT, finisher=_one_af_entry_per_file)


def _one_af_entry_per_file(document: object, pdf_file: "pydyf.PDF") -> None:
    """WeasyPrint 70 lists an attachment twice in the catalog's /AF (from the embedded files
    name tree and again from its file specification): keep each file once."""
    import pydyf

    if "AF" in pdf_file.catalog:
        pdf_file.catalog["AF"] = pydyf.Array(dict.fromkeys(pdf_file.catalog["AF"]))


def invoice_pdf_name(invoice: Invoice) -> str:
    """Where the PDF is stored: invoices/<year of issue>/<number>.pdf."""
    return f"invoices/{invoice.issue_date.year}/{invoice.number}.pdf"


def _stored_intact(invoice: Invoice) -> bool:
    """The invoice has a stored PDF whose bytes still have the recorded hash."""
    name = invoice.pdf.name
    if not name or not invoice.pdf_sha256 or not invoice.pdf.storage.exists(name):
        return False
    with invoice.pdf.storage.open(name, "rb") as stored:
        return hashlib.sha256(stored.read()).hexdigest() == invoice.pdf_sha256


class PdfStore(StrEnum):
    """What `invoice_pdf_store` did."""

    STORED = "stored"  # first render: written, its hash recorded, the email queued
    SKIPPED = "skipped"  # the stored PDF is intact: nothing rendered
    UNCHANGED = "unchanged"  # rendered again on request: the same bytes as stored
    RESTORED = "restored"  # the stored file was missing or altered: the same bytes written back
    REFUSED = "refused"  # rendered again on request: different bytes, logged, nothing written


class PdfRenderDiffers(Exception):
    """The stored PDF is missing or altered, and rendering the document again gives other bytes
    than the SHA-256 recorded at its first render: nothing can be written back. (Something the
    PDF depends on changed since: the template, a setting, fonts or libraries.) Staff restore
    the file from a backup."""

    def __init__(self, number: str, recorded: str, rendered: str) -> None:
        super().__init__(
            f"{number}: the PDF rendered now differs from the one issued "
            f"(SHA-256 {rendered}, issued {recorded}); the stored file is missing or altered "
            "and nothing was written"
        )


def _render_differs_log(invoice: Invoice, rendered: str) -> None:
    logger.error(
        "Invoice %s: a new render differs from the PDF issued (SHA-256 recorded %s, rendered "
        "%s): refused, the issued PDF is never replaced",
        invoice.number,
        invoice.pdf_sha256,
        rendered,
    )


def invoice_pdf_store(*, invoice_id: int, regenerate: bool = False) -> PdfStore:
    """Render the document's PDF once, when it is issued, and store it through Django's storage
    with its SHA-256; afterwards only those exact bytes are ever written again.

    - No PDF recorded yet: render, store, record the hash and queue the email ("stored").
    - Recorded, and the stored file has that hash: nothing to do ("skipped"). With `regenerate`
      (staff asked for it again) it is rendered to check: the same bytes "unchanged", others
      "refused" and logged; the stored file is never replaced.
    - Recorded, but the file is missing or altered (storage lost it): render; the same bytes
      are written back ("restored"); other bytes are refused and logged, nothing is written,
      and PdfRenderDiffers is raised (a failure, recorded by the task).

    The row stays locked while rendering (well under a second), so a document is never
    rendered twice at once: a second task waits, then finds the PDF stored ("skipped"). Each
    render that stores counts in pdf_attempts; the task records a failed one
    (invoice_pdf_failure_record).
    """
    with transaction.atomic():
        invoice = (
            Invoice.objects.select_for_update(of=("self",))
            .select_related("corrects")
            .get(pk=invoice_id)
        )
        intact = _stored_intact(invoice)
        if intact and not regenerate:
            return PdfStore.SKIPPED
        content = invoice_pdf_render(invoice)
        digest = hashlib.sha256(content).hexdigest()
        recorded = invoice.pdf_sha256
        if recorded and digest != recorded:
            _render_differs_log(invoice, digest)
            if intact:
                return PdfStore.REFUSED
            raise PdfRenderDiffers(invoice.number, recorded, digest)
        if intact:
            return PdfStore.UNCHANGED
        storage = invoice.pdf.storage
        name = invoice.pdf.name or invoice_pdf_name(invoice)
        if storage.exists(name):
            # Not the issued PDF (that one has the recorded hash): an altered file, or one left
            # by a render whose transaction rolled back. The issued bytes take its place.
            logger.warning("Invoice %s: %s was not the PDF issued; written again", invoice, name)
            storage.delete(name)
        invoice.pdf.name = storage.save(name, ContentFile(content))
        invoice.pdf_sha256 = digest
        invoice.pdf_attempts += 1
        invoice.pdf_error = ""
        invoice.save(update_fields=["pdf", "pdf_sha256", "pdf_attempts", "pdf_error"])
        # Whoever pays gets the PDF by email, once (pdf_emailed_at): a restored file sends
        # nothing again.
        invoice_email_send(invoice=invoice)
    return PdfStore.RESTORED if recorded else PdfStore.STORED


# Errors worth trying again (the database or the storage went away for a moment); anything
# else fails the same way every time (an invalid Factur-X, a template error).
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    ConnectionError,
    TimeoutError,
)
# How often a document's PDF may fail before staff are told it fails for good (the render
# task's own retries and the sweeps count alike).
PDF_ATTEMPTS_MAX = 10


@transaction.atomic
def invoice_pdf_failure_record(*, invoice_id: int, error: BaseException) -> bool:
    """Record a failed render of the document's PDF: one more attempt, and its error. When it
    fails for good (an error that is not transient, or PDF_ATTEMPTS_MAX attempts) and no
    intact PDF is stored, the vendor's staff are emailed, once. Returns whether it failed for
    good."""
    # Locked: the sweeper and a render task may record at once; staff are told once.
    invoice = Invoice.objects.select_for_update(of=("self",)).filter(pk=invoice_id).first()
    if invoice is None:
        return False
    invoice.pdf_attempts += 1
    invoice.pdf_error = f"{type(error).__name__}: {error}"[:PDF_ERROR_MAX]
    invoice.save(update_fields=["pdf_attempts", "pdf_error"])
    for_good = not isinstance(error, TRANSIENT_ERRORS) or invoice.pdf_attempts >= PDF_ATTEMPTS_MAX
    if for_good and not _stored_intact(invoice):
        invoice_pdf_failure_report(invoice=invoice)
    return for_good
