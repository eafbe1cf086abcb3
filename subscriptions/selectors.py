"""Reads. A reseller reaches subscriptions only through its own customers; another reseller's
subscription is the same 404 as a missing one."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Expression, F, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce, Lower
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.pagination import KeysetPage, keyset_page
from customers.models import Customer
from customers.selectors import VISIBLE_STATUSES, customer_search_normalise, customer_search_q
from resellers.models import Reseller
from subscriptions import metrics
from subscriptions.models import (
    Charge,
    CustomerPrice,
    LicenceChange,
    Order,
    Payer,
    Plan,
    PlanPrice,
    PriceRule,
    Product,
    Subscription,
    plan_change_timing,
)
from subscriptions.pricing import HUNDRED, discount_rows, price_from_rule


def plan_list_on_sale() -> QuerySet[Plan]:
    return (
        Plan.objects.filter(is_active=True, product__is_active=True)
        .select_related("product")
        .prefetch_related("prices")
    )


def plan_list_for_purchase(*, currency: str) -> QuerySet[Plan]:
    """Plans on sale with their price in `currency` (trials are free and need none), each
    with `price_list` holding that one price."""
    return (
        plan_list_on_sale()
        .filter(Q(prices__currency=currency) | Q(kind=Plan.Kind.TRIAL))
        .distinct()
        .prefetch_related(
            Prefetch(
                "prices",
                queryset=PlanPrice.objects.filter(currency=currency),
                to_attr="price_list",
            )
        )
        .order_by("product__name", "kind")
    )


def plan_get_on_sale(*, public_id: str) -> Plan:
    try:
        return plan_list_on_sale().get(public_id=public_id)
    except Plan.DoesNotExist:
        raise Http404(_("No such plan.")) from None


def _subscriptions() -> QuerySet[Subscription]:
    return Subscription.objects.select_related(
        "customer__reseller", "plan__product", "scheduled_plan"
    )


def subscription_list(*, reseller: Reseller, customer: Customer) -> QuerySet[Subscription]:
    """A customer's subscriptions as its reseller sees them, live ones first."""
    return (
        _subscriptions()
        .filter(
            customer=customer,
            customer__reseller=reseller,
            customer__status__in=VISIBLE_STATUSES,
        )
        .order_by("status", "-created_at", "-id")
    )


def subscription_get(*, reseller: Reseller, public_id: str) -> Subscription:
    try:
        return _subscriptions().get(
            public_id=public_id,
            customer__reseller=reseller,
            customer__status__in=VISIBLE_STATUSES,
        )
    except Subscription.DoesNotExist:
        raise Http404(_("No such subscription.")) from None


def subscription_list_for_customer_side(*, customer: Customer) -> QuerySet[Subscription]:
    """The customer's own read-only view; `customer` comes from the signed-in user's
    organisations."""
    return _subscriptions().filter(customer=customer).order_by("status", "-created_at", "-id")


def subscription_get_for_customer_side(*, customer: Customer, public_id: str) -> Subscription:
    try:
        return subscription_list_for_customer_side(customer=customer).get(public_id=public_id)
    except Subscription.DoesNotExist:
        raise Http404(_("No such subscription.")) from None


def subscription_ledger(*, subscription: Subscription) -> QuerySet[LicenceChange]:
    """Every licence change, newest first: who, when, before → after, amount."""
    return subscription.licence_changes.select_related("actor", "order", "plan__product").order_by(
        "-created_at", "-id"
    )


def subscription_charges(*, subscription: Subscription) -> QuerySet[Charge]:
    return subscription.charges.order_by("-created_at", "-id")


def order_get(*, reseller: Reseller, public_id: str) -> Order:
    """An order for its confirmation page."""
    try:
        return Order.objects.select_related("subscription__plan__product", "customer").get(
            public_id=public_id,
            customer__reseller=reseller,
            customer__status__in=VISIBLE_STATUSES,
        )
    except Order.DoesNotExist:
        raise Http404(_("No such order.")) from None


def subscription_plan_choices(*, subscription: Subscription) -> list[tuple[Plan, str]]:
    """The plans a subscription may change to, each with "now" or "at_term_end"."""
    if subscription.status == Subscription.Status.CANCELLED:
        return []
    plans = plan_list_on_sale().filter(product_id=subscription.product_id)
    choices = []
    for plan in plans:
        timing = plan_change_timing(subscription.plan, plan)
        if timing is not None:
            choices.append((plan, timing))
    return choices


def subscription_cancellation_date(
    *, subscription: Subscription, today: date | None = None
) -> date:
    """When cancelling now takes effect: today for flexible plans and trials, the end of the
    term for annual plans (the confirmation states it)."""
    if subscription.plan.is_annual and subscription.term_end is not None:
        return subscription.term_end
    return today or timezone.localdate()


@dataclass
class CustomerPlans:
    """What the Customers list shows of a customer's subscriptions (cancelled ones left out)."""

    licences: int = 0
    plan_kinds: list[str] = field(default_factory=list)  # each kind once, first bought first
    subscriptions: int = 0  # live ones (the Customers CSV)


def customer_plan_summaries(*, customer_ids: list[int] | set[int]) -> dict[int, CustomerPlans]:
    """Plan kinds and licence counts for a page of customers, in one query: the Customers list
    asks once for the customers it shows, not once per row. A customer without subscriptions
    gets an empty summary.

    Plain SQL on purpose: this runs on every Customers page, and building the same statement
    through the ORM cost several times the query itself (the page is held to 3x a minimal
    view, README Benchmarks). The statement is portable (SQLite and PostgreSQL) and takes the
    table names from the models."""
    summaries = {customer_id: CustomerPlans() for customer_id in customer_ids}
    if not summaries:
        return summaries
    ids = list(summaries)
    statement = (
        f"SELECT s.customer_id, p.kind, s.licences FROM {Subscription._meta.db_table} s "  # noqa: S608
        f"JOIN {Plan._meta.db_table} p ON p.id = s.plan_id "
        f"WHERE s.customer_id IN ({', '.join(['%s'] * len(ids))}) AND s.status <> %s "
        "ORDER BY s.customer_id, s.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, [*ids, Subscription.Status.CANCELLED.value])
        for customer_id, kind, licences in cursor.fetchall():
            summary = summaries[customer_id]
            summary.licences += licences
            summary.subscriptions += 1
            if kind not in summary.plan_kinds:
                summary.plan_kinds.append(kind)
    return summaries


# What the daily jobs work through: ids only, each handled in its own transaction.


def subscription_ids_due_for_renewal(*, today: date) -> list[int]:
    return list(
        Subscription.objects.filter(
            status__in=[Subscription.Status.ACTIVE, Subscription.Status.SUSPENDED],
            period_end__lte=today,
        )
        .exclude(plan__kind=Plan.Kind.TRIAL)
        .order_by("period_end", "id")
        .values_list("id", flat=True)
    )


def subscription_ids_trial_over(*, today: date) -> list[int]:
    return list(
        Subscription.objects.filter(plan__kind=Plan.Kind.TRIAL, term_end__lte=today)
        .exclude(status=Subscription.Status.CANCELLED)
        .exclude(suspension_reason=Subscription.SuspensionReason.TRIAL_ENDED)
        .order_by("term_end", "id")
        .values_list("id", flat=True)
    )


def subscription_ids_due_for_reminder(*, today: date, trial_days: int, term_days: int) -> list[int]:
    not_reminded = Q(reminder_sent_for__isnull=True) | Q(reminder_sent_for__lt=F("term_end"))
    trials = Q(
        status=Subscription.Status.TRIAL,
        plan__kind=Plan.Kind.TRIAL,
        term_end__gt=today,
        term_end__lte=today + timedelta(days=trial_days),
    )
    terms = Q(
        status=Subscription.Status.ACTIVE,
        plan__kind__in=[Plan.Kind.ANNUAL_MONTHLY, Plan.Kind.ANNUAL_YEARLY],
        term_end__gt=today,
        term_end__lte=today + timedelta(days=term_days),
    )
    return list(
        Subscription.objects.filter(not_reminded & (trials | terms))
        .order_by("term_end", "id")
        .values_list("id", flat=True)
    )


# The Price book page (issue 16): the reseller's prices for every plan and currency on sale, and
# its customers' special prices. A page of either costs a fixed number of queries, however many
# plans, currencies, entries or special prices there are: the rows are read at once and each
# price is worked out from them in Python with subscriptions.pricing's own rules (the discount:
# DiscountRows.discount; an entry's price: price_from_rule), so the page cannot differ from what
# customer_price quotes (its tests hold every figure equal).


class DiscountTable:
    """The reseller's discount and cost for any product on any day, from all its discount rows
    read once (two queries: subscriptions.pricing.discount_rows) and by pricing's one rule
    (DiscountRows.discount), which also answers discount_percent and customer_price."""

    def __init__(self, *, reseller: Reseller) -> None:
        self.rows = discount_rows(reseller_id=reseller.pk)

    def percent(self, *, product_id: int, on: date) -> Decimal:
        """The discount in % of the list price (pricing.discount_percent)."""
        return self.rows.discount(product_id=product_id, on=on).percent

    def cost(self, *, product_id: int, list_price: Decimal, on: date) -> Decimal:
        """The reseller's cost of one licence for one month on `on` (pricing.reseller_cost)."""
        return self.rows.cost(product_id=product_id, list_price=list_price, on=on)


def margin_percent(*, margin: Decimal, price: Decimal) -> Decimal | None:
    """The margin as a share of the customer's price, in % to one decimal; None for a free
    price (no share to speak of)."""
    if not price:
        return None
    return (margin * HUNDRED / price).quantize(Decimal("0.1"))


@dataclass(frozen=True)
class PriceBookChange:
    """A price book entry already entered for a later day: what customers pay from then."""

    rule: PriceRule
    customer_price: Decimal
    cost: Decimal
    margin: Decimal


@dataclass(frozen=True)
class PriceBookRow:
    """One plan in one currency as the Price book shows it on a day; per licence per month."""

    plan: Plan
    currency: str
    list_price: Decimal
    discount_percent: Decimal
    cost: Decimal
    customer_price: Decimal
    margin: Decimal
    margin_percent: Decimal | None
    rule: PriceRule | None  # the entry in force; None: the list price, nothing entered
    later: list[PriceBookChange]

    @property
    def key(self) -> str:
        """Names the row in the page (its form's field ids, its anchor)."""
        return f"{self.plan.public_id}-{self.currency}"


def price_book_rows(
    *, reseller: Reseller, on: date, discounts: DiscountTable | None = None
) -> list[PriceBookRow]:
    """Every plan on sale (trials are free: not priced) in every currency the catalogue prices
    it in, with the list price, the reseller's discount and cost, the price its customers pay
    on `on` from its price book (special prices aside) and the margin it leaves, and the
    entries already made for later days. Three queries, and the two of `discounts`."""
    discounts = discounts or DiscountTable(reseller=reseller)
    in_force = (
        PriceRule.objects.filter(
            reseller_id=reseller.pk,
            plan_id=OuterRef("plan_id"),
            currency=OuterRef("currency"),
            valid_from__lte=on,
        )
        .order_by("-valid_from", "-id")
        .values("id")[:1]
    )
    prices = list(
        PlanPrice.objects.filter(plan__is_active=True, plan__product__is_active=True)
        .exclude(plan__kind=Plan.Kind.TRIAL)
        .select_related("plan__product")
        .annotate(rule_id=Subquery(in_force))
        .order_by("plan__product__name", "plan__product_id", "plan__kind", "currency")
    )
    rule_ids = [price.rule_id for price in prices if price.rule_id is not None]
    rules: dict[int, PriceRule] = {}
    later: dict[tuple[int, str], dict[date, PriceRule]] = {}
    # The rules in force and every later one, oldest first: the latest entered of a day wins.
    for entry in PriceRule.objects.filter(
        Q(pk__in=rule_ids) | Q(reseller_id=reseller.pk, valid_from__gt=on)
    ).order_by("valid_from", "id"):
        if entry.valid_from > on:
            later.setdefault((entry.plan_id, entry.currency), {})[entry.valid_from] = entry
        else:
            rules[entry.pk] = entry
    rows = []
    for plan_price in prices:
        plan, currency, list_price = plan_price.plan, plan_price.currency, plan_price.monthly_price
        rule = rules.get(plan_price.rule_id)
        cost = discounts.cost(product_id=plan.product_id, list_price=list_price, on=on)
        price = price_from_rule(rule=rule, list_price=list_price, cost=cost)
        changes = []
        for day, later_rule in sorted(later.get((plan.pk, currency), {}).items()):
            later_cost = discounts.cost(product_id=plan.product_id, list_price=list_price, on=day)
            later_price = price_from_rule(rule=later_rule, list_price=list_price, cost=later_cost)
            changes.append(
                PriceBookChange(
                    rule=later_rule,
                    customer_price=later_price,
                    cost=later_cost,
                    margin=later_price - later_cost,
                )
            )
        rows.append(
            PriceBookRow(
                plan=plan,
                currency=currency,
                list_price=list_price,
                discount_percent=discounts.percent(product_id=plan.product_id, on=on),
                cost=cost,
                customer_price=price,
                margin=price - cost,
                margin_percent=margin_percent(margin=price - cost, price=price),
                rule=rule,
                later=changes,
            )
        )
    return rows


def price_book_plans() -> QuerySet[Plan]:
    """The plans a price can be set for: on sale and not a trial."""
    return (
        Plan.objects.filter(is_active=True, product__is_active=True)
        .exclude(kind=Plan.Kind.TRIAL)
        .select_related("product")
        .order_by("product__name", "kind")
    )


# Customers a special price can be given to: not those that left (the service refuses them),
# nor those that cancelled (they buy nothing more).
PRICEABLE_CUSTOMER_STATUSES = [Customer.Status.INVITED, Customer.Status.ACTIVE]


# At most this many customers to choose from at once; a search finds the others.
PRICE_CUSTOMER_CHOICES = 100


@dataclass(frozen=True)
class CustomerChoices:
    """Customers to choose from: (public id, organisation) by name, and whether more match."""

    choices: list[tuple[str, str]]
    more: bool


def price_customer_choices(*, reseller: Reseller, query: str = "") -> CustomerChoices:
    """The reseller's customers a special price can be given to whose organisation, domain or
    contact email contains `query` (all, without one), the first PRICE_CUSTOMER_CHOICES by
    name (one query)."""
    customers = Customer.objects.filter(
        reseller_id=reseller.pk, status__in=PRICEABLE_CUSTOMER_STATUSES
    )
    query = customer_search_normalise(query)
    if query:
        customers = customers.filter(customer_search_q(query))
    rows = list(
        customers.order_by("organisation", "id").values_list("public_id", "organisation")[
            : PRICE_CUSTOMER_CHOICES + 1
        ]
    )
    return CustomerChoices(
        choices=rows[:PRICE_CUSTOMER_CHOICES], more=len(rows) > PRICE_CUSTOMER_CHOICES
    )


def price_customer_get(*, reseller: Reseller, public_id: str) -> Customer:
    """One of those customers; another reseller's is the same 404 as a missing one (and as
    customers.selectors.customer_get's)."""
    try:
        return Customer.objects.select_related("reseller").get(
            reseller=reseller, public_id=public_id, status__in=PRICEABLE_CUSTOMER_STATUSES
        )
    except Customer.DoesNotExist:
        raise Http404(_("No such customer.")) from None


def special_price_list(*, reseller: Reseller) -> QuerySet[CustomerPrice]:
    """The reseller's customers' special prices (not those of customers that left it)."""
    return CustomerPrice.objects.filter(
        reseller=reseller,
        customer__reseller=reseller,
        customer__status__in=VISIBLE_STATUSES,
    ).select_related("customer", "plan__product")


def special_price_get(*, customer: Customer, special_price_id: int) -> CustomerPrice:
    """One special price of `customer` (found through the member's reseller)."""
    try:
        return special_price_list(reseller=customer.reseller).get(
            customer=customer, pk=special_price_id
        )
    except CustomerPrice.DoesNotExist:
        raise Http404(_("No such special price.")) from None


SPECIAL_PRICE_PAGE_SIZE = 25


def special_price_page(*, specials: QuerySet[CustomerPrice], cursor: str = "") -> KeysetPage:
    """A page of special prices, the latest first day first (one query)."""
    return keyset_page(
        specials,
        keys=[F("valid_from"), F("id")],
        descending=True,
        cursor=cursor,
        size=SPECIAL_PRICE_PAGE_SIZE,
        sort="-valid_from",
    )


@dataclass(frozen=True)
class SpecialPriceRow:
    """A special price as the Price book shows it on a day: whether it applies, and the margin
    it leaves on the day it applies (today, or its first day if it starts later; none once it
    has ended)."""

    special: CustomerPrice
    status: str  # "current", "upcoming" or "ended"
    cost: Decimal | None
    margin: Decimal | None
    margin_percent: Decimal | None


def special_price_rows(
    *, specials: list[CustomerPrice], on: date, discounts: DiscountTable
) -> list[SpecialPriceRow]:
    """Each special price with its status on `on` and its margin (one query for the list
    prices, and `discounts`)."""
    list_prices = {
        (plan_id, currency): price
        for plan_id, currency, price in PlanPrice.objects.filter(
            plan_id__in={special.plan_id for special in specials}
        ).values_list("plan_id", "currency", "monthly_price")
    }
    rows = []
    for special in specials:
        # Ended, or withdrawn before its first day (it ends on its first day).
        if special.ends_on is not None and special.ends_on <= max(on, special.valid_from):
            status = "ended"
        elif special.valid_from > on:
            status = "upcoming"
        else:
            status = "current"
        list_price = list_prices.get((special.plan_id, special.currency))
        cost = margin = None
        if status != "ended" and list_price is not None:
            cost = discounts.cost(
                product_id=special.plan.product_id,
                list_price=list_price,
                on=max(on, special.valid_from),
            )
            margin = special.price - cost
        rows.append(
            SpecialPriceRow(
                special=special,
                status=status,
                cost=cost,
                margin=margin,
                margin_percent=(
                    margin_percent(margin=margin, price=special.price)
                    if margin is not None
                    else None
                ),
            )
        )
    return rows


# The Subscriptions page (issue 18): every subscription of the reseller's current customers (as
# subscription_list and subscription_get reach them: not those of customers that left it),
# filtered, in keyset pages, and its CSV. The filters' values come from
# subscriptions.forms.SubscriptionFilterForm, which has refused anything it does not know.

SUBSCRIPTION_PAGE_SIZE = 50
# The status filter: "" (the default) is every live subscription (not cancelled); ALL_STATUSES
# includes the cancelled ones; any other value is one Subscription.Status.
ALL_STATUSES = "all"
# The plan filter: both annual kinds at once ("annual terms ending in the next 60 days").
ANNUAL_PLANS = "annual"
ANNUAL_KINDS = (Plan.Kind.ANNUAL_MONTHLY, Plan.Kind.ANNUAL_YEARLY)

# The page's sorts by the key its URLs carry ("-key": descending). Keys run in one direction
# and end with the primary key (core.pagination). "term_end" orders by the date the page's
# Next column shows: the end of the term, or of the current period for a plan without one.
SUBSCRIPTION_SORTS: dict[str, Callable[[], list[Expression | F]]] = {
    "customer": lambda: [Lower("customer__organisation"), F("id")],
    "term_end": lambda: [Coalesce("term_end", "period_end"), F("id")],
    "licences": lambda: [F("licences"), F("id")],
    "created": lambda: [F("created_at"), F("id")],
}
DEFAULT_SUBSCRIPTION_SORT = "customer"


def subscription_sort_valid(sort: str) -> str:
    """The sort asked for if it is one of SUBSCRIPTION_SORTS (optionally reversed), else the
    default: a hand-edited or outdated link shows the list rather than an error."""
    return sort if sort.removeprefix("-") in SUBSCRIPTION_SORTS else DEFAULT_SUBSCRIPTION_SORT


def _subscriptions_of_reseller(*, reseller: Reseller) -> QuerySet[Subscription]:
    return Subscription.objects.filter(
        customer__reseller_id=reseller.pk, customer__status__in=VISIBLE_STATUSES
    )


def _subscriptions_filtered(
    *,
    reseller: Reseller,
    query: str = "",
    status: str = "",
    product: str = "",
    plan_kind: str = "",
    renewal: str = "",
    currency: str = "",
    term_ends_before: date | None = None,
) -> QuerySet[Subscription]:
    subscriptions = _subscriptions_of_reseller(reseller=reseller)
    query = customer_search_normalise(query)
    if query:
        # The Customers page's own search (organisation, domain or contact email), on the
        # reseller's customers.
        subscriptions = subscriptions.filter(
            customer_id__in=Customer.objects.filter(reseller_id=reseller.pk)
            .filter(customer_search_q(query))
            .values("id")
        )
    if status == "":
        subscriptions = subscriptions.exclude(status=Subscription.Status.CANCELLED)
    elif status != ALL_STATUSES:
        subscriptions = subscriptions.filter(status=status)
    if product:
        subscriptions = subscriptions.filter(product__public_id=product)
    if plan_kind == ANNUAL_PLANS:
        subscriptions = subscriptions.filter(plan__kind__in=ANNUAL_KINDS)
    elif plan_kind:
        subscriptions = subscriptions.filter(plan__kind=plan_kind)
    if renewal:
        subscriptions = subscriptions.filter(renewal_setting=renewal)
    if currency:
        subscriptions = subscriptions.filter(currency=currency)
    if term_ends_before is not None:
        # term_end is the first day after the term: the term's last day is before the date.
        # Plans without a term (flexible) have none and are left out.
        subscriptions = subscriptions.filter(term_end__lte=term_ends_before)
    return subscriptions


def subscription_list_for_reseller(
    *, reseller: Reseller, sort: str = "", **filters: Any
) -> QuerySet[Subscription]:
    """The subscriptions of the reseller's current customers that match `filters` (the keyword
    arguments of _subscriptions_filtered), in the order of `sort` (SUBSCRIPTION_SORTS)."""
    sort = subscription_sort_valid(sort)
    keys = SUBSCRIPTION_SORTS[sort.removeprefix("-")]()
    descending = sort.startswith("-")
    return _subscriptions_filtered(reseller=reseller, **filters).order_by(
        *(key.desc() if descending else key.asc() for key in keys)
    )


def subscription_page_for_reseller(
    *, reseller: Reseller, sort: str = "", cursor: str = "", **filters: Any
) -> KeysetPage:
    """One page of subscription_list_for_reseller with each subscription's customer, plan and
    product: one query on any page (the total rides along)."""
    sort = subscription_sort_valid(sort)
    return keyset_page(
        _subscriptions_filtered(reseller=reseller, **filters).select_related(
            "customer", "plan__product", "scheduled_plan"
        ),
        keys=SUBSCRIPTION_SORTS[sort.removeprefix("-")](),
        descending=sort.startswith("-"),
        cursor=cursor,
        size=SUBSCRIPTION_PAGE_SIZE,
        sort=sort,
    )


def subscription_exists_for_reseller(*, reseller: Reseller) -> bool:
    """Whether the reseller's current customers have any subscription, cancelled ones too: what
    an empty page says depends on it."""
    return _subscriptions_of_reseller(reseller=reseller).exists()


def subscription_product_choices() -> list[tuple[str, str]]:
    """(public id, name) of every product of the catalogue, those no longer on sale too (their
    subscriptions still run), by name: the Subscriptions page's product filter."""
    return list(Product.objects.order_by("name", "id").values_list("public_id", "name"))


def subscription_mrr(subscription: Subscription) -> Decimal | None:
    """What a subscription counting in MRR brings in a month (subscriptions.metrics, the one
    definition); None for one that does not count (not active)."""
    return _mrr_or_none(subscription.status, subscription.licences, subscription.monthly_price)


def _mrr_or_none(status: str, licences: int, monthly_price: Decimal) -> Decimal | None:
    if status not in metrics.MRR_STATUSES:
        return None
    return metrics.subscription_mrr(status=status, licences=licences, monthly_price=monthly_price)


# The Subscriptions CSV: one row per subscription, in the user's language (labels, not codes,
# except the plan kind, kept as a code for formulas). Dates are ISO 8601; the current period's
# and the term's ends are their last days, as the pages show them; amounts have a dot and two
# decimals; "created" is a date and time in UTC.
SUBSCRIPTION_CSV_COLUMNS = (
    gettext_lazy("Subscription ID"),
    gettext_lazy("Customer ID"),
    gettext_lazy("Organisation"),
    gettext_lazy("Domain"),
    gettext_lazy("Product"),
    gettext_lazy("Plan"),
    # Translators: column of the subscriptions CSV holding the plan's code, e.g. annual_monthly.
    gettext_lazy("Plan kind"),
    gettext_lazy("Status"),
    gettext_lazy("Suspension reason"),
    gettext_lazy("Licences"),
    gettext_lazy("Currency"),
    gettext_lazy("Price per licence per month"),
    # Translators: monthly recurring revenue, the usual abbreviation.
    gettext_lazy("MRR"),
    gettext_lazy("Current period starts"),
    gettext_lazy("Current period ends"),
    gettext_lazy("Term ends"),
    gettext_lazy("Renewal setting"),
    gettext_lazy("Licences at renewal"),
    gettext_lazy("Paid with"),
    gettext_lazy("Created"),
)
# Rows fetched per round trip from the server-side cursor: memory stays flat however many.
SUBSCRIPTION_CSV_CHUNK_SIZE = 2000
_ONE_DAY = timedelta(days=1)


def subscription_export_rows(*, subscriptions: QuerySet[Subscription]) -> Iterator[list[str]]:
    """The CSV's data rows for `subscriptions` (from subscription_list_for_reseller), in
    SUBSCRIPTION_CSV_COLUMNS order, streamed from one query."""
    # The labels in the request's language, read now: the rows are written after the view has
    # returned, and once rather than once per row.
    labels = {
        "kind": {value: str(label) for value, label in Plan.Kind.choices},
        "status": {value: str(label) for value, label in Subscription.Status.choices},
        "reason": {value: str(label) for value, label in Subscription.SuspensionReason.choices},
        "renewal": {value: str(label) for value, label in Subscription.RenewalSetting.choices},
        "payer": {value: str(label) for value, label in Payer.choices},
    }
    rows = subscriptions.values_list(
        "public_id",
        "customer__public_id",
        "customer__organisation",
        "customer__domain",
        "product__name",
        "plan__kind",
        "status",
        "suspension_reason",
        "licences",
        "currency",
        "monthly_price",
        "period_start",
        "period_end",
        "term_end",
        "renewal_setting",
        "renewal_licences",
        "payer",
        "created_at",
    )
    return _subscription_csv_lines(rows, labels)


def _subscription_csv_lines(
    rows: QuerySet[Subscription, tuple[Any, ...]], labels: dict[str, dict[str, str]]
) -> Iterator[list[str]]:
    for (
        public_id,
        customer_id,
        organisation,
        domain,
        product,
        kind,
        status,
        reason,
        licences,
        currency,
        price,
        period_start,
        period_end,
        term_end,
        renewal,
        renewal_licences,
        payer,
        created_at,
    ) in rows.iterator(chunk_size=SUBSCRIPTION_CSV_CHUNK_SIZE):
        yield [
            public_id,
            customer_id,
            organisation,
            domain,
            product,
            labels["kind"].get(kind, kind),
            kind,
            labels["status"].get(status, status),
            labels["reason"].get(reason, reason),
            str(licences),
            currency,
            f"{price:.2f}",
            f"{mrr:.2f}" if (mrr := _mrr_or_none(status, licences, price)) is not None else "",
            period_start.isoformat(),
            (period_end - _ONE_DAY).isoformat(),
            (term_end - _ONE_DAY).isoformat() if term_end else "",
            labels["renewal"].get(renewal, renewal),
            str(renewal_licences) if renewal_licences is not None else "",
            labels["payer"].get(payer, payer),
            created_at.astimezone(UTC).replace(microsecond=0).isoformat(),
        ]
