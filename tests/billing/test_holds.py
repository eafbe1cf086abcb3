"""No invoice without its PDF: the billing run checks that an invoice can be rendered (its
Factur-X XML, built from the unsaved invoice and lines by the code that renders the PDF) before
it takes a number. One that cannot is not issued: its charges wait, a BillingHold tells staff
why, and the run that finally issues the invoice resolves it."""

import logging
from datetime import UTC, date, datetime

import facturx as facturx_library
import pytest
import time_machine
from lxml import etree

from billing import facturx, selectors, services, tasks, vat
from billing.models import BillingHold, DocumentCounter, Invoice, InvoiceLine
from billing.payments import services as payment_services
from customers.models import Customer
from subscriptions.models import Charge
from tests.factories import ChargeFactory, CustomerFactory, SubscriptionFactory, Tenant

DAY = date(2026, 11, 23)
NEXT_DAY = date(2026, 11, 24)
THIRD_DAY = date(2026, 11, 25)


def at(day: date) -> time_machine.travel:
    return time_machine.travel(datetime(day.year, day.month, day.day, 9, tzinfo=UTC), tick=False)


@pytest.fixture(autouse=True)
def setup(db: None, monkeypatch: pytest.MonkeyPatch) -> None:
    vat.vat_rates_seed()
    # The PDF and the card charge only queue work after commit; these tests are about the run.
    monkeypatch.setattr(services, "invoice_pdf_enqueue", lambda document: None)
    monkeypatch.setattr(services, "invoice_pdf_regenerate", lambda document: None)
    monkeypatch.setattr(payment_services, "invoice_charge_enqueue", lambda invoice: None)


def charge_for(customer: Customer) -> Charge:
    subscription = SubscriptionFactory(customer=customer, payer="reseller_card", currency="EUR")
    return ChargeFactory(subscription=subscription)


@pytest.fixture
def countryless(tenant: Tenant) -> Customer:
    """A customer saved before the country was required (and whose reseller has none, so the
    migration left it without one)."""
    customer = CustomerFactory(reseller=tenant.reseller, organisation="Acme Ltd")
    Customer.objects.filter(pk=customer.pk).update(country="")
    customer.refresh_from_db()
    return customer


REASON = (
    "Acme Ltd has no country: its invoice cannot carry the buyer's country (Factur-X BT-55). "
    "Set the country, the next billing run invoices it."
)


@at(DAY)
def test_a_customer_without_a_country_is_held_without_taking_a_number(
    tenant, other_tenant, countryless, caplog
):
    held_charge = charge_for(countryless)
    charge_for(other_tenant.customer)

    with caplog.at_level(logging.WARNING, logger="billing.services"):
        issued = services.billing_run(day=DAY)

    # The other customer is invoiced, with the first number: none was taken for the held one.
    assert [(i.customer, i.number) for i in issued] == [(other_tenant.customer, "INV-2026-000001")]
    assert DocumentCounter.objects.get(series="INV", year=2026).last_number == 1
    assert not Invoice.objects.filter(customer=countryless).exists()
    assert not InvoiceLine.objects.filter(charge=held_charge).exists()
    held_charge.refresh_from_db()
    assert held_charge.invoiced_at is None  # left for the next run
    hold = BillingHold.objects.get()
    assert (hold.customer, hold.first_seen_on, hold.last_seen_on, hold.resolved_on) == (
        countryless,
        DAY,
        DAY,
        None,
    )
    assert hold.reason == REASON
    assert any(
        record.levelno == logging.WARNING and REASON in record.getMessage()
        for record in caplog.records
    ), caplog.text


def test_a_hold_is_seen_again_by_later_runs_and_resolved_by_the_invoice(
    tenant, other_tenant, countryless
):
    with at(DAY):
        charge = charge_for(countryless)
        assert services.billing_run(day=DAY) == []
    with at(NEXT_DAY):
        assert services.billing_run(day=NEXT_DAY) == []
    hold = BillingHold.objects.get()  # one open hold per customer, not one per run
    assert (hold.first_seen_on, hold.last_seen_on, hold.resolved_on) == (DAY, NEXT_DAY, None)

    Customer.objects.filter(pk=countryless.pk).update(country="GB")
    with at(THIRD_DAY):
        [invoice] = services.billing_run(day=THIRD_DAY)
    assert invoice.customer == countryless and invoice.number == "INV-2026-000001"
    assert invoice.buyer["country"] == "GB"
    assert invoice.lines.get().charge == charge
    hold.refresh_from_db()
    assert (hold.last_seen_on, hold.resolved_on) == (NEXT_DAY, THIRD_DAY)

    # Held again later (the country emptied once more): a new hold, the old one stays resolved.
    Customer.objects.filter(pk=countryless.pk).update(country="")
    with at(date(2026, 11, 26)):
        charge_for(countryless)
        assert services.billing_run(day=date(2026, 11, 26)) == []
    assert BillingHold.objects.filter(customer=countryless).count() == 2
    assert BillingHold.objects.filter(customer=countryless, resolved_on__isnull=True).count() == 1


@at(DAY)
def test_the_daily_task_holds_the_same_way(tenant, other_tenant, countryless):
    charge = charge_for(countryless)
    assert (
        tasks.invoice_issue.delay(countryless.pk, "reseller_card", "EUR", DAY.isoformat()).get()
        is None
    )
    assert not Invoice.objects.exists()
    assert not DocumentCounter.objects.filter(last_number__gt=0).exists()
    charge.refresh_from_db()
    assert charge.invoiced_at is None
    assert BillingHold.objects.get().reason == REASON


@at(DAY)
def test_any_reason_the_xml_would_be_refused_holds_the_invoice(tenant, other_tenant, monkeypatch):
    """The check is the renderer's own: whatever the XSD refuses holds the invoice, with the
    XSD's words in the reason."""
    charge_for(tenant.customer)

    def refuse(xml: bytes) -> None:
        raise facturx.FacturXInvalid("Element 'ram:Name': [facts] This element is not expected.")

    monkeypatch.setattr(facturx, "_xsd_check", refuse)
    assert services.billing_run(day=DAY) == []
    reason = BillingHold.objects.get(customer=tenant.customer).reason
    assert reason.startswith(f"{tenant.customer.organisation}'s invoice cannot be made")
    assert "This element is not expected." in reason
    assert not Invoice.objects.exists()
    assert not DocumentCounter.objects.filter(last_number__gt=0).exists()


@at(DAY)
def test_the_check_builds_the_same_xml_as_the_issued_invoices_pdf(tenant, other_tenant):
    """What the run checks is the XML the PDF will carry: the same function, given the unsaved
    invoice and its lines in memory, makes the same bytes as for the issued invoice."""
    charge_for(tenant.customer)
    checked: list[bytes] = []
    original = facturx.invoice_facturx_xml

    def spy(invoice: Invoice, **kwargs: object) -> bytes:
        xml = original(invoice, **kwargs)  # type: ignore[arg-type]
        checked.append(xml)
        return xml

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(facturx, "invoice_facturx_xml", spy)
        [invoice] = services.billing_run(day=DAY)
    rendered = original(invoice, pays_by_transfer=selectors.invoice_pays_by_transfer(invoice))
    assert len(checked) == 1
    # Only the number differs: the check runs before one is taken.
    assert checked[0].replace(b"INV-2026-000000", invoice.number.encode()) == rendered


@at(DAY)
def test_an_issued_invoices_xml_still_refuses_a_missing_buyer_country(tenant, other_tenant):
    """The rule lives in the renderer: an invoice issued before this change, without a buyer
    country, fails its PDF with the same reason (staff see it on the invoice's PDF error)."""
    charge_for(tenant.customer)
    [invoice] = services.billing_run(day=DAY)
    invoice.buyer = {**invoice.buyer, "country": ""}  # as issued before, not saved
    with pytest.raises(facturx.FacturXInvalid) as error:
        facturx.invoice_facturx_xml(invoice, pays_by_transfer=True)
    assert error.value.code == "buyer_country"
    assert "has no country" in str(error.value) and "BT-55" in str(error.value)


@at(DAY)
def test_the_xsd_check_is_the_factur_x_librarys_xsd(tenant, other_tenant):
    """The schema compiled once is the one the library's xml_check_xsd loads: both accept the
    issued invoice's XML, both refuse it without the buyer's CountryID."""
    charge_for(tenant.customer)
    [invoice] = services.billing_run(day=DAY)
    xml = facturx.invoice_facturx_xml(invoice, pays_by_transfer=True)
    assert facturx_library.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    facturx._xsd_check(xml)

    tree = etree.fromstring(xml)
    buyer = tree.find(".//ram:BuyerTradeParty/ram:PostalTradeAddress", facturx.NS)
    buyer.remove(buyer.find("ram:CountryID", facturx.NS))
    broken = etree.tostring(tree)
    with pytest.raises(Exception, match="not valid against the official XML Schema"):
        facturx_library.xml_check_xsd(broken, flavor="factur-x", level="en16931")
    with pytest.raises(facturx.FacturXInvalid, match="CountryID"):
        facturx._xsd_check(broken)


# The admin: staff read the holds; the billing run writes them.


HOLDS = "/admin/billing/billinghold/"


def test_staff_see_open_and_resolved_holds_and_cannot_edit_them(
    staff_client, tenant, other_tenant, countryless
):
    BillingHold.objects.create(
        customer=countryless, reason=REASON, first_seen_on=DAY, last_seen_on=NEXT_DAY
    )
    resolved = BillingHold.objects.create(
        customer=other_tenant.customer,
        reason="Old reason",
        first_seen_on=DAY,
        last_seen_on=DAY,
        resolved_on=NEXT_DAY,
    )

    page = staff_client.get(HOLDS).content.decode()
    assert "Acme Ltd" in page and tenant.reseller.name in page
    assert "has no country" in page and "Old reason" in page
    open_only = staff_client.get(HOLDS, {"state": "open"}).content.decode()
    assert "has no country" in open_only and "Old reason" not in open_only
    resolved_only = staff_client.get(HOLDS, {"state": "resolved"}).content.decode()
    assert "Old reason" in resolved_only and "has no country" not in resolved_only

    assert staff_client.get(HOLDS + "add/").status_code == 403
    change = staff_client.get(f"{HOLDS}{resolved.pk}/change/")
    assert change.status_code == 200
    assert 'name="reason"' not in change.content.decode()  # read-only
    response = staff_client.post(
        f"{HOLDS}{resolved.pk}/change/",
        {"reason": "edited", "first_seen_on": DAY, "last_seen_on": DAY, "resolved_on": ""},
    )
    assert response.status_code == 403
    resolved.refresh_from_db()
    assert (resolved.reason, resolved.resolved_on) == ("Old reason", NEXT_DAY)
    assert staff_client.post(f"{HOLDS}{resolved.pk}/delete/", {"post": "yes"}).status_code == 403
    assert BillingHold.objects.count() == 2


@at(DAY)
def test_a_country_without_a_vat_rate_is_held_too(tenant, other_tenant):
    """An EU consumer whose country's VAT rate staff removed: no invoice can be made, the run
    and the daily task hold it instead of failing, and issue it once the rate is back."""
    from billing.models import VatRate

    customer = CustomerFactory(reseller=tenant.reseller, organisation="Hafen GmbH", country="DE")
    charge = charge_for(customer)
    rates = list(VatRate.objects.filter(country="DE").values("rate", "valid_from"))
    VatRate.objects.filter(country="DE").delete()

    assert services.billing_run(day=DAY) == []
    assert tasks.invoice_issue(customer.pk, "reseller_card", "EUR", DAY.isoformat()) is None
    hold = BillingHold.objects.get()
    assert hold.customer == customer and hold.resolved_on is None
    assert hold.reason.startswith("Hafen GmbH's invoice cannot be made:")
    charge.refresh_from_db()
    assert charge.invoiced_at is None

    VatRate.objects.bulk_create(VatRate(country="DE", **rate) for rate in rates)
    (invoice,) = services.billing_run(day=DAY)
    assert invoice.customer == customer
    hold.refresh_from_db()
    assert hold.resolved_on == DAY
