"""The Statements page (reseller side, roles allowed MARGIN_VIEW): the commission statements
the vendor issued on the reseller's behalf, one in the browser, its PDF and its CSV.

Read-only: statements are issued by the monthly job; payouts and corrections are staff's, in
the admin. Paid or open comes from the payouts, never from the issued document.
"""

from typing import Any

from django.http import FileResponse, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET
from django_countries import countries

from billing import facturx
from commissions import statement_selectors as selectors
from commissions.models import Statement
from commissions.pdf import statement_pdf_store
from commissions.statements import statement_is_paid
from core.csv import csv_response
from core.http import ResellerRequest
from resellers.access import reseller_required
from resellers.roles import Action


def _row(statement: Statement) -> dict[str, Any]:
    paid = getattr(statement, "paid", selectors.ZERO)
    return {
        "statement": statement,
        "paid": paid,
        "is_paid": statement_is_paid(total=statement.total, paid=paid),
        "is_correction": statement.kind == Statement.Kind.CORRECTION,
        "url": reverse("statements:detail", kwargs={"statement_id": statement.public_id}),
        "pdf_url": reverse("statements:pdf", kwargs={"statement_id": statement.public_id}),
        "csv_url": reverse("statements:csv", kwargs={"statement_id": statement.public_id}),
    }


def _party(snapshot: dict[str, Any]) -> dict[str, Any]:
    party = facturx.party(snapshot)
    return {
        "name": party.name,
        "address": "\n".join(party.address_lines),
        "country": countries.name(party.country) or party.country,
        "vat_id": party.vat_id,
        "email": party.email,
    }


@require_GET
@reseller_required(Action.MARGIN_VIEW)
def statement_list(request: ResellerRequest) -> HttpResponse:
    """Statements: number, month, currency, total, paid or open."""
    statements = selectors.statement_list(reseller=request.reseller)
    return render(
        request,
        "commissions/statement_list.html",
        {"rows": [_row(statement) for statement in statements]},
    )


@require_GET
@reseller_required(Action.MARGIN_VIEW)
def statement_detail(request: ResellerRequest, statement_id: str) -> HttpResponse:
    """One statement in the browser: what its PDF says, and whether it was paid."""
    statement = selectors.statement_get(reseller=request.reseller, public_id=statement_id)
    context = _row(statement) | {
        "seller": _party(statement.seller),
        "buyer": _party(statement.buyer),
        "lines": list(statement.lines.all()),
        "payouts": list(statement.payouts.all()),
        "outstanding": max(statement.total - _row(statement)["paid"], selectors.ZERO),
        "corrects_url": (
            reverse("statements:detail", kwargs={"statement_id": statement.corrects.public_id})
            if statement.corrects
            else ""
        ),
        "replaces_url": (
            reverse("statements:detail", kwargs={"statement_id": statement.replaces.public_id})
            if statement.replaces
            else ""
        ),
    }
    return render(request, "commissions/statement_detail.html", context)


@require_GET
# A file or streamed response: reseller_required is typed for HttpResponse only.
@reseller_required(Action.MARGIN_VIEW)
def statement_pdf(request: ResellerRequest, statement_id: str) -> HttpResponseBase:
    """The statement's PDF; rendered now if the worker has not stored it yet (the same bytes
    it would store)."""
    statement = selectors.statement_get(reseller=request.reseller, public_id=statement_id)
    stored = statement.pdf.name and statement.pdf.storage.exists(statement.pdf.name)
    if not (statement.pdf_sha256 and stored):
        statement_pdf_store(statement_id=statement.pk)
        statement.refresh_from_db(fields=["pdf", "pdf_sha256"])
    return FileResponse(
        statement.pdf.open("rb"),
        as_attachment=True,
        filename=f"{statement.number}.pdf",
        content_type="application/pdf",
    )


@require_GET
@reseller_required(Action.MARGIN_VIEW)
def statement_csv(request: ResellerRequest, statement_id: str) -> HttpResponseBase:
    """The statement's lines as CSV."""
    statement = selectors.statement_get(reseller=request.reseller, public_id=statement_id)
    return csv_response(
        filename=f"{statement.number}.csv",
        header=[str(column) for column in selectors.STATEMENT_CSV_COLUMNS],
        rows=selectors.statement_csv_rows(statement),
    )
