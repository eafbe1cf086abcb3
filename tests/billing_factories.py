"""Factories for billing tests: charges as the subscriptions make them, and issued documents
written directly (for pages and sweeps; billing rules go through billing.services)."""

from datetime import timedelta
from decimal import Decimal

import factory
from django.conf import settings
from django.utils import timezone

from billing.models import Invoice, InvoiceLine
from subscriptions.models import Charge
from tests.factories import CustomerFactory, ModelFactory, SubscriptionFactory


class ChargeFactory(ModelFactory[Charge]):
    """A charge not invoiced yet: 5 licences x 4.00 EUR for the subscription's period."""

    class Meta:
        model = Charge

    subscription = factory.SubFactory(SubscriptionFactory)
    customer = factory.LazyAttribute(lambda c: c.subscription.customer)
    kind = Charge.Kind.PERIOD
    description = factory.LazyAttribute(
        lambda c: f"{c.subscription.plan}: {c.licences} licences, {c.period_start:%d/%m/%Y}"
    )
    payer = factory.LazyAttribute(lambda c: c.subscription.payer)
    period_start = factory.LazyAttribute(lambda c: c.subscription.period_start)
    period_end = factory.LazyAttribute(lambda c: c.subscription.period_end)
    licences = 5
    unit_price = Decimal("4.00")
    amount = factory.LazyAttribute(lambda c: c.unit_price * c.licences)
    currency = factory.LazyAttribute(lambda c: c.subscription.currency)


class InvoiceFactory(ModelFactory[Invoice]):
    """An issued, open invoice of 100.00 + 21 % VAT, numbered outside the counter's range
    (INV-YYYY-9NNNNN) so that invoices the services issue never collide with it."""

    class Meta:
        model = Invoice

    customer = factory.SubFactory(CustomerFactory)
    reseller = factory.LazyAttribute(lambda i: i.customer.reseller)
    number = factory.Sequence(lambda n: f"INV-{timezone.localdate().year}-{900000 + n:06d}")
    payer = "reseller_card"
    currency = "EUR"
    language = "en"
    issue_date = factory.LazyFunction(timezone.localdate)
    due_date = factory.LazyAttribute(
        lambda i: i.issue_date + timedelta(days=settings.INVOICE_PAYMENT_TERMS_DAYS)
    )
    seller = factory.LazyFunction(
        lambda: {
            "name": settings.VENDOR_NAME,
            "address": settings.VENDOR_ADDRESS,
            "country": settings.VENDOR_COUNTRY,
            "vat_id": settings.VENDOR_VAT_ID,
            "email": settings.VENDOR_EMAIL,
            "iban": settings.VENDOR_BANK_IBAN,
            "bic": settings.VENDOR_BANK_BIC,
        }
    )
    buyer = factory.LazyAttribute(
        lambda i: {
            "organisation": i.customer.organisation,
            "address": i.customer.admin_address,
            "country": str(i.customer.country),
            "vat_id": i.customer.vat_id,
            "email": i.customer.contact_email,
            "contact_name": i.customer.contact_name,
            "domain": i.customer.domain,
            "payer_name": i.customer.reseller.name,
        }
    )
    vat_treatment = Invoice.VatTreatment.EU_CONSUMER
    vat_rate = Decimal("21.00")
    subtotal = Decimal("100.00")
    vat_amount = Decimal("21.00")
    total = Decimal("121.00")
    # Issued with one line (InvoiceLineFactory's, at position 1): no other can be added later.
    line_count = 1


class InvoiceLineFactory(ModelFactory[InvoiceLine]):
    class Meta:
        model = InvoiceLine

    invoice = factory.SubFactory(InvoiceFactory)
    position = 1
    description = "Shared Contacts for Gmail — Flexible: 25 licences"
    licences = 25
    unit_price = Decimal("4.00")
    amount = Decimal("100.00")
