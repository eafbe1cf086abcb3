"""The Invoices page (filters, totals per currency, keyset pages, htmx and plain GET), one
invoice in the browser, its PDF, the invoices sections of the customer pages and the customer's
own invoice pages."""

import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing import selectors
from billing.models import Invoice
from resellers.roles import Role
from tests.factories import (
    FAKE_PDF,
    CustomerFactory,
    InvoiceFactory,
    Tenant,
    admin_of,
    member_of,
)

LIST_URL = "/invoices/"
TODAY = date(2026, 11, 20)


@pytest.fixture(autouse=True)
def _today():
    with time_machine.travel(date(2026, 11, 20), tick=False):
        yield


def detail_url(invoice: Invoice) -> str:
    return reverse("billing:invoice_detail", kwargs={"invoice_id": invoice.public_id})


def pdf_url(invoice: Invoice) -> str:
    return reverse("billing:invoice_pdf", kwargs={"invoice_id": invoice.public_id})


def my_url(name: str, invoice: Invoice) -> str:
    return reverse(
        f"my_invoices:{name}",
        kwargs={"customer_id": invoice.customer.public_id, "invoice_id": invoice.public_id},
    )


def numbers_on(page: str, *invoices: Invoice) -> list[bool]:
    return [invoice.number in page for invoice in invoices]


# The list


def test_url_and_menu(owner_client):
    assert reverse("billing:invoice_list") == LIST_URL
    dashboard = owner_client.get("/dashboard/").content.decode()
    assert f'href="{LIST_URL}"' in dashboard and ">Invoices<" in dashboard


def test_lists_every_customers_documents_of_this_reseller_only(tenant, other_tenant, client_for):
    second = CustomerFactory(reseller=tenant.reseller, organisation="Bodega Núñez")
    first_invoice = InvoiceFactory(customer=tenant.customer, issue_date=date(2026, 11, 10))
    second_invoice = InvoiceFactory(
        customer=second, payer="customer_card", issue_date=date(2026, 11, 12)
    )
    foreign = InvoiceFactory(customer=other_tenant.customer)

    page = client_for(tenant.owner).get(LIST_URL).content.decode()

    assert numbers_on(page, first_invoice, second_invoice, foreign) == [True, True, False]
    assert other_tenant.customer.organisation not in page
    for text in (
        "Bodega Núñez",
        tenant.customer.organisation,
        "Reseller card",
        "Customer card",
        "€121.00",  # 100.00 + 21 % VAT
        "11/10/2026",  # issue date
        "11/24/2026",  # due date
        'class="badge status-open"',
        detail_url(first_invoice),
        pdf_url(first_invoice),
    ):
        assert text in page, text
    # Newest first.
    assert page.index(second_invoice.number) < page.index(first_invoice.number)


@pytest.mark.parametrize(
    ("role", "allowed"),
    [(Role.OWNER, True), (Role.BILLING, True), (Role.ADMIN, True), (Role.SALES, False)],
)
def test_roles(tenant, other_tenant, client_for, role, allowed):
    invoice = InvoiceFactory(customer=tenant.customer, pdf=FAKE_PDF)
    client = client_for(member_of(tenant.reseller, role).user)
    for url in (
        LIST_URL,
        detail_url(invoice),
        pdf_url(invoice),
        reverse("billing:invoice_export"),
    ):
        assert client.get(url).status_code == (200 if allowed else 403), url
    menu = client.get("/dashboard/").content.decode()
    assert (f'href="{LIST_URL}"' in menu) is allowed


def test_pages_are_read_only(owner_client, tenant):
    invoice = InvoiceFactory(customer=tenant.customer)
    for url in (LIST_URL, detail_url(invoice), pdf_url(invoice)):
        assert owner_client.post(url).status_code == 405


def test_sign_in_needed(tenant, client):
    invoice = InvoiceFactory(customer=tenant.customer)
    for url in (LIST_URL, detail_url(invoice), pdf_url(invoice), "/invoices/export.csv"):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response.url


def test_overdue_is_shown_distinctly(owner_client, tenant):
    overdue = InvoiceFactory(customer=tenant.customer, due_date=TODAY - timedelta(days=1))
    due_today = InvoiceFactory(customer=tenant.customer, due_date=TODAY)
    paid_late = InvoiceFactory(
        customer=tenant.customer, due_date=TODAY - timedelta(days=9), status=Invoice.Status.PAID
    )
    page = owner_client.get(LIST_URL).content.decode()
    rows = {
        invoice: page[page.index(invoice.number) : page.index("</tr>", page.index(invoice.number))]
        for invoice in (overdue, due_today, paid_late)
    }
    assert 'class="badge status-overdue">Overdue<' in rows[overdue]
    assert "Overdue" not in rows[due_today] and "status-open" in rows[due_today]
    assert "Overdue" not in rows[paid_late] and "status-paid" in rows[paid_late]


# Filters


@pytest.fixture
def mixed(tenant: Tenant, other_tenant: Tenant) -> dict[str, Invoice]:
    """Tenant A's documents of two customers, and one of B's that must never show."""
    bodega = CustomerFactory(reseller=tenant.reseller, organisation="Bodega Núñez")
    return {
        "open": InvoiceFactory(customer=tenant.customer, issue_date=date(2026, 11, 10)),
        "overdue": InvoiceFactory(
            customer=tenant.customer, issue_date=date(2026, 10, 1), due_date=date(2026, 10, 15)
        ),
        "paid": InvoiceFactory(
            customer=bodega,
            issue_date=date(2026, 10, 31),
            status=Invoice.Status.PAID,
            payer="customer_card",
        ),
        "failed": InvoiceFactory(
            customer=bodega, issue_date=date(2026, 9, 30), status=Invoice.Status.PAYMENT_FAILED
        ),
        "foreign": InvoiceFactory(
            customer=other_tenant.customer,
            issue_date=date(2026, 10, 1),
            due_date=date(2026, 10, 15),
        ),
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # Unpaid after its due date, whether open or its card payment failed.
        ({"status": "overdue"}, {"overdue", "failed"}),
        ({"status": "open"}, {"open", "overdue"}),
        ({"status": "paid"}, {"paid"}),
        ({"status": "payment_failed"}, {"failed"}),
        ({"payer": "customer_card"}, {"paid"}),
        ({"payer": "reseller_card"}, {"open", "overdue", "failed"}),
        ({"customer": "bodega"}, {"paid", "failed"}),
        ({"customer": "  BODEGA   núñez "}, {"paid", "failed"}),
        ({"month": "2026-10"}, {"overdue", "paid"}),
        ({"date_from": "2026-09-30", "date_to": "2026-10-01"}, {"overdue", "failed"}),
        ({"date_from": "2026-10-31"}, {"open", "paid"}),
        ({"status": "open", "month": "2026-11"}, {"open"}),
        ({}, {"open", "overdue", "paid", "failed"}),
    ],
)
def test_filters(owner_client, mixed, query, expected):
    page = owner_client.get(LIST_URL, query).content.decode()
    shown = {name for name, invoice in mixed.items() if invoice.number in page}
    assert shown == expected


def test_filter_by_customer_id_as_the_manage_page_links_it(owner_client, tenant, mixed):
    response = owner_client.get(LIST_URL, {"customer": tenant.customer.public_id})
    shown = {name for name, invoice in mixed.items() if invoice.number in response.text}
    assert shown == {"open", "overdue"}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"month": "2026-13"}, "Enter a month as YYYY-MM"),
        ({"month": "2026-10", "date_from": "2026-10-01"}, "either a month or a range of dates"),
        ({"date_from": "2026-10-02", "date_to": "2026-10-01"}, "before its start"),
        ({"date_from": "yesterday"}, "Enter a valid date"),
        ({"status": "lost"}, "Select a valid choice"),
    ],
)
def test_invalid_filters_are_explained_not_ignored(owner_client, mixed, query, message):
    page = owner_client.get(LIST_URL, query).content.decode()
    assert message in page and "Correct the filters" in page
    assert not any(invoice.number in page for invoice in mixed.values())
    export = owner_client.get(reverse("billing:invoice_export"), query)
    assert export.status_code == 400 and message in export.text


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"month": "2026-13"}, "month", "Enter a month as YYYY-MM"),
        ({"date_from": "yesterday"}, "date_from", "Enter a valid date"),
        ({"status": "lost"}, "status", "Select a valid choice"),
        ({"customer": "x" * 101}, "customer", "at most 100 characters"),
    ],
)
def test_a_bad_filter_says_why_beside_its_field_also_when_htmx_swaps_the_results(
    owner_client, mixed, query, field, message
):
    page = owner_client.get(LIST_URL, query).text
    beside = re.search(rf'<small class="error" id="id_{field}_error">([^<]*)</small>', page)
    assert beside and message in beside.group(1)
    assert re.search(rf'id="id_{field}"[^>]*aria-invalid="true"', page) or re.search(
        rf'aria-invalid="true"[^>]*id="id_{field}"', page
    )
    if field != "status":  # what was typed stays in the field
        assert f'value="{query[field]}"' in page
    # The results alone (htmx) carry the messages beside the fields too, and clear them.
    fragment = owner_client.get(LIST_URL, query, headers={"HX-Request": "true"}).text
    assert re.search(
        rf'id="id_{field}_error" hx-swap-oob="true">[^<]*{re.escape(message)}', fragment
    )
    fixed = owner_client.get(LIST_URL, headers={"HX-Request": "true"}).text
    assert f'id="id_{field}_error" hx-swap-oob="true"></small>' in fixed


def test_empty_states(owner_client, tenant):
    assert "No invoices yet" in owner_client.get(LIST_URL).text
    InvoiceFactory(customer=tenant.customer)
    page = owner_client.get(LIST_URL, {"status": "paid"}).text
    assert "No invoices match these filters" in page


# Totals


def test_totals_per_currency_of_the_filtered_set_in_one_query(tenant, other_tenant):
    customer = tenant.customer
    invoice = InvoiceFactory(customer=customer, subtotal=Decimal("100.00"))  # 121.00, open
    paid = Invoice.Status.PAID
    InvoiceFactory(customer=customer, subtotal=Decimal("50.00"), status=paid)  # 60.50
    failed = Invoice.Status.PAYMENT_FAILED
    InvoiceFactory(customer=customer, subtotal=Decimal("10.00"), status=failed)
    # A credit note (stored positive, billing.services) of 24.20 on the open invoice.
    InvoiceFactory(
        customer=customer,
        kind=Invoice.Kind.CREDIT_NOTE,
        corrects=invoice,
        subtotal=Decimal("20.00"),
        status=Invoice.Status.CREDITED,
    )
    InvoiceFactory(customer=customer, currency="USD", subtotal=Decimal("7.00"), vat_rate=Decimal(0))
    InvoiceFactory(customer=other_tenant.customer, subtotal=Decimal("999.00"))

    invoices = selectors.invoice_list(reseller=tenant.reseller)
    with CaptureQueriesContext(connection) as queries:
        totals = selectors.invoice_totals(invoices=invoices)
    assert len(queries) == 1

    eur, usd = totals
    assert (eur.currency, eur.documents) == ("EUR", 4)
    assert eur.subtotal == Decimal("140.00")  # 100 + 50 + 10 - 20
    assert eur.vat_amount == Decimal("29.40")
    assert eur.total == Decimal("169.40")  # 121 + 60.50 + 12.10 - 24.20
    assert eur.unpaid == Decimal("108.90")  # 121 - 24.20 + 12.10
    assert (usd.currency, usd.documents, usd.total, usd.unpaid) == (
        "USD",
        1,
        Decimal("7.00"),
        Decimal("7.00"),
    )

    paid_only = selectors.invoice_totals(
        invoices=selectors.invoice_list(reseller=tenant.reseller, status="paid")
    )
    assert [(t.currency, t.total, t.unpaid) for t in paid_only] == [
        ("EUR", Decimal("60.50"), Decimal("0.00"))
    ]


def test_totals_on_the_page_follow_the_filters(owner_client, tenant):
    InvoiceFactory(customer=tenant.customer, subtotal=Decimal("100.00"))
    InvoiceFactory(
        customer=tenant.customer, subtotal=Decimal("1000.00"), status=Invoice.Status.PAID
    )
    page = owner_client.get(LIST_URL).text
    assert "Totals of all invoices" in page and "€1,331.00" in page
    filtered = owner_client.get(LIST_URL, {"status": "open"}).text
    assert "Totals of the invoices matching the filters" in filtered
    assert "€121.00" in filtered and "€1,331.00" not in filtered


# htmx and plain GET


def test_htmx_gets_the_results_only(owner_client, tenant):
    invoice = InvoiceFactory(customer=tenant.customer, status=Invoice.Status.PAID)
    response = owner_client.get(LIST_URL, {"status": "paid"}, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="results"')
    assert "<html" not in html and 'id="invoice-filters"' not in html
    assert invoice.number in html
    assert "HX-Request" in response["Vary"]
    # The export link in the results follows the filters.
    assert f'href="{reverse("billing:invoice_export")}?status=paid"' in html


def test_without_javascript_the_form_and_links_are_plain_get(owner_client, tenant, monkeypatch):
    monkeypatch.setattr(selectors, "INVOICE_PAGE_SIZE", 2)
    for day in range(1, 6):
        InvoiceFactory(customer=tenant.customer, issue_date=date(2026, 11, day))
    page = owner_client.get(LIST_URL, {"customer": "customer", "status": "open"}).text
    assert "<html" in page and 'method="get" action="/invoices/"' in page
    assert 'value="customer"' in page  # what was typed stays in the form
    assert "1\N{EN DASH}2 of 5" in page
    next_link = page.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
    assert "customer=customer" in next_link and "status=open" in next_link
    second = owner_client.get(LIST_URL + next_link.replace("&amp;", "&")).text
    assert "3\N{EN DASH}4 of 5" in second


def test_pages_cost_the_same_at_any_depth(owner_client, tenant, monkeypatch):
    monkeypatch.setattr(selectors, "INVOICE_PAGE_SIZE", 3)
    invoices = [
        InvoiceFactory(
            customer=tenant.customer, issue_date=date(2026, 11, 1) + timedelta(days=n % 4)
        )
        for n in range(10)
    ]
    seen: list[str] = []
    query_counts = []
    url = LIST_URL
    while url:
        with CaptureQueriesContext(connection) as queries:
            page = owner_client.get(url).text
        query_counts.append(len(queries))
        seen += [invoice.number for invoice in invoices if invoice.number in page]
        if 'rel="next"' not in page:
            break
        url = LIST_URL + page.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
        url = url.replace("&amp;", "&")
    # Each document once, over four pages, including several issued on the same day.
    assert sorted(seen) == sorted(invoice.number for invoice in invoices)
    assert len(query_counts) == 4 and len(set(query_counts)) == 1, query_counts


# One invoice in the browser


def test_invoice_in_the_browser(owner_client, tenant):
    customer = tenant.customer
    invoice = InvoiceFactory(
        customer=customer,
        lines=2,
        subtotal=Decimal("80.00"),
        vat_rate=Decimal(0),
        vat_treatment=Invoice.VatTreatment.REVERSE_CHARGE,
        seller={
            "name": "Example Software Ltd",
            "address": "1 Vendor Street\nLondon",
            "country": "GB",
            "vat_id": "GB123456789",
            "email": "billing@vendor.example",
        },
        buyer={
            "organisation": customer.organisation,
            "address": "2 Customer Road\nMadrid",
            "country": "ES",
            "vat_id": "ESB12345674",
            "email": customer.contact_email,
        },
    )
    note = InvoiceFactory(
        customer=customer,
        kind=Invoice.Kind.CREDIT_NOTE,
        corrects=invoice,
        subtotal=Decimal("10.00"),
        vat_rate=Decimal(0),
        vat_treatment=Invoice.VatTreatment.REVERSE_CHARGE,
        status=Invoice.Status.CREDITED,
    )
    page = owner_client.get(detail_url(invoice)).text
    for text in (
        f"Invoice {invoice.number}",
        "Example Software Ltd",  # seller snapshot
        "1 Vendor Street<br>London",
        "GB123456789",
        customer.organisation,  # buyer snapshot
        "2 Customer Road<br>Madrid",
        "Workspace Business, line 1",
        "Workspace Business, line 2",
        "€40.00",
        "€80.00",
        "Reverse charge",
        "Reseller card",
        'class="badge status-open"',
        note.number,
        detail_url(note),
        pdf_url(invoice),
        reverse("customers:detail", kwargs={"customer_id": customer.public_id}),
    ):
        assert text in page, text

    credit = owner_client.get(detail_url(note)).text
    assert f"Credit note {note.number}" in credit
    assert f"This credit note corrects invoice {invoice.number}" in credit
    assert detail_url(invoice) in credit


def test_overdue_invoice_says_so(owner_client, tenant):
    invoice = InvoiceFactory(customer=tenant.customer, due_date=date(2026, 11, 1), pdf=FAKE_PDF)
    page = owner_client.get(detail_url(invoice)).text
    assert "This invoice was due on Nov. 1, 2026 and is not paid yet." in page
    assert "status-overdue" in page


def test_another_resellers_invoice_is_the_missing_404(owner_client, other_tenant):
    foreign = InvoiceFactory(customer=other_tenant.customer, pdf=FAKE_PDF)
    for url in (detail_url(foreign), pdf_url(foreign)):
        assert owner_client.get(url).status_code == 404


# PDF


def test_download_pdf_serves_the_stored_file_as_attachment(owner_client, tenant):
    invoice = InvoiceFactory(customer=tenant.customer, pdf=FAKE_PDF)
    response = owner_client.get(pdf_url(invoice))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="{invoice.number}.pdf"'
    assert b"".join(response.streaming_content) == FAKE_PDF


def test_pdf_not_rendered_yet_is_being_prepared_not_404(owner_client, tenant):
    invoice = InvoiceFactory(customer=tenant.customer)
    response = owner_client.get(pdf_url(invoice))
    assert response.status_code == 202
    assert response["Retry-After"] == "10"
    assert f"The PDF of {invoice.number} is being prepared" in response.text
    assert f'href="{pdf_url(invoice)}"' in response.text  # try again
    assert f'href="{detail_url(invoice)}"' in response.text


def test_pdf_named_but_missing_from_storage_is_being_prepared(owner_client, tenant):
    invoice = InvoiceFactory(customer=tenant.customer, pdf=FAKE_PDF)
    assert invoice.pdf.name
    invoice.pdf.storage.delete(invoice.pdf.name)
    assert owner_client.get(pdf_url(invoice)).status_code == 202


# The invoices section of the reseller's Manage page


def manage_url(customer) -> str:
    return reverse("customers:detail", kwargs={"customer_id": customer.public_id})


def test_manage_page_lists_the_customers_invoices(owner_client, tenant):
    own = InvoiceFactory(customer=tenant.customer, status=Invoice.Status.PAID)
    other_customer = InvoiceFactory(customer=CustomerFactory(reseller=tenant.reseller))
    page = owner_client.get(manage_url(tenant.customer)).text
    section = page[page.index('id="invoices"') : page.index('id="activity"')]
    assert own.number in section and other_customer.number not in section
    assert detail_url(own) in section and pdf_url(own) in section
    assert "€121.00" in section and "status-paid" in section
    assert f"/invoices/?customer={tenant.customer.public_id}" in section


def test_manage_page_without_invoices(owner_client, tenant):
    page = owner_client.get(manage_url(tenant.customer)).text
    assert "No invoices have been issued to this customer yet." in page


def test_manage_page_for_a_role_without_invoices(tenant, other_tenant, client_for):
    invoice = InvoiceFactory(customer=tenant.customer)
    sales = client_for(member_of(tenant.reseller, Role.SALES).user)
    page = sales.get(manage_url(tenant.customer)).text
    assert invoice.number not in page
    assert "Your role does not include invoices" in page


def test_manage_page_shows_the_latest_ten(owner_client, tenant):
    invoices = [
        InvoiceFactory(customer=tenant.customer, issue_date=date(2026, 1, 1) + timedelta(days=n))
        for n in range(11)
    ]
    page = owner_client.get(manage_url(tenant.customer)).text
    assert invoices[0].number not in page
    assert all(invoice.number in page for invoice in invoices[1:])
    assert "All invoices of this customer" in page


# The customer side


def test_customer_side_section_and_pages(tenant, other_tenant, client_for):
    invoice = InvoiceFactory(customer=tenant.customer, payer="customer_card", pdf=FAKE_PDF)
    unrendered = InvoiceFactory(customer=tenant.customer)
    foreign = InvoiceFactory(customer=other_tenant.customer)
    client = client_for(admin_of(tenant.customer))

    organisation = client.get(
        reverse("customer_side:organisation", kwargs={"customer_id": tenant.customer.public_id})
    ).text
    section = organisation[
        organisation.index('id="invoices"') : organisation.index('id="transfer"')
    ]
    assert invoice.number in section and unrendered.number in section
    assert foreign.number not in section
    assert my_url("detail", invoice) in section and my_url("pdf", invoice) in section
    assert 'href="/invoices/' not in section  # no reseller-side links

    page = client.get(my_url("detail", invoice)).text
    assert f"Invoice {invoice.number}" in page
    assert f"Payer</dt><dd>{tenant.customer.organisation}</dd>" in page
    assert (
        reverse("customers:detail", kwargs={"customer_id": tenant.customer.public_id}) not in page
    )

    download = client.get(my_url("pdf", invoice))
    assert download["Content-Disposition"] == f'attachment; filename="{invoice.number}.pdf"'
    assert b"".join(download.streaming_content) == FAKE_PDF
    assert client.get(my_url("pdf", unrendered)).status_code == 202

    listing = client.get(
        reverse("my_invoices:list", kwargs={"customer_id": tenant.customer.public_id})
    ).text
    assert invoice.number in listing and unrendered.number in listing
    assert foreign.number not in listing


def test_customer_side_needs_the_customers_own_administrator(tenant, client_for):
    invoice = InvoiceFactory(customer=tenant.customer, pdf=FAKE_PDF)
    # The reseller's owner is not one of the customer's administrators.
    owner = client_for(tenant.owner)
    assert owner.get(my_url("detail", invoice)).status_code == 404
    assert owner.get(my_url("pdf", invoice)).status_code == 404


def test_customer_side_section_is_empty_without_invoices(tenant, client_for):
    client = client_for(admin_of(tenant.customer))
    page = client.get(
        reverse("customer_side:organisation", kwargs={"customer_id": tenant.customer.public_id})
    ).text
    assert "No invoices yet." in page
