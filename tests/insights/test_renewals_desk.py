"""The dashboard's renewals desk (issue 18): the annual terms ending in the next 30, 60 or 90
days, soonest first, each with its renewal setting and licences; one click changes the
setting through the service, which checks the role and audits it, with and without htmx (and in
Chromium, with and without JavaScript)."""

import re
from datetime import UTC, datetime, time, timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from customers import services as customer_services
from resellers.models import AuditEvent
from resellers.roles import Role
from subscriptions import services
from subscriptions.models import Plan, Subscription
from tests.factories import CustomerFactory, admin_of, catalogue, make_tenant, owner_of
from tests.support.browser import session_cookie

DASHBOARD = "/dashboard/"


def _bought(membership, customer, plan, days_ago: int, licences: int = 7) -> Subscription:
    """An annual subscription bought `days_ago` days ago: its term ends 365 - days_ago days
    from now (or so)."""
    day = timezone.localdate() - timedelta(days=days_ago)
    with time_machine.travel(datetime.combine(day, time(10), tzinfo=UTC), tick=False):
        return services.subscription_buy(
            membership=membership,
            customer=customer,
            plan=plan,
            licences=licences,
            payer="reseller_card",
            order_key=services.order_key_new(),
        ).subscription


def _desk(tenant):
    plans = catalogue()
    owner = owner_of(tenant)
    customers = CustomerFactory.create_batch(4, reseller=tenant.reseller)
    soon = _bought(owner, customers[0], plans[Plan.Kind.ANNUAL_MONTHLY], 350)
    later = _bought(owner, customers[1], plans[Plan.Kind.ANNUAL_YEARLY], 300)
    far = _bought(owner, customers[2], plans[Plan.Kind.ANNUAL_MONTHLY], 200)
    flexible = _bought(owner, customers[3], plans[Plan.Kind.FLEXIBLE], 350)
    return plans, soon, later, far, flexible


def _rows(page: str) -> list[str]:
    return re.findall(r'<tr data-subscription="([^"]+)">', page)


@pytest.mark.django_db
def test_the_desk_lists_terms_ending_within_the_window_soonest_first(
    tenant, other_tenant, client_for
):
    plans, soon, later, far, flexible = _desk(tenant)
    _bought(owner_of(other_tenant), other_tenant.customer, plans[Plan.Kind.ANNUAL_MONTHLY], 350)
    client = client_for(tenant.owner)
    assert _rows(client.get(DASHBOARD).text) == [soon.public_id]
    assert _rows(client.get(DASHBOARD, {"renewals": 90}).text) == [
        soon.public_id,
        later.public_id,
    ]
    page = client.get(DASHBOARD, {"renewals": 60}).text
    assert far.public_id not in page and flexible.public_id not in page
    assert "Renew automatically" in page  # the setting, shown by its label
    # A window the desk does not offer shows the first one.
    assert _rows(client.get(DASHBOARD, {"renewals": "7"}).text) == [soon.public_id]
    # A customer that revoked the reseller's access leaves the desk (as it leaves MRR).
    customer_services.customer_access_revoke(customer=later.customer, user=admin_of(later.customer))
    assert _rows(client.get(DASHBOARD, {"renewals": 90}).text) == [soon.public_id]


@pytest.mark.django_db
def test_one_click_changes_the_setting_through_the_service(tenant, other_tenant, client_for):
    _plans, soon, *_rest = _desk(tenant)
    client = client_for(tenant.owner)
    url = reverse("dashboard_renewal", args=[soon.public_id])
    response = client.post(url, {"setting": "cancel_at_term_end", "renewals": "30"})
    assert response.status_code == 302 and response.url == "/dashboard/?renewals=30#renewals"
    soon.refresh_from_db()
    assert soon.renewal_setting == Subscription.RenewalSetting.CANCEL_AT_TERM_END
    event = AuditEvent.objects.filter(action="subscription.renewal_changed").latest("id")
    assert event.actor == tenant.owner and event.object_id == soon.public_id
    page = client.get(DASHBOARD).text
    assert 'data-setting="cancel_at_term_end"' in page
    # With htmx: the desk again, with the new setting and the message.
    response = client.post(url, {"setting": "auto_renew", "renewals": "30"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert response.text.lstrip().startswith('<section class="card" id="renewals"')
    assert 'data-setting="auto_renew"' in response.text
    assert "Renew automatically." in response.text
    # Another reseller's subscription is a 404, as a missing one.
    assert (
        client.post(
            reverse("dashboard_renewal", args=["AAAAAAAAAAAAAAAA"]), {"setting": "auto_renew"}
        ).status_code
        == 404
    )
    other = _bought(
        owner_of(other_tenant),
        other_tenant.customer,
        Plan.objects.get(product=soon.product, kind=Plan.Kind.ANNUAL_MONTHLY),
        350,
    )
    response = client.post(
        reverse("dashboard_renewal", args=[other.public_id]), {"setting": "cancel_at_term_end"}
    )
    assert response.status_code == 404
    other.refresh_from_db()
    assert other.renewal_setting == Subscription.RenewalSetting.AUTO_RENEW


@pytest.mark.django_db
def test_the_role_decides_what_one_click_may_do(tenant, client_for):
    _plans, soon, *_rest = _desk(tenant)
    url = reverse("dashboard_renewal", args=[soon.public_id])
    sales = client_for(tenant.member(Role.SALES))
    # Sales may buy but not cancel: no button, and a forged click is refused in words.
    assert "Cancel at the end of the term</button>" not in sales.get(DASHBOARD).text
    response = sales.post(url, {"setting": "cancel_at_term_end"}, follow=True)
    soon.refresh_from_db()
    assert soon.renewal_setting == Subscription.RenewalSetting.AUTO_RENEW
    assert response.status_code == 200 and 'class="message error"' in response.text
    # Billing changes no subscription.
    billing = client_for(tenant.member(Role.BILLING))
    assert billing.post(url, {"setting": "cancel_at_term_end"}).status_code == 403
    # A setting the desk does not offer is refused in words, nothing changes.
    owner = client_for(tenant.owner)
    response = owner.post(url, {"setting": "renew_with_count"}, follow=True)
    assert "Choose what happens at renewal." in response.text
    soon.refresh_from_db()
    assert soon.renewal_setting == Subscription.RenewalSetting.AUTO_RENEW


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("javascript", [True, False])
def test_one_click_in_chromium(browser, live_server, javascript):
    tenant = make_tenant("Desk Reseller")
    _plans, soon, *_rest = _desk(tenant)
    context = browser.new_context(base_url=live_server.url, java_script_enabled=javascript)
    context.add_cookies([session_cookie(tenant.owner, live_server.url)])
    page = context.new_page()
    page.goto(DASHBOARD)
    row = page.locator(f'tr[data-subscription="{soon.public_id}"]')
    row.get_by_role("button", name="Cancel at the end of the term").click()
    row.locator('td[data-setting="cancel_at_term_end"]').wait_for()
    soon.refresh_from_db()
    assert soon.renewal_setting == Subscription.RenewalSetting.CANCEL_AT_TERM_END
    assert page.get_by_text("Cancel at the end of the term.").count() == 1
    context.close()
