import pytest

from customers.models import Customer, CustomerInvitation, CustomerMember
from resellers.models import AuditEvent
from resellers.roles import Role
from tests.factories import CustomerFactory, UserFactory, member_of

VALID = {
    "contact_name": "Marta Ruiz",
    "contact_email": "marta@acme-iberia.es",
    "customer_type": "domain",
    "domain": "acme-iberia.es",
    "organisation": "Acme Iberia",
    "crm_id": "CRM-7",
    "admin_name": "",
    "admin_address": "",
    "admin_alternate_email": "",
    "admin_phone": "",
    "language": "es",
    "time_zone": "Europe/Madrid",
    "country": "ES",
}


def post(client, **changes):
    return client.post("/customers/new/", {**VALID, **changes})


def test_new_customer_is_invited_and_emailed(
    owner_client, tenant, django_capture_on_commit_callbacks, mailoutbox
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(owner_client, admin_alternate_email="m@gmail.com")
    customer = Customer.objects.get(domain="acme-iberia.es")
    assert response.url == f"/customers/{customer.public_id}/"
    assert customer.status == Customer.Status.INVITED and customer.reseller == tenant.reseller
    invitation = CustomerInvitation.objects.get(customer=customer)
    assert invitation.email == "marta@acme-iberia.es"
    assert [m.to for m in mailoutbox] == [["marta@acme-iberia.es"]]
    assert "/invitation/" in mailoutbox[0].body
    assert "Hola" in mailoutbox[0].body  # the customer's language
    assert AuditEvent.objects.filter(
        action="customer.invited", customer_public_id=customer.public_id
    ).exists()
    listing = owner_client.get("/customers/").content.decode()
    assert "Acme Iberia" in listing and "Invited" in listing


def test_phone_is_parsed_in_the_resellers_country(owner_client, tenant):
    tenant.reseller.country = "ES"
    tenant.reseller.save()
    post(owner_client, admin_phone="912 345 678")
    assert Customer.objects.get(domain="acme-iberia.es").admin_phone == "+34912345678"


def test_internationalised_domain_is_stored_in_idna_form(owner_client, tenant):
    post(owner_client, domain="Bücher.example", contact_email="ana@xn--bcher-kva.example")
    assert Customer.objects.filter(domain="xn--bcher-kva.example").exists()


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"domain": "not a domain"}, "domain", "is not a valid domain name"),
        ({"domain": "https://acme.es/x"}, "domain", "Enter the domain only"),
        ({"domain": ""}, "domain", "needs its Google domain"),
        (
            {"contact_email": "marta@gmail.com"},
            "contact_email",
            "must be an address of acme-iberia.es",
        ),
        (
            {"admin_alternate_email": "it@acme-iberia.es"},
            "admin_alternate_email",
            "must be outside",
        ),
        ({"admin_phone": "12"}, "admin_phone", "not a valid phone number"),
        ({"vat_id": "FR40303265045"}, "vat_id", "does not belong to the selected country"),
        ({"country": "XX"}, "country", "Select a valid choice"),
        ({"contact_email": "nope"}, "contact_email", "valid email"),
    ],
)
def test_bad_input_is_explained_beside_the_field_and_nothing_is_saved(
    owner_client, tenant, changes, field, message
):
    response = post(owner_client, **changes)
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert message in " ".join(errors[field]), errors
    body = response.content.decode()
    assert 'value="Acme Iberia"' in body  # what was typed is kept
    assert not Customer.objects.filter(organisation="Acme Iberia").exists()
    assert not CustomerInvitation.objects.exists()


def test_team_customer_needs_no_domain(owner_client, tenant):
    response = post(
        owner_client, customer_type="team", domain="", contact_email="team.lead@gmail.com"
    )
    assert response.status_code == 302
    customer = Customer.objects.get(organisation="Acme Iberia")
    assert (customer.customer_type, customer.domain) == ("team", "")


def test_own_domain_again_links_to_the_customer(owner_client, tenant):
    existing = CustomerFactory(reseller=tenant.reseller, domain="acme-iberia.es")
    response = post(owner_client)
    assert response.status_code == 400
    body = response.content.decode()
    assert "already your customer" in body
    assert not response.context["form"].non_field_errors()
    assert f'href="/customers/{existing.public_id}/"' in body


def test_domain_of_another_reseller_is_not_named(owner_client, tenant, other_tenant):
    CustomerFactory(reseller=other_tenant.reseller, domain="acme-iberia.es")
    response = post(owner_client)
    body = response.content.decode()
    assert "customer of another reseller" in body and "transfer token" in body
    assert not response.context["form"].non_field_errors()
    assert other_tenant.reseller.name not in body


def test_billing_members_cannot_invite(tenant, other_tenant, client_for):
    client = client_for(member_of(tenant.reseller, Role.BILLING).user)
    assert client.get("/customers/new/").status_code == 403
    assert post(client).status_code == 403
    assert not Customer.objects.filter(organisation="Acme Iberia").exists()


@pytest.fixture
def invited(owner_client, tenant, django_capture_on_commit_callbacks, mailoutbox):
    with django_capture_on_commit_callbacks(execute=True):
        post(owner_client, language="en")
    token = mailoutbox[-1].body.split("/invitation/")[1].split("/")[0]
    return Customer.objects.get(domain="acme-iberia.es"), token


def test_invitation_page_says_who_invites_and_what_is_allowed(client, invited, tenant):
    _, token = invited
    body = client.get(f"/invitation/{token}/").content.decode()
    assert tenant.reseller.name in body and "Acme Iberia" in body
    assert "never be able to do" in body and "Sign in with Google" in body
    assert CustomerInvitation.objects.get().opened_at is not None


def test_contact_accepts_with_terms_and_customer_is_active(invited, client_for, owner_client):
    customer, token = invited
    contact = client_for(UserFactory(email="Marta@Acme-Iberia.es"))
    response = contact.post(f"/invitation/{token}/")
    assert response.status_code == 400 and "Accept the terms" in response.content.decode()
    customer.refresh_from_db()
    assert customer.status == Customer.Status.INVITED

    response = contact.post(f"/invitation/{token}/", {"terms": "on"})
    assert response.url == "/my/"
    customer.refresh_from_db()
    assert customer.status == Customer.Status.ACTIVE and customer.accepted_at
    assert CustomerMember.objects.filter(customer=customer).count() == 1
    assert "Acme Iberia" in contact.get("/my/").content.decode()
    assert "Active" in owner_client.get("/customers/?status=active").content.decode()

    again = contact.post(f"/invitation/{token}/", {"terms": "on"})
    assert again.status_code == 410 and "already used" in again.content.decode()


def test_another_account_cannot_accept_and_the_link_stays_valid(invited, client_for):
    customer, token = invited
    assert customer.status == Customer.Status.INVITED
    stranger = client_for(UserFactory(email="someone@else.example"))
    response = stranger.post(f"/invitation/{token}/", {"terms": "on"})
    assert response.status_code == 403 and "for another account" in response.content.decode()
    invitation = CustomerInvitation.objects.get()
    assert invitation.consumed_at is None
    customer.refresh_from_db()
    assert customer.status == Customer.Status.INVITED


def test_unknown_link(client, db):
    assert client.get("/invitation/not-a-real-token/").status_code == 404
