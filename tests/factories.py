"""How tests build data, one way each: a factory per model, written directly (for pages,
documents and sweeps), and the few builders that go through the services (a catalogue of plans,
a bought subscription, a customer's administrator)."""

from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any, TypeVar

import factory
import time_machine
from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.files.base import ContentFile
from django.db import models
from django.utils import timezone

from billing.models import Invoice, InvoiceLine
from core.models import User
from customers.models import Customer, CustomerMember
from resellers.models import Membership, Reseller, TeamInvitation
from resellers.roles import Role
from subscriptions import services as subscription_services
from subscriptions.models import (
    Charge,
    Order,
    Plan,
    PlanPrice,
    PriceSource,
    Product,
    Subscription,
)
from subscriptions.periods import monthly_period

M = TypeVar("M", bound=models.Model)


class ModelFactory(factory.django.DjangoModelFactory[M]):
    """A factory of model M: `XFactory(...)` is an M, for mypy too. factory_boy types build()
    and create(), not the call, which its metaclass turns into create() (__new__ never runs)."""

    if TYPE_CHECKING:

        def __new__(cls, *args: Any, **kwargs: Any) -> M: ...  # type: ignore[misc]


class UserFactory(ModelFactory[User]):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    first_name = "Test"
    last_name = factory.Sequence(lambda n: f"User{n}")
    # Google's users have no password (set_unusable_password), written with the user.
    password = factory.LazyFunction(lambda: make_password(None))

    verified_email = factory.PostGeneration(
        lambda user, create, extracted, **kwargs: _verified_email(user, create)
    )


def _verified_email(user: User, create: bool) -> None:
    """What a Google sign-in leaves behind: the address, verified."""
    if create:
        EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)


class ResellerFactory(ModelFactory[Reseller]):
    class Meta:
        model = Reseller

    name = factory.Sequence(lambda n: f"Reseller {n}")
    country = "GB"
    billing_email = factory.Sequence(lambda n: f"billing{n}@reseller.example")
    currency = "EUR"
    status = Reseller.Status.ACTIVE


class MembershipFactory(ModelFactory[Membership]):
    class Meta:
        model = Membership

    reseller = factory.SubFactory(ResellerFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.OWNER


class TeamInvitationFactory(ModelFactory[TeamInvitation]):
    """Build with `TeamInvitationFactory.create_with_token(...)` to get the raw link token too."""

    class Meta:
        model = TeamInvitation

    reseller = factory.SubFactory(ResellerFactory)
    email = factory.Sequence(lambda n: f"invitee{n}@example.com")
    role = Role.SALES
    token_hash = factory.Sequence(lambda n: f"{n:064x}")

    @classmethod
    def create_with_token(cls, **kwargs: Any) -> tuple[TeamInvitation, str]:
        kwargs.setdefault("reseller", ResellerFactory())
        invitation = cls.build(**kwargs)
        raw = invitation.renew_token()
        if "expires_at" in kwargs:
            invitation.expires_at = kwargs["expires_at"]
        invitation.save()
        return invitation, raw


class CustomerFactory(ModelFactory[Customer]):
    class Meta:
        model = Customer

    reseller = factory.SubFactory(ResellerFactory)
    organisation = factory.Sequence(lambda n: f"Customer {n}")
    domain = factory.Sequence(lambda n: f"customer{n}.example")
    contact_name = "Pat Contact"
    contact_email = factory.LazyAttribute(lambda c: f"pat@{c.domain or 'gmail.com'}")
    country = factory.LazyAttribute(lambda c: c.reseller.country)
    status = Customer.Status.ACTIVE


class ProductFactory(ModelFactory[Product]):
    class Meta:
        model = Product

    name = factory.Sequence(lambda n: f"Product {n}")
    sku = factory.Sequence(lambda n: f"product-{n}")


class PlanFactory(ModelFactory[Plan]):
    """A plan priced at 4.00 EUR per licence per month (a trial is free)."""

    class Meta:
        model = Plan
        skip_postgeneration_save = True

    product = factory.SubFactory(ProductFactory)
    kind = Plan.Kind.FLEXIBLE
    max_licences = 500
    price = factory.RelatedFactory("tests.factories.PlanPriceFactory", factory_related_name="plan")


class PlanPriceFactory(ModelFactory[PlanPrice]):
    class Meta:
        model = PlanPrice

    plan = factory.SubFactory(PlanFactory, price=None)
    currency = "EUR"
    monthly_price = Decimal("4.00")


class SubscriptionFactory(ModelFactory[Subscription]):
    """An active flexible subscription whose current period started today, written directly
    (no order, ledger, charge or audit entry): for pages and sweeps, not for billing rules."""

    class Meta:
        model = Subscription

    customer = factory.SubFactory(CustomerFactory)
    plan = factory.SubFactory(PlanFactory)
    product = factory.LazyAttribute(lambda s: s.plan.product)
    currency = "EUR"
    licences = 5
    status = Subscription.Status.ACTIVE
    payer = "reseller_card"
    anchor_day = factory.LazyFunction(lambda: timezone.localdate().day)
    anchor_month = factory.LazyFunction(lambda: timezone.localdate().month)
    monthly_price = Decimal("4.00")
    period_start = factory.LazyAttribute(
        lambda s: monthly_period(on=timezone.localdate(), anchor_day=s.anchor_day).start
    )
    period_end = factory.LazyAttribute(
        lambda s: monthly_period(on=timezone.localdate(), anchor_day=s.anchor_day).end
    )


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
    # Priced at the list price, the reseller's cost unknown: cost = price, margin 0 (as the
    # charges made before issue 16 were filled).
    list_unit_price = factory.LazyAttribute(lambda c: c.unit_price)
    unit_cost = factory.LazyAttribute(lambda c: c.unit_price)
    unit_margin = Decimal("0.00")
    cost_amount = factory.LazyAttribute(lambda c: c.amount)
    margin_amount = Decimal("0.00")
    monthly_list_price = factory.LazyAttribute(lambda c: c.unit_price)
    monthly_price = factory.LazyAttribute(lambda c: c.unit_price)
    monthly_cost = factory.LazyAttribute(lambda c: c.unit_price)
    price_source = PriceSource.LIST_PRICE


CENT = Decimal("0.01")
# What a PDF starts with: enough for the download tests (tests/billing/test_pdf.py renders real
# ones).
FAKE_PDF = b"%PDF-1.7\n% fake invoice for tests\n%%EOF\n"
# A line given in full: (description, licences, unit price, amount, first day, day after the last)
Line = tuple[str, int | None, str, str, date | None, date | None]


def _subtotal(invoice: Any) -> Decimal:
    if isinstance(invoice.lines, int):
        return Decimal("100.00")
    return sum((Decimal(line[3]) for line in invoice.lines), Decimal("0.00"))


class InvoiceFactory(ModelFactory[Invoice]):
    """An issued invoice (or credit note) written directly, its totals reconciled with its lines:
    for pages, documents and sweeps (the billing rules go through billing.services). Open, 100.00
    plus 21 % VAT on one line, numbered outside the counter's range (INV-YYYY-9NNNNN) so that the
    documents the services issue never collide with it.

    Beyond the model's fields it takes:
    - `lines`: how many lines share the subtotal (1), or the lines themselves as `Line` tuples;
    - `descriptions`: the shared-out lines' descriptions, in order;
    - `subscription`: the subscription the lines bill (its customer and payer by default);
    - `pdf`: bytes stored as its PDF;
    - `issued_at`: when it was issued (its creation time; the issue date follows)."""

    class Meta:
        model = Invoice

    lines: int | list[Line] = 1
    descriptions: tuple[str, ...] = ()
    subscription: Subscription | None = None
    pdf: bytes | None = None
    issued_at: datetime | None = None

    customer = factory.Maybe(
        "subscription",
        factory.LazyAttribute(lambda i: i.subscription.customer),
        factory.SubFactory(CustomerFactory),
    )
    reseller = factory.LazyAttribute(lambda i: i.customer.reseller)
    kind = Invoice.Kind.INVOICE
    number = factory.LazyAttributeSequence(
        lambda i, n: (
            f"{'CN' if i.kind == Invoice.Kind.CREDIT_NOTE else 'INV'}"
            f"-{i.issue_date.year}-{900000 + n:06d}"
        )
    )
    payer = factory.Maybe(
        "subscription", factory.LazyAttribute(lambda i: i.subscription.payer), "reseller_card"
    )
    currency = "EUR"
    language = factory.LazyAttribute(lambda i: i.customer.language)
    issue_date = factory.LazyAttribute(
        lambda i: timezone.localdate(i.issued_at) if i.issued_at else timezone.localdate()
    )
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
            "payer_name": (
                i.customer.reseller.name if i.payer == "reseller_card" else i.customer.organisation
            ),
        }
    )
    vat_treatment = Invoice.VatTreatment.DOMESTIC
    vat_rate = Decimal("21.00")
    subtotal = factory.LazyAttribute(_subtotal)
    vat_amount = factory.LazyAttribute(
        lambda i: (i.subtotal * Decimal(i.vat_rate) / 100).quantize(CENT, ROUND_HALF_UP)
    )
    total = factory.LazyAttribute(lambda i: i.subtotal + i.vat_amount)
    # Lines are fixed at issue: the count written here is the count of lines made below.
    line_count = factory.LazyAttribute(
        lambda i: i.lines if isinstance(i.lines, int) else len(i.lines)
    )

    @classmethod
    def _create(cls, model_class: type[Invoice], *args: Any, **kwargs: Any) -> Invoice:
        lines = kwargs.pop("lines")
        descriptions = kwargs.pop("descriptions")
        subscription = kwargs.pop("subscription")
        pdf = kwargs.pop("pdf")
        issued_at = kwargs.pop("issued_at")
        with time_machine.travel(issued_at, tick=False) if issued_at else nullcontext():
            invoice = super()._create(model_class, *args, **kwargs)
        if isinstance(lines, int):
            lines = _shared_out(invoice, lines, descriptions)
        InvoiceLine.objects.bulk_create(
            InvoiceLine(
                invoice=invoice,
                position=position,
                subscription=subscription,
                description=description,
                licences=licences,
                unit_price=Decimal(unit_price),
                amount=Decimal(amount),
                period_start=start,
                period_end=end,
            )
            for position, (description, licences, unit_price, amount, start, end) in enumerate(
                lines, start=1
            )
        )
        if pdf is not None:
            invoice.pdf.save(f"{invoice.number}.pdf", ContentFile(pdf), save=False)
            invoice.save(update_fields=["pdf"])
        return invoice


def _shared_out(invoice: Invoice, count: int, descriptions: tuple[str, ...]) -> list[Line]:
    """`count` lines of 5 licences for a month from the issue date, sharing the subtotal (the
    last line takes the rounding)."""
    share = (invoice.subtotal / count).quantize(CENT) if count else Decimal(0)
    end = invoice.issue_date + timedelta(days=30)
    return [
        (
            descriptions[n] if n < len(descriptions) else f"Workspace Business, line {n + 1}",
            5,
            str((share / 5).quantize(CENT)),
            str(share if n < count - 1 else invoice.subtotal - share * (count - 1)),
            invoice.issue_date,
            end,
        )
        for n in range(count)
    ]


# A reseller with its owner and one customer; every test that uses one also gets a second, so a
# query that forgets the tenant shows up (the `tenant` and `other_tenant` fixtures).


@dataclass
class Tenant:
    reseller: Reseller
    owner: User
    customer: Customer

    def member(self, role: str) -> User:
        return MembershipFactory(reseller=self.reseller, role=role).user


def make_tenant(name: str) -> Tenant:
    reseller = ResellerFactory(name=name)
    owner = MembershipFactory(reseller=reseller, role=Role.OWNER).user
    customer = CustomerFactory(reseller=reseller)
    return Tenant(reseller=reseller, owner=owner, customer=customer)


def member_of(reseller: Reseller, role: str) -> Membership:
    return MembershipFactory(reseller=reseller, user=UserFactory(), role=role)


# Builders that go through the services


def catalogue(
    name: str = "Shared Contacts for Gmail",
    sku: str = "shared-contacts",
    prices: Mapping[str, Decimal] | None = None,
    currencies: tuple[str, ...] = ("EUR", "USD"),
) -> dict[str, Plan]:
    """A product with a plan of each kind: monthly prices per licence in EUR (4.00 flexible, 3.20
    annual paid monthly, 3.00 annual paid yearly, trial free); each other currency costs 1 more."""
    product = ProductFactory(name=name, sku=sku)
    plans: dict[str, Plan] = {}
    plan_prices: list[PlanPrice] = []
    for kind, price in (CATALOGUE_PRICES if prices is None else prices).items():
        plans[kind] = PlanFactory(product=product, kind=kind, price=None)
        plan_prices += [
            PlanPriceFactory.build(
                plan=plans[kind], currency=currency, monthly_price=price + (1 if n else 0)
            )
            for n, currency in enumerate(currencies)
        ]
    PlanPrice.objects.bulk_create(plan_prices)  # one insert for the prices
    return plans


CATALOGUE_PRICES: Mapping[str, Decimal] = {
    Plan.Kind.FLEXIBLE: Decimal("4.00"),
    Plan.Kind.ANNUAL_MONTHLY: Decimal("3.20"),
    Plan.Kind.ANNUAL_YEARLY: Decimal("3.00"),
    Plan.Kind.TRIAL: Decimal("0.00"),
}


def owner_of(tenant: Tenant) -> Membership:
    """The tenant owner's membership (the acting member of a service call)."""
    return Membership.objects.get(user=tenant.owner, reseller=tenant.reseller)


def admin_of(customer: Customer, **user_fields: object) -> User:
    """A new administrator of the customer, who accepted its terms."""
    user = UserFactory(**user_fields)
    CustomerMember.objects.create(customer=customer, user=user, terms_accepted_at=timezone.now())
    return user


def buy(
    membership: Membership,
    plan: Plan,
    licences: int = 5,
    customer: Customer | None = None,
    key: str | None = None,
    payer: str = "reseller_card",
) -> Subscription:
    """A subscription bought through the order service, as the Buy page does."""
    order = subscription_services.subscription_buy(
        membership=membership,
        customer=customer or Customer.objects.get(reseller=membership.reseller),
        plan=plan,
        licences=licences,
        payer=payer,
        order_key=key or subscription_services.order_key_new(),
    )
    return order.subscription


def change(membership: Membership, subscription: Subscription, new_count: int, **kw: Any) -> Order:
    """A licence change through the order service, expecting the count as it is now."""
    subscription.refresh_from_db()
    kw.setdefault("expected_count", subscription.licences)
    kw.setdefault("order_key", subscription_services.order_key_new())
    return subscription_services.subscription_change_licences(
        membership=membership, subscription=subscription, new_count=new_count, **kw
    )


# Reseller economics (issue 16): a reseller's tier, its price book entries and its customers'
# special prices, written directly (any day, past ones too): for pages and sweeps. The services'
# rules are tested through the services (tests/subscriptions/test_pricing.py).


def tier_for(
    reseller: Reseller, percent: Decimal, *, name: str = "Gold", valid_from: date = date(2000, 1, 1)
) -> Any:
    """`reseller` in a tier (made if new) whose discount for every product is `percent` from
    `valid_from`."""
    from subscriptions.models import ResellerTier, Tier, TierDiscount

    tier, _created = Tier.objects.get_or_create(name=name)
    TierDiscount.objects.create(tier=tier, product=None, percent=percent, valid_from=valid_from)
    ResellerTier.objects.update_or_create(reseller=reseller, defaults={"tier": tier})
    return tier


def price_rule_for(
    reseller: Reseller,
    plan: Plan,
    *,
    currency: str = "EUR",
    kind: str = "list",
    markup_percent: Decimal | None = None,
    price: Decimal | None = None,
    valid_from: date | None = None,
) -> Any:
    """A price book entry (from today unless said)."""
    from subscriptions.models import PriceRule

    return PriceRule.objects.create(
        reseller=reseller,
        plan=plan,
        currency=currency,
        kind=kind,
        markup_percent=markup_percent,
        price=price,
        valid_from=valid_from or timezone.localdate(),
    )


def special_price_for(
    customer: Customer,
    plan: Plan,
    price: Decimal,
    *,
    currency: str = "EUR",
    valid_from: date | None = None,
    ends_on: date | None = None,
) -> Any:
    """A customer's special price (from today unless said)."""
    from subscriptions.models import CustomerPrice

    return CustomerPrice.objects.create(
        reseller=customer.reseller,
        customer=customer,
        plan=plan,
        currency=currency,
        price=price,
        valid_from=valid_from or timezone.localdate(),
        ends_on=ends_on,
    )


# Margins (issue 16, tests/commissions): charges priced with the reseller's cost, and the
# documents that bill them, written directly as the billing run and credit_note_issue write them.


def charge_priced(
    subscription: Subscription, *, amount: str | Decimal, cost: str | Decimal, **fields: Any
) -> Charge:
    """A charge of one licence for `amount` that cost the reseller `cost`: its margin is the
    difference (in total and per licence, as the database holds it)."""
    price, unit_cost = Decimal(amount), Decimal(cost)
    fields.setdefault("kind", Charge.Kind.PRORATION)  # "period" is once per period start
    return ChargeFactory(
        subscription=subscription,
        licences=1,
        unit_price=price,
        amount=price,
        unit_cost=unit_cost,
        unit_margin=price - unit_cost,
        cost_amount=unit_cost,
        margin_amount=price - unit_cost,
        monthly_cost=unit_cost,
        price_source=PriceSource.PRICE_RULE,
        **fields,
    )


def invoice_of_charges(charges: list[Charge], **fields: Any) -> Invoice:
    """An issued invoice of `charges` (one customer, one currency): a line per charge that
    bills it, as the billing run writes them, its subtotal their sum. Open unless `status` and
    `paid_at` say otherwise. The charges are marked invoiced."""
    first = charges[0]
    invoice = InvoiceFactory(
        customer=first.customer,
        currency=first.currency,
        payer=first.payer,
        lines=[],
        line_count=len(charges),
        subtotal=sum((charge.amount for charge in charges), Decimal("0.00")),
        **fields,
    )
    InvoiceLine.objects.bulk_create(
        InvoiceLine(
            invoice=invoice,
            position=position,
            charge=charge,
            subscription_id=charge.subscription_id,
            description=charge.description,
            period_start=charge.period_start,
            period_end=charge.period_end,
            licences=charge.licences,
            unit_price=charge.unit_price,
            amount=charge.amount,
        )
        for position, charge in enumerate(charges, start=1)
    )
    Charge.objects.filter(pk__in=[charge.pk for charge in charges]).update(
        invoiced_at=timezone.now()
    )
    return invoice


def credit_note_of(invoice: Invoice, amount: str | Decimal, **fields: Any) -> Invoice:
    """A credit note of `amount` before VAT correcting `invoice`: one line without a charge, as
    billing.services.credit_note_issue writes a credit of an amount."""
    credit = str(Decimal(amount))
    fields.setdefault("issue_date", timezone.localdate())
    return InvoiceFactory(
        kind=Invoice.Kind.CREDIT_NOTE,
        corrects=invoice,
        customer=invoice.customer,
        currency=invoice.currency,
        payer=invoice.payer,
        vat_rate=invoice.vat_rate,
        status=Invoice.Status.CREDITED,
        lines=[(f"Credit on {invoice.number}", None, credit, credit, None, None)],
        **fields,
    )


# Commission statements (issue 16, tests/commissions/test_statements*.py): issued through the
# service from explicit lines (commissions.statements.statement_issue_for_reseller).


@dataclass(frozen=True)
class MarginLine:
    """A line of a statement as commissions.margins gives it (InvoiceMargin's fields)."""

    invoice_id: int | None
    number: str
    customer_id: int
    customer_name: str
    issued_on: date
    net: Decimal
    margin: Decimal


def margin_lines(customer: Customer, margins: list[Decimal], *, currency: str = "EUR") -> list[Any]:
    """A paid invoice of `customer` per margin (net 10 times the margin), as statement lines."""
    lines = []
    for margin in margins:
        invoice = InvoiceFactory(
            customer=customer,
            currency=currency,
            status=Invoice.Status.PAID,
            paid_at=timezone.now(),
        )
        lines.append(
            MarginLine(
                invoice_id=invoice.pk,
                number=invoice.number,
                customer_id=customer.pk,
                customer_name=customer.organisation,
                issued_on=invoice.issue_date,
                net=invoice.subtotal,
                margin=margin,
            )
        )
    return lines


def statement_for(
    customer: Customer,
    margins: tuple[str, ...] = ("10.00", "5.50"),
    *,
    month: date | None = None,
    currency: str = "EUR",
) -> Any:
    """An issued commission statement of `customer`'s reseller for `month` (last month), a line
    per margin on a paid invoice of `customer`."""
    from billing.vat import vat_rates_seed
    from commissions.statements import statement_issue_for_reseller

    vat_rates_seed()
    month = month or (timezone.localdate().replace(day=1) - timedelta(days=1))
    statement = statement_issue_for_reseller(
        reseller=customer.reseller,
        currency=currency,
        month=month,
        lines=margin_lines(customer, [Decimal(m) for m in margins], currency=currency),
    )
    assert statement is not None
    return statement
