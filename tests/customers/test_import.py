"""Import with transfer token (reseller side) and the staff action Move to another reseller."""

import re
import threading
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from core.models import OutboundEmail
from core.tokens import TokenState
from customers import services
from customers.models import Customer, CustomerInvitation, CustomerMember, TransferToken
from customers.selectors import customer_activity, customers_of_user
from resellers.models import AuditEvent, Membership, Reseller
from resellers.roles import Role
from resellers.services import audit_record
from tests.factories import CustomerFactory, ResellerFactory, Tenant, UserFactory, member_of

IMPORT_URL = "/customers/import/"


def token_for(customer: Customer, to_reseller: Reseller, **fields: object) -> str:
    """A transfer token as the customer side makes one; returns the raw token."""
    token = TransferToken(customer=customer, to_reseller=to_reseller)
    raw = token.renew_token()
    for name, value in fields.items():
        setattr(token, name, value)
    token.save()
    return raw


def owner_membership(tenant: Tenant) -> Membership:
    return Membership.objects.get(user=tenant.owner, reseller=tenant.reseller)


@pytest.fixture
def leaving(tenant, other_tenant) -> Customer:
    """Reseller B's customer, with an administrator, some history and a token for reseller A."""
    customer = other_tenant.customer
    customer.language = "es"
    customer.save()
    CustomerMember.objects.create(
        customer=customer, user=UserFactory(), terms_accepted_at=timezone.now()
    )
    audit_record(
        actor=other_tenant.owner,
        reseller=other_tenant.reseller,
        action="customer.invited",
        obj=customer,
        customer_public_id=customer.public_id,
    )
    return customer


def test_import_moves_the_customer_with_its_history_and_emails_everyone(
    owner_client,
    tenant,
    other_tenant,
    leaving,
    client_for,
    django_capture_on_commit_callbacks,
    mailoutbox,
):
    tenant.owner.language = "de"
    tenant.owner.save()
    other_tenant.owner.language = "fr"
    other_tenant.owner.save()
    raw = token_for(leaving, tenant.reseller)
    open_invitation = CustomerInvitation(customer=leaving, email=leaving.contact_email)
    open_invitation.renew_token()
    open_invitation.save()
    third = ResellerFactory()
    token_for(leaving, third)  # another token the customer handed out: dies with the move
    member = leaving.members.get().user

    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(IMPORT_URL, {"domain": leaving.domain, "token": raw})

    old = Customer.objects.get(pk=leaving.pk)
    new = Customer.objects.get(previous=old)
    assert response.status_code == 302
    assert response.url == f"/customers/{new.public_id}/"
    # The old record stays with the old reseller; the new one is Active for the importer.
    assert (old.reseller, old.status) == (other_tenant.reseller, Customer.Status.TRANSFERRED_OUT)
    assert (new.reseller, new.status) == (tenant.reseller, Customer.Status.ACTIVE)
    assert new.accepted_at is not None and new.public_id != old.public_id
    for field in services.CUSTOMER_FIELDS:
        assert getattr(new, field) == getattr(old, field), field
    # The customer's administrators follow the organisation.
    assert list(CustomerMember.objects.filter(customer=new).values_list("user", flat=True)) == [
        member.pk
    ]
    assert not CustomerMember.objects.filter(customer=old).exists()
    assert list(customers_of_user(user=member)) == [new]
    # The token is used up; every other open link of the old record is dead.
    assert {t.to_reseller_id: t.state for t in TransferToken.objects.filter(customer=old)} == {
        tenant.reseller.pk: TokenState.USED,
        third.pk: TokenState.WITHDRAWN,
    }
    open_invitation.refresh_from_db()
    assert open_invitation.state == TokenState.WITHDRAWN

    # Audited on both sides; the old reseller is not told who imported its customer.
    out = AuditEvent.objects.get(action="customer.transferred_out")
    assert (out.reseller, out.customer_public_id, out.actor) == (
        other_tenant.reseller,
        old.public_id,
        None,
    )
    imported = AuditEvent.objects.get(action="customer.transferred_in")
    assert (imported.reseller, imported.customer_public_id, imported.actor) == (
        tenant.reseller,
        new.public_id,
        tenant.owner,
    )
    assert imported.after is not None
    assert imported.after["via"] == "token" and imported.after["previous"] == old.public_id
    # History follows: the new record's activity includes what happened under reseller B.
    actions = [event.action for event in customer_activity(customer=new)]
    assert {"customer.invited", "customer.transferred_out", "customer.transferred_in"} <= set(
        actions
    )

    # Three emails, each in its recipient's language.
    sent = {e.template: (e.to, e.language) for e in OutboundEmail.objects.all()}
    assert sent == {
        "customer_transferred_out": (other_tenant.owner.email, "fr"),
        "customer_transferred_in": (tenant.owner.email, "de"),
        "customer_transferred": (old.contact_email, "es"),
    }
    assert len(mailoutbox) == 3
    leaving_email = OutboundEmail.objects.get(template="customer_transferred_out")
    for part in (leaving_email.subject, leaving_email.body_text, leaving_email.body_html):
        assert old.organisation in leaving_email.subject
        assert tenant.reseller.name not in part  # the new reseller is not named
    welcome = OutboundEmail.objects.get(template="customer_transferred_in")
    assert f"/customers/{new.public_id}/" in welcome.body_text

    # The new reseller manages it at once; the old one only sees it as Transferred out.
    assert owner_client.get(f"/customers/{new.public_id}/").status_code == 200
    assert old.organisation in owner_client.get("/customers/").content.decode()
    former = client_for(other_tenant.owner)
    assert former.get(f"/customers/{old.public_id}/").status_code == 404
    assert old.organisation not in former.get("/customers/").content.decode()
    listed = former.get("/customers/", {"status": "transferred_out"}).content.decode()
    assert old.organisation in listed


# --- Team customers: named by the customer ID their organisation page shows (seed 004) --------


@pytest.fixture
def team(other_tenant) -> Customer:
    """Reseller B's team customer (no domain), with an administrator on the customer side."""
    customer = CustomerFactory(
        reseller=other_tenant.reseller,
        customer_type=Customer.Type.TEAM,
        domain="",
        organisation="Blue Team",
        contact_email="lead@gmail.com",
        status=Customer.Status.ACTIVE,
    )
    CustomerMember.objects.create(
        customer=customer, user=UserFactory(), terms_accepted_at=timezone.now()
    )
    return customer


def test_a_team_customer_is_imported_by_its_customer_id_and_token_through_the_pages(
    owner_client, tenant, other_tenant, team, client_for, django_capture_on_commit_callbacks
):
    # The customer side: its administrator generates a token for reseller A and is told to give
    # the customer ID, which its page shows.
    side = client_for(team.members.get().user)
    made = side.post(
        f"/my/{team.public_id}/transfer-token/", {"reseller_id": tenant.reseller.public_id}
    ).content.decode()
    raw = made.split('id="transfer-token-value" value="')[1].split('"')[0]
    assert f"your customer ID, <code>{team.public_id}</code>" in made
    assert "Team customer" in made

    # The reseller side: Import, Team customer, that ID and the token.
    form = owner_client.get(IMPORT_URL).content.decode()
    assert "Domain customer" in form and "Team customer" in form and "Customer ID" in form
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(
            IMPORT_URL,
            {"customer_type": "team", "customer_id": f" {team.public_id} ", "token": raw},
        )

    old = Customer.objects.get(pk=team.pk)
    new = Customer.objects.get(previous=old)
    assert response.status_code == 302
    assert response.url == f"/customers/{new.public_id}/"
    # The same move as a domain customer's: the old record stays behind as Transferred out.
    assert (old.reseller, old.status) == (other_tenant.reseller, Customer.Status.TRANSFERRED_OUT)
    assert (new.reseller, new.status) == (tenant.reseller, Customer.Status.ACTIVE)
    assert (new.customer_type, new.domain) == (Customer.Type.TEAM, "")
    for field in services.CUSTOMER_FIELDS:
        assert getattr(new, field) == getattr(old, field), field
    assert CustomerMember.objects.filter(customer=new).count() == 1
    assert TransferToken.objects.get(customer=old).state == TokenState.USED
    imported = AuditEvent.objects.get(action="customer.transferred_in")
    assert imported.after is not None
    assert (imported.reseller, imported.after["via"]) == (tenant.reseller, "token")
    assert set(OutboundEmail.objects.values_list("template", flat=True)) == {
        "customer_transferred_out",
        "customer_transferred_in",
        "customer_transferred",
    }
    detail = owner_client.get(response.url).content.decode()
    assert "Blue Team" in detail and "<dd>Team customer</dd>" in detail


def _spent(team, tenant):
    raw = token_for(team, tenant.reseller)
    services.customer_import(
        membership=owner_membership(tenant),
        customer_type="team",
        customer_id=team.public_id,
        token=raw,
    )
    return team.public_id, raw


def _team_unknown_token(team, tenant):
    token_for(team, tenant.reseller)
    return team.public_id, "not-a-token-anyone-was-given"


def _team_another_customers_id(team, tenant):
    other = CustomerFactory(reseller=team.reseller, customer_type=Customer.Type.TEAM, domain="")
    return other.public_id, token_for(team, tenant.reseller)


def _team_unknown_id(team, tenant):
    return "AAAAAAAAAAAAAAAA", token_for(team, tenant.reseller)


def _team_own_customers_id(team, tenant):
    # Reseller A's own customer's ID with a real token for someone else: nothing to learn.
    return tenant.customer.public_id, token_for(team, tenant.reseller)


def _a_domain_customers_id(team, tenant):
    # A domain customer is named by its domain, even with its own token.
    domain_customer = CustomerFactory(reseller=team.reseller)
    return domain_customer.public_id, token_for(domain_customer, tenant.reseller)


@pytest.mark.parametrize(
    "make",
    [
        _team_unknown_token,
        _team_another_customers_id,
        _team_unknown_id,
        _team_own_customers_id,
        _a_domain_customers_id,
    ],
)
def test_a_wrong_token_or_customer_id_gets_one_answer_that_reveals_nothing(
    owner_client, tenant, team, make
):
    customer_id, raw = make(team, tenant)
    customers_before = Customer.objects.count()

    response = owner_client.post(
        IMPORT_URL, {"customer_type": "team", "customer_id": customer_id, "token": raw}
    )

    assert response.status_code == 400
    assert response.context["form"].errors == {
        "token": ["This token does not match this customer ID."]
    }
    body = response.content.decode()
    assert f'value="{customer_id}"' in body and f'value="{raw}"' in body  # the input is kept
    assert re.search(r'value="team"[^>]*checked', body)  # Team customer stays chosen
    for secret in ("Blue Team", team.contact_email, tenant.customer.organisation):
        assert secret not in body
    assert Customer.objects.count() == customers_before


def test_a_spent_token_is_explained_as_for_a_domain_customer(owner_client, tenant, team):
    customer_id, raw = _spent(team, tenant)
    response = owner_client.post(
        IMPORT_URL, {"customer_type": "team", "customer_id": customer_id, "token": raw}
    )
    assert response.status_code == 400
    assert response.context["form"].errors == {
        "token": ["This token was already used. Ask the customer to generate a new one."]
    }


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        # The issue: a team customer's ID typed as a domain.
        ({"customer_type": "domain", "domain": "AbCdEfGhIjKlMn_-"}, "domain", "customer ID"),
        ({"customer_type": "domain", "domain": ""}, "domain", "Enter the customer's Google"),
        ({"customer_type": "team", "customer_id": ""}, "customer_id", "Enter the customer ID"),
        ({"customer_type": "team", "customer_id": "acme.example"}, "customer_id", "16 letters"),
        # A team customer's primary email does not name it: its customer ID does.
        ({"customer_type": "team", "customer_id": "lead@gmail.com"}, "customer_id", "16 letters"),
    ],
)
def test_a_malformed_name_is_explained_beside_its_field(
    owner_client, tenant, team, data, field, message
):
    raw = token_for(team, tenant.reseller)
    response = owner_client.post(IMPORT_URL, {**data, "token": raw})
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert list(errors) == [field], errors
    assert message in " ".join(errors[field])
    value = data.get("domain") or data.get("customer_id")
    if value:
        assert f'value="{value}"' in response.content.decode()
    assert TransferToken.objects.get().state == TokenState.VALID


def test_a_team_customers_refusals_after_the_token_are_beside_the_customer_id(
    tenant, other_tenant, team
):
    team.status = Customer.Status.CANCELLED
    team.save()
    with pytest.raises(ValidationError) as error:
        services.customer_import(
            membership=owner_membership(tenant),
            customer_type="team",
            customer_id=team.public_id,
            token=token_for(team, tenant.reseller),
        )
    assert list(error.value.message_dict) == ["customer_id"]
    assert "cannot be imported while its status is Cancelled" in error.value.messages[0]


def test_a_domain_customer_chosen_explicitly_imports_as_before(owner_client, tenant, leaving):
    raw = token_for(leaving, tenant.reseller)
    response = owner_client.post(
        IMPORT_URL, {"customer_type": "domain", "domain": leaving.domain.upper(), "token": raw}
    )
    assert response.status_code == 302
    assert Customer.objects.get(previous=leaving).reseller == tenant.reseller


def test_the_type_is_named_domain_customer_or_team_customer(owner_client, tenant, client_for):
    team = CustomerFactory(reseller=tenant.reseller, customer_type=Customer.Type.TEAM, domain="")
    listed = owner_client.get("/customers/").content.decode()
    assert "<td>Team customer</td>" in listed and "<td>Domain customer</td>" in listed
    detail = owner_client.get(f"/customers/{tenant.customer.public_id}/").content.decode()
    assert "<dd>Domain customer</dd>" in detail
    edit = owner_client.get(f"/customers/{team.public_id}/edit/").content.decode()
    assert "Customer type: Team customer." in edit
    new = owner_client.get("/customers/new/").content.decode()
    assert "Domain customer" in new and "Team customer" in new


def test_sales_may_import_and_billing_may_not(tenant, other_tenant, client_for):
    raw = token_for(other_tenant.customer, tenant.reseller)
    billing = client_for(member_of(tenant.reseller, Role.BILLING).user)
    assert billing.get(IMPORT_URL).status_code == 403
    response = billing.post(IMPORT_URL, {"domain": other_tenant.customer.domain, "token": raw})
    assert response.status_code == 403

    sales = client_for(member_of(tenant.reseller, Role.SALES).user)
    response = sales.post(IMPORT_URL, {"domain": other_tenant.customer.domain, "token": raw})
    assert response.status_code == 302
    assert Customer.objects.filter(previous=other_tenant.customer).exists()


def _expired(customer, tenant, other):
    return customer.domain, token_for(
        customer, tenant.reseller, expires_at=timezone.now() - timedelta(minutes=1)
    )


def _used(customer, tenant, other):
    return customer.domain, token_for(customer, tenant.reseller, consumed_at=timezone.now())


def _withdrawn(customer, tenant, other):
    return customer.domain, token_for(customer, tenant.reseller, withdrawn_at=timezone.now())


def _unknown(customer, tenant, other):
    return customer.domain, "not-a-token-anyone-was-given"


def _wrong_domain(customer, tenant, other):
    return "some-other-domain.example", token_for(customer, tenant.reseller)


def _for_another_reseller(customer, tenant, other):
    return customer.domain, token_for(customer, ResellerFactory())


def _already_yours(customer, tenant, other):
    return tenant.customer.domain, token_for(tenant.customer, tenant.reseller)


def _cancelled(customer, tenant, other):
    customer.status = Customer.Status.CANCELLED
    customer.save()
    return customer.domain, token_for(customer, tenant.reseller)


def _transferred_out(customer, tenant, other):
    customer.status = Customer.Status.TRANSFERRED_OUT
    customer.save()
    return customer.domain, token_for(customer, tenant.reseller)


def _bad_domain(customer, tenant, other):
    return "https://acme.example/x", token_for(customer, tenant.reseller)


@pytest.mark.parametrize(
    ("make", "field", "message"),
    [
        (_unknown, "token", "This token does not match this domain."),
        (_wrong_domain, "token", "This token does not match this domain."),
        (_expired, "token", "This token expired on"),
        (_used, "token", "This token was already used."),
        (_withdrawn, "token", "The customer withdrew this token."),
        (_for_another_reseller, "token", "This token was issued for another reseller."),
        (_already_yours, "domain", "is already your customer."),
        (_cancelled, "domain", "cannot be imported while its status is Cancelled."),
        (_transferred_out, "domain", "cannot be imported while its status is Transferred out."),
        (_bad_domain, "domain", "Enter the domain only"),
    ],
)
def test_each_refusal_is_explained_beside_its_field_and_nothing_changes(
    owner_client, tenant, other_tenant, make, field, message
):
    domain, raw = make(other_tenant.customer, tenant, other_tenant)
    customers_before = Customer.objects.count()
    tokens_before = list(TransferToken.objects.values_list("pk", "consumed_at", "withdrawn_at"))

    response = owner_client.post(IMPORT_URL, {"domain": domain, "token": raw})

    assert response.status_code == 400
    errors = response.context["form"].errors
    assert list(errors) == [field], errors
    assert message in " ".join(errors[field])
    body = response.content.decode()
    assert f'value="{domain}"' in body and f'value="{raw}"' in body  # the input is kept
    assert Customer.objects.count() == customers_before
    assert (
        list(TransferToken.objects.values_list("pk", "consumed_at", "withdrawn_at"))
        == tokens_before
    )
    assert not AuditEvent.objects.filter(action__startswith="customer.transferred").exists()


def test_a_mismatch_does_not_reveal_whose_token_it_is(owner_client, tenant, other_tenant):
    raw = token_for(other_tenant.customer, tenant.reseller)
    body = owner_client.post(
        IMPORT_URL, {"domain": "some-other-domain.example", "token": raw}
    ).content.decode()
    for secret in (other_tenant.customer.organisation, other_tenant.customer.domain):
        assert secret not in body


def test_another_reseller_may_not_use_a_token_meant_for_us(tenant, other_tenant, client_for):
    third = member_of(ResellerFactory(), Role.OWNER)
    raw = token_for(other_tenant.customer, tenant.reseller)
    with pytest.raises(ValidationError, match="issued for another reseller"):
        services.customer_import(membership=third, domain=other_tenant.customer.domain, token=raw)
    assert TransferToken.objects.get().state == TokenState.VALID


def test_the_held_domain_message_links_to_import_with_the_domain_filled_in(
    owner_client, tenant, other_tenant
):
    domain = other_tenant.customer.domain
    response = owner_client.post(
        "/customers/new/",
        {
            "contact_name": "Pat",
            "contact_email": f"pat@{domain}",
            "customer_type": "domain",
            "domain": domain,
            "organisation": "Someone",
            "language": "en",
            "time_zone": "UTC",
            "country": "ES",
        },
    )
    assert response.status_code == 400
    link = f'href="/customers/import/?domain={domain}"'
    assert link in response.content.decode()

    page = owner_client.get(f"/customers/import/?domain={domain}").content.decode()
    assert f'value="{domain}"' in page
    customers_page = owner_client.get("/customers/").content.decode()
    assert 'href="/customers/import/"' in customers_page


def test_a_revoked_customer_can_move_but_not_onto_a_domain_invited_since(tenant, other_tenant):
    customer = other_tenant.customer
    customer.status = Customer.Status.ACCESS_REVOKED
    customer.save()
    raw = token_for(customer, tenant.reseller)
    CustomerFactory(domain=customer.domain, status=Customer.Status.INVITED)

    with pytest.raises(ValidationError, match="invited by another reseller"):
        services.customer_import(
            membership=owner_membership(tenant), domain=customer.domain, token=raw
        )
    customer.refresh_from_db()
    assert customer.status == Customer.Status.ACCESS_REVOKED
    assert TransferToken.objects.get().state == TokenState.VALID


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_parallel_imports_of_one_token_let_exactly_one_through(tenant, other_tenant):
    membership = owner_membership(tenant)
    domain = other_tenant.customer.domain
    raw = token_for(other_tenant.customer, tenant.reseller)
    barrier = threading.Barrier(20)
    results: list[str] = []
    lock = threading.Lock()

    def import_once() -> None:
        try:
            barrier.wait()
            try:
                services.customer_import(membership=membership, domain=domain, token=raw)
                outcome = "imported"
            except ValidationError as error:
                outcome = " ".join(error.messages)
            with lock:
                results.append(outcome)
        finally:
            connection.close()

    threads = [threading.Thread(target=import_once) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(results) == 20
    assert results.count("imported") == 1, results
    assert all("already used" in r for r in results if r != "imported"), results
    assert Customer.objects.filter(previous=other_tenant.customer).count() == 1
    assert AuditEvent.objects.filter(action="customer.transferred_in").count() == 1
    assert OutboundEmail.objects.filter(template="customer_transferred").count() == 1


# --- Staff: the admin action Move to another reseller ---------------------------------------


CHANGELIST = "/admin/customers/customer/"


def test_staff_move_customers_through_an_intermediate_page(
    staff_client, tenant, other_tenant, django_capture_on_commit_callbacks
):
    moving = [other_tenant.customer, CustomerFactory(reseller=other_tenant.reseller)]
    selected = [str(c.pk) for c in moving]

    page = staff_client.post(
        CHANGELIST, {"action": "move_to_reseller", "_selected_action": selected, "index": 0}
    )
    assert page.status_code == 200
    body = page.content.decode()
    assert "Move customers to another reseller" in body
    assert all(c.organisation in body for c in moving)
    assert not Customer.objects.filter(status=Customer.Status.TRANSFERRED_OUT).exists()

    with django_capture_on_commit_callbacks(execute=True):
        done = staff_client.post(
            CHANGELIST,
            {
                "action": "move_to_reseller",
                "_selected_action": selected,
                "apply": "yes",
                "reseller": tenant.reseller.pk,
            },
            follow=True,
        )

    assert "2 customers moved to Reseller A." in done.content.decode()
    for customer in moving:
        customer.refresh_from_db()
        assert customer.status == Customer.Status.TRANSFERRED_OUT
        assert customer.next.reseller == tenant.reseller
    events = AuditEvent.objects.filter(action__startswith="customer.transferred")
    assert {(e.action, e.actor, (e.after or {}).get("via")) for e in events} == {
        ("customer.transferred_out", staff_client.staff, "staff"),
        ("customer.transferred_in", staff_client.staff, "staff"),
    }
    assert events.count() == 4
    assert OutboundEmail.objects.filter(template="customer_transferred").count() == 2


def test_staff_move_reports_each_customer_that_cannot_move(staff_client, tenant, other_tenant):
    cancelled = CustomerFactory(reseller=other_tenant.reseller, status=Customer.Status.CANCELLED)
    selected = [str(c.pk) for c in (tenant.customer, other_tenant.customer, cancelled)]

    done = staff_client.post(
        CHANGELIST,
        {
            "action": "move_to_reseller",
            "_selected_action": selected,
            "apply": "yes",
            "reseller": tenant.reseller.pk,
        },
        follow=True,
    )

    body = done.content.decode()
    assert "1 customer moved to Reseller A." in body
    assert f"{tenant.customer.organisation} is already a customer of Reseller A." in body
    assert "cannot be moved while its status is Cancelled." in body
    assert Customer.objects.filter(reseller=tenant.reseller).count() == 2


def test_staff_cannot_move_customers_to_a_suspended_reseller(staff_client, other_tenant):
    suspended = ResellerFactory(status=Reseller.Status.SUSPENDED)
    response = staff_client.post(
        CHANGELIST,
        {
            "action": "move_to_reseller",
            "_selected_action": [str(other_tenant.customer.pk)],
            "apply": "yes",
            "reseller": suspended.pk,
        },
    )
    assert response.status_code == 200
    assert "is not an active reseller" in response.content.decode()
    other_tenant.customer.refresh_from_db()
    assert other_tenant.customer.status == Customer.Status.ACTIVE


def test_admin_filters_customers_by_reseller_id(staff_client, tenant, other_tenant):
    page = staff_client.get(CHANGELIST, {"reseller": other_tenant.reseller.public_id})
    assert page.status_code == 200
    assert list(page.context["cl"].result_list) == [other_tenant.customer]
    unknown = staff_client.get(CHANGELIST, {"reseller": "no-such-reseller", "status": "active"})
    assert list(unknown.context["cl"].result_list) == []
    assert "No reseller has this ID" in unknown.content.decode()


def test_admin_customer_page_shows_transfer_tokens_but_never_the_token(
    staff_client, tenant, other_tenant
):
    raw = token_for(other_tenant.customer, tenant.reseller)
    token = TransferToken.objects.get()
    page = staff_client.get(f"{CHANGELIST}{other_tenant.customer.pk}/change/")
    body = page.content.decode()
    assert page.status_code == 200
    assert "Transfer tokens" in body and tenant.reseller.name in body
    assert raw not in body and token.token_hash not in body
