"""Manage a customer: resend and withdraw the invitation, the hourly quota, edit the contact
details (audited), the activity history and the list of what a reseller may not do."""

import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from core.ratelimit import RateLimited
from core.tokens import token_new
from customers import services
from customers.models import Customer, CustomerInvitation
from resellers.models import AuditEvent
from resellers.roles import Role
from resellers.services import InvitationError
from tests.factories import CustomerFactory, UserFactory, member_of

NEW = {
    "contact_name": "Marta Ruiz",
    "contact_email": "marta@acme-iberia.es",
    "customer_type": "domain",
    "domain": "acme-iberia.es",
    "organisation": "Acme Iberia",
    "language": "en",
    "time_zone": "Europe/Madrid",
    "country": "ES",
}


def token_in(mail) -> str:
    return mail.body.split("/invitation/")[1].split("/")[0]


@pytest.fixture
def invited(owner_client, django_capture_on_commit_callbacks, mailoutbox):
    with django_capture_on_commit_callbacks(execute=True):
        owner_client.post("/customers/new/", NEW)
    return Customer.objects.get(domain="acme-iberia.es"), token_in(mailoutbox[-1])


def detail(customer: Customer) -> str:
    return f"/customers/{customer.public_id}/"


def test_resend_sends_a_new_link_and_the_old_one_dies(
    owner_client, invited, client, django_capture_on_commit_callbacks, mailoutbox
):
    customer, old_token = invited
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(detail(customer) + "invitation/resend/")
    assert response.url == detail(customer)
    new_token = token_in(mailoutbox[-1])
    assert new_token != old_token and len(mailoutbox) == 2
    old_page = client.get(f"/invitation/{old_token}/")
    assert (
        old_page.status_code == 410 and "A newer invitation was sent" in old_page.content.decode()
    )
    assert client.get(f"/invitation/{new_token}/").status_code == 200
    assert customer.invitations.count() == 2  # the history of sends is kept
    assert AuditEvent.objects.filter(action="customer.invitation_resent").count() == 1


def test_resend_goes_to_the_contact_email_as_edited(
    owner_client, invited, django_capture_on_commit_callbacks, mailoutbox
):
    customer, _ = invited
    owner_client.post(detail(customer) + "edit/", {**NEW, "contact_email": "it@acme-iberia.es"})
    with django_capture_on_commit_callbacks(execute=True):
        owner_client.post(detail(customer) + "invitation/resend/")
    assert mailoutbox[-1].to == ["it@acme-iberia.es"]


def test_withdraw_kills_the_link_frees_the_domain_and_can_be_sent_again(
    owner_client, invited, client, other_tenant, django_capture_on_commit_callbacks, mailoutbox
):
    customer, token = invited
    response = owner_client.post(detail(customer) + "invitation/withdraw/")
    assert response.url == detail(customer)
    customer.refresh_from_db()
    assert customer.status == Customer.Status.CANCELLED
    page = client.get(f"/invitation/{token}/")
    assert page.status_code == 410 and "was withdrawn" in page.content.decode()
    assert "Send the invitation again" in owner_client.get(detail(customer)).content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        owner_client.post(detail(customer) + "invitation/resend/")
    customer.refresh_from_db()
    assert customer.status == Customer.Status.INVITED
    assert client.get(f"/invitation/{token_in(mailoutbox[-1])}/").status_code == 200


def test_sending_again_after_another_reseller_took_the_domain_is_refused(
    owner_client, invited, other_tenant
):
    customer, _ = invited
    owner_client.post(detail(customer) + "invitation/withdraw/")
    CustomerFactory(reseller=other_tenant.reseller, domain="acme-iberia.es")
    response = owner_client.post(detail(customer) + "invitation/resend/", follow=True)
    assert "has become a customer of another reseller" in response.content.decode()
    customer.refresh_from_db()
    assert customer.status == Customer.Status.CANCELLED
    assert customer.invitations.filter(withdrawn_at__isnull=True).count() == 0


def test_an_accepted_customer_has_no_invitation_to_resend_or_withdraw(owner_client, tenant):
    customer = tenant.customer  # active
    assert "Resend invitation" not in owner_client.get(detail(customer)).content.decode()
    response = owner_client.post(detail(customer) + "invitation/resend/", follow=True)
    assert "already accepted" in response.content.decode()
    response = owner_client.post(detail(customer) + "invitation/withdraw/", follow=True)
    assert "Only an invitation that was not accepted yet" in response.content.decode()
    customer.refresh_from_db()
    assert customer.status == Customer.Status.ACTIVE


def test_invitation_actions_need_post_and_the_invite_right(tenant, other_tenant, client_for):
    customer = CustomerFactory(reseller=tenant.reseller, status=Customer.Status.INVITED)
    billing = client_for(member_of(tenant.reseller, Role.BILLING).user)
    assert billing.post(detail(customer) + "invitation/withdraw/").status_code == 403
    assert "Withdraw invitation" not in billing.get(detail(customer)).content.decode()
    sales = client_for(member_of(tenant.reseller, Role.SALES).user)
    assert sales.get(detail(customer) + "invitation/withdraw/").status_code == 405
    customer.refresh_from_db()
    assert customer.status == Customer.Status.INVITED


@pytest.mark.redis
def test_at_most_the_hourly_quota_of_invitations(
    owner_client, tenant, settings, django_capture_on_commit_callbacks, mailoutbox
):
    settings.INVITATIONS_PER_HOUR = 3
    for n in range(3):
        response = owner_client.post(
            "/customers/new/",
            {**NEW, "domain": f"c{n}.example", "contact_email": f"a@c{n}.example"},
        )
        assert response.status_code == 302
    response = owner_client.post(
        "/customers/new/", {**NEW, "domain": "c9.example", "contact_email": "a@c9.example"}
    )
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 3600
    body = response.content.decode()
    assert "at most 3 invitations an hour" in body and "Try again in" in body
    assert not Customer.objects.filter(domain="c9.example").exists()
    # A resend counts too, and a refused one changes nothing.
    customer = Customer.objects.get(domain="c0.example")
    before = list(customer.invitations.values_list("token_hash", "withdrawn_at"))
    assert owner_client.post(detail(customer) + "invitation/resend/").status_code == 429
    assert list(customer.invitations.values_list("token_hash", "withdrawn_at")) == before
    assert AuditEvent.objects.filter(action="customer.invited").count() == 3


@pytest.mark.redis
def test_bad_input_does_not_use_up_the_quota(owner_client, settings):
    settings.INVITATIONS_PER_HOUR = 1
    bad = owner_client.post("/customers/new/", {**NEW, "contact_email": "x@gmail.com"})
    assert bad.status_code == 400
    assert owner_client.post("/customers/new/", NEW).status_code == 302


@pytest.mark.redis
def test_the_quota_is_per_reseller_and_frees_up_after_the_hour(tenant, other_tenant, settings):
    settings.INVITATIONS_PER_HOUR = 1
    owner = tenant.reseller.memberships.get()
    other_owner = other_tenant.reseller.memberships.get()
    with time_machine.travel(timezone.now(), tick=False):
        services.customer_invite(
            membership=owner, **{**NEW, "domain": "a.example", "contact_email": "x@a.example"}
        )
        services.customer_invite(
            membership=other_owner, **{**NEW, "domain": "b.example", "contact_email": "x@b.example"}
        )
        with pytest.raises(RateLimited) as refused:
            services.customer_invite(
                membership=owner, **{**NEW, "domain": "c.example", "contact_email": "x@c.example"}
            )
    with time_machine.travel(timezone.now() + timedelta(seconds=refused.value.retry_after + 1)):
        services.customer_invite(
            membership=owner, **{**NEW, "domain": "c.example", "contact_email": "x@c.example"}
        )


def test_edit_contact_details_is_audited_field_by_field(owner_client, tenant):
    customer = tenant.customer
    form = owner_client.get(detail(customer) + "edit/")
    assert f'value="{customer.contact_email}"' in form.content.decode()
    response = owner_client.post(
        detail(customer) + "edit/",
        {
            "organisation": "Renamed Org",
            "contact_name": "New Person",
            "contact_email": f"new@{customer.domain}",
            "language": "fr",
            "time_zone": "Europe/Paris",
            "country": "FR",
            "admin_phone": "+33 1 23 45 67 89",
        },
    )
    assert response.url == detail(customer)
    customer.refresh_from_db()
    assert (customer.organisation, customer.admin_phone) == ("Renamed Org", "+33123456789")
    event = AuditEvent.objects.get(action="customer.updated")
    assert event.before is not None and event.after is not None
    assert event.before["contact_name"] == "Pat Contact"
    assert event.after["contact_name"] == "New Person"
    assert "crm_id" not in event.after  # unchanged fields are not listed
    page = owner_client.get(detail(customer)).content.decode()
    assert "Customer details changed" in page and "New Person" in page and "Pat Contact" in page


def test_saving_unchanged_details_writes_no_audit_entry(owner_client, tenant):
    customer = tenant.customer
    fields = {f: getattr(customer, f) for f in services.CONTACT_FIELDS}
    response = owner_client.post(detail(customer) + "edit/", fields)
    assert response.status_code == 302
    assert not AuditEvent.objects.filter(action="customer.updated").exists()


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"contact_email": "someone@gmail.com"}, "contact_email", "must be an address of"),
        ({"admin_alternate_email": "x@{domain}"}, "admin_alternate_email", "must be outside"),
        ({"admin_phone": "12"}, "admin_phone", "not a valid phone number"),
        ({"time_zone": "Mars/Olympus"}, "time_zone", "time zone"),
        ({"organisation": ""}, "organisation", "required"),
    ],
)
def test_bad_contact_details_are_explained_and_nothing_is_saved(
    owner_client, tenant, changes, field, message
):
    customer = tenant.customer
    data = {f: getattr(customer, f) for f in services.CONTACT_FIELDS}
    data["contact_name"] = "Typed Name"
    data.update({k: v.format(domain=customer.domain) for k, v in changes.items()})
    response = owner_client.post(detail(customer) + "edit/", data)
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[field])
    assert 'value="Typed Name"' in response.content.decode()
    customer.refresh_from_db()
    assert customer.contact_name == "Pat Contact"
    assert not AuditEvent.objects.filter(action="customer.updated").exists()


def test_billing_members_cannot_edit(tenant, other_tenant, client_for):
    billing = client_for(member_of(tenant.reseller, Role.BILLING).user)
    assert billing.get(detail(tenant.customer) + "edit/").status_code == 403
    assert "Edit details" not in billing.get(detail(tenant.customer)).content.decode()


def test_manage_page_banner_sections_activity_and_what_is_not_allowed(
    owner_client, tenant, other_tenant
):
    customer = tenant.customer
    AuditEvent.objects.create(
        reseller=tenant.reseller,
        action="customer.updated",
        object_type="customer",
        object_id="x",
        object_repr="x",
        actor_email="luis@nimbus.example",
        customer_public_id=customer.public_id,
        before={"status": "invited"},
        after={"status": "active"},
    )
    AuditEvent.objects.create(
        reseller=other_tenant.reseller,
        action="customer.updated",
        object_type="customer",
        object_id="y",
        object_repr="y",
        actor_email="spy@other.example",
        customer_public_id=other_tenant.customer.public_id,
    )
    page = owner_client.get(detail(customer)).content.decode()
    assert "You are managing" in page and customer.organisation in page
    for section in ('id="subscriptions"', 'id="invoices"', 'id="activity"', 'id="not-allowed"'):
        assert section in page
    assert "luis@nimbus.example" in page and "Invited" in page and "Active" in page
    assert "spy@other.example" not in page
    assert "Reset a user&#x27;s password" in page or "Reset a user's password" in page


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_parallel_accepts_of_one_customer_link_let_exactly_one_through():
    customer = CustomerFactory(status=Customer.Status.INVITED, domain="race.example")
    _, digest = token_new()
    invitation = CustomerInvitation.objects.create(
        customer=customer, email="boss@race.example", token_hash=digest
    )
    user = UserFactory(email="boss@race.example")
    barrier = threading.Barrier(20)
    outcomes: list[str] = []
    lock = threading.Lock()

    def accept() -> None:
        try:
            barrier.wait()
            found = CustomerInvitation.objects.get(pk=invitation.pk)
            try:
                services.customer_invitation_accept(
                    invitation=found, user=user, terms_accepted=True
                )
                outcome = "accepted"
            except InvitationError as error:
                outcome = error.reason
            with lock:
                outcomes.append(outcome)
        finally:
            connection.close()

    threads = [threading.Thread(target=accept) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["accepted"] + ["used"] * 19
    customer.refresh_from_db()
    assert customer.status == Customer.Status.ACTIVE
    assert customer.members.count() == 1
    assert AuditEvent.objects.filter(action="customer.accepted").count() == 1


def test_apps_above_customers_fill_the_sections_of_both_pages(
    owner_client, tenant, client_for, monkeypatch
):
    from django.utils.html import format_html

    from customers import extensions
    from customers.models import CustomerMember

    monkeypatch.setattr(extensions, "_sections", {})
    extensions.section_register(
        side="reseller",
        slot="subscriptions",
        renderer=lambda request, customer: format_html("<p>{} seats</p>", customer.organisation),
    )
    extensions.section_register(
        side="customer",
        slot="invoices",
        renderer=lambda request, customer: format_html("<p>bills of {}</p>", customer.domain),
    )
    customer = tenant.customer
    page = owner_client.get(detail(customer)).content.decode()
    assert f"<p>{customer.organisation} seats</p>" in page
    assert "No invoices have been issued" in page  # nothing registered for that slot

    admin = UserFactory()
    CustomerMember.objects.create(customer=customer, user=admin, terms_accepted_at=timezone.now())
    page = client_for(admin).get(f"/my/{customer.public_id}/").content.decode()
    assert f"<p>bills of {customer.domain}</p>" in page
    assert "has no subscriptions yet" in page


def test_revoking_runs_the_hooks_in_the_same_transaction(tenant, monkeypatch):
    from customers import extensions
    from customers.models import CustomerMember

    seen: list[str] = []
    monkeypatch.setattr(extensions, "_on_access_revoked", [])
    extensions.on_access_revoked(lambda customer: seen.append(customer.status))
    admin = UserFactory()
    customer = tenant.customer
    CustomerMember.objects.create(customer=customer, user=admin, terms_accepted_at=timezone.now())
    services.customer_access_revoke(customer=customer, user=admin)
    assert seen == [Customer.Status.ACCESS_REVOKED]
