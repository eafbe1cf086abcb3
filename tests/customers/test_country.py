"""A customer's country is required (its invoice must carry the buyer's country, Factur-X BT-55):
by NEW CUSTOMER, the edit form, every service that creates a customer, the import with a transfer
token, the admin, and the migration that fills it in for existing rows."""

import importlib
from typing import Any

import pytest
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.forms.models import model_to_dict
from django.test import RequestFactory, override_settings

from customers import services
from customers.models import Customer, CustomerInvitation, TransferToken
from resellers.models import AuditEvent, Membership, Reseller
from tests.factories import CustomerFactory, ResellerFactory, Tenant, UserFactory

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
COUNTRY_REQUIRED = "Choose the country where the organisation is established"
IMPORT_URL = "/customers/import/"
MIGRATION = "0006_customer_country_required"


def membership(tenant: Tenant) -> Membership:
    return Membership.objects.get(user=tenant.owner, reseller=tenant.reseller)


def country_errors(error: pytest.ExceptionInfo[ValidationError]) -> str:
    return " ".join(error.value.message_dict.get("country", []))


def test_the_model_field_is_required(db):
    field = Customer._meta.get_field("country")
    assert field.blank is False
    customer = CustomerFactory.build(reseller=ResellerFactory(), country="")
    with pytest.raises(ValidationError) as error:
        customer.full_clean(exclude=["reseller"], validate_constraints=False)
    assert COUNTRY_REQUIRED in country_errors(error)


# The services


def test_invite_refuses_an_empty_country_on_the_field(tenant, other_tenant):
    fields = {k: v for k, v in NEW.items() if k != "country"}
    with pytest.raises(ValidationError) as error:
        services.customer_invite(membership=membership(tenant), country="", **fields)
    assert COUNTRY_REQUIRED in country_errors(error)
    assert not Customer.objects.filter(organisation="Acme Iberia").exists()
    assert not CustomerInvitation.objects.exists()


def test_invite_without_a_country_of_a_reseller_without_one_is_refused(tenant, other_tenant):
    Reseller.objects.filter(pk=tenant.reseller.pk).update(country="")
    fields = {k: v for k, v in NEW.items() if k != "country"}
    with pytest.raises(ValidationError) as error:
        services.customer_invite(membership=membership(tenant), **fields)
    assert COUNTRY_REQUIRED in country_errors(error)
    assert not Customer.objects.filter(organisation="Acme Iberia").exists()


def test_invite_without_a_country_takes_the_resellers(tenant, other_tenant):
    fields = {k: v for k, v in NEW.items() if k not in ("country", "contact_email", "domain")}
    customer = services.customer_invite(
        membership=membership(tenant),
        domain="acme.co.uk",
        contact_email="marta@acme.co.uk",
        **fields,
    )
    assert customer.country == tenant.reseller.country == "GB"


def test_editing_cannot_empty_the_country(tenant, other_tenant):
    customer = tenant.customer
    with pytest.raises(ValidationError) as error:
        services.customer_update_contact(
            membership=membership(tenant), customer=customer, country=""
        )
    assert COUNTRY_REQUIRED in country_errors(error)
    customer.refresh_from_db()
    assert customer.country == "GB"


# The pages


def test_new_customer_without_a_country_is_explained_beside_the_field(owner_client, tenant):
    response = owner_client.post("/customers/new/", {**NEW, "country": ""})
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert list(errors) == ["country"], errors
    assert COUNTRY_REQUIRED in " ".join(errors["country"])
    body = response.content.decode()
    assert 'value="Acme Iberia"' in body and 'value="marta@acme-iberia.es"' in body
    assert not Customer.objects.filter(organisation="Acme Iberia").exists()
    assert not CustomerInvitation.objects.exists()


def test_new_customer_form_offers_no_country_until_one_is_chosen(owner_client, tenant):
    """A reseller without a country gets an empty choice selected, not the first country of
    the list (which the browser would otherwise send unnoticed)."""
    Reseller.objects.filter(pk=tenant.reseller.pk).update(country="")
    body = owner_client.get("/customers/new/").content.decode()
    assert '<option value="" selected>' in body


def test_edit_form_without_a_country_is_explained(owner_client, tenant):
    customer = tenant.customer
    data = {k: v for k, v in NEW.items() if k not in ("customer_type", "domain")}
    data.update(contact_email=customer.contact_email, country="")
    response = owner_client.post(f"/customers/{customer.public_id}/edit/", data)
    assert response.status_code == 400
    assert COUNTRY_REQUIRED in " ".join(response.context["form"].errors["country"])
    customer.refresh_from_db()
    assert customer.country == "GB" and customer.organisation != "Acme Iberia"


def test_the_customer_pages_show_the_country(owner_client, tenant):
    body = owner_client.get(f"/customers/{tenant.customer.public_id}/").content.decode()
    assert "United Kingdom" in body


# Import with transfer token, and the staff move


def token_for(customer: Customer, to_reseller: Reseller) -> str:
    token = TransferToken(customer=customer, to_reseller=to_reseller)
    raw = token.renew_token()
    token.save()
    return raw


@pytest.fixture
def countryless(other_tenant: Tenant) -> Customer:
    """Reseller B's customer, saved before the country was required."""
    Customer.objects.filter(pk=other_tenant.customer.pk).update(country="")
    other_tenant.customer.refresh_from_db()
    return other_tenant.customer


def test_import_of_a_customer_without_a_country_asks_for_it(
    owner_client, tenant, other_tenant, countryless
):
    raw = token_for(countryless, tenant.reseller)
    customers_before = Customer.objects.count()

    response = owner_client.post(IMPORT_URL, {"domain": countryless.domain, "token": raw})

    assert response.status_code == 400
    errors = response.context["form"].errors
    assert list(errors) == ["country"], errors
    assert COUNTRY_REQUIRED in " ".join(errors["country"])
    body = response.content.decode()
    assert f'value="{countryless.domain}"' in body and f'value="{raw}"' in body
    assert Customer.objects.count() == customers_before
    assert TransferToken.objects.get().consumed_at is None  # the token still works
    countryless.refresh_from_db()
    assert countryless.status == Customer.Status.ACTIVE

    response = owner_client.post(
        IMPORT_URL, {"domain": countryless.domain, "token": raw, "country": "IE"}
    )
    assert response.status_code == 302
    new = Customer.objects.get(previous=countryless)
    assert (new.reseller, new.country) == (tenant.reseller, "IE")


def test_import_keeps_the_country_on_record(owner_client, tenant, other_tenant):
    customer = other_tenant.customer
    raw = token_for(customer, tenant.reseller)
    response = owner_client.post(
        IMPORT_URL, {"domain": customer.domain, "token": raw, "country": "IE"}
    )
    assert response.status_code == 302
    assert Customer.objects.get(previous=customer).country == "GB"


def test_the_transfer_service_refuses_a_customer_without_a_country(
    tenant, other_tenant, countryless
):
    staff = UserFactory(is_staff=True)
    with pytest.raises(ValidationError) as error:
        services.customer_transfer(
            customer=countryless, to_reseller=tenant.reseller, actor=staff, via="staff"
        )
    assert COUNTRY_REQUIRED in country_errors(error)
    countryless.refresh_from_db()
    assert countryless.status == Customer.Status.ACTIVE
    assert not Customer.objects.filter(previous=countryless).exists()


# The admin


def test_the_admin_requires_the_country(tenant, other_tenant):
    """Staff edit a customer's contact details in the admin (customers are not added there)."""
    customer = tenant.customer
    request = RequestFactory().get(f"/admin/customers/customer/{customer.pk}/change/")
    request.user = UserFactory(is_staff=True, is_superuser=True)
    form_class = admin.site._registry[Customer].get_form(request, obj=customer)
    assert form_class.base_fields["country"].required
    data = {name: value for name, value in model_to_dict(customer).items() if value is not None}
    form = form_class({**data, "country": ""}, instance=customer)
    assert not form.is_valid()
    assert COUNTRY_REQUIRED in " ".join(map(str, form.errors["country"])), form.errors


# The data migration


def migration_apps() -> Any:
    """The models as the migration sees them (the test database is built without migrations:
    read them from disk)."""
    with override_settings(MIGRATION_MODULES={}):
        loader = MigrationLoader(None, ignore_no_migrations=True)
        return loader.project_state(("customers", MIGRATION)).apps


def test_migration_gives_customers_without_a_country_their_resellers_and_audits_it(
    tenant, other_tenant
):
    migration = importlib.import_module(f"customers.migrations.{MIGRATION}")
    other_tenant.reseller.country = "ES"
    other_tenant.reseller.save()
    spanish = CustomerFactory(reseller=other_tenant.reseller, country="ES")
    without = [
        CustomerFactory(reseller=tenant.reseller, organisation="Acme Ltd"),
        CustomerFactory(reseller=other_tenant.reseller, domain=""),
    ]
    orphan_reseller = ResellerFactory()
    Reseller.objects.filter(pk=orphan_reseller.pk).update(country="")
    orphan = CustomerFactory(reseller=orphan_reseller)
    Customer.objects.filter(pk__in=[c.pk for c in [*without, orphan]]).update(country="")

    migration.customer_country_default(migration_apps(), connection.schema_editor())

    countries = dict(Customer.objects.values_list("pk", "country"))
    assert countries[without[0].pk] == "GB"
    assert countries[without[1].pk] == "ES"
    assert countries[spanish.pk] == "ES" and countries[tenant.customer.pk] == "GB"
    # A reseller without a country either: left as it is, for the billing run to hold (its
    # invoice cannot be made without a buyer country) and staff to set.
    assert countries[orphan.pk] == ""
    events = AuditEvent.objects.filter(action="customer.country_defaulted").order_by("id")
    assert [(e.customer_public_id, e.reseller_id, e.actor, e.before, e.after) for e in events] == [
        (without[0].public_id, tenant.reseller.pk, None, {"country": ""}, {"country": "GB"}),
        (without[1].public_id, other_tenant.reseller.pk, None, {"country": ""}, {"country": "ES"}),
    ]
    first = events[0]
    assert (first.object_type, first.object_id, first.object_repr) == (
        "customers.customer",
        without[0].public_id,
        str(without[0]),
    )

    # Run again: nothing left to change, nothing audited twice.
    migration.customer_country_default(migration_apps(), connection.schema_editor())
    assert AuditEvent.objects.filter(action="customer.country_defaulted").count() == 2
