"""The PDF of a commission statement: templates/commissions/statement_pdf.html, in the
reseller's language, rendered as invoices are (billing.pdf.facturx_pdf_render: PDF/A-3b, the
invoices' stylesheet, deterministic bytes) with its Factur-X XML (type code 389, self-billed
invoice) attached. Rendered once, after issue; its bytes and SHA-256 never change after.
"""

import hashlib
import logging
from datetime import timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import translation
from django_countries import countries

from billing import facturx
from billing.pdf import facturx_pdf_render
from billing.vat import vat_legal_mention
from commissions.models import Statement
from commissions.statements import statement_facturx_document

logger = logging.getLogger(__name__)

TEMPLATE = "commissions/statement_pdf.html"


def _country_name(code: str) -> str:
    return str(countries.name(code)) if code else ""


def statement_pdf_context(statement: Statement) -> dict[str, object]:
    """What the template shows; call it with the statement's language active. Only what is
    fixed at issue: never whether it was paid (its page tells that, from the payouts)."""
    seller, buyer = facturx.party(statement.seller), facturx.party(statement.buyer)
    treatment = statement.vat_treatment
    return {
        "statement": statement,
        "is_correction": statement.kind == Statement.Kind.CORRECTION,
        "seller": seller,
        "seller_country": _country_name(seller.country),
        "buyer": buyer,
        "buyer_country": _country_name(buyer.country),
        "lines": list(statement.lines.all()),
        "last_day": statement.period_end - timedelta(days=1),
        # On a self-billed document the vendor (the buyer) accounts for reverse-charged VAT.
        "vat_mention": vat_legal_mention(
            treatment=treatment,
            buyer_vat_id=buyer.vat_id,
            buyer_country=_country_name(buyer.country),
        ),
        "is_reverse_charge": treatment == Statement.VatTreatment.REVERSE_CHARGE,
        "is_outside_eu": treatment == Statement.VatTreatment.OUTSIDE_EU,
        "portal_name": settings.PORTAL_NAME,
        "created": statement.issued_at.isoformat(timespec="seconds"),
    }


def statement_pdf_render(statement: Statement) -> bytes:
    """The statement's PDF/A-3b with its Factur-X XML (389), in the reseller's language."""
    xml = facturx.self_billed_facturx_xml(statement_facturx_document(statement))
    with translation.override(statement.language):
        html = render_to_string(TEMPLATE, statement_pdf_context(statement))
    return facturx_pdf_render(html=html, xml=xml, created=statement.issued_at)


def statement_pdf_name(statement: Statement) -> str:
    return f"statements/{statement.issue_date.year}/{statement.number}.pdf"


def statement_pdf_store(*, statement_id: int) -> bool:
    """Render the statement's PDF and store it with its SHA-256, once; returns whether it was
    rendered now (False: already stored). The row is locked while rendering, so two renders at
    once store one file."""
    with transaction.atomic():
        statement = (
            Statement.objects.select_for_update(of=("self",))
            .select_related("corrects", "replaces")
            .get(pk=statement_id)
        )
        if (
            statement.pdf_sha256
            and statement.pdf.name
            and statement.pdf.storage.exists(statement.pdf.name)
        ):
            return False
        content = statement_pdf_render(statement)
        digest = hashlib.sha256(content).hexdigest()
        if statement.pdf_sha256 and digest != statement.pdf_sha256:
            # The stored file was lost and a render now differs: never replace the issued one.
            logger.error(
                "Statement %s: a new render differs from the PDF issued; nothing written",
                statement.number,
            )
            return False
        storage = statement.pdf.storage
        name = statement.pdf.name or statement_pdf_name(statement)
        if storage.exists(name):
            storage.delete(name)
        statement.pdf.name = storage.save(name, ContentFile(content))
        statement.pdf_sha256 = digest
        statement.save(update_fields=["pdf", "pdf_sha256"])
    return True
