"""The Invoices page (reseller side), one invoice in the browser, its PDF, the CSV export; the
invoices sections of the customer pages and the customer's own invoice pages.

All read-only: invoices are issued by the billing run and corrected by staff in the admin.
"""

from typing import Any, cast

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers
from django_countries import countries

from billing import facturx, selectors
from billing.forms import InvoiceFilterForm
from billing.models import Invoice, Refund
from core.csv import csv_response, export_refused
from core.http import ResellerRequest
from core.lists import list_render
from customers import selectors as customer_selectors
from customers.models import Customer
from resellers.access import reseller_required
from resellers.roles import Action, role_can

# How many of a customer's documents its sections show; the rest are a link away.
SECTION_SIZE = 10


def _invoice_rows(
    invoices: list[Invoice], *, namespace: str, **url_kwargs: str
) -> list[dict[str, Any]]:
    """Each document with whether it is overdue and its view and PDF links (the reseller's
    `billing:` URLs or the customer's `my_invoices:` ones)."""
    today = timezone.localdate()
    detail, pdf = (
        ("billing:invoice_detail", "billing:invoice_pdf")
        if namespace == "billing"
        else ("my_invoices:detail", "my_invoices:pdf")
    )
    rows = []
    for invoice in invoices:
        kwargs = {**url_kwargs, "invoice_id": invoice.public_id}
        rows.append(
            {
                "invoice": invoice,
                "overdue": selectors.invoice_is_overdue(invoice, today=today),
                # As it counts in the totals: a credit note takes away.
                "amount": -abs(invoice.total)
                if invoice.kind == Invoice.Kind.CREDIT_NOTE
                else invoice.total,
                # Still to be collected (billing.selectors.balance_expression), if anything.
                "refunded": bool(getattr(invoice, "refunded", 0)),
                "due": getattr(invoice, "balance", None)
                if invoice.kind == Invoice.Kind.INVOICE
                and invoice.status in selectors.UNPAID_STATUSES
                else None,
                "url": reverse(detail, kwargs=kwargs),
                "pdf_url": reverse(pdf, kwargs=kwargs),
            }
        )
    return rows


@require_GET
@reseller_required(Action.INVOICE_VIEW)
@vary_on_headers("HX-Request")
def invoice_list(request: ResellerRequest) -> HttpResponse:
    """Invoices: every customer's invoices and credit notes, filtered, with totals per currency
    and pages that cost the same at any depth. htmx requests get the results only."""
    form = InvoiceFilterForm(request.GET)
    context: dict[str, Any] = {"form": form}
    if form.is_valid():
        invoices = selectors.invoice_list(
            reseller=request.reseller,
            **form.filters(),
        )
        page = selectors.invoice_page(invoices=invoices, cursor=request.GET.get("cursor", ""))
        params = form.params()
        context |= {
            "page": page,
            "rows": _invoice_rows(page.object_list, namespace="billing"),
            # The totals of the whole filtered set, not of the page.
            "totals": selectors.invoice_totals(invoices=invoices) if page.count else [],
            "params": params,
            "filtered": bool(params),
            "links": page.links(params),
            "export_url": reverse("billing:invoice_export")
            + ("?" + urlencode(params) if params else ""),
        }
    return list_render(request, "billing/invoice_list.html", context)


@require_GET
# A streamed or file response: reseller_required is typed for HttpResponse only.
@reseller_required(Action.INVOICE_VIEW)
def invoice_export(request: ResellerRequest) -> HttpResponseBase:
    """The filtered documents as CSV, one row per line (selectors.INVOICE_CSV_COLUMNS), streamed
    from one query however many there are."""
    form = InvoiceFilterForm(request.GET)
    if not form.is_valid():
        return export_refused(form)
    invoices = selectors.invoice_list(
        reseller=request.reseller,
        **form.filters(),
    )
    return csv_response(
        filename=f"invoices-{timezone.localdate().isoformat()}.csv",
        header=selectors.INVOICE_CSV_COLUMNS,
        rows=selectors.invoice_export_rows(invoices=invoices),
    )


def _party(snapshot: dict[str, Any] | None) -> dict[str, Any]:
    """A seller or buyer snapshot as the page shows it: read as the PDF reads it."""
    party = facturx.party(snapshot)
    return {
        "name": party.name,
        "address": "\n".join(party.address_lines),
        "country": countries.name(party.country) or party.country,
        "vat_id": party.vat_id,
        "email": party.email,
    }


def _invoice_context(
    invoice: Invoice, *, detail_url_name: str, pdf_url: str, **url_kwargs: str
) -> dict[str, Any]:
    def detail_url(document: Invoice) -> str:
        return reverse(detail_url_name, kwargs={**url_kwargs, "invoice_id": document.public_id})

    credit_notes = list(selectors.invoice_credit_notes(invoice=invoice))
    balance = selectors.invoice_balance(invoice) if invoice.kind == Invoice.Kind.INVOICE else None
    refunds = list(selectors.invoice_refunds(invoice=invoice))
    return {
        "invoice": invoice,
        # What it still owes (negative: a refund owed), its payments and refunds.
        "balance": balance,
        "refund_owed": -balance if balance is not None and balance < 0 else None,
        "payments": list(selectors.invoice_payments_received(invoice=invoice)),
        "refunds": refunds,
        # Who pays and how, as the document says (fixed at issue).
        "payer_name": selectors.invoice_payer_name(invoice),
        "by_transfer": selectors.invoice_pays_by_transfer(invoice),
        "refunded": any(refund.status == Refund.Status.SUCCEEDED for refund in refunds),
        "seller": _party(invoice.seller),
        "buyer": _party(invoice.buyer),
        "lines": list(invoice.lines.all()),
        "overdue": selectors.invoice_is_overdue(invoice),
        "credit_notes": [(note, detail_url(note)) for note in credit_notes],
        "corrects_url": detail_url(invoice.corrects) if invoice.corrects else "",
        "pdf_url": pdf_url,
    }


def invoice_pdf_download(invoice: Invoice) -> FileResponse | None:
    """The stored PDF as a download; None until the worker has rendered it (or its file is
    missing). The pages and the API serve the same bytes through it."""
    if not invoice.pdf:
        return None
    try:
        stored = invoice.pdf.open("rb")
    except FileNotFoundError:
        return None
    return FileResponse(
        stored, as_attachment=True, filename=f"{invoice.number}.pdf", content_type="application/pdf"
    )


def _pdf_response(request: HttpRequest, invoice: Invoice, *, back_url: str) -> HttpResponseBase:
    """The stored PDF as a download, or, until the worker has rendered it, a page saying so
    (202: try again shortly) instead of a 404."""
    download = invoice_pdf_download(invoice)
    if download is not None:
        return download
    response = render(
        request,
        "billing/invoice_pdf_pending.html",
        {"invoice": invoice, "back_url": back_url, "retry_url": request.path},
        status=202,
    )
    response["Retry-After"] = "10"
    return response


def _invoice(request: ResellerRequest, invoice_id: str) -> Invoice:
    return selectors.invoice_get(
        reseller=request.reseller,
        public_id=invoice_id,
    )


@require_GET
@reseller_required(Action.INVOICE_VIEW)
def invoice_detail(request: ResellerRequest, invoice_id: str) -> HttpResponse:
    """One invoice or credit note in the browser: what its PDF says."""
    invoice = _invoice(request, invoice_id)
    context = _invoice_context(
        invoice,
        detail_url_name="billing:invoice_detail",
        pdf_url=reverse("billing:invoice_pdf", kwargs={"invoice_id": invoice.public_id}),
    )
    context["back_url"] = reverse("billing:invoice_list")
    context["customer_url"] = (
        reverse("customers:detail", kwargs={"customer_id": invoice.customer.public_id})
        if invoice.customer.reseller_id == invoice.reseller_id
        and invoice.customer.status in customer_selectors.VISIBLE_STATUSES
        else ""
    )
    return render(request, "billing/invoice_detail.html", context)


@require_GET
# A streamed or file response: reseller_required is typed for HttpResponse only.
@reseller_required(Action.INVOICE_VIEW)
def invoice_pdf(request: ResellerRequest, invoice_id: str) -> HttpResponseBase:
    invoice = _invoice(request, invoice_id)
    back_url = reverse("billing:invoice_detail", kwargs={"invoice_id": invoice.public_id})
    return _pdf_response(request, invoice, back_url=back_url)


# The invoices sections of the customer pages (registered in billing.apps).


def customer_section(request: HttpRequest, customer: Customer) -> SafeString:
    """The reseller's Manage page: the customer's latest documents and a link to all of them."""
    # The reseller's Manage page, behind reseller_required (customers.views.customer_detail);
    # its sections are rendered for any request type (customers.extensions.SectionRenderer).
    membership = cast(ResellerRequest, request).membership
    allowed = role_can(membership.role, Action.INVOICE_VIEW)
    invoices = (
        list(
            selectors.invoice_list_of_customer(reseller=membership.reseller, customer=customer)[
                : SECTION_SIZE + 1
            ]
        )
        if allowed
        else []
    )
    context = {
        "customer": customer,
        "allowed": allowed,
        "rows": _invoice_rows(invoices[:SECTION_SIZE], namespace="billing"),
        "more": len(invoices) > SECTION_SIZE,
        "all_url": reverse("billing:invoice_list")
        + "?"
        + urlencode({"customer": customer.public_id}),
    }
    return mark_safe(  # noqa: S308 - a rendered template, escaped by the template engine
        render_to_string("billing/_customer_section.html", context, request=request).strip()
    )


def customer_side_section(request: HttpRequest, customer: Customer) -> SafeString:
    """The customer's own organisation page: its latest documents, all of them a link away."""
    documents = selectors.invoice_list_for_customer_side(customer=customer)
    invoices = list(selectors.invoices_with_balance(documents)[: SECTION_SIZE + 1])
    context = {
        "customer": customer,
        "rows": _invoice_rows(
            invoices[:SECTION_SIZE], namespace="my_invoices", customer_id=customer.public_id
        ),
        "more": len(invoices) > SECTION_SIZE,
        "all_url": reverse("my_invoices:list", kwargs={"customer_id": customer.public_id}),
    }
    return mark_safe(  # noqa: S308 - a rendered template, escaped by the template engine
        render_to_string("billing/_customer_side_section.html", context, request=request).strip()
    )


# The customer side: the organisation's own administrators (CustomerMember), read-only.


@require_GET
@login_required
def my_invoice_list(request: HttpRequest, customer_id: str) -> HttpResponse:
    customer = customer_selectors.customer_for_member(user=request.user, public_id=customer_id)
    invoices = selectors.invoice_list_for_customer_side(customer=customer)
    page = selectors.invoice_page(invoices=invoices, cursor=request.GET.get("cursor", ""))
    context = {
        "customer": customer,
        "page": page,
        "rows": _invoice_rows(
            page.object_list, namespace="my_invoices", customer_id=customer.public_id
        ),
        "links": page.links(),
    }
    return render(request, "billing/my_invoice_list.html", context)


@require_GET
@login_required
def my_invoice(request: HttpRequest, customer_id: str, invoice_id: str) -> HttpResponse:
    customer = customer_selectors.customer_for_member(user=request.user, public_id=customer_id)
    invoice = selectors.invoice_get_for_customer_side(customer=customer, public_id=invoice_id)
    ids = {"customer_id": customer.public_id}
    context = _invoice_context(
        invoice,
        detail_url_name="my_invoices:detail",
        pdf_url=reverse("my_invoices:pdf", kwargs={**ids, "invoice_id": invoice.public_id}),
        **ids,
    )
    context["back_url"] = reverse("my_invoices:list", kwargs=ids)
    context["customer_side"] = True
    return render(request, "billing/invoice_detail.html", context)


@require_GET
@login_required
def my_invoice_pdf(request: HttpRequest, customer_id: str, invoice_id: str) -> HttpResponseBase:
    customer = customer_selectors.customer_for_member(user=request.user, public_id=customer_id)
    invoice = selectors.invoice_get_for_customer_side(customer=customer, public_id=invoice_id)
    back_url = reverse(
        "my_invoices:detail",
        kwargs={"customer_id": customer.public_id, "invoice_id": invoice.public_id},
    )
    return _pdf_response(request, invoice, back_url=back_url)
