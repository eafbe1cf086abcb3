from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

import factory
from allauth.account.models import EmailAddress
from django.db import models
from django.utils import timezone

from core.models import User
from customers.models import Customer
from resellers.models import Membership, Reseller, TeamInvitation
from resellers.roles import Role
from subscriptions.models import Plan, PlanPrice, Product, Subscription
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
    password = factory.PostGeneration(lambda user, create, extracted: user.set_unusable_password())

    verified_email = factory.PostGeneration(
        lambda user, create, extracted, **kwargs: _verified_email(user, create)
    )


def _verified_email(user: User, create: bool) -> None:
    """What a Google sign-in leaves behind: the address, verified."""
    if create:
        EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
        user.save()


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
