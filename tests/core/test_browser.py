"""The real page in headless Chromium: layout, htmx under the CSP, language switch."""

import re
from urllib.parse import urlsplit

import pytest
from django.core import mail

from core.models import OutboundEmail
from customers.models import Customer
from tests.factories import CustomerFactory, UserFactory, make_tenant
from tests.support.browser import csp_collect, csp_violations, session_cookie

pytestmark = pytest.mark.browser


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url)
    page = context.new_page()
    csp_collect(context, page)
    return page


@pytest.mark.django_db(transaction=True)
def test_reseller_pages_in_a_real_browser(page, live_server):
    tenant = make_tenant("Browser Reseller")
    CustomerFactory(
        reseller=tenant.reseller, organisation="Waiting Co", status=Customer.Status.INVITED
    )
    page.context.add_cookies([session_cookie(tenant.owner, live_server.url)])

    page.goto("/dashboard/")
    assert page.locator("h1").inner_text() == "Dashboard"
    assert page.locator("nav.menu a", has_text="Customers").is_visible()

    # The status filter is an htmx request: only the results are swapped, the URL follows.
    page.goto("/customers/")
    with page.expect_response(
        lambda r: "status=invited" in r.url and r.request.headers.get("hx-request") == "true"
    ):
        page.select_option("#status-filter", "invited")
    page.wait_for_url("**/customers/?*status=invited*")
    rows = page.locator("#results tbody tr")
    assert rows.count() == 1 and "Waiting Co" in rows.first.inner_text()

    # Switching the language in the header re-renders the page in Spanish.
    page.select_option("#language-switch", "es")
    page.click("form.language button")
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "Clientes"
    assert page.locator("nav.menu a", has_text="Panel de control").is_visible()
    assert csp_violations(page) == []


@pytest.mark.django_db(transaction=True)
def test_new_customer_invitation_accept_manage_and_revoke(page, live_server):
    """Seed steps 2 to 6 and the customer's side, clicked through in a real browser."""
    tenant = make_tenant("Walkthrough Reseller")
    page.context.add_cookies([session_cookie(tenant.owner, live_server.url)])

    page.goto("/customers/")
    page.click("text=NEW CUSTOMER")
    page.fill("#id_contact_name", "Marta Ruiz")
    page.fill("#id_contact_email", "marta@walk.example")
    page.fill("#id_domain", "walk.example")
    page.fill("#id_organisation", "Walk Co")
    page.click("button:has-text('Send invitation')")
    assert "You are managing" in page.locator(".banner").inner_text()
    assert page.locator("h1 .badge").inner_text() == "Invited"

    assert OutboundEmail.objects.get(template="customer_invitation", to="marta@walk.example")
    # The link is in the email sent (the stored one keeps a placeholder instead).
    sent = [message for message in mail.outbox if message.to == ["marta@walk.example"]]
    link = re.search(r"https?://\S+/invitation/[\w-]+/", str(sent[-1].body))
    assert link is not None
    path = urlsplit(link.group(0)).path

    # The contact, signed in with the invited address, accepts the terms.
    contact = UserFactory(email="marta@walk.example")
    page.context.clear_cookies()
    page.context.add_cookies([session_cookie(contact, live_server.url)])
    page.goto(path)
    assert "Walkthrough Reseller invites you" in page.locator("h1").inner_text()
    page.click("button:has-text('Accept the invitation')")
    assert page.locator(".has-error").is_visible()  # the terms are required
    page.check("input[name=terms]")
    page.click("button:has-text('Accept the invitation')")
    page.wait_for_url("**/my/")
    page.get_by_role("link", name="Walk Co").click()
    assert "Walkthrough Reseller" in page.locator("#reseller").inner_text()
    assert "Customer accepted the invitation" in page.locator("#activity").inner_text()

    # The reseller sees it Active at once, edits a detail; the customer reads it in its activity.
    page.context.clear_cookies()
    page.context.add_cookies([session_cookie(tenant.owner, live_server.url)])
    customer = Customer.objects.get(domain="walk.example")
    page.goto(f"/customers/{customer.public_id}/")
    assert page.locator("h1 .badge").inner_text() == "Active"
    page.click("text=Edit details")
    page.fill("#id_crm_id", "CRM-42")
    page.click("button:has-text('Save')")
    assert "CRM-42" in page.locator("#activity").inner_text()

    # The customer revokes the reseller's access, after a confirmation.
    page.context.clear_cookies()
    page.context.add_cookies([session_cookie(contact, live_server.url)])
    page.goto(f"/my/{customer.public_id}/")
    assert "CRM-42" in page.locator("#activity").inner_text()
    page.click("text=Revoke partner access")
    page.click("button:has-text('Revoke partner access')")
    assert "No reseller" in page.locator("#reseller").inner_text()
    customer.refresh_from_db()
    assert customer.status == Customer.Status.ACCESS_REVOKED
    assert csp_violations(page) == []
