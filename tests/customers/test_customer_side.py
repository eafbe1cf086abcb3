"""The customer side: an organisation's own administrators see their organisation and its
activity, revoke their reseller's access and hand out transfer tokens. Customer X's admin never
reaches customer Y (the sweep at the end)."""

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.urls import URLPattern, get_resolver, reverse
from django.utils import timezone

from core.ids import new_public_id
from core.models import OutboundEmail, User
from core.tokens import token_digest, token_new
from customers import services
from customers.models import Customer, CustomerMember, TransferToken
from resellers.models import AuditEvent, Reseller
from resellers.roles import Role
from resellers.services import audit_record
from tests.factories import (
    CustomerFactory,
    InvoiceFactory,
    ResellerFactory,
    SubscriptionFactory,
    Tenant,
    UserFactory,
    admin_of,
    member_of,
)
from tests.support.url_sweep import keywords, same_page, walk


def open_token(customer: Customer, **fields: object) -> TransferToken:
    fields.setdefault("to_reseller", ResellerFactory())
    return TransferToken.objects.create(customer=customer, token_hash=token_new()[1], **fields)


def organisation_url(customer: Customer) -> str:
    return reverse("customer_side:organisation", kwargs={"customer_id": customer.public_id})


def token_url(customer: Customer) -> str:
    return reverse(
        "customer_side:transfer_token_create", kwargs={"customer_id": customer.public_id}
    )


def revoke_url(customer: Customer) -> str:
    return reverse("customer_side:access_revoke", kwargs={"customer_id": customer.public_id})


@pytest.fixture
def admin(tenant: Tenant, other_tenant: Tenant) -> User:
    return admin_of(tenant.customer)


@pytest.fixture
def admin_client(admin: User, client_for):
    return client_for(admin)


# Pages


def test_my_lists_every_organisation_the_person_administers(tenant, other_tenant, client_for):
    user = admin_of(tenant.customer)
    revoked = CustomerFactory(
        reseller=tenant.reseller, organisation="Revoked Org", status="access_revoked"
    )
    CustomerMember.objects.create(customer=revoked, user=user, terms_accepted_at=timezone.now())
    page = client_for(user).get("/my/").content.decode()
    assert organisation_url(tenant.customer) in page and organisation_url(revoked) in page
    assert "Access revoked" in page and "No reseller" in page
    assert other_tenant.customer.organisation not in page


def test_my_is_friendly_for_a_person_who_administers_nothing(db, client_for):
    response = client_for(UserFactory()).get("/my/")
    assert response.status_code == 200
    assert "do not administer any organisation" in response.content.decode()


def test_customer_side_pages_need_sign_in(tenant, client):
    for url in ("/my/", organisation_url(tenant.customer), revoke_url(tenant.customer)):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response.url


def test_organisation_page(admin_client, tenant):
    page = admin_client.get(organisation_url(tenant.customer)).content.decode()
    customer = tenant.customer
    for text in (customer.organisation, customer.domain, customer.public_id, tenant.reseller.name):
        assert text in page
    for section in ('id="subscriptions"', 'id="invoices"', 'id="activity"', 'id="transfer"'):
        assert section in page
    assert "no subscriptions yet" in page and "No invoices yet" in page
    assert revoke_url(customer) in page
    assert "Generate a transfer token" in page


def test_header_shows_my_organisations_not_reseller_menus(admin_client, tenant):
    page = admin_client.get(organisation_url(tenant.customer)).content.decode()
    assert "My organisations" in page
    assert reverse("customers:list") not in page and reverse("resellers:team") not in page


def test_reseller_members_keep_their_menu(owner_client):
    page = owner_client.get("/dashboard/").content.decode()
    assert "My organisations" not in page and reverse("customers:list") in page


def test_settings_show_the_reseller_id_for_transfer_tokens(owner_client, tenant):
    page = owner_client.get(reverse("resellers:settings")).content.decode()
    assert f"<code>{tenant.reseller.public_id}</code>" in page


# Activity


def test_activity_shows_what_the_reseller_did_and_no_other_customer(tenant, client_for):
    owner_membership = tenant.reseller.memberships.get(user=tenant.owner)
    fields = {
        "contact_name": "Marta Ruiz",
        "contact_email": "marta@acme-iberia.es",
        "customer_type": "domain",
        "domain": "acme-iberia.es",
        "organisation": "Acme Iberia",
    }
    customer = services.customer_invite(membership=owner_membership, **fields)
    services.customer_invite(
        membership=owner_membership,
        **{**fields, "domain": "other.es", "contact_email": "x@other.es", "organisation": "Other"},
    )
    Customer.objects.filter(pk=customer.pk).update(status=Customer.Status.ACTIVE)
    audit_record(
        actor=tenant.owner,
        reseller=tenant.reseller,
        action="customer.updated",
        obj=customer,
        before={"contact_name": "Marta Ruiz"},
        after={"contact_name": "Marta Ruiz Gil"},
        customer_public_id=customer.public_id,
    )
    page = client_for(admin_of(customer)).get(organisation_url(customer)).content.decode()
    assert page.count("Customer invited") == 1  # not the other customer's invitation
    assert tenant.owner.email in page and tenant.reseller.name in page
    assert "Marta Ruiz</del>" in page and "Marta Ruiz Gil</ins>" in page


def test_activity_includes_the_records_it_was_imported_from(tenant, other_tenant, client_for):
    old = CustomerFactory(reseller=other_tenant.reseller, status="transferred_out", domain="")
    audit_record(
        actor=other_tenant.owner,
        reseller=other_tenant.reseller,
        action="customer.invited",
        obj=old,
        customer_public_id=old.public_id,
    )
    new = CustomerFactory(reseller=tenant.reseller, previous=old)
    page = client_for(admin_of(new)).get(organisation_url(new)).content.decode()
    assert "Customer invited" in page and other_tenant.reseller.name in page


def test_activity_is_paged_with_show_more(admin_client, tenant):
    customer = tenant.customer
    for number in range(25):
        audit_record(
            actor=tenant.owner,
            reseller=tenant.reseller,
            action="customer.updated",
            obj=customer,
            before={"crm_id": f"old-{number}"},
            after={"crm_id": f"new-{number}"},
            customer_public_id=customer.public_id,
        )
    first = admin_client.get(organisation_url(customer)).content.decode()
    assert "new-24</ins>" in first and "new-5</ins>" in first and "new-4</ins>" not in first
    assert "?activity=2" in first
    older = admin_client.get(organisation_url(customer), {"activity": 2}, HTTP_HX_REQUEST="true")
    fragment = older.content.decode()
    assert "<html" not in fragment and 'id="activity-list"' in fragment
    assert "new-4</ins>" in fragment and "new-0</ins>" in fragment and "new-5</ins>" not in fragment
    assert "?activity=1" in fragment and "?activity=3" not in fragment


# Revoke partner access


def test_revoke_confirmation_explains_the_consequences(admin_client, tenant):
    page = admin_client.get(revoke_url(tenant.customer)).content.decode()
    assert "can no longer see or manage" in page
    assert "keep running" in page and "payment card" in page
    assert "told by email" in page
    assert Customer.objects.get(pk=tenant.customer.pk).status == Customer.Status.ACTIVE


def test_revoke_partner_access(admin_client, admin, tenant, owner_client):
    tenant.owner.language = "de"
    tenant.owner.save()
    reseller_admin = member_of(tenant.reseller, Role.ADMIN).user
    reseller_admin.language = "fr"
    reseller_admin.save()
    sales = member_of(tenant.reseller, Role.SALES).user
    token = open_token(tenant.customer)
    assert (
        owner_client.get(reverse("customers:detail", args=[tenant.customer.public_id])).status_code
        == 200
    )

    response = admin_client.post(revoke_url(tenant.customer))

    assert response.status_code == 302 and response.url == organisation_url(tenant.customer)
    customer = Customer.objects.get(pk=tenant.customer.pk)
    assert customer.status == Customer.Status.ACCESS_REVOKED
    emails = {e.to: e for e in OutboundEmail.objects.filter(template="customer_access_revoked")}
    assert set(emails) == {tenant.owner.email, reseller_admin.email}  # not sales
    assert sales.email not in emails
    assert emails[tenant.owner.email].language == "de"
    assert emails[reseller_admin.email].language == "fr"
    assert customer.organisation in emails[tenant.owner.email].subject
    event = AuditEvent.objects.get(action="customer.access_revoked")
    assert event.reseller == tenant.reseller and event.customer_public_id == customer.public_id
    assert event.actor == admin and event.before == {"status": "active"}
    token.refresh_from_db()
    assert token.withdrawn_at is not None
    # Gone from the reseller's side at once.
    assert customer.organisation not in owner_client.get("/customers/").content.decode()
    detail = owner_client.get(reverse("customers:detail", args=[customer.public_id]))
    assert detail.status_code == 404
    page = admin_client.get(response.url).content.decode()
    assert "can no longer see or manage" in page and "No reseller" in page
    assert revoke_url(customer) not in page


def test_revoke_happens_only_from_active(admin_client, tenant):
    Customer.objects.filter(pk=tenant.customer.pk).update(status=Customer.Status.ACCESS_REVOKED)
    response = admin_client.post(revoke_url(tenant.customer), follow=True)
    assert "Only an organisation with an active reseller" in response.content.decode()
    assert "only while your organisation has an active reseller" in (
        admin_client.get(revoke_url(tenant.customer)).content.decode()
    )
    assert not AuditEvent.objects.filter(action="customer.access_revoked").exists()
    assert not OutboundEmail.objects.filter(template="customer_access_revoked").exists()


def test_only_the_customers_administrators_may_revoke(tenant):
    with pytest.raises(PermissionDenied):
        services.customer_access_revoke(customer=tenant.customer, user=tenant.owner)
    assert Customer.objects.get(pk=tenant.customer.pk).status == Customer.Status.ACTIVE


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_parallel_revokes_change_the_customer_once():
    customer = CustomerFactory()
    member_of(customer.reseller, Role.OWNER)
    admins = [admin_of(customer), admin_of(customer)]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []
    lock = threading.Lock()

    def revoke(user: User) -> None:
        try:
            barrier.wait()
            try:
                services.customer_access_revoke(customer=customer, user=user)
                outcome = "revoked"
            except ValidationError:
                outcome = "refused"
            with lock:
                outcomes.append(outcome)
        finally:
            connection.close()

    threads = [threading.Thread(target=revoke, args=(user,)) for user in admins]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused", "revoked"]
    assert AuditEvent.objects.filter(action="customer.access_revoked").count() == 1
    assert OutboundEmail.objects.filter(template="customer_access_revoked").count() == 1


# Transfer tokens


@pytest.mark.parametrize(
    ("reseller_id", "message"),
    [
        ("", "This field is required"),
        ("no-such-reseller", "No active reseller has this ID"),
        ("suspended", "No active reseller has this ID"),
        ("pending", "No active reseller has this ID"),
        ("current", "This is the ID of your current reseller"),
    ],
)
def test_transfer_token_validation(admin_client, tenant, reseller_id, message):
    if reseller_id == "suspended":
        reseller_id = ResellerFactory(status=Reseller.Status.SUSPENDED).public_id
    elif reseller_id == "pending":
        reseller_id = ResellerFactory(status=Reseller.Status.PENDING).public_id
    elif reseller_id == "current":
        reseller_id = tenant.reseller.public_id
    response = admin_client.post(token_url(tenant.customer), {"reseller_id": reseller_id})
    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="id_reseller_id_error"' in page and message in page
    assert f'value="{reseller_id}"' in page if reseller_id else True
    assert not TransferToken.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="customer.transfer_token").exists()


def test_transfer_token_is_shown_once_and_never_stored(admin_client, tenant, other_tenant):
    earlier = open_token(tenant.customer)
    moment = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    with time_machine.travel(moment, tick=False):
        response = admin_client.post(
            token_url(tenant.customer), {"reseller_id": f"  {other_tenant.reseller.public_id} "}
        )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    token = TransferToken.objects.get(withdrawn_at__isnull=True)
    assert token.to_reseller == other_tenant.reseller and token.customer == tenant.customer
    assert token.expires_at == moment + timedelta(days=14)
    page = response.content.decode()
    raw = page.split('id="transfer-token-value" value="')[1].split('"')[0]
    assert token_digest(raw) == token.token_hash
    assert "will not be shown again" in page and "Import with transfer token" in page
    assert tenant.customer.domain in page and other_tenant.reseller.name in page
    earlier.refresh_from_db()
    assert earlier.withdrawn_at is not None

    event = AuditEvent.objects.get(action="customer.transfer_token_created")
    assert event.customer_public_id == tenant.customer.public_id
    assert event.after is not None
    assert event.after["to_reseller_id"] == other_tenant.reseller.public_id
    assert raw not in str(event.after) and raw not in str(event.before)
    assert not TransferToken.objects.filter(token_hash=raw).exists()
    later = admin_client.get(organisation_url(tenant.customer)).content.decode()
    assert raw not in later
    assert other_tenant.reseller.name in later  # listed as an open token, without the token


def test_transfer_token_expires_after_fourteen_days(
    admin, tenant, other_tenant, client_for, settings
):
    settings.INVITATION_VALID_DAYS = 7  # not the invitations' expiry
    with time_machine.travel(datetime(2026, 5, 1, tzinfo=UTC), tick=False):
        services.transfer_token_create(
            customer=tenant.customer, user=admin, reseller_public_id=other_tenant.reseller.public_id
        )
    token = TransferToken.objects.get()
    with time_machine.travel(datetime(2026, 5, 14, 23, 59, tzinfo=UTC), tick=False):
        assert token.state == "valid"
    with time_machine.travel(datetime(2026, 5, 15, 0, 1, tzinfo=UTC), tick=False):
        assert token.state == "expired"
        page = client_for(admin).get(organisation_url(tenant.customer)).content.decode()
        assert "Expired" in page


def test_transfer_token_allowed_after_revoking(admin, tenant, other_tenant):
    Customer.objects.filter(pk=tenant.customer.pk).update(status=Customer.Status.ACCESS_REVOKED)
    raw = services.transfer_token_create(
        customer=tenant.customer, user=admin, reseller_public_id=other_tenant.reseller.public_id
    )
    assert TransferToken.objects.get().token_hash == token_digest(raw)


@pytest.mark.parametrize("status", ["transferred_out", "cancelled", "invited"])
def test_transfer_token_refused_in_other_statuses(admin, tenant, other_tenant, status):
    Customer.objects.filter(pk=tenant.customer.pk).update(status=status)
    with pytest.raises(ValidationError):
        services.transfer_token_create(
            customer=tenant.customer, user=admin, reseller_public_id=other_tenant.reseller.public_id
        )
    assert not TransferToken.objects.exists()


def test_only_the_customers_administrators_make_transfer_tokens(tenant, other_tenant):
    with pytest.raises(PermissionDenied):
        services.transfer_token_create(
            customer=tenant.customer,
            user=tenant.owner,
            reseller_public_id=other_tenant.reseller.public_id,
        )


def test_withdraw_a_transfer_token(admin_client, tenant, other_tenant):
    token = open_token(tenant.customer, to_reseller=other_tenant.reseller)
    url = reverse(
        "customer_side:transfer_token_withdraw",
        kwargs={"customer_id": tenant.customer.public_id, "transfer_token_id": token.public_id},
    )
    assert admin_client.get(url).status_code == 405
    response = admin_client.post(url)
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.withdrawn_at is not None
    event = AuditEvent.objects.get(action="customer.transfer_token_withdrawn")
    assert event.customer_public_id == tenant.customer.public_id
    page = admin_client.get(organisation_url(tenant.customer)).content.decode()
    assert "no longer works" in page and url not in page
    again = admin_client.post(url, follow=True).content.decode()
    assert "already used or withdrawn" in again
    assert AuditEvent.objects.filter(action="customer.transfer_token_withdrawn").count() == 1


# The customer-side sweep: customer X's admin gets, for customer Y's ids, the same 404 as for
# ids that do not exist. A new URL keyword must join CUSTOMER_SIDE_OBJECT_IDS (or be explained
# in NOT_OBJECT_IDS), or test_every_customer_side_keyword_is_known fails.

CUSTOMER_SIDE_OBJECT_IDS: dict[str, Callable[[Customer], str]] = {
    "customer_id": lambda customer: customer.public_id,
    "transfer_token_id": lambda customer: open_token(customer).public_id,
    "subscription_id": lambda customer: SubscriptionFactory(customer=customer).public_id,
    "invoice_id": lambda customer: InvoiceFactory(customer=customer).public_id,
}
NOT_OBJECT_IDS = {
    "token": (
        "bearer links: tests/core/test_google_sign_in.py and "
        "tests/customers/test_manage_customer.py"
    ),
}


def customer_side_patterns() -> dict[str, URLPattern]:
    return {
        name: pattern
        for name, pattern in walk(get_resolver().url_patterns)
        if name.startswith(("customer_side:", "my_subscriptions:", "my_invoices:", "my_payments:"))
    }


def test_every_customer_side_keyword_is_known():
    unknown = {
        (name, kw)
        for name, pattern in customer_side_patterns().items()
        for kw in keywords(pattern)
        if kw not in CUSTOMER_SIDE_OBJECT_IDS and kw not in NOT_OBJECT_IDS
    }
    assert not unknown, f"Teach CUSTOMER_SIDE_OBJECT_IDS these ids: {sorted(unknown)}"


CUSTOMER_SIDE_URLS = sorted(
    name
    for name, pattern in customer_side_patterns().items()
    if keywords(pattern) & CUSTOMER_SIDE_OBJECT_IDS.keys()
)


def test_the_customer_side_sweep_covers_urls():
    assert {
        "customer_side:organisation",
        "customer_side:access_revoke",
        "customer_side:transfer_token_create",
        "customer_side:transfer_token_withdraw",
        "my_subscriptions:detail",
        "my_invoices:detail",
        "my_invoices:pdf",
        "my_payments:card",
        "my_payments:card_change",
    } <= set(CUSTOMER_SIDE_URLS)


@pytest.mark.parametrize("url_name", CUSTOMER_SIDE_URLS)
def test_another_customers_object_is_a_404(url_name, tenant, other_tenant, client_for):
    pattern = customer_side_patterns()[url_name]
    target = other_tenant.customer  # customer Y
    target_ids = {kw: CUSTOMER_SIDE_OBJECT_IDS[kw](target) for kw in keywords(pattern)}
    missing_ids = {kw: new_public_id() for kw in keywords(pattern)}
    foreign_url = reverse(url_name, kwargs=target_ids)
    missing_url = reverse(url_name, kwargs=missing_ids)

    # X's admin, Y's reseller's owner (not one of Y's administrators) and a stranger.
    outsiders = [admin_of(tenant.customer), other_tenant.owner, UserFactory()]
    for outsider in outsiders:
        client = client_for(outsider)
        statuses = {}
        for method in ("get", "post"):
            foreign = getattr(client, method)(foreign_url)
            missing = getattr(client, method)(missing_url)
            assert foreign.status_code == missing.status_code, (outsider, method, foreign_url)
            if foreign.status_code == 404:
                assert same_page(
                    foreign.content.replace(foreign_url.encode(), b"URL"),
                    missing.content.replace(missing_url.encode(), b"URL"),
                )
            statuses[method] = foreign.status_code
        assert 404 in statuses.values(), (outsider, statuses)
    # Nothing happened to Y on the way.
    assert Customer.objects.get(pk=target.pk).status == Customer.Status.ACTIVE
    assert not TransferToken.objects.filter(customer=target, withdrawn_at__isnull=False).exists()
    assert not AuditEvent.objects.filter(customer_public_id=target.public_id).exists()

    # Y's own administrator reaches the same ids: the 404 above is about the customer.
    insider = client_for(admin_of(target))
    for method in ("get", "post"):
        assert getattr(insider, method)(foreign_url).status_code != 404, method
