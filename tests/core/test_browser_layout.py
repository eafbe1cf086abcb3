"""Layout that holds, in headless Chromium: long unbroken names never widen a page, and no page
the walk reaches logs a Content-Security-Policy violation."""

from datetime import date
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from customers.models import CustomerMember
from resellers.models import Membership
from subscriptions import services
from subscriptions.models import Plan, PlanPrice, Product
from tests.factories import CustomerFactory, UserFactory, make_tenant
from tests.support.browser import (
    csp_collect,
    csp_violations,
    horizontal_overflow,
    session_cookie,
)

LONG_NAME = "Unbroken" * 25  # 200 characters without a space, the organisation's maximum
WIDTHS = (1280, 390)

pytestmark = pytest.mark.browser


def open_page(browser, live_server, user, width: int = 1280):
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": width, "height": 900}
    )
    context.add_cookies([session_cookie(user, live_server.url)])
    page = context.new_page()
    csp_collect(context, page)
    return page


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("width", WIDTHS)
def test_a_200_character_unbroken_name_fits_the_customers_list_and_dashboard(
    browser, live_server, width
):
    tenant = make_tenant(LONG_NAME[:150])
    CustomerFactory(reseller=tenant.reseller, organisation=LONG_NAME, domain="long.example")
    page = open_page(browser, live_server, tenant.owner, width)
    for path in ("/customers/", "/dashboard/"):
        page.goto(path)
        assert LONG_NAME in page.content()
        assert horizontal_overflow(page) <= 0, path
        assert csp_violations(page) == [], path
    page.goto("/customers/")
    new_customer = page.get_by_role("link", name="New customer")
    assert new_customer.is_visible()
    box = new_customer.bounding_box()
    assert box is not None and box["x"] + box["width"] <= width


@pytest.mark.django_db(transaction=True)
def test_the_ordering_pages_log_no_csp_violation(browser, live_server):
    tenant = make_tenant("Ordering Reseller")
    product = Product.objects.create(name="Shared Contacts", sku="shared-contacts")
    plan = Plan.objects.create(product=product, kind=Plan.Kind.FLEXIBLE, max_licences=500)
    PlanPrice.objects.create(plan=plan, currency="EUR", monthly_price=Decimal("4.00"))
    with time_machine.travel(date(2026, 3, 10), tick=False):
        order = services.subscription_buy(
            membership=Membership.objects.get(user=tenant.owner, reseller=tenant.reseller),
            customer=tenant.customer,
            plan=plan,
            licences=5,
            payer="reseller_card",
            order_key=services.order_key_new(),
        )
    page = open_page(browser, live_server, tenant.owner)
    page.goto(f"/subscriptions/{order.subscription.public_id}/licences/")
    with page.expect_response(lambda r: r.request.headers.get("hx-request") == "true"):
        page.click("#licences-plus")
    page.wait_for_selector("#due-now")
    assert csp_violations(page) == []
    page.goto(f"/subscriptions/buy/{tenant.customer.public_id}/")
    page.check(f"input[name=plan][value='{plan.public_id}']")
    page.fill("input[name=licences]", "3")
    page.wait_for_selector("#due-now")
    assert page.locator("#recurring").inner_text() == "€12.00"
    assert csp_violations(page) == []


@pytest.mark.django_db(transaction=True)
def test_a_form_says_when_typed_text_was_cut_at_its_limit(browser, live_server):
    tenant = make_tenant("Forms Reseller")
    page = open_page(browser, live_server, tenant.owner, 390)
    page.goto("/customers/new/")
    hint = page.locator("#id_organisation_limit")
    assert hint.inner_text() == "At most 200 characters."
    page.fill("#id_organisation", LONG_NAME + "Cut")  # 203 characters, as when pasted
    assert page.input_value("#id_organisation") == LONG_NAME
    assert hint.inner_text() == ("The limit of 200 characters is reached: anything longer was cut.")
    page.fill("#id_organisation", "Short Co")
    assert hint.inner_text() == "At most 200 characters."
    assert horizontal_overflow(page) <= 0
    assert csp_violations(page) == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("width", WIDTHS)
def test_invoice_numbers_stay_on_one_line_in_german(browser, live_server, width):
    from tests.factories import InvoiceFactory

    tenant = make_tenant("Rechnung Reseller")
    customer = CustomerFactory(reseller=tenant.reseller, organisation=LONG_NAME)
    invoice = InvoiceFactory(customer=customer)
    page = open_page(browser, live_server, tenant.owner, width)
    page.context.add_cookies([{"name": "django_language", "value": "de", "url": live_server.url}])
    page.goto("/invoices/")
    assert page.locator("h1").inner_text() == "Rechnungen"
    number = page.locator("#invoice-table a", has_text=invoice.number)
    line_height = page.evaluate(
        "parseFloat(getComputedStyle(document.querySelector('#invoice-table td a')).lineHeight)"
    )
    box = number.bounding_box()
    assert box is not None and box["height"] < 1.5 * line_height
    assert horizontal_overflow(page) <= 0
    assert csp_violations(page) == []


# How far each header overflows its own cell (a word wider than its column), how far the table
# overflows its scroller (wider than the page leaves it), and each header's width.
HEADER_OVERFLOW = """
() => {
  const table = document.querySelector('.table-wrap table');
  const headers = [...table.querySelectorAll('thead th')]
    .filter((th) => th.innerText.trim())
    .map((th) => [th.innerText.trim(), th.scrollWidth - th.clientWidth])
    .filter(([, over]) => over > 0);
  const wrap = table.closest('.table-wrap');
  const widths = [...table.querySelectorAll('thead th')]
    .map((th) => [th.innerText.trim(), th.offsetWidth]);
  return {headers, scroller: wrap.scrollWidth - wrap.clientWidth, widths};
}
"""


# The words of the Invoices table's headers and date cells that are wider than their cell, i.e.
# broken inside the word (a word's width measured in the cell's own font).
BROKEN_WORDS = """
() => {
  const context = document.createElement('canvas').getContext('2d');
  const broken = [];
  const cells = document.querySelectorAll('#invoice-table thead th, #invoice-table td.nowrap');
  for (const cell of cells) {
    if (cell.querySelector('.visually-hidden')) continue;  // the actions column's label
    const style = getComputedStyle(cell);
    context.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
    const room = cell.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    for (const word of cell.innerText.split(/\\s+/).filter(Boolean)) {
      if (context.measureText(word).width > room + 0.5) broken.push(word);
    }
  }
  return broken;
}
"""


@pytest.mark.django_db(transaction=True)
def test_no_invoices_header_or_date_breaks_inside_a_word_in_any_language(browser, live_server):
    """At 1280 px, with a paid invoice (its Amount due column a dash: the narrowest it gets),
    no header word is split across lines ("Impo-rte", seen in Spanish) and no date breaks at
    its hyphens (Dutch "21-12-2026"), in any language."""
    from billing.models import Invoice
    from tests.factories import InvoiceFactory

    tenant = make_tenant("Factura Reseller")
    InvoiceFactory(
        customer=tenant.customer,
        status=Invoice.Status.PAID,
        paid_at=timezone.now(),
        issue_date=date(2026, 12, 21),
        due_date=date(2027, 1, 4),
    )
    page = open_page(browser, live_server, tenant.owner)
    for language in ("en", "es", "fr", "de", "nl"):
        page.context.add_cookies(
            [{"name": "django_language", "value": language, "url": live_server.url}]
        )
        page.goto("/invoices/")
        assert page.locator("html").get_attribute("lang") == language
        assert page.locator("#invoice-table tbody td", has_text="—").count() == 1
        assert page.evaluate(BROKEN_WORDS) == [], language
        assert horizontal_overflow(page) <= 0
    assert csp_violations(page) == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("side", ["reseller", "customer"])
def test_the_german_invoice_tables_headers_wrap_within_the_page(browser, live_server, side, width):
    """German headers are long single words ("Ausstellungsdatum", "Fälligkeitsdatum"): they
    wrap inside their column instead of spilling over the next one or widening the table past
    the page at 1280 px; at 390 px only the table's own box scrolls, never the page."""
    from tests.factories import InvoiceFactory

    tenant = make_tenant("Rechnung Reseller")
    invoice = InvoiceFactory(customer=tenant.customer)
    if side == "reseller":
        user, path = tenant.owner, "/invoices/"
    else:
        user = UserFactory()
        CustomerMember.objects.create(
            customer=tenant.customer, user=user, terms_accepted_at=timezone.now()
        )
        path = f"/my/{tenant.customer.public_id}/invoices/"
    page = open_page(browser, live_server, user, width)
    page.context.add_cookies([{"name": "django_language", "value": "de", "url": live_server.url}])
    page.goto(path)
    assert page.locator("html").get_attribute("lang") == "de"
    assert page.locator("thead", has_text="Ausstellungsdatum").count() == 1

    overflow = page.evaluate(HEADER_OVERFLOW)
    assert overflow["headers"] == []
    if width >= 1280:
        assert overflow["scroller"] <= 0, str(overflow["widths"])
    number = page.locator(".table-wrap td a", has_text=invoice.number)
    line_height = page.evaluate(
        "parseFloat(getComputedStyle(document.querySelector('.table-wrap td a')).lineHeight)"
    )
    box = number.bounding_box()
    assert box is not None and box["height"] < 1.5 * line_height
    assert horizontal_overflow(page) <= 0
    assert csp_violations(page) == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("language", ["es", "de"])
def test_the_header_and_menu_fit_a_phone_for_a_member_of_two_resellers(
    browser, live_server, language
):
    """At 390 px, the reseller switcher's long label ("Cambiar de revendedor") wraps under its
    list instead of widening the page, and the menu is one row of links, not a tall block."""
    tenant = make_tenant("Nimbus Cloud Partners")
    other = make_tenant("Brightside IT")
    Membership.objects.create(reseller=other.reseller, user=tenant.owner, role="sales")
    page = open_page(browser, live_server, tenant.owner, 390)
    page.context.add_cookies(
        [{"name": "django_language", "value": language, "url": live_server.url}]
    )
    for path in ("/dashboard/", "/customers/", "/invoices/"):
        page.goto(path)
        assert page.locator("#reseller-switch").is_visible()
        assert horizontal_overflow(page) <= 0, path
        menu = page.locator("nav.menu").bounding_box()
        assert menu is not None and menu["height"] < 80, (path, menu)
        assert csp_violations(page) == [], path
