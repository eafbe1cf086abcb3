"""The real page in headless Chromium: layout, htmx under the CSP, language switch."""

import shutil

import pytest
from django.test import Client

from customers.models import Customer
from tests.conftest import make_tenant
from tests.factories import CustomerFactory

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not shutil.which("chromium"), reason="Debian's chromium is not installed"),
]


@pytest.fixture
def page(live_server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(base_url=live_server.url)
        page = context.new_page()
        page.csp_violations = []  # type: ignore[attr-defined]
        page.on(
            "console",
            lambda m: "Content Security Policy" in m.text and page.csp_violations.append(m.text),
        )
        yield page
        browser.close()


@pytest.mark.django_db(transaction=True)
def test_reseller_pages_in_a_real_browser(page, live_server):
    tenant = make_tenant("Browser Reseller")
    CustomerFactory(
        reseller=tenant.reseller, organisation="Waiting Co", status=Customer.Status.INVITED
    )
    page.context.add_cookies([_session_cookie(tenant.owner, live_server.url)])

    page.goto("/dashboard/")
    assert page.locator("h1").inner_text() == "Dashboard"
    assert page.locator("nav.menu a", has_text="Customers").is_visible()

    # The status filter is an htmx request: only the results are swapped, the URL follows.
    page.goto("/customers/")
    with page.expect_response(
        lambda r: "status=invited" in r.url and r.request.headers.get("hx-request") == "true"
    ):
        page.select_option("#status-filter", "invited")
    page.wait_for_url("**/customers/?status=invited")
    rows = page.locator("#results tbody tr")
    assert rows.count() == 1 and "Waiting Co" in rows.first.inner_text()

    # Switching the language in the header re-renders the page in Spanish.
    page.select_option("#language-switch", "es")
    page.click("form.language button")
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "Clientes"
    assert page.locator("nav.menu a", has_text="Panel de control").is_visible()
    assert page.csp_violations == []


def _session_cookie(user, url: str) -> dict[str, str]:
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return {"name": "sessionid", "value": client.cookies["sessionid"].value, "url": url}
