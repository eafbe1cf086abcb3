"""Reads. A reseller reaches subscriptions only through its own customers; another reseller's
subscription is the same 404 as a missing one."""

from dataclasses import dataclass, field
from datetime import date, timedelta

from django.db import connection
from django.db.models import F, Prefetch, Q, QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.models import Customer
from customers.selectors import VISIBLE_STATUSES
from resellers.models import Reseller
from subscriptions.models import (
    Charge,
    LicenceChange,
    Order,
    Plan,
    PlanPrice,
    Subscription,
    plan_change_timing,
)


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
