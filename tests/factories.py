import factory
from allauth.account.models import EmailAddress

from core.models import User
from customers.models import Customer
from resellers.models import Membership, Reseller, TeamInvitation
from resellers.roles import Role


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    first_name = "Test"
    last_name = factory.Sequence(lambda n: f"User{n}")
    password = factory.PostGeneration(lambda user, create, extracted: user.set_unusable_password())

    @factory.post_generation
    def verified_email(self, create: bool, extracted: object, **kwargs: object) -> None:
        # What a Google sign-in leaves behind: the address, verified.
        if create:
            EmailAddress.objects.create(user=self, email=self.email, verified=True, primary=True)
            self.save()


class ResellerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Reseller

    name = factory.Sequence(lambda n: f"Reseller {n}")
    country = "GB"
    billing_email = factory.Sequence(lambda n: f"billing{n}@reseller.example")
    currency = "EUR"
    status = Reseller.Status.ACTIVE


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    reseller = factory.SubFactory(ResellerFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.OWNER


class TeamInvitationFactory(factory.django.DjangoModelFactory):
    """Build with `TeamInvitationFactory.create_with_token(...)` to get the raw link token too."""

    class Meta:
        model = TeamInvitation

    reseller = factory.SubFactory(ResellerFactory)
    email = factory.Sequence(lambda n: f"invitee{n}@example.com")
    role = Role.SALES
    token_hash = factory.Sequence(lambda n: f"{n:064x}")

    @classmethod
    def create_with_token(cls, **kwargs: object) -> tuple[TeamInvitation, str]:
        kwargs.setdefault("reseller", ResellerFactory())
        invitation = cls.build(**kwargs)
        raw = invitation.renew_token()
        if "expires_at" in kwargs:
            invitation.expires_at = kwargs["expires_at"]
        invitation.save()
        return invitation, raw


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    reseller = factory.SubFactory(ResellerFactory)
    organisation = factory.Sequence(lambda n: f"Customer {n}")
    domain = factory.Sequence(lambda n: f"customer{n}.example")
    contact_name = "Pat Contact"
    contact_email = factory.LazyAttribute(lambda c: f"pat@{c.domain or 'gmail.com'}")
    status = Customer.Status.ACTIVE
