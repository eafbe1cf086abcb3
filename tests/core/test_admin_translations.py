"""The admin speaks the staff user's language: every name it takes from the portal's models (a
column header, a filter's "By ...", a change page's labels, an inline's headers) is
translatable, and none shows in English on the Spanish, German or Dutch pages."""

import html
import re
from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib import admin
from django.utils import timezone, translation
from django.utils.functional import Promise

from billing import services as billing_services
from billing import vat
from billing.models import BillingHold, GatewayCustomer, PaymentCard
from customers.models import CustomerInvitation, TransferToken
from resellers.models import Membership
from subscriptions import services as subscription_services
from tests.factories import PlanFactory, TeamInvitationFactory, Tenant

PORTAL_APPS = ("core", "resellers", "customers", "subscriptions", "billing")


def untranslatable_names() -> list[str]:
    """Model and field names of the portal's models given as plain strings (Django's "ID" for
    an automatic primary key aside)."""
    found = []
    for label in PORTAL_APPS:
        for model in apps.get_app_config(label).get_models():
            meta = model._meta
            for attribute in ("verbose_name", "verbose_name_plural"):
                if not isinstance(getattr(meta, attribute), Promise):
                    found.append(f"{meta.label}.Meta.{attribute}")
            for field in meta.get_fields():
                if field.auto_created or not hasattr(field, "verbose_name"):
                    continue
                if not isinstance(field.verbose_name, Promise):
                    found.append(f"{meta.label}.{field.name}")
    return found


def test_every_model_and_field_name_of_the_portal_is_translatable():
    assert untranslatable_names() == []


def english_names(language: str) -> set[str]:
    """The field names of the portal's models that `language` translates differently, as
    English shows them (lower case)."""
    names = set()
    for label in PORTAL_APPS:
        for model in apps.get_app_config(label).get_models():
            for field in model._meta.get_fields():
                if not hasattr(field, "verbose_name"):
                    continue
                with translation.override("en"):
                    english = str(field.verbose_name)
                with translation.override(language):
                    if translation.gettext(english).lower() != english.lower():
                        names.add(english.lower())
    return names


def admin_labels(page: str) -> set[str]:
    """What the admin page names: table headers, form labels and filter titles."""
    texts = re.findall(r"<th\b[^>]*>(.*?)</th>", page, flags=re.S)
    texts += re.findall(r"<label\b[^>]*>(.*?)</label>", page, flags=re.S)
    texts += re.findall(r'data-filter-title="([^"]*)"', page)
    labels = set()
    for text in texts:
        text = html.unescape(re.sub(r"<[^>]+>", " ", text))
        text = " ".join(text.split()).rstrip(":").strip()
        if text:
            labels.add(text.lower())
    return labels


@pytest.fixture
def rows(tenant: Tenant, other_tenant: Tenant, staff_client) -> None:
    """A saved row of each model the admin shows or inlines, so each change page renders."""
    staff = staff_client.staff
    vat.vat_rates_seed()
    order = subscription_services.subscription_buy(
        membership=Membership.objects.get(user=tenant.owner, reseller=tenant.reseller),
        customer=tenant.customer,
        plan=PlanFactory(),
        licences=5,
        payer="reseller_card",
        order_key=subscription_services.order_key_new(),
    )
    invoice = billing_services.invoice_issue_for_customer(
        customer=tenant.customer, payer="reseller_card", day=timezone.localdate()
    )
    assert invoice is not None
    billing_services.invoice_mark_paid(invoice=invoice, by=staff)
    billing_services.credit_note_issue(
        invoice=invoice, reason="Goodwill", amount=Decimal("1.00"), by=staff
    )
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
    today = timezone.localdate()
    BillingHold.objects.create(
        customer=other_tenant.customer, reason="No country", first_seen_on=today, last_seen_on=today
    )
    TeamInvitationFactory(reseller=tenant.reseller)
    invitation = CustomerInvitation(
        customer=tenant.customer, email="pat@example.com", invited_by=tenant.owner
    )
    invitation.renew_token()
    invitation.save()
    token = TransferToken(
        customer=tenant.customer, to_reseller=other_tenant.reseller, created_by=tenant.owner
    )
    token.renew_token()
    token.save()
    assert order.subscription is not None


@pytest.mark.parametrize("language", ["es", "de", "nl"])
def test_the_admin_pages_name_no_field_in_english(rows, staff_client, language):
    english = english_names(language)
    assert "customer" in english
    shown: dict[str, set[str]] = {}
    for model in admin.site._registry:
        meta = model._meta
        if meta.app_label not in PORTAL_APPS:
            continue
        changelist = f"/admin/{meta.app_label}/{meta.model_name}/"
        urls = [changelist]
        obj = model._default_manager.order_by("pk").first()
        if obj is not None:
            urls.append(f"{changelist}{obj.pk}/change/")
        for url in urls:
            page = staff_client.get(url, HTTP_ACCEPT_LANGUAGE=language)
            assert page.status_code == 200, url
            if english_shown := admin_labels(page.content.decode()) & english:
                shown[url] = english_shown

    assert shown == {}
