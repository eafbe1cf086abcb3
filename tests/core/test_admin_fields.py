"""Staff edits go through the services: what the admin lets staff edit for tenant-owned and
money models, against a reviewed allow-list; service-owned fields refused on POST; the admin
actions call the services and audit the staff user."""

from decimal import Decimal
from typing import Any

import pytest
from django.contrib import admin
from django.db import models
from django.test import RequestFactory
from django.utils import timezone

from billing import services as billing_services
from billing import vat
from billing.models import (
    CustomerCardConsent,
    GatewayCustomer,
    PaymentCard,
    Refund,
    StripeEvent,
)
from customers.models import Customer
from resellers.models import AuditEvent, Membership, Reseller
from subscriptions import services as subscription_services
from tests.factories import PlanFactory, TeamInvitationFactory


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


# --- Every editable admin field of tenant-owned and money models, reviewed --------------------

# The apps whose rows belong to a tenant or are money; every ModelAdmin registered for one of
# their models is walked, with its inlines (whatever their model).
AUDITED_APPS = {"resellers", "customers", "subscriptions", "billing", "commissions"}

# "(add)" and "(delete)" stand for the add page and deleting: creating or removing a row is a
# state change too; "name (on add)" is a field the add page sets and the change page does not
# offer. A model not named here may have nothing editable.
EDITABLE = {
    # Contact details: saved through customer_update_contact_by_staff (same checks as the
    # reseller's edit, audited with the staff user). Reseller, status, domain and type are not.
    "customers.customer": {
        "organisation",
        "contact_name",
        "contact_email",
        "education",
        "country",
        "vat_id",
        "crm_id",
        "admin_name",
        "admin_address",
        "admin_alternate_email",
        "admin_phone",
        "language",
        "time_zone",
    },
    # The company profile, with the owner's own form (VAT id checked) and saved through
    # reseller_update_profile_by_staff (audited with the staff user). Status is the actions'.
    "resellers.reseller": {
        "name",
        "address",
        "country",
        "vat_id",
        "billing_email",
        "currency",
        "language",
        "time_zone",
    },
    # The catalog is the vendor's own: staff name products and plans, set their limits and list
    # prices (a price applies to each subscription from its next period) and add or retire them.
    "subscriptions.product": {"name", "sku", "description", "is_active", "(add)", "(delete)"},
    # A plan's product and kind are set when it is added: subscriptions on it are billed by
    # its kind, so changing them later would re-bill them without a service.
    "subscriptions.plan": {
        "max_licences",
        "is_active",
        "product (on add)",
        "kind (on add)",
        "(add)",
        "(delete)",
    },
    "subscriptions.planprice": {"currency", "monthly_price", "(add)", "(delete)"},
    # VAT rates are the one billing table staff keep by hand (a country's rate from a date).
    "billing.vatrate": {"country", "rate", "valid_from", "(add)", "(delete)"},
    # Reseller discounts are the vendor's terms, kept by hand like list prices (issue 16).
    # A tier is named and renamed, never deleted (costs of past days were computed from it).
    "subscriptions.tier": {"name", "(add)"},
    # A tier's rates are added from today or a later day and never changed or deleted, so a
    # reseller's cost on a past day stays what it was; a new rate is a new row.
    "subscriptions.tierdiscount": {"product", "percent", "valid_from", "(add)"},
    # Staff put a reseller in a tier and move it to another; the reseller is read-only once
    # the row exists (the fixture makes none, so the walk sees the add form's fields).
    "subscriptions.resellertier": {"reseller", "tier", "(add)"},
    # Staff's per-reseller overrides: added (from today on), never changed or deleted.
    "subscriptions.resellerdiscount": {
        "reseller (on add)",
        "product (on add)",
        "percent (on add)",
        "valid_from (on add)",
        "(add)",
    },
    # subscriptions.pricerule and subscriptions.customerprice (the resellers' price books and
    # special prices) are read-only: set by price_rule_set / customer_price_set, audited.
}


@pytest.fixture
def rows(tenant, other_tenant, staff_client) -> None:
    """At least one saved row of each model the admin shows, made the way the portal makes it
    where a service exists."""
    staff = staff_client.staff
    vat.vat_rates_seed()
    plan = PlanFactory()
    order = subscription_services.subscription_buy(
        membership=Membership.objects.get(user=tenant.owner, reseller=tenant.reseller),
        customer=tenant.customer,
        plan=plan,
        licences=5,
        payer="reseller_card",
        order_key=subscription_services.order_key_new(),
    )
    invoice = billing_services.invoice_issue_for_customer(
        customer=tenant.customer, payer="reseller_card", day=timezone.localdate()
    )
    assert invoice is not None
    billing_services.invoice_mark_paid(invoice=invoice, by=staff)
    # A credit note on a paid invoice: a refund owed.
    billing_services.credit_note_issue(
        invoice=invoice, reason="Goodwill", amount=Decimal("1.00"), by=staff
    )
    assert Refund.objects.filter(invoice=invoice).exists()
    PaymentCard.objects.create(
        reseller=tenant.reseller,
        gateway_customer_id="cus_Reseller",
        gateway_payment_method_id="pm_Reseller",
        brand="visa",
        last4="4242",
        exp_month=12,
        exp_year=2040,
    )
    GatewayCustomer.objects.create(reseller=tenant.reseller, gateway_customer_id="cus_Reseller")
    consent = CustomerCardConsent(subscription=order.subscription, email="pat@example.com")
    consent.renew_token()
    consent.save()
    StripeEvent.objects.create(
        event_id="evt_1", type="invoice.paid", payload={}, created=timezone.now()
    )
    TeamInvitationFactory(reseller=tenant.reseller)


def editable_fields(model_admin: admin.ModelAdmin, request: Any, obj: Any) -> dict[str, set]:
    """What staff can change on the admin pages of `obj`'s model: the change form's fields
    (the admin's own get_form leaves its read-only fields out), the add form's when adding is
    allowed, and each inline's editable fields, per model label."""
    found: dict[str, set[str]] = {}

    def note(model: type[models.Model], names: set[str]) -> None:
        found.setdefault(model._meta.label_lower, set()).update(names)

    model = model_admin.model
    changing: set[str] = set()
    if model_admin.has_change_permission(request, obj):
        changing = set(model_admin.get_form(request, obj, change=True).base_fields)
        note(model, changing)
    if model_admin.has_add_permission(request):
        adding = set(model_admin.get_form(request, None, change=False).base_fields)
        note(model, {"(add)", *(f"{name} (on add)" for name in adding - changing)})
    if model_admin.has_delete_permission(request, obj):
        note(model, {"(delete)"})
    for inline in model_admin.get_inline_instances(request, obj):
        formset = inline.get_formset(request, obj)
        fk = formset.fk.name  # type: ignore[attr-defined]
        names = set(formset.form.base_fields) - {fk, "id", "DELETE"}
        if inline.has_change_permission(request, obj):
            note(inline.model, names)
        if inline.has_add_permission(request, obj):
            note(inline.model, {"(add)", *names})
        if inline.can_delete and inline.has_delete_permission(request, obj):
            note(inline.model, {"(delete)"})
    return found


def test_every_editable_admin_field_is_reviewed(rows, staff_client):
    request = RequestFactory().get("/admin/")
    request.user = staff_client.staff
    found: dict[str, set[str]] = {}
    walked = []
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label not in AUDITED_APPS:
            continue
        walked.append(model._meta.label_lower)
        # A real saved row where the fixture makes one; a model registered later without one
        # is still walked, with the admin's model-level answers.
        obj = model._default_manager.order_by("pk").first()
        for label, names in editable_fields(model_admin, request, obj).items():
            found.setdefault(label, set()).update(names)
        if obj is not None:
            url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/{obj.pk}/change/"
            assert staff_client.get(url).status_code == 200, url

    assert {"customers.customer", "subscriptions.subscription", "billing.invoice"} <= set(walked)
    unreviewed = {
        label: sorted(names - EDITABLE.get(label, set()))
        for label, names in found.items()
        if names - EDITABLE.get(label, set())
    }
    assert not unreviewed, f"Editable in the admin but not reviewed in EDITABLE: {unreviewed}"
    stale = {
        label: sorted(names - found.get(label, set()))
        for label, names in EDITABLE.items()
        if names - found.get(label, set())
    }
    assert not stale, f"Reviewed in EDITABLE but no longer editable (remove them): {stale}"


# --- Resellers: profile through the owner's service, status and team through theirs ----------


def test_reseller_profile_edit_goes_through_the_service(staff_client, tenant):
    reseller = tenant.reseller
    url = f"/admin/resellers/reseller/{reseller.pk}/change/"
    data = change_page_data(staff_client.get(url))
    assert "status" not in data

    refused = staff_client.post(url, {**data, "country": "DE", "vat_id": "DE000"})
    assert refused.status_code == 200
    assert refused.context["adminform"].form.errors["vat_id"]
    response = staff_client.post(
        url, {**data, "name": "Renamed Reseller", "status": Reseller.Status.SUSPENDED}
    )

    assert response.status_code == 302
    reseller.refresh_from_db()
    assert (reseller.name, reseller.status) == ("Renamed Reseller", Reseller.Status.ACTIVE)
    event = AuditEvent.objects.get(action="reseller.profile_updated")
    assert (event.actor, event.reseller) == (staff_client.staff, reseller)
    assert event.after is not None and event.before is not None
    assert (event.before["name"], event.after["name"]) == ("Reseller A", "Renamed Reseller")


def test_staff_set_a_resellers_address_through_the_service(staff_client, tenant):
    reseller = tenant.reseller
    url = f"/admin/resellers/reseller/{reseller.pk}/change/"
    data = change_page_data(staff_client.get(url))
    assert data.get("address", "") == ""

    response = staff_client.post(url, {**data, "address": "1 Main Street\nLondon EC1A 1AA"})

    assert response.status_code == 302
    reseller.refresh_from_db()
    assert reseller.address == "1 Main Street\nLondon EC1A 1AA"
    event = AuditEvent.objects.get(action="reseller.profile_updated")
    assert event.actor == staff_client.staff
    assert event.after is not None and event.before is not None
    assert (event.before["address"], event.after["address"]) == ("", reseller.address)
    # Once set, an address is kept: removing it is refused beside the field.
    refused = staff_client.post(url, {**change_page_data(staff_client.get(url)), "address": ""})
    assert refused.status_code == 200
    assert refused.context["adminform"].form.errors["address"]
    reseller.refresh_from_db()
    assert reseller.address == "1 Main Street\nLondon EC1A 1AA"


def test_resellers_and_teams_change_only_through_services(staff_client, tenant):
    membership = Membership.objects.get(reseller=tenant.reseller)
    assert staff_client.get("/admin/resellers/reseller/add/").status_code == 403
    assert staff_client.get("/admin/resellers/membership/add/").status_code == 403
    for url in (
        f"/admin/resellers/reseller/{tenant.reseller.pk}/delete/",
        f"/admin/resellers/membership/{membership.pk}/delete/",
    ):
        assert staff_client.post(url, {"post": "yes"}).status_code == 403, url
    changed = staff_client.post(
        f"/admin/resellers/membership/{membership.pk}/change/", {"role": "sales"}
    )
    assert changed.status_code == 403
    membership.refresh_from_db()
    assert membership.role == "owner"


# Each admin action of those models, reviewed: a state change calls its service, which audits
# the staff user (the tests named here check the actor). delete_selected only where deleting
# is reviewed in EDITABLE.
ACTIONS = {
    # customer_transfer (test_customer_import: test_staff_move_customers_...).
    "customers.customer": {"move_to_reseller"},
    # reseller_approve / reseller_suspend (test_partner_application).
    "resellers.reseller": {"approve", "suspend"},
    # subscription_suspend_by_staff / subscription_reactivate_by_staff (test_subscriptions:
    # test_admin_lists_filters_and_suspends).
    "subscriptions.subscription": {"suspend", "reactivate"},
    # credit_note_issue / invoice_mark_paid (test_billing_core_integrity); regenerating the PDF
    # re-creates the same document and changes no state.
    "billing.invoice": {"issue_credit_note", "mark_paid", "regenerate_pdf"},
    # refund_mark_refunded (test_billing_balance: test_a_refund_the_card_refuses_...).
    "billing.refund": {"mark_refunded"},
    "subscriptions.product": {"delete_selected"},
    "subscriptions.plan": {"delete_selected"},
    "billing.vatrate": {"delete_selected"},
    # statement_correct: a negative statement in the same series, audited
    # (tests/commissions/test_statements_pages.py).
    "commissions.statement": {"issue_correction", "issue_again"},
}


def test_every_admin_action_is_reviewed(staff_client):
    request = RequestFactory().get("/admin/")
    request.user = staff_client.staff
    found = {
        model._meta.label_lower: set(actions)
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_label in AUDITED_APPS and (actions := model_admin.get_actions(request))
    }
    assert found == ACTIONS
