"""Staff edits go through the services: what the admin lets staff edit for tenant-owned and
money models, against a reviewed allow-list; service-owned fields refused on POST; the admin
actions call the services and audit the staff user."""

from typing import Any

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.test import Client

from customers.models import Customer
from resellers.models import AuditEvent
from tests.factories import UserFactory


@pytest.fixture
def staff_client(db: None) -> Client:
    staff = UserFactory(is_staff=True, is_superuser=True)
    TOTP.activate(staff, generate_totp_secret())  # the admin requires a second factor
    client = Client()
    client.force_login(staff, backend="django.contrib.auth.backends.ModelBackend")
    client.staff = staff  # type: ignore[attr-defined]
    return client


def change_page_data(page: Any) -> dict[str, Any]:
    """What a browser would post back from an admin change page, unchanged: every form field
    with its current value and each inline's management form."""
    data: dict[str, Any] = {}

    def add(form: Any) -> None:
        for name in form.fields:
            value = form[name].value()
            if value is None or value is False:
                continue
            data[form.add_prefix(name)] = "on" if value is True else value

    add(page.context["adminform"].form)
    for inline in page.context["inline_admin_formsets"]:
        add(inline.formset.management_form)
        for form in inline.formset.forms:
            add(form)
    return data


# --- Customers: moved only by the action, status only by the services ------------------------


def test_customer_change_page_refuses_reseller_and_status(staff_client, tenant, other_tenant):
    customer = other_tenant.customer
    url = f"/admin/customers/customer/{customer.pk}/change/"
    page = staff_client.get(url)
    assert page.status_code == 200
    data = change_page_data(page)
    data.update(reseller=tenant.reseller.pk, status=Customer.Status.CANCELLED)

    response = staff_client.post(url, data)

    assert response.status_code == 302, response.content.decode()[:3000]
    customer.refresh_from_db()
    assert (customer.reseller, customer.status) == (other_tenant.reseller, Customer.Status.ACTIVE)
    assert not AuditEvent.objects.filter(action__startswith="customer.transferred").exists()


def test_customer_contact_edit_goes_through_the_service(staff_client, tenant, other_tenant):
    customer = other_tenant.customer
    url = f"/admin/customers/customer/{customer.pk}/change/"
    data = change_page_data(staff_client.get(url))

    # The service's own check (not the model's), shown next to the field; nothing saved.
    refused = staff_client.post(url, {**data, "contact_email": "pat@elsewhere.example"})
    assert refused.status_code == 200
    assert "must be an address of" in str(refused.context["adminform"].form.errors["contact_email"])
    response = staff_client.post(url, {**data, "organisation": "Renamed Ltd"})

    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.organisation == "Renamed Ltd"
    event = AuditEvent.objects.get(action="customer.updated")
    assert (event.actor, event.reseller, event.customer_public_id) == (
        staff_client.staff,
        other_tenant.reseller,
        customer.public_id,
    )
    assert (event.before, event.after) == (
        {"organisation": data["organisation"]},
        {"organisation": "Renamed Ltd"},
    )


def test_customers_are_neither_added_nor_deleted_in_the_admin(staff_client, tenant):
    customer = tenant.customer
    assert staff_client.get("/admin/customers/customer/add/").status_code == 403
    delete = staff_client.post(f"/admin/customers/customer/{customer.pk}/delete/", {"post": "yes"})
    assert delete.status_code == 403
    assert Customer.objects.filter(pk=customer.pk).exists()
