"""Demo data: the catalogue, two active resellers with a member in every role, a pending
applicant, and customers in every state. With the demo card gateway (development without Stripe
keys), saved test cards and invoices paid by card, one declined and awaiting its retry and one
suspended after its last retry. Running it again adds nothing.

Reseller economics (issue 16): three discount tiers (Registered, Silver, Gold; Gold with a
better rate on Shared Contacts from next month), each reseller in one. Nimbus (Gold) has a
price book (a markup on its cost for Flexible, a fixed price for Annual paid monthly, in euros)
and two customers with a special price, one of them an offer that ends; all set through the
services before its customers buy, so every charge keeps its cost and margin. Invoices paid in
each of the two past months and in this one give the Margin page its figures, and the
commission statements of the two past months are issued: the earlier one paid out, the later
one open.

The API and webhooks (issue 17), in Settings: Nimbus's owner made two API keys, one used a few
hours ago, and revoked a third (their secrets, shown once by design, are thrown away); an
endpoint listens to a handful of event types, and a second one, made for a trial, was disabled
by a member. They are added last, once every service call of the seed is done, with a short
delivery history crafted on the events those calls recorded: delivered, one after a retry, and
one still failing with its next retry pending. The endpoint's host resolves nowhere, so what the
demo's user does later fails and retries visibly; the seed itself never reaches the network."""

import random
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

import time_machine
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser, OutputWrapper
from django.db import transaction
from django.db.models import F, Max
from django.test.utils import override_settings
from django.utils import timezone

from api.models import ApiKey, Scope
from api.services import api_key_create, api_key_revoke
from billing import services as billing_services
from billing.models import Invoice, Refund
from billing.payments import services as payment_services
from billing.payments.demo_gateway import DemoGateway
from billing.payments.gateways import gateway
from billing.pdf import invoice_pdf_store
from billing.vat import vat_rates_seed
from commissions.margins import month_start, next_month, previous_month
from commissions.models import Payout, Statement
from commissions.statements import payout_record, statement_paid_amount
from core.models import OutboundEmail, User
from customers.models import Customer, CustomerInvitation, CustomerMember
from demo.history import DailyJobs, Diary, at, days_live, months_from
from insights.models import DailySnapshot
from insights.services import snapshots_take
from resellers.models import AuditEvent, Membership, Reseller, TeamInvitation
from resellers.roles import Action, Role, role_can
from resellers.services import audit_record
from subscriptions import services as subscription_services
from subscriptions.models import (
    Payer,
    Plan,
    PlanPrice,
    PriceRule,
    Product,
    ResellerTier,
    Subscription,
    Tier,
    TierDiscount,
)
from subscriptions.periods import add_months
from subscriptions.services.pricing import customer_price_set, price_rule_set
from webhooks.models import (
    EventType,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from webhooks.services import RETRY_DELAYS, endpoint_create, endpoint_disable

# The history the demo lives (demo.history), from this many days before today: 13 months, so
# that the dashboard's 12 months start with the book the resellers had already. Customers
# signed up one every CUSTOMER_EVERY_DAYS, the oldest before the history starts.
HISTORY_DAYS = 395
CUSTOMER_EVERY_DAYS = 11
# Trials are bought in the last weeks (a trial lasts 30 days): the first this many days ago,
# so that it ends within the week, the others within this range.
TRIAL_FIRST_DAYS_AGO = 24
TRIAL_DAYS_AGO = (3, 20)
# Staff credit a paid invoice this many days ago: (days, sent back by bank transfer when there
# are no cards).
REFUNDS = [(33, True), (12, False)]
# Where the seed's emails go: kept in the outbox (OutboundEmail, /dev/outbox/ in development),
# not printed; the console is left to the emails of what the demo's user does.
SEED_MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}

PRICES = {  # per licence per month: EUR, USD, GBP
    Plan.Kind.FLEXIBLE: ("4.00", "4.50", "3.50"),
    Plan.Kind.ANNUAL_MONTHLY: ("3.20", "3.60", "2.80"),
    Plan.Kind.ANNUAL_YEARLY: ("3.00", "3.40", "2.60"),
    Plan.Kind.TRIAL: ("0.00", "0.00", "0.00"),
}

# The discount tiers staff give resellers, in % of the list price on every product from the day
# the demo is loaded; Gold gives more on Shared Contacts from the first of next month.
TIERS = {"Registered": "10.00", "Silver": "15.00", "Gold": "20.00"}
TIER_PRODUCT_RATE = ("Gold", "shared-contacts", "25.00")

# The plan each active customer buys, in turn (_subscriptions); a special price (RESELLERS'
# "special_prices") names the customer by its place in this order, so it is for its plan.
PLAN_TURNS = [
    Plan.Kind.FLEXIBLE,
    Plan.Kind.ANNUAL_MONTHLY,
    Plan.Kind.ANNUAL_YEARLY,
    Plan.Kind.FLEXIBLE,
    Plan.Kind.TRIAL,
]

# The demo gateway's test cards (billing.payments.demo_gateway): one that pays, and one that is
# saved and then declined on every charge.
CARD_PAYS = "4242424242424242"
CARD_PAYS_MASTERCARD = "5555555555554444"
CARD_DECLINES = "4000000000000341"

# API keys (issue 17), made by the reseller's owner: (name, scopes, made this long ago, last used
# this long ago or None: not yet, revoked this long ago or None).
API_KEYS: list[tuple[str, list[str], timedelta, timedelta | None, timedelta | None]] = [
    ("Reporting trial", [Scope.READ], timedelta(days=75), timedelta(days=41), timedelta(days=40)),
    (
        "PSA sync",
        [Scope.READ, Scope.CUSTOMERS_WRITE, Scope.SUBSCRIPTIONS_WRITE],
        timedelta(days=34),
        timedelta(hours=2),
        None,
    ),
    ("Accounting export", [Scope.READ, Scope.BILLING_READ], timedelta(days=12), None, None),
]

# Webhook endpoints (issue 17), oldest first. Their hosts resolve nowhere (.example), so what
# the demo's user does later is delivered to them, fails and is retried, as with a receiver down.
# "history": the delivery log, crafted on the reseller's latest events of each type: (type, sent
# this long ago, the answer's code at each attempt, made on the retry schedule of
# webhooks.services); a last attempt without a 2xx leaves the delivery pending, its next retry
# still ahead.
WEBHOOK_ENDPOINTS: list[dict[str, Any]] = [
    {
        "url": "https://staging.hooks.nimbus.example/portal",
        "description": "PSA trial (staging)",
        "event_types": [EventType.SUBSCRIPTION_CREATED, EventType.INVOICE_ISSUED],
        "made_by": "luis@nimbus.example",
        "made": timedelta(days=8),
        "disabled_by": "luis@nimbus.example",
        "disabled": timedelta(days=4, hours=4),
        "history": [
            (EventType.SUBSCRIPTION_CREATED, timedelta(days=7, hours=2), [200]),
            (EventType.INVOICE_ISSUED, timedelta(days=6, hours=5), [404, 200]),
        ],
    },
    {
        "url": "https://hooks.nimbus.example/portal",
        "description": "PSA: customers, subscriptions and invoices",
        "event_types": [
            EventType.CUSTOMER_INVITED,
            EventType.CUSTOMER_ACCEPTED,
            EventType.SUBSCRIPTION_CREATED,
            EventType.SUBSCRIPTION_LICENCES_CHANGED,
            EventType.SUBSCRIPTION_CANCELLED,
            EventType.INVOICE_ISSUED,
            EventType.INVOICE_PAID,
            EventType.PAYMENT_FAILED,
        ],
        "made_by": "ana@nimbus.example",
        "made": timedelta(days=4, hours=5),
        "history": [
            (EventType.SUBSCRIPTION_CREATED, timedelta(days=4, hours=3), [200]),
            (EventType.SUBSCRIPTION_LICENCES_CHANGED, timedelta(days=3, hours=5), [200]),
            (EventType.INVOICE_ISSUED, timedelta(days=2, hours=22), [503, 200]),
            (EventType.INVOICE_PAID, timedelta(days=1, hours=4), [200]),
            (EventType.SUBSCRIPTION_CREATED, timedelta(hours=6), [200]),
            # Failing for 50 minutes: its fifth attempt is due in about an hour and three quarters.
            (EventType.PAYMENT_FAILED, timedelta(minutes=50), [500, 500, 500, 500]),
        ],
    },
]
WEBHOOK_ANSWERS = {
    200: "ok",
    404: "Not Found",
    500: "Internal Server Error",
    503: "Service Unavailable",
}

RESELLERS: list[dict[str, Any]] = [
    {
        "name": "Nimbus Cloud Partners",
        "country": "ES",
        "vat_id": "ESB12345674",
        "billing_email": "billing@nimbus.example",
        "address": "Calle de Alcalá 42, 3º\n28014 Madrid",
        "currency": "EUR",
        "language": "es",
        "time_zone": "Europe/Madrid",
        "status": Reseller.Status.ACTIVE,
        "customers": 48,
        "card": CARD_PAYS,
        "tier": "Gold",
        "api_keys": API_KEYS,
        "webhook_endpoints": WEBHOOK_ENDPOINTS,
        # The price book, in the reseller's currency: (plan, kind, markup % or fixed price).
        "price_book": [
            (Plan.Kind.FLEXIBLE, PriceRule.Kind.MARKUP, "30.00"),
            (Plan.Kind.ANNUAL_MONTHLY, PriceRule.Kind.FIXED, "3.40"),
        ],
        # Special prices: (the active customer's place in PLAN_TURNS' order, price, the number
        # of months until it ends (the first day of that month), or None: no end).
        "special_prices": [(3, "3.60", None), (1, "2.90", 3)],
        # Customers whose card declines with demo cards: (their place in PLAN_TURNS' order, the
        # invoice that declines was issued this many days ago). Two days before it, each saved
        # a card that declines (the first, Acme Studio, through its administrator, who then
        # pays with it instead of the reseller). The first invoice has been retried until its
        # last retry suspended the subscription; the second (an annual renewal, today; on 29
        # February the day before, a year after the 28th) waits for its next retry.
        "declining_cards": [(0, 20), (2, 0)],
        # An annual customer that left: (its place in PLAN_TURNS' order, its first term ended
        # this many days ago, set to cancel at its end).
        "left_at_term_end": (6, 20),
        # A person on the customer side: administers the first active customer, which pays
        # with its own card; with demo cards that card declines, so its subscription is
        # suspended until Marta changes the card.
        "customer_admin": ("Marta", "Ruiz"),
        "invitations": [("marta@nimbus.example", Role.SALES), ("jorge@nimbus.example", Role.ADMIN)],
        "members": [
            ("ana@nimbus.example", "Ana", "García", Role.OWNER),
            ("luis@nimbus.example", "Luis", "Martín", Role.ADMIN),
            ("sofia@nimbus.example", "Sofía", "López", Role.SALES),
            ("pablo@nimbus.example", "Pablo", "Ruiz", Role.BILLING),
        ],
    },
    {
        "name": "Brightside IT",
        "country": "GB",
        "vat_id": "",
        "billing_email": "accounts@brightside.example",
        "address": "14 Wharf Road\nManchester M1 4BT",
        "currency": "GBP",
        "language": "en",
        "time_zone": "Europe/London",
        "status": Reseller.Status.ACTIVE,
        "customers": 17,
        "card": CARD_PAYS_MASTERCARD,
        "tier": "Silver",
        "members": [
            ("olivia@brightside.example", "Olivia", "Smith", Role.OWNER),
            ("harry@brightside.example", "Harry", "Jones", Role.ADMIN),
            ("ana@nimbus.example", "Ana", "García", Role.SALES),
            ("amelia@brightside.example", "Amelia", "Taylor", Role.BILLING),
        ],
    },
    {
        "name": "Polder Digitaal",
        "country": "NL",
        "vat_id": "NL004495445B01",
        "billing_email": "finance@polder.example",
        "address": "Keizersgracht 123\n1015 CJ Amsterdam",
        "currency": "EUR",
        "language": "nl",
        "time_zone": "Europe/Amsterdam",
        "status": Reseller.Status.PENDING,
        "customers": 0,
        "tier": "Registered",
        "members": [("daan@polder.example", "Daan", "de Vries", Role.OWNER)],
    },
]

ORGANISATIONS = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Vandelay",
    "Stark",
    "Wayne",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Aperture",
    "Wonka",
    "Gringotts",
    "Oscorp",
    "Monarch",
    "Pied Piper",
    "Dunder Mifflin",
    "Prestige",
    "Sirius",
    "Massive",
    "Nakatomi",
    "Ollivander",
    "Zorg",
]
SUFFIXES = ["Studio", "Labs", "Legal", "Logistics", "Health", "Foods", "Design", "Energy"]
FIRST_NAMES = ["Maria", "Jan", "Claire", "Lukas", "Emma", "Noah", "Lucía", "Hugo", "Sanne", "Tom"]
LAST_NAMES = ["Fernández", "Jansen", "Dubois", "Müller", "Wilson", "Bakker", "Moreau", "Schmidt"]
# Mixed states, weighted like a real book of customers.
STATUSES = (
    [Customer.Status.ACTIVE] * 6
    + [Customer.Status.INVITED] * 3
    + [
        Customer.Status.CANCELLED,
        Customer.Status.ACCESS_REVOKED,
        Customer.Status.TRANSFERRED_OUT,
    ]
)


def demo_users_write(stdout: OutputWrapper) -> None:
    """The demo users, to sign in as: printed last by `make demo` (demo_serve), once the server
    is up, so the emails the seed printed do not scroll them away."""
    stdout.write("Demo users (development sign-in: a code is printed on this console):")
    for spec in RESELLERS:
        for email, _first, _last, role in spec["members"]:
            stdout.write(f"  {email:32} {role:8} {spec['name']} ({spec['status']})")
    for member in CustomerMember.objects.select_related("user", "customer"):
        stdout.write(f"  {member.user.email:32} {'customer':8} {member.customer.organisation}")
    tiers = ResellerTier.objects.select_related("reseller", "tier").order_by("reseller__name")
    if tiers:
        stdout.write(
            "Tiers: "
            + ", ".join(f"{row.reseller.name} {row.tier.name}" for row in tiers)
            + f". {RESELLERS[0]['name']}: the Price book, Margin and Statements pages show "
            "its prices, its margins and the commission statements of the last two months."
        )
    if settings.DEBUG:
        stdout.write(
            "Staff (admin at /admin/): admin@example.com / admin "
            "(discount tiers, statements and their payouts are there too)"
        )
    if isinstance(gateway(), DemoGateway):
        stdout.write(
            "Cards: the demo gateway takes Stripe's test cards and no money moves; "
            "4242 4242 4242 4242 pays, and each card page lists the others."
        )
        for member in CustomerMember.objects.filter(
            customer__subscriptions__status=Subscription.Status.SUSPENDED
        ).select_related("user", "customer"):
            stdout.write(
                f"  {member.customer.organisation}'s card declines: its subscription is "
                f"suspended until {member.user.email} changes the card."
            )


class Command(BaseCommand):
    help = "Load demo data (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--no-users",
            action="store_false",
            dest="users",
            help="Do not list the demo users (demo_serve lists them once the server is up).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        emails = OutboundEmail.objects.count()
        with override_settings(MAILERS=SEED_MAILERS):
            self._seed()
        emails = OutboundEmail.objects.count() - emails
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
        if emails:
            self.stdout.write(f"Its {emails} emails are in the outbox, not printed here.")
        if options.get("users", True):
            demo_users_write(self.stdout)

    @transaction.atomic
    def _seed(self) -> None:
        self._catalogue()
        staff = self._staff()
        names = [spec["name"] for spec in RESELLERS]
        if not Reseller.objects.filter(name__in=names).exists():
            self._year(staff)
        else:
            self._days_since(staff)
        self._integrations()
        # The dashboard's daily snapshots, as the hourly job writes them (insights.services):
        # today's from the live figures, the days before replayed from the audit log and the
        # charges the year wrote.
        snapshots_take()

    def _year(self, staff: User) -> None:
        """The resellers, their customers and the HISTORY_DAYS since the first purchases, lived
        a day at a time (demo.history): the resellers buy, grow, shrink and cancel through the
        services, and the nightly jobs renew, invoice, charge, retry and issue statements. Then
        today's exceptions: a credit note on the newest unpaid invoice, the open team
        invitations, and the emails of the days before today marked sent then."""
        now = timezone.now()
        today = timezone.localdate()
        first = today - timedelta(days=HISTORY_DAYS)
        cards = isinstance(gateway(), DemoGateway)
        vat_rates_seed()  # migrate loaded them; a database built from the models has none
        with time_machine.travel(at(first, 8), tick=False):
            self._tiers(today)
        diary = Diary()
        rngs = {}
        for index, spec in enumerate(RESELLERS):
            rng = rngs[spec["name"]] = random.Random(index)  # noqa: S311 - demo data
            reseller = self._reseller(spec, staff, today)
            self._customers(reseller, spec["customers"], rng, now)
        self._vat_ids()
        with time_machine.travel(at(first, 9), tick=False):
            for spec in RESELLERS:
                reseller = Reseller.objects.get(name=spec["name"])
                if reseller.status != Reseller.Status.ACTIVE:
                    continue
                self._prices(reseller, spec, today)
                owner = reseller.memberships.select_related("user").get(role=Role.OWNER)
                if spec.get("customer_admin"):
                    self._customer_admin(reseller, spec["customer_admin"], owner.user)
                if cards:
                    payment_services.demo_card_save(
                        owner=reseller, number=spec["card"], actor=owner.user
                    )
                self._plan(reseller, spec, rngs[spec["name"]], diary, first, today, cards)
        self._plan_refunds(diary, staff, today, cards)
        declining = set(self._declining_customer_ids())
        self._live(diary, staff, first, today, cards=cards, declining=declining)
        self._newest_unpaid_credit(staff)
        for spec in RESELLERS:
            self._team_invitations(spec)
        # What the days before today emailed went out then.
        OutboundEmail.objects.filter(
            status=OutboundEmail.Status.PENDING, created_at__lt=at(today, 0)
        ).update(status=OutboundEmail.Status.SENT, sent_at=F("created_at"))

    def _days_since(self, staff: User) -> None:
        """Loaded before, on an earlier day (`make demo` runs no scheduler): the nightly jobs of
        every day since, through today, and staff's statement payouts on the firsts, so that
        renewals, invoices, card retries and statements are where the schedule would have
        them. The last day lived is the newest daily snapshot (each load takes today's);
        loaded again the same day, nothing is due."""
        last = DailySnapshot.objects.aggregate(day=Max("day"))["day"]
        today = timezone.localdate()
        if last is None or last >= today:
            return
        cards = isinstance(gateway(), DemoGateway)
        self._live(Diary(), staff, last + timedelta(days=1), today, cards=cards, declining=set())

    def _live(
        self,
        diary: Diary,
        staff: User,
        first: date,
        today: date,
        *,
        cards: bool,
        declining: set[int],
    ) -> None:
        """Live the days from `first` to `today` (demo.history): their nightly jobs, with what
        follows each invoice issued (_issued), the diary, and staff's statement payouts on the
        firsts among them."""
        self._plan_payouts(diary, staff, first - timedelta(days=1), today)
        issued = partial(
            self._issued, diary=diary, staff=staff, today=today, cards=cards, declining=declining
        )
        days_live(first=first, today=today, jobs=DailyJobs(issued=issued, cards=cards), diary=diary)

    def _tiers(self, today: date) -> None:
        """The discount tiers and their rates, as staff enter them in the admin: from the day
        the history starts (the clock is there), Gold's rate on one product from the first of
        next month."""
        start = timezone.localdate()
        tier_name, sku, product_percent = TIER_PRODUCT_RATE
        for name, percent in TIERS.items():
            tier, created = Tier.objects.get_or_create(name=name)
            if not created:
                continue
            TierDiscount.objects.create(tier=tier, percent=Decimal(percent), valid_from=start)
            if name == tier_name:
                TierDiscount.objects.create(
                    tier=tier,
                    product=Product.objects.get(sku=sku),
                    percent=Decimal(product_percent),
                    valid_from=next_month(today),
                )

    def _reseller(self, spec: dict[str, Any], staff: User, today: date) -> Reseller:
        """The reseller as it applied, with its members, and staff's approval: a few weeks
        before its oldest customer (an applicant: three days ago)."""
        fields = {
            k: spec[k]
            for k in (
                "name",
                "country",
                "vat_id",
                "billing_email",
                "address",
                "currency",
                "language",
                "time_zone",
                "status",
            )
        }
        applied = today - timedelta(days=spec["customers"] * CUSTOMER_EVERY_DAYS + 20)
        if spec["status"] != Reseller.Status.ACTIVE:
            applied = today - timedelta(days=3)
        with time_machine.travel(at(applied, 10), tick=False):
            reseller = Reseller.objects.create(**fields)
            # Staff put each reseller in a tier (the admin's reseller tiers).
            ResellerTier.objects.create(reseller=reseller, tier=Tier.objects.get(name=spec["tier"]))
            owner = None
            for email, first, last, role in spec["members"]:
                user = self._user(email, first, last, spec["language"])
                membership = Membership.objects.create(reseller=reseller, user=user, role=role)
                owner = owner or user
                audit_record(
                    actor=owner,
                    reseller=reseller,
                    action="membership.created",
                    obj=membership,
                    after={"user": email, "role": role},
                )
            if reseller.status == Reseller.Status.ACTIVE:
                audit_record(
                    actor=staff,
                    reseller=reseller,
                    action="reseller.approved",
                    obj=reseller,
                    before={"status": "pending"},
                    after={"status": "active"},
                )
        return reseller

    def _team_invitations(self, spec: dict[str, Any]) -> None:
        """The owner's open invitations to join the team (their links are not needed)."""
        reseller = Reseller.objects.get(name=spec["name"])
        owner = reseller.memberships.select_related("user").filter(role=Role.OWNER).first()
        for email, role in spec.get("invitations", []):
            invitation = TeamInvitation(
                reseller=reseller, email=email, role=role, invited_by=owner.user if owner else None
            )
            invitation.renew_token()
            invitation.save()

    def _vat_ids(self) -> None:
        """Some of Nimbus's customers are businesses with a VAT id: reverse charge."""
        spanish = Customer.objects.filter(country="ES", status=Customer.Status.ACTIVE)
        for customer, vat_id in zip(
            spanish.order_by("id")[1::4],
            ["ESB70000005", "ESB70000013", "ESB70000021", "ESB70000039"],
            strict=False,
        ):
            Customer.objects.filter(pk=customer.pk).update(vat_id=vat_id)

    def _prices(self, reseller: Reseller, spec: dict[str, Any], today: date) -> None:
        """The reseller's price book and its customers' special prices, set by its owner
        through the services (audited, never below cost) on the history's first day, before
        its customers buy, so that their charges are priced from them and keep their cost and
        margin. An offer that ends does so on the first of a month still ahead of `today`."""
        membership = reseller.memberships.filter(role=Role.OWNER).first()
        plans = self._plans()
        if membership is None or not plans:
            return
        start = timezone.localdate()
        for kind, rule_kind, value in spec.get("price_book", []):
            price_rule_set(
                membership=membership,
                plan=plans[kind],
                currency=reseller.currency,
                kind=rule_kind,
                markup_percent=Decimal(value) if rule_kind == PriceRule.Kind.MARKUP else None,
                price=Decimal(value) if rule_kind == PriceRule.Kind.FIXED else None,
                valid_from=start,
            )
        buyers = self._buyers(reseller)
        for place, price, months in spec.get("special_prices", []):
            ends_on = None
            if months:
                year, month = add_months(today.year, today.month, months)
                ends_on = date(year, month, 1)
            customer_price_set(
                membership=membership,
                customer=buyers[place],
                plan=plans[PLAN_TURNS[place % len(PLAN_TURNS)]],
                currency=reseller.currency,
                price=Decimal(price),
                valid_from=start,
                ends_on=ends_on,
            )

    def _plan(
        self,
        reseller: Reseller,
        spec: dict[str, Any],
        rng: random.Random,
        diary: Diary,
        first: date,
        today: date,
        cards: bool,
    ) -> None:
        """What the reseller's active customers do over the year, written in the diary: each
        buys once (a trial in the last weeks), at a working hour, soon after it accepted (those
        older than the history in its first month), bought by whoever of the team may; a
        quarter grow and some flexible ones shrink; one annual customer (`left_at_term_end`)
        cancelled at the end of its first term and one more will at the end of a term the
        renewals desk shows. The
        customers of `spec["declining_cards"]` change to a card that declines just before an
        invoice (demo cards only)."""
        plans = self._plans()
        memberships = {m.role: m for m in reseller.memberships.select_related("user")}
        owner = memberships.get(Role.OWNER)
        if owner is None or not plans:
            return
        sellers = [
            membership
            for role, membership in memberships.items()
            if role_can(role, Action.SUBSCRIPTION_BUY)
        ]
        declines = dict(spec.get("declining_cards", []))
        yesterday = today - timedelta(days=1)
        leaves, left_days_ago = spec.get("left_at_term_end", (-1, 0))
        desk_cancelled = False
        trials = 0
        for n, customer in enumerate(self._buyers(reseller)):
            kind = PLAN_TURNS[n % len(PLAN_TURNS)]
            accepted = timezone.localdate(customer.accepted_at or timezone.now())
            earliest = max(first, accepted) + timedelta(days=1)
            if n in declines:
                # Bought a year before the invoice that declines: it renews that day.
                day = months_from(today - timedelta(days=declines[n]), -12)
            elif n == leaves:
                day = months_from(today - timedelta(days=left_days_ago), -12)
            elif kind == Plan.Kind.TRIAL:
                ago = rng.randint(*TRIAL_DAYS_AGO) if trials else TRIAL_FIRST_DAYS_AGO
                day = today - timedelta(days=ago)
                trials += 1
            else:
                day = earliest + timedelta(days=rng.randint(2, 30))
            day = min(max(day, earliest), yesterday)
            licences = rng.randint(2, 10) if kind == Plan.Kind.TRIAL else rng.randint(5, 120)
            payer = Payer.CUSTOMER_CARD if n % 3 == 2 else Payer.RESELLER_CARD
            diary.on(
                day,
                rng.randint(9, 17),
                partial(
                    self._buy,
                    membership=rng.choice(sellers),
                    customer=customer,
                    plan=plans[kind],
                    licences=licences,
                    payer=payer,
                    cards=cards,
                ),
                minute=rng.randint(0, 59),
            )
            if kind == Plan.Kind.TRIAL:
                continue
            if n % 4 == 1 and (grows := day + timedelta(days=rng.randint(10, 200))) < today:
                step = partial(
                    self._licences_add,
                    membership=rng.choice(sellers),
                    customer=customer,
                    quantity=rng.randint(1, 10),
                )
                diary.on(grows, rng.randint(9, 17), step)
            if (
                kind == Plan.Kind.FLEXIBLE
                and n % 4 == 3
                and (shrinks := day + timedelta(days=rng.randint(30, 200))) < today
            ):
                step = partial(
                    self._licences_remove,
                    membership=owner,
                    customer=customer,
                    quantity=rng.randint(1, 4),
                )
                diary.on(shrinks, rng.randint(9, 17), step)
            term_end = months_from(day, 12)
            if n == leaves and term_end < today:
                step = partial(self._cancel_at_term_end, membership=owner, customer=customer)
                diary.on(term_end - timedelta(days=40), 11, step)
            if (
                kind in (Plan.Kind.ANNUAL_MONTHLY, Plan.Kind.ANNUAL_YEARLY)
                and today < term_end <= today + timedelta(days=60)
                and n not in declines
                and not desk_cancelled
            ):
                desk_cancelled = True
                step = partial(self._cancel_at_term_end, membership=owner, customer=customer)
                diary.on(max(day + timedelta(days=1), today - timedelta(days=6)), 16, step)
            if n in declines and cards:
                step = partial(self._card_declining, customer=customer)
                diary.on(today - timedelta(days=declines[n] + 2), 19, step)

    @staticmethod
    def _subscription(customer: Customer) -> Subscription:
        return Subscription.objects.get(customer=customer)

    @staticmethod
    def _buy(
        *,
        membership: Membership,
        customer: Customer,
        plan: Plan,
        licences: int,
        payer: str,
        cards: bool,
    ) -> None:
        """A purchase on the Buy page; with demo cards, a customer paying with its own card
        saved one first."""
        if cards and payer == Payer.CUSTOMER_CARD and not customer.cards.exists():
            payment_services.demo_card_save(owner=customer, number=CARD_PAYS, actor=None)
        subscription_services.subscription_buy(
            membership=membership,
            customer=customer,
            plan=plan,
            licences=licences,
            payer=payer,
            order_key=subscription_services.order_key_new(),
        )

    def _licences_add(self, *, membership: Membership, customer: Customer, quantity: int) -> None:
        subscription_services.subscription_add_licences(
            membership=membership,
            subscription=self._subscription(customer),
            quantity=quantity,
            order_key=subscription_services.order_key_new(),
        )

    def _licences_remove(
        self, *, membership: Membership, customer: Customer, quantity: int
    ) -> None:
        subscription = self._subscription(customer)
        if subscription.licences <= quantity:
            return
        subscription_services.subscription_change_licences(
            membership=membership,
            subscription=subscription,
            new_count=subscription.licences - quantity,
            expected_count=subscription.licences,
            order_key=subscription_services.order_key_new(),
        )

    def _cancel_at_term_end(self, *, membership: Membership, customer: Customer) -> None:
        subscription_services.subscription_set_renewal(
            membership=membership,
            subscription=self._subscription(customer),
            setting=Subscription.RenewalSetting.CANCEL_AT_TERM_END,
        )

    def _card_declining(self, *, customer: Customer) -> None:
        """The customer's administrator (if it has one) saves a card that will decline, and
        the subscription is paid with it from now on."""
        admin = CustomerMember.objects.filter(customer=customer).select_related("user").first()
        actor = admin.user if admin else None
        payment_services.demo_card_save(owner=customer, number=CARD_DECLINES, actor=actor)
        subscription = self._subscription(customer)
        if subscription.payer != Payer.CUSTOMER_CARD:
            subscription_services.subscription_set_payer(
                subscription=subscription, payer=Payer.CUSTOMER_CARD, actor=actor
            )

    def _issued(
        self,
        invoice: Invoice,
        *,
        diary: Diary,
        staff: User,
        today: date,
        cards: bool,
        declining: set[int],
    ) -> None:
        """What follows an invoice the run issued, as its after-commit tasks do: its PDF
        (emailed to whoever pays) and, with demo cards, the charge of its card. Without cards,
        staff record the bank transfer a few days later (still ahead for the newest), but for
        the invoices of the last month of customers whose card declines with demo cards: those
        are overdue."""
        invoice_pdf_store(invoice_id=invoice.pk)
        if cards:
            payment_services.invoice_charge(invoice_id=invoice.pk, attempt=1)
            return
        unpaid = (
            invoice.issue_date >= today - timedelta(days=30) and invoice.customer_id in declining
        )
        paid_on = invoice.issue_date + timedelta(days=2 + invoice.pk % 9)
        if not unpaid and paid_on < today:
            step = partial(self._mark_paid, invoice_id=invoice.pk, staff=staff)
            diary.on(paid_on, 11, step)

    @staticmethod
    def _mark_paid(*, invoice_id: int, staff: User) -> None:
        invoice = Invoice.objects.get(pk=invoice_id)
        if invoice.status in billing_services.UNPAID_STATUSES:
            billing_services.invoice_mark_paid(invoice=invoice, by=staff)

    def _declining_customer_ids(self) -> list[int]:
        ids = []
        for spec in RESELLERS:
            buyers = self._buyers(Reseller.objects.get(name=spec["name"]))
            ids += [buyers[place].pk for place, _ago in spec.get("declining_cards", [])]
        return ids

    def _plan_refunds(self, diary: Diary, staff: User, today: date, cards: bool) -> None:
        """Staff credit one licence on a paid invoice of Nimbus's, twice: what was paid is
        owed back. Paid by card, it goes back to the card; paid by bank transfer (the manual
        gateway), staff send the first back two days later and the second is still to do."""
        for ago, sent_back in REFUNDS:
            day = today - timedelta(days=ago)
            step = partial(self._refund, staff=staff, sent_back=sent_back, cards=cards, diary=diary)
            diary.on(day, 15, step)

    def _refund(self, *, staff: User, sent_back: bool, cards: bool, diary: Diary) -> None:
        paid = (
            Invoice.objects.filter(
                reseller__name=RESELLERS[0]["name"],
                kind=Invoice.Kind.INVOICE,
                status=Invoice.Status.PAID,
                credit_notes__isnull=True,
            )
            .order_by("-issue_date", "-pk")
            .first()
        )
        if paid is None:
            return
        billing_services.credit_note_issue(
            invoice=paid,
            reason="One licence was removed the day it was bought",
            amount=min(Decimal("5.00"), paid.subtotal),
            by=staff,
        )
        if cards:  # as its after-commit task does: back to the card at once
            for refund in Refund.objects.filter(invoice=paid, status=Refund.Status.PENDING):
                payment_services.refund_process(refund_id=refund.pk)
        elif sent_back:
            later = timezone.localdate() + timedelta(days=2)
            step = partial(self._refunds_sent, invoice_id=paid.pk, staff=staff)
            diary.on(later, 10, step)

    @staticmethod
    def _refunds_sent(*, invoice_id: int, staff: User) -> None:
        for refund in Refund.objects.filter(invoice_id=invoice_id, status=Refund.Status.PENDING):
            billing_services.refund_mark_refunded(refund=refund, by=staff)

    def _newest_unpaid_credit(self, staff: User) -> None:
        """A credit note on the newest invoice not paid yet: its balance is what is left to pay
        (with demo cards, the one whose card declined today)."""
        unpaid = (
            Invoice.objects.filter(
                kind=Invoice.Kind.INVOICE, status__in=billing_services.UNPAID_STATUSES
            )
            .order_by("-issue_date", "-pk")
            .first()
        )
        if unpaid is not None:
            billing_services.credit_note_issue(
                invoice=unpaid,
                reason="Two licences were ordered by mistake",
                amount=min(Decimal("10.00"), unpaid.subtotal),
                by=staff,
            )

    def _plan_payouts(self, diary: Diary, staff: User, after: date, today: date) -> None:
        """On the first of each month after `after`, after that night's statements, staff pay
        out the statements of the month before last: the newest statement is always open."""
        month = next_month(after)
        while month <= today:  # loaded on a 1st: that day's payout too
            diary.on(month, 10, partial(self._payouts, staff=staff))
            month = next_month(month)

    @staticmethod
    def _payouts(*, staff: User) -> None:
        today = timezone.localdate()
        older = previous_month(month_start(today))
        for statement in Statement.objects.filter(
            kind=Statement.Kind.STATEMENT, period_start__lt=older, total__gt=0
        ).order_by("period_start", "pk"):
            owed = statement.total - statement_paid_amount(statement)
            if owed > 0:
                payout_record(
                    statement=statement,
                    amount=owed,
                    paid_on=today,
                    method=Payout.Method.BANK_TRANSFER,
                    reference=f"TRF {statement.number}",
                    actor=staff,
                )

    def _catalogue(self) -> None:
        product, _ = Product.objects.get_or_create(
            sku="shared-contacts",
            defaults={
                "name": "Shared Contacts for Gmail",
                "description": "Share Google contacts with colleagues and customers.",
            },
        )
        for kind, prices in PRICES.items():
            plan, _ = Plan.objects.get_or_create(product=product, kind=kind)
            for currency, amount in zip(settings.SUPPORTED_CURRENCIES, prices, strict=True):
                PlanPrice.objects.get_or_create(
                    plan=plan, currency=currency, defaults={"monthly_price": Decimal(amount)}
                )

    def _staff(self) -> User:
        staff = User.objects.filter(email="admin@example.com").first()
        if staff is None:
            password = "admin" if settings.DEBUG else None
            staff = User.objects.create_superuser(
                email="admin@example.com", password=password, first_name="Vendor", last_name="Staff"
            )
        return staff

    def _user(self, email: str, first: str, last: str, language: str) -> User:
        user = User.objects.filter(email=email).first()
        if user is None:
            user = User.objects.create_user(
                email=email, first_name=first, last_name=last, language=language
            )
            # Demo users sign in by code in development; mark their address as verified the
            # way a Google sign-in would.
            from allauth.account.models import EmailAddress

            EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
        return user

    def _customers(self, reseller: Reseller, count: int, rng: random.Random, now: datetime) -> None:
        tld = {"ES": "es", "GB": "co.uk", "NL": "nl"}.get(str(reseller.country), "com")
        for n in range(count):
            name = ORGANISATIONS[n % len(ORGANISATIONS)]
            org = f"{name} {SUFFIXES[(n // len(ORGANISATIONS) + n) % len(SUFFIXES)]}"
            is_team = n % 9 == 8
            slug = org.lower().replace(" ", "-")
            domain = "" if is_team else f"{slug}.{tld}"
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            contact_domain = domain or "gmail.com"
            customer = Customer.objects.create(
                reseller=reseller,
                organisation=org,
                domain=domain,
                customer_type=Customer.Type.TEAM if is_team else Customer.Type.DOMAIN,
                contact_name=f"{first} {last}",
                contact_email=f"{first.lower()}.{n}@{contact_domain}".replace("í", "i").replace(
                    "ü", "u"
                ),
                education=n % 7 == 0,
                country=reseller.country,
                crm_id=f"CRM-{1000 + n}" if n % 3 == 0 else "",
                language=reseller.language,
                time_zone=reseller.time_zone,
                status=STATUSES[n % len(STATUSES)],
            )
            # Spread sign-up dates over the last year and a half, oldest first.
            age = timedelta(days=(count - n) * CUSTOMER_EVERY_DAYS, hours=rng.randint(0, 23))
            created = now - age
            accepted = created + timedelta(days=2) if customer.status != "invited" else None
            Customer.objects.filter(pk=customer.pk).update(created_at=created, accepted_at=accepted)
            invitation = CustomerInvitation(customer=customer, email=customer.contact_email)
            invitation.renew_token()  # demo links are never mailed
            if accepted:
                invitation.consumed_at = accepted
            invitation.save()
            CustomerInvitation.objects.filter(pk=invitation.pk).update(created_at=created)
            self._history(customer, created, accepted)

    def _plans(self) -> dict[str, Plan]:
        """The demo product's plans by kind (none without an active product)."""
        product = Product.objects.filter(is_active=True).order_by("id").first()
        return {plan.kind: plan for plan in product.plans.all()} if product else {}

    def _buyers(self, reseller: Reseller) -> list[Customer]:
        """The reseller's active customers, in the order they buy (PLAN_TURNS)."""
        return list(reseller.customers.filter(status=Customer.Status.ACTIVE).order_by("id"))

    def _integrations(self) -> None:
        """Issue 17: each active reseller's API keys and webhook endpoints, made through the
        services by its members (each part once: a database loaded before them gets them now).
        Made after every other service call of the seed, so that no event those calls recorded
        reaches an endpoint: the endpoints' deliveries are the history crafted here."""
        now = timezone.now()
        for spec in RESELLERS:
            reseller = Reseller.objects.filter(
                name=spec["name"], status=Reseller.Status.ACTIVE
            ).first()
            if reseller is None:
                continue
            if spec.get("api_keys") and not reseller.api_keys.exists():
                self._api_keys(reseller, spec["api_keys"], now)
            if spec.get("webhook_endpoints") and not reseller.webhook_endpoints.exists():
                self._webhook_endpoints(reseller, spec["webhook_endpoints"], now)

    def _api_keys(
        self,
        reseller: Reseller,
        keys: list[tuple[str, list[str], timedelta, timedelta | None, timedelta | None]],
        now: datetime,
    ) -> None:
        """The owner's keys, made (and revoked) through the services; each secret, shown once
        by design, is thrown away. Demo only: dated back, with the time each was last used."""
        owner = reseller.memberships.select_related("user").filter(role=Role.OWNER).first()
        if owner is None:
            return
        for name, scopes, made, used, revoked in keys:
            key, _secret = api_key_create(
                membership=owner, name=name, scopes=[str(scope) for scope in scopes]
            )
            if revoked is not None:
                api_key_revoke(membership=owner, key=key)
                self._audit_dated(key.public_id, "api_key.revoked", now - revoked)
            ApiKey.objects.filter(pk=key.pk).update(
                created_at=now - made,
                last_used_at=now - used if used is not None else None,
                revoked_at=now - revoked if revoked is not None else None,
            )
            self._audit_dated(key.public_id, "api_key.created", now - made)

    def _webhook_endpoints(
        self, reseller: Reseller, endpoints: list[dict[str, Any]], now: datetime
    ) -> None:
        """The endpoints, registered (and disabled) through the services by the members named,
        and their delivery logs, crafted on the reseller's latest events of each type (the
        outbox rows its service calls recorded). Demo only: all dated back. The reseller's other
        events are marked fanned out when they happened, before any endpoint listened: their
        on-commit tasks then make no delivery and send nothing."""
        members = {
            membership.user.email: membership
            for membership in reseller.memberships.select_related("user", "reseller")
        }
        rng = random.Random(17)  # noqa: S311 - demo data
        used: set[int] = set()
        for spec in endpoints:
            endpoint, _secret = endpoint_create(
                membership=members[spec["made_by"]],
                url=spec["url"],
                description=spec["description"],
                event_types=[str(event_type) for event_type in spec["event_types"]],
            )
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(created_at=now - spec["made"])
            self._audit_dated(endpoint.public_id, "webhook_endpoint.created", now - spec["made"])
            failing_since: datetime | None = None
            for event_type, ago, answers in spec["history"]:
                event = (
                    WebhookEvent.objects.filter(reseller=reseller, type=event_type)
                    .exclude(pk__in=used)
                    .order_by("-created_at", "-pk")
                    .first()
                )
                if event is None:
                    continue
                used.add(event.pk)
                failing_since = self._delivery_craft(
                    endpoint, event, now - ago, answers, rng, failing_since
                )
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=failing_since)
            if spec.get("disabled_by"):
                endpoint_disable(membership=members[spec["disabled_by"]], endpoint=endpoint)
                disabled = now - spec["disabled"]
                WebhookEndpoint.objects.filter(pk=endpoint.pk).update(disabled_at=disabled)
                self._audit_dated(endpoint.public_id, "webhook_endpoint.disabled", disabled)
        WebhookEvent.objects.filter(reseller=reseller, fanned_out_at__isnull=True).update(
            fanned_out_at=F("created_at")
        )

    @staticmethod
    def _delivery_craft(
        endpoint: WebhookEndpoint,
        event: WebhookEvent,
        sent: datetime,
        answers: list[int],
        rng: random.Random,
        failing_since: datetime | None,
    ) -> datetime | None:
        """Demo only: `event` as if recorded at `sent` and delivered to `endpoint` at once, one
        attempt per answer on the retry schedule of webhooks.services (a last answer without a
        2xx leaves it pending, its next retry due as that schedule says). Returns when the
        endpoint's failures began after these attempts (none: its last attempt delivered)."""
        WebhookEvent.objects.filter(pk=event.pk).update(
            created_at=sent,
            fanned_out_at=sent,
            payload={**event.payload, "timestamp": sent.isoformat()},
        )
        delivery = WebhookDelivery.objects.create(
            event=event, endpoint=endpoint, started_at=sent, next_attempt_at=sent
        )
        at, status, duration = sent, 0, 0
        for n, status in enumerate(answers):
            if n:
                at += RETRY_DELAYS[min(n, len(RETRY_DELAYS)) - 1]
            duration = rng.randint(80, 400)
            WebhookAttempt.objects.create(
                delivery=delivery,
                attempted_at=at,
                response_status=status,
                response_body=WEBHOOK_ANSWERS[status],
                duration_ms=duration,
            )
            if 200 <= status < 300:
                failing_since = None
            elif failing_since is None:
                failing_since = at
        delivered = 200 <= status < 300
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=WebhookDelivery.Status.DELIVERED
            if delivered
            else WebhookDelivery.Status.PENDING,
            attempts=len(answers),
            last_attempt_at=at,
            next_attempt_at=(
                None if delivered else at + RETRY_DELAYS[min(len(answers), len(RETRY_DELAYS)) - 1]
            ),
            response_status=status,
            response_body=WEBHOOK_ANSWERS[status],
            duration_ms=duration,
            delivered_at=at + timedelta(milliseconds=duration) if delivered else None,
        )
        return failing_since

    @staticmethod
    def _audit_dated(object_id: str, action: str, when: datetime) -> None:
        """Demo only: the audit entry a service wrote, dated when it happened."""
        AuditEvent.objects.filter(object_id=object_id, action=action).update(created_at=when)

    def _history(self, customer: Customer, created: Any, accepted: Any) -> None:
        """The audit entries the real flow would have written, dated when it happened."""
        owner = customer.reseller.memberships.filter(role=Role.OWNER).first()
        steps: list[tuple[str, Any, User | None, str | None, str]] = [
            ("customer.invited", created, owner.user if owner else None, None, "invited")
        ]
        if accepted:
            steps.append(("customer.accepted", accepted, None, "invited", "active"))
        for action, when, actor, before, after in steps:
            event = audit_record(
                actor=actor,
                reseller=customer.reseller,
                action=action,
                obj=customer,
                before={"status": before} if before else None,
                after={"status": after},
                customer_public_id=customer.public_id,
            )
            # The contact accepted before having an account here: name them by their email.
            actor_email = (
                customer.contact_email if action == "customer.accepted" else event.actor_email
            )
            type(event).objects.filter(pk=event.pk).update(created_at=when, actor_email=actor_email)

    def _customer_admin(
        self, reseller: Reseller, name: tuple[str, str], owner: User | None
    ) -> None:
        """The first active customer's contact has accepted: a customer-side demo user, with
        some history the reseller wrote on the customer's behalf."""
        customer = reseller.customers.filter(status=Customer.Status.ACTIVE).order_by("id").first()
        if customer is None:
            return
        first, last = name
        email = f"{first.lower()}@{customer.domain}"
        before = {"contact_name": customer.contact_name, "contact_email": customer.contact_email}
        Customer.objects.filter(pk=customer.pk).update(
            contact_name=f"{first} {last}", contact_email=email
        )
        user = self._user(email, first, last, customer.language)
        CustomerMember.objects.create(
            customer=customer, user=user, terms_accepted_at=customer.accepted_at or timezone.now()
        )
        audit_record(
            actor=owner,
            reseller=reseller,
            action="customer.updated",
            obj=customer,
            before=before,
            after={"contact_name": f"{first} {last}", "contact_email": email},
            customer_public_id=customer.public_id,
        )
