"""Free text has bounds (issue 11): every text a person types has a maximum length, and names
and other one-line fields refuse control characters and Unicode bidi overrides (which make a
name read differently from what is stored), with a message next to the field, in the forms,
the admin and the services; nothing is saved."""

from collections.abc import Iterator

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from core.models import User
from core.validators import (
    ADDRESS_MAX_LENGTH,
    validate_multi_line,
    validate_name,
    validate_single_line,
)
from customers import services as customer_services
from customers.models import Customer, CustomerInvitation
from resellers import services as reseller_services
from resellers.models import Membership, Reseller
from tests.factories import UserFactory
from tests.support.fake_google import FakeGoogle, GoogleIdentity

CONTROL_MESSAGE = "Remove the invisible control characters from this name."
MEGABYTE = "Calle Mayor 1\n" + "x" * (1024 * 1024)
SPOOFS = [
    "Acme\u202eexe.cod",  # RIGHT-TO-LEFT OVERRIDE
    "Acme\u202a Iberia",  # LEFT-TO-RIGHT EMBEDDING
    "Acme\u2066 Iberia\u2069",  # LEFT-TO-RIGHT ISOLATE … POP DIRECTIONAL ISOLATE
    "Acme\x1b[31m Iberia",  # ESC: a terminal colour code
    "Acme\x85 Iberia",  # a C1 control (NEXT LINE)
    "Acme\x7f Iberia",  # DEL
    "Acme\n Iberia",  # a name is one line
    "Acme\u2028 Iberia",  # LINE SEPARATOR
]

NEW = {
    "contact_name": "Marta Ruiz",
    "contact_email": "marta@acme-iberia.es",
    "customer_type": "domain",
    "domain": "acme-iberia.es",
    "organisation": "Acme Iberia",
    "crm_id": "",
    "admin_name": "",
    "admin_address": "",
    "admin_alternate_email": "",
    "admin_phone": "",
    "language": "es",
    "time_zone": "Europe/Madrid",
    "country": "ES",
}


def test_names_in_every_script_are_fine():
    for name in ["Marta Ruiz", "Zoë Ñúñez-O'Brien", "شركة أكمي", "株式会社アクメ", "אקמי בע״מ"]:
        validate_name(name)
        validate_single_line(name)
    validate_multi_line("Calle Mayor 1\r\n28013 Madrid\n\tSpain")


@pytest.mark.parametrize("value", SPOOFS)
def test_control_and_bidi_override_characters_are_refused(value):
    with pytest.raises(ValidationError) as refused:
        validate_name(value)
    assert refused.value.messages == [CONTROL_MESSAGE]
    with pytest.raises(ValidationError):
        validate_single_line(value)


def test_an_address_keeps_its_lines_but_no_other_control_character():
    for value in ["Calle\x1b Mayor", "Calle\u202e Mayor", "Calle\x00Mayor"]:
        with pytest.raises(ValidationError):
            validate_multi_line(value)


def test_a_megabyte_address_is_refused_beside_the_field(owner_client, tenant):
    response = owner_client.post("/customers/new/", {**NEW, "admin_address": MEGABYTE})
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert f"at most {ADDRESS_MAX_LENGTH} characters" in " ".join(errors["admin_address"])
    assert not Customer.objects.filter(domain="acme-iberia.es").exists()
    customer = tenant.customer
    before = customer.admin_address
    response = owner_client.post(
        f"/customers/{customer.public_id}/edit/",
        {**NEW, "contact_email": customer.contact_email, "admin_address": MEGABYTE},
    )
    assert response.status_code == 400
    assert "admin_address" in response.context["form"].errors
    customer.refresh_from_db()
    assert customer.admin_address == before


@pytest.mark.parametrize("field", ["organisation", "contact_name", "admin_name"])
@pytest.mark.parametrize("value", ["Acme\u202eexe.cod", "Acme\x1b[31m Iberia"])
def test_a_spoofed_name_is_refused_beside_the_field(owner_client, tenant, field, value):
    response = owner_client.post("/customers/new/", {**NEW, field: value})
    assert response.status_code == 400
    assert CONTROL_MESSAGE in response.context["form"].errors[field]
    assert CONTROL_MESSAGE in response.content.decode()
    assert not Customer.objects.filter(domain="acme-iberia.es").exists()
    assert not CustomerInvitation.objects.exists()


def test_the_services_refuse_what_the_forms_refuse(tenant, other_tenant):
    owner = Membership.objects.get(user=tenant.owner, reseller=tenant.reseller)
    with pytest.raises(ValidationError) as refused:
        customer_services.customer_invite(
            membership=owner, **{**NEW, "organisation": "Acme\u202eexe.cod"}
        )
    assert refused.value.message_dict["organisation"] == [CONTROL_MESSAGE]
    with pytest.raises(ValidationError) as refused:
        customer_services.customer_invite(membership=owner, **{**NEW, "admin_address": MEGABYTE})
    assert "admin_address" in refused.value.message_dict
    assert not Customer.objects.filter(domain="acme-iberia.es").exists()
    customer = tenant.customer
    with pytest.raises(ValidationError) as refused:
        customer_services.customer_update_contact(
            membership=owner, customer=customer, contact_name="Marta\x1b Ruiz"
        )
    assert refused.value.message_dict["contact_name"] == [CONTROL_MESSAGE]
    with pytest.raises(ValidationError) as refused:
        reseller_services.reseller_update_profile(membership=owner, name="Reseller\u202e A")
    assert refused.value.message_dict["name"] == [CONTROL_MESSAGE]
    with pytest.raises(ValidationError) as refused:
        reseller_services.reseller_apply(
            user=UserFactory(),
            name="Evil\u202e Corp",
            country="ES",
            vat_id="",
            billing_email="billing@example.com",
            currency="EUR",
        )
    assert refused.value.message_dict["name"] == [CONTROL_MESSAGE]
    assert not Reseller.objects.filter(name__startswith="Evil").exists()
    customer.refresh_from_db()
    assert customer.contact_name != "Marta\x1b Ruiz"


def test_a_spoofed_reseller_name_is_refused_on_the_settings_page(owner_client, tenant):
    reseller = tenant.reseller
    response = owner_client.post(
        "/settings/",
        {
            "name": "Reseller\u202e A",
            "country": reseller.country,
            "vat_id": reseller.vat_id,
            "billing_email": reseller.billing_email,
            "currency": reseller.currency,
            "language": reseller.language,
            "time_zone": reseller.time_zone,
        },
    )
    assert response.status_code == 400
    assert CONTROL_MESSAGE in response.context["form"].errors["name"]
    reseller.refresh_from_db()
    assert reseller.name == "Reseller A"


def test_the_admin_refuses_a_megabyte_address_and_a_spoofed_name(staff_client, tenant):
    customer = tenant.customer
    url = f"/admin/customers/customer/{customer.pk}/change/"
    page = staff_client.get(url)
    form = page.context["adminform"].form
    data = {name: form[name].value() for name in form.fields}
    data = {name: value for name, value in data.items() if value not in (None, False)}
    response = staff_client.post(
        url, {**data, "admin_address": MEGABYTE, "organisation": "Acme\u202eexe.cod"}
    )
    assert response.status_code == 200  # the form again, with the errors
    errors = response.context["adminform"].form.errors
    assert f"at most {ADDRESS_MAX_LENGTH} characters" in " ".join(errors["admin_address"])
    assert CONTROL_MESSAGE in errors["organisation"]
    customer.refresh_from_db()
    assert len(customer.admin_address) <= ADDRESS_MAX_LENGTH
    assert "\u202e" not in customer.organisation


# A person's name comes from Google, where its owner typed it: it is cleaned on the way in
# (there is no form to refuse it on); staff editing it in the admin are refused.


@pytest.fixture
def google(monkeypatch) -> Iterator[FakeGoogle]:
    fake = FakeGoogle().install(monkeypatch)
    yield fake
    assert fake.unexpected == [], f"unexpected outgoing requests: {fake.unexpected}"


@pytest.mark.django_db
def test_a_google_name_loses_its_control_characters(google):
    identity = GoogleIdentity(
        "spoof@example.com", given_name="Pat\u202e\x1b[2J", family_name="Ex\u2066ample\u2069"
    )
    assert google.sign_in(Client(), identity).status_code == 302
    user = User.objects.get(email="spoof@example.com")
    assert (user.first_name, user.last_name) == ("Pat[2J", "Example")


def test_the_admin_refuses_a_spoofed_user_name(staff_client, tenant):
    user = tenant.owner
    url = f"/admin/core/user/{user.pk}/change/"
    page = staff_client.get(url)
    form = page.context["adminform"].form
    data = {name: form[name].value() for name in form.fields}
    data = {name: value for name, value in data.items() if value not in (None, False)}
    response = staff_client.post(url, {**data, "first_name": "Pat\u202e", "last_name": "E\x1bx"})
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["first_name"] == [CONTROL_MESSAGE] and errors["last_name"] == [CONTROL_MESSAGE]
    user.refresh_from_db()
    assert "\u202e" not in user.first_name


def test_the_admin_refuses_a_megabyte_product_description_and_a_spoofed_product_name(
    staff_client,
):
    from subscriptions.models import DESCRIPTION_MAX_LENGTH, Product

    product = Product.objects.create(name="Shared Contacts", sku="shared-contacts")
    url = f"/admin/subscriptions/product/{product.pk}/change/"
    page = staff_client.get(url)
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {name: form[name].value() for name in form.fields}
    data = {name: value for name, value in data.items() if value not in (None, False)}
    # The product's plans, an inline formset on the page, posted as they are (none).
    data.update(
        {
            key: value
            for formset in page.context["inline_admin_formsets"]
            for key, value in formset.formset.management_form.initial.items()
            for key in [f"{formset.formset.prefix}-{key}"]
        }
    )
    response = staff_client.post(
        url, {**data, "description": MEGABYTE, "name": "Shared\u202eexe.cod"}
    )
    assert response.status_code == 200  # the form again, with the errors
    errors = response.context["adminform"].form.errors
    assert f"at most {DESCRIPTION_MAX_LENGTH} characters" in " ".join(errors["description"])
    assert CONTROL_MESSAGE in errors["name"]
    product.refresh_from_db()
    assert product.description == "" and product.name == "Shared Contacts"
