"""A reseller's postal address: its commission statements are self-billed invoices that name it
as the supplier with its full address (EU VAT directive art. 226). The application asks for it;
the company profile edits it and, once set, keeps one; every change is audited."""

import pytest
from django.core.exceptions import ValidationError

from resellers import services
from resellers.models import ADDRESS_REQUIRED, AuditEvent, Membership, Reseller
from tests.factories import UserFactory

ADDRESS = "Friedrichstraße 12\n10117 Berlin"
APPLICATION = {
    "name": "Hansen Cloud GmbH",
    "address": ADDRESS,
    "country": "DE",
    "vat_id": "DE 136 695 976",
    "billing_email": "billing@hansen.example",
    "currency": "EUR",
}
CONTROL_MESSAGE = "Remove the invisible control characters from this text."
ADD_ADDRESS_NOTICE = "Add your company's postal address"


@pytest.fixture
def applicant(db, client_for):
    return client_for(UserFactory(email="jo@hansen.example"))


def settings_data(reseller: Reseller, **changes: str) -> dict[str, str]:
    """The settings form as the owner would post it back, with `changes`."""
    data = {
        "name": reseller.name,
        "address": reseller.address,
        "country": str(reseller.country),
        "vat_id": reseller.vat_id,
        "billing_email": reseller.billing_email,
        "currency": reseller.currency,
        "language": reseller.language,
        "time_zone": reseller.time_zone,
    }
    return {**data, **changes}


def field_errors(response, name: str) -> list[str]:
    return [str(error) for error in response.context["form"].errors.get(name, [])]


# --- Become a partner ---------------------------------------------------------------------------


def test_the_application_stores_the_address_and_audits_it(applicant):
    response = applicant.post("/partner/apply/", {**APPLICATION, "address": f"  {ADDRESS}\n  "})

    assert response.status_code == 302
    reseller = Reseller.objects.get(name="Hansen Cloud GmbH")
    assert reseller.address == ADDRESS
    event = AuditEvent.objects.get(reseller=reseller, action="reseller.applied")
    assert event.after is not None
    assert event.after["address"] == reseller.address


def test_the_application_asks_for_the_address_beside_the_field(applicant):
    page = applicant.get("/partner/apply/").content.decode()
    assert 'name="address"' in page and "Postal address" in page

    response = applicant.post("/partner/apply/", {**APPLICATION, "address": "  "})

    assert response.status_code == 200
    assert field_errors(response, "address") == [str(ADDRESS_REQUIRED)]
    assert list(response.context["form"].errors) == ["address"]
    body = response.content.decode()
    assert 'id="id_address_error"' in body
    assert 'value="Hansen Cloud GmbH"' in body  # what was typed is kept
    assert not Reseller.objects.exists()
    assert not Membership.objects.exists()


def test_an_address_with_control_characters_is_refused_and_kept(applicant):
    typed = "Friedrichstraße 12\x1b[31m\n10117 Berlin"

    response = applicant.post("/partner/apply/", {**APPLICATION, "address": typed})

    assert response.status_code == 200
    assert field_errors(response, "address") == [CONTROL_MESSAGE]
    assert "Friedrichstraße 12" in response.content.decode()
    assert not Reseller.objects.exists()


def test_an_address_longer_than_the_limit_is_refused(applicant):
    response = applicant.post("/partner/apply/", {**APPLICATION, "address": "x" * 1001})

    assert response.status_code == 200
    assert "at most 1000 characters" in " ".join(field_errors(response, "address"))
    assert not Reseller.objects.exists()


# --- Company profile (Settings) -----------------------------------------------------------------


def test_a_reseller_without_an_address_is_asked_for_one_and_may_still_save(owner_client, tenant):
    reseller = tenant.reseller
    assert reseller.address == ""
    page = owner_client.get("/settings/").content.decode()
    assert ADD_ADDRESS_NOTICE in page

    saved = owner_client.post("/settings/", settings_data(reseller, name="Renamed Ltd"))

    assert saved.status_code == 302
    reseller.refresh_from_db()
    assert (reseller.name, reseller.address) == ("Renamed Ltd", "")


def test_the_owner_adds_the_address_and_the_change_is_audited(owner_client, tenant):
    reseller = tenant.reseller

    response = owner_client.post("/settings/", settings_data(reseller, address=ADDRESS))

    assert response.status_code == 302
    reseller.refresh_from_db()
    assert reseller.address == ADDRESS
    event = AuditEvent.objects.get(reseller=reseller, action="reseller.profile_updated")
    assert event.actor == tenant.owner
    assert event.before is not None and event.after is not None
    assert (event.before["address"], event.after["address"]) == ("", ADDRESS)
    # Only the address changed.
    assert {key for key in event.after if event.after[key] != event.before[key]} == {"address"}
    page = owner_client.get("/settings/").content.decode()
    assert ADD_ADDRESS_NOTICE not in page


def test_once_set_the_address_cannot_be_removed(owner_client, tenant):
    reseller = tenant.reseller
    reseller.address = ADDRESS
    reseller.save()

    response = owner_client.post(
        "/settings/", settings_data(reseller, name="Renamed Ltd", address="   ")
    )

    assert response.status_code == 400
    assert field_errors(response, "address") == [str(ADDRESS_REQUIRED)]
    assert 'value="Renamed Ltd"' in response.content.decode()  # what was typed is kept
    reseller.refresh_from_db()
    assert (reseller.name, reseller.address) == ("Reseller A", ADDRESS)
    assert not AuditEvent.objects.filter(action="reseller.profile_updated").exists()


def test_the_service_refuses_to_remove_an_address(tenant):
    reseller = tenant.reseller
    reseller.address = ADDRESS
    reseller.save()
    owner = Membership.objects.get(reseller=reseller, user=tenant.owner)

    with pytest.raises(ValidationError) as refused:
        services.reseller_update_profile(membership=owner, address=" \n ")

    assert refused.value.message_dict == {"address": [str(ADDRESS_REQUIRED)]}
    reseller.refresh_from_db()
    assert reseller.address == ADDRESS
    changed = services.reseller_update_profile(
        membership=owner, address="Hauptstraße 1\n10115 Berlin"
    )
    assert changed.address == "Hauptstraße 1\n10115 Berlin"


def test_members_who_are_not_owners_read_the_address(tenant, other_tenant, client_for):
    tenant.reseller.address = ADDRESS
    tenant.reseller.save()
    client = client_for(tenant.member("sales"))

    page = client.get("/settings/")

    field = page.context["form"]["address"]
    assert field.field.disabled and field.value() == ADDRESS
    assert ADD_ADDRESS_NOTICE not in page.content.decode()
    assert other_tenant.reseller.address == ""
