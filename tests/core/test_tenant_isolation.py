"""Every URL of the project that takes an object id answers a member of another reseller with
the same 404 as a missing object. New URLs are swept automatically; a new kind of id must be
taught to OBJECT_IDS below, or this test fails."""

from collections.abc import Callable
from decimal import Decimal

import pytest
from django.urls import URLPattern, get_resolver
from django.utils import timezone

from core.ids import new_public_id
from resellers.models import Membership
from subscriptions.models import CustomerPrice, Order
from tests.factories import (
    InvoiceFactory,
    PlanFactory,
    SubscriptionFactory,
    TeamInvitationFactory,
    Tenant,
    charge_priced,
    invoice_of_charges,
    special_price_for,
    statement_for,
)
from tests.support.url_sweep import keywords, same_page, walk

PROJECT_PACKAGES = (
    "config",
    "core",
    "resellers",
    "customers",
    "subscriptions",
    "billing",
    "commissions",
)

# For each URL keyword that names a tenant-owned object: how to get one of tenant A's.
OBJECT_IDS: dict[str, Callable[[Tenant], str]] = {
    "membership_id": lambda t: Membership.objects.get(user=t.owner, reseller=t.reseller).public_id,
    "team_invitation_id": lambda t: TeamInvitationFactory(reseller=t.reseller).public_id,
    "customer_id": lambda t: t.customer.public_id,
    "subscription_id": lambda t: SubscriptionFactory(customer=t.customer).public_id,
    "order_id": lambda t: order_of(t).public_id,
    "invoice_id": lambda t: InvoiceFactory(customer=t.customer).public_id,
    "statement_id": lambda t: statement_for(t.customer).public_id,
}


def order_of(t: Tenant) -> Order:
    """An order confirmation of tenant `t` (written directly, like SubscriptionFactory)."""
    subscription = SubscriptionFactory(customer=t.customer)
    return Order.objects.create(
        reference=f"ORD-{new_public_id()[:8]}",
        key=new_public_id(),
        customer=t.customer,
        subscription=subscription,
        kind=Order.Kind.ADD,
        licences_before=4,
        licences_after=subscription.licences,
        amount=Decimal("1.00"),
        currency=subscription.currency,
    )


# URL keywords that are not object ids, and the test that covers each instead.
NOT_OBJECT_IDS = {
    "token": (
        "bearer links: tests/core/test_google_sign_in.py (expired, used, unknown, wrong account)"
    ),
}


# Customer-side pages answer a customer's own administrators, not reseller members; they have
# their own sweep, across customers, in tests/customers/test_customer_side.py. The admin is the
# vendor staff's, behind MFA, not a tenant's (tests/core/test_admin_fields.py,
# test_staff_only_passwords.py).
SWEPT_ELSEWHERE = (
    "customer_side:",
    "my_subscriptions:",
    "my_invoices:",
    "my_payments:",
    "admin:",
)


def project_patterns() -> list[tuple[str, URLPattern]]:
    patterns = []
    for name, pattern in walk(get_resolver().url_patterns):
        module = getattr(pattern.callback, "__module__", "")
        if module.split(".")[0] in PROJECT_PACKAGES and not name.startswith(SWEPT_ELSEWHERE):
            patterns.append((name, pattern))
    return patterns


def test_every_url_keyword_is_known():
    unknown = {
        (name, kw)
        for name, pattern in project_patterns()
        for kw in keywords(pattern)
        if kw not in OBJECT_IDS and kw not in NOT_OBJECT_IDS
    }
    assert not unknown, f"Teach OBJECT_IDS how to make these ids: {sorted(unknown)}"


TENANT_URLS = [
    name for name, pattern in project_patterns() if keywords(pattern) & OBJECT_IDS.keys()
]


def test_the_sweep_covers_urls():
    # Guard against a walk that silently finds nothing.
    assert {
        "customers:detail",
        "resellers:member_role",
        "resellers:invitation_withdraw",
        "subscriptions:special_price_end",
        "statements:detail",
    } <= set(TENANT_URLS)


@pytest.mark.parametrize("url_name", TENANT_URLS)
def test_another_resellers_object_is_a_404(url_name, tenant, other_tenant, client_for):
    from django.urls import reverse

    pattern = dict(project_patterns())[url_name]
    own_ids = {kw: OBJECT_IDS[kw](tenant) for kw in keywords(pattern)}
    missing_ids = {kw: new_public_id() for kw in keywords(pattern)}
    foreign_url = reverse(url_name, kwargs=own_ids)
    missing_url = reverse(url_name, kwargs=missing_ids)

    outsider = client_for(other_tenant.owner)
    statuses = {}
    for method in ("get", "post"):
        foreign = getattr(outsider, method)(foreign_url)
        missing = getattr(outsider, method)(missing_url)
        assert foreign.status_code == missing.status_code, (method, foreign_url)
        if foreign.status_code == 404:
            assert same_page(
                foreign.content.replace(foreign_url.encode(), b"URL"),
                missing.content.replace(missing_url.encode(), b"URL"),
            )
        statuses[method] = foreign.status_code
    assert 404 in statuses.values(), statuses

    # The same id is found for its own reseller: the 404 above is about the tenant.
    insider = client_for(tenant.owner)
    for method in ("get", "post"):
        assert getattr(insider, method)(foreign_url).status_code != 404, method


# Ids a form posts rather than the URL carries: another reseller's object is the same 404 as a
# missing one there too. Each gives the URL's own ids, the posted data with tenant A's object,
# and which field names that object.
BodyIds = tuple[dict[str, str], dict[str, str], str]
BODY_IDS: dict[str, Callable[[Tenant, Tenant], BodyIds]] = {
    # The Price book's special price: the customer is chosen in the form.
    "subscriptions:special_price_add": lambda mine, _theirs: (
        {},
        {
            "customer": mine.customer.public_id,
            "plan": PlanFactory().public_id,
            "currency": "EUR",
            "price": "4.00",
            "valid_from": timezone.localdate().isoformat(),
        },
        "customer",
    ),
    # Ending one: the outsider's own customer in the URL, tenant A's special price in the form.
    "subscriptions:special_price_end": lambda mine, theirs: (
        {"customer_id": theirs.customer.public_id},
        {"special_price": str(special_price_of(mine).pk)},
        "special_price",
    ),
}


def special_price_of(t: Tenant) -> CustomerPrice:
    return special_price_for(t.customer, PlanFactory(), Decimal("4.00"))


def test_every_posted_id_is_swept():
    # The views that look up an object a form names, by their URL names.
    assert set(BODY_IDS) == {"subscriptions:special_price_add", "subscriptions:special_price_end"}


@pytest.mark.parametrize("url_name", BODY_IDS)
def test_another_resellers_object_posted_in_a_form_is_a_404(
    url_name, tenant, other_tenant, client_for
):
    from django.urls import reverse

    url_kwargs, data, field = BODY_IDS[url_name](tenant, other_tenant)
    url = reverse(url_name, kwargs=url_kwargs)
    missing_id = new_public_id() if field == "customer" else str(10**9)
    outsider = client_for(other_tenant.owner)
    foreign = outsider.post(url, data)
    missing = outsider.post(url, {**data, field: missing_id})
    assert foreign.status_code == missing.status_code == 404
    assert same_page(foreign.content, missing.content)
    # Tenant A's owner reaches it (its own customer in the URL).
    own_kwargs = dict.fromkeys(url_kwargs, tenant.customer.public_id)
    insider = client_for(tenant.owner)
    assert insider.post(reverse(url_name, kwargs=own_kwargs), data).status_code == 302


# Pages without an object id that show the reseller's own money: another reseller's figures
# never appear on them, in the page or its CSV.
def test_the_margin_page_and_its_csv_show_only_the_resellers_own_figures(
    tenant, other_tenant, client_for
):
    now = timezone.now()
    for t, amount in ((tenant, "123.45"), (other_tenant, "678.90")):
        subscription = SubscriptionFactory(customer=t.customer)
        charge = charge_priced(subscription, amount=amount, cost="100.00")
        invoice_of_charges([charge], status="paid", paid_at=now)
        invoice_of_charges([charge_priced(subscription, amount=amount, cost="100.00")])
    month = f"?month={now:%Y-%m}"
    for client, own, theirs in (
        (client_for(tenant.owner), "123.45", "678.90"),
        (client_for(other_tenant.owner), "678.90", "123.45"),
    ):
        page = client.get("/margin/" + month).content.decode()
        csv = b"".join(client.get("/margin/export.csv" + month).streaming_content).decode()
        for body in (page, csv):
            assert own in body and theirs not in body
