"""The figures a daily snapshot keeps, worked out two ways that must agree:

- **live**, from the subscriptions as they are now (one GROUP BY; subscriptions.metrics'
  definitions as database expressions): today's row and the dashboard's cards;
- **replayed** from the audit log, for days nobody captured (a new deployment's history, a day
  the job did not run): every change of a subscription is audited with the state fields it
  changed (subscriptions.services.records.STATE_FIELDS; the purchase with all of them), and every
  charge keeps the cost of its period, so the state at the end of any day is the events up to
  it applied in order. tests/insights/test_snapshots.py holds the replay of today equal to the
  live figures over random histories.

A subscription counts for the reseller its latest event was recorded for (a transfer moves it),
while its customer is the reseller's: not once the customer revoked the reseller's access or
was transferred out (customers.selectors.FORMER_STATUSES; the customers' status changes are
audited too).
Days end at midnight in the portal's time zone (TIME_ZONE).
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import (
    Case,
    Count,
    DecimalField,
    IntegerField,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from customers.models import Customer
from customers.selectors import FORMER_STATUSES
from resellers.models import AuditEvent
from subscriptions.metrics import (
    MRR_STATUSES,
    counts_in_mrr,
    margin_expression,
    mrr_expression,
    subscription_margin,
    subscription_mrr,
)
from subscriptions.models import Charge, Subscription

ZERO = Decimal("0.00")
_MONEY = DecimalField(max_digits=14, decimal_places=2)
SUBSCRIPTION_OBJECT = Subscription._meta.label_lower
CUSTOMER_OBJECT = Customer._meta.label_lower
# A customer that left the reseller: its subscriptions no longer count for it.
LEFT_STATUSES = frozenset(FORMER_STATUSES)


@dataclass(frozen=True)
class Figures:
    """A reseller's recurring figures in one currency at one moment."""

    mrr: Decimal = ZERO
    margin: Decimal = ZERO
    licences: int = 0
    subscriptions: int = 0
    trials: int = 0


def day_end(day: date) -> datetime:
    """The first instant after `day`, in the portal's time zone."""
    return datetime.combine(
        day + timedelta(days=1), time.min, tzinfo=timezone.get_default_timezone()
    )


def figures_live(*, reseller_ids: Iterable[int]) -> dict[tuple[int, str], Figures]:
    """{(reseller id, currency): Figures} from the subscriptions as they are, in one query."""
    active = counts_in_mrr()
    zero = Value(ZERO, output_field=_MONEY)
    rows = (
        Subscription.objects.filter(customer__reseller_id__in=list(reseller_ids))
        .exclude(customer__status__in=LEFT_STATUSES)
        .exclude(status=Subscription.Status.CANCELLED)
        .order_by()
        .values("customer__reseller_id", "currency")
        .annotate(
            mrr=Coalesce(
                Sum(Case(When(active, then=mrr_expression()), default=zero, output_field=_MONEY)),
                zero,
            ),
            margin=Coalesce(
                Sum(
                    Case(When(active, then=margin_expression()), default=zero, output_field=_MONEY)
                ),
                zero,
            ),
            active_licences=Coalesce(
                Sum(
                    Case(
                        When(active, then="licences"),
                        default=Value(0),
                        output_field=IntegerField(),
                    )
                ),
                0,
            ),
            active_count=Count("id", filter=active),
            trial_count=Count("id", filter=Q(status=Subscription.Status.TRIAL)),
        )
    )
    return {
        (row["customer__reseller_id"], row["currency"]): Figures(
            mrr=_cents(row["mrr"]),
            margin=_cents(row["margin"]),
            licences=row["active_licences"],
            subscriptions=row["active_count"],
            trials=row["trial_count"],
        )
        for row in rows
    }


def _cents(value: Any) -> Decimal:
    return Decimal(value).quantize(Decimal("0.01"))


@dataclass
class _State:
    """One subscription's state as the replay has it."""

    currency: str
    reseller_id: int | None = None
    customer: str = ""  # the customer's public id
    status: str = ""
    licences: int = 0
    monthly_price: Decimal = ZERO
    monthly_cost: Decimal | None = None

    def contribution(self, customer_current: bool) -> tuple[Decimal, Decimal, int, int, int]:
        """What it adds to its reseller's figures: nothing once its customer left the
        reseller (revoked its access, transferred out)."""
        if not customer_current or self.reseller_id is None:
            return (ZERO, ZERO, 0, 0, 0)
        mrr = subscription_mrr(
            status=self.status, licences=self.licences, monthly_price=self.monthly_price
        )
        margin = subscription_margin(
            status=self.status,
            licences=self.licences,
            monthly_price=self.monthly_price,
            monthly_cost=self.monthly_cost,
        )
        active = self.status in MRR_STATUSES
        return (
            mrr,
            margin,
            self.licences if active else 0,
            1 if active else 0,
            1 if self.status == Subscription.Status.TRIAL else 0,
        )


def _subscription_events(reseller_ids: list[int]) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(object_type=SUBSCRIPTION_OBJECT, reseller_id__in=reseller_ids)


def _subscriptions_of(reseller_ids: list[int]) -> QuerySet[AuditEvent, Any]:
    """The public ids of every subscription audited for these resellers, ever (a subscription
    transferred away still counts for them until its transfer)."""
    return _subscription_events(reseller_ids).order_by().values("object_id").distinct()


def _customers_of(reseller_ids: list[int]) -> QuerySet[AuditEvent, Any]:
    """The public ids of the customers of those subscriptions."""
    return _subscription_events(reseller_ids).order_by().values("customer_public_id").distinct()


# The three streams a replay merges, in this order within one instant.
_SUBSCRIPTION, _CUSTOMER, _CHARGE = 0, 1, 2


def _changes(reseller_ids: list[int], until: datetime) -> list[tuple[datetime, int, Any]]:
    """The subscriptions' and their customers' audited changes and the subscriptions' charges,
    up to `until`, oldest first: (time, stream, row)."""
    ever = _subscriptions_of(reseller_ids)
    subscription_events = (
        AuditEvent.objects.filter(
            object_type=SUBSCRIPTION_OBJECT, object_id__in=ever, created_at__lt=until
        )
        .order_by("created_at", "id")
        .values_list("created_at", "reseller_id", "object_id", "customer_public_id", "after")
    )
    customer_events = (
        AuditEvent.objects.filter(
            object_type=CUSTOMER_OBJECT,
            object_id__in=_customers_of(reseller_ids),
            created_at__lt=until,
        )
        .order_by("created_at", "id")
        .values_list("created_at", "object_id", "after")
    )
    charges = (
        Charge.objects.filter(subscription__public_id__in=ever, created_at__lt=until)
        .order_by("created_at", "id")
        .values_list("created_at", "subscription__public_id", "monthly_cost")
    )
    return sorted(
        [(row[0], _SUBSCRIPTION, row) for row in subscription_events.iterator(chunk_size=5000)]
        + [(row[0], _CUSTOMER, row) for row in customer_events.iterator(chunk_size=5000)]
        + [(row[0], _CHARGE, row) for row in charges.iterator(chunk_size=5000)],
        key=lambda item: (item[0], item[1]),
    )


class _Replay:
    """The running figures of a replay: each subscription's state, each customer's status, and
    per (reseller, currency) the sums of mrr, margin, licences, subscriptions and trials."""

    def __init__(self, currencies: dict[str, str]) -> None:
        self.currencies = currencies
        self.states: dict[str, _State] = {}
        self.customer_status: dict[str, str] = {}
        self.subscriptions_of: dict[str, set[str]] = defaultdict(set)
        self.totals: dict[tuple[int, str], list[Any]] = defaultdict(lambda: [ZERO, ZERO, 0, 0, 0])

    def _current(self, customer: str) -> bool:
        return self.customer_status.get(customer, "") not in LEFT_STATUSES

    def _count(self, state: _State, sign: int) -> None:
        if state.reseller_id is None:
            return
        sums = self.totals[(state.reseller_id, state.currency)]
        contribution: tuple[Any, ...] = state.contribution(self._current(state.customer))
        for index, value in enumerate(contribution):
            sums[index] += sign * value

    def subscription_changed(
        self, public_id: str, reseller_id: int | None, customer: str, after: dict[str, Any]
    ) -> None:
        state = self.states.get(public_id)
        if state is None:
            currency = self.currencies.get(public_id)
            if currency is None:
                return
            state = self.states[public_id] = _State(currency=currency)
        self._count(state, -1)
        state.reseller_id = reseller_id
        if customer:
            self.subscriptions_of[state.customer].discard(public_id)
            state.customer = customer
            self.subscriptions_of[customer].add(public_id)
        if "status" in after:
            state.status = after["status"]
        if after.get("licences") is not None:
            state.licences = int(after["licences"])
        if after.get("monthly_price") is not None:
            state.monthly_price = Decimal(str(after["monthly_price"]))
        self._count(state, +1)

    def customer_changed(self, public_id: str, after: dict[str, Any]) -> None:
        if "status" not in after:
            return
        states = [self.states[key] for key in self.subscriptions_of[public_id]]
        for state in states:
            self._count(state, -1)
        self.customer_status[public_id] = after["status"]
        for state in states:
            self._count(state, +1)

    def charged(self, public_id: str, monthly_cost: Decimal | None) -> None:
        state = self.states.get(public_id)
        if state is None:
            return
        self._count(state, -1)
        state.monthly_cost = monthly_cost
        self._count(state, +1)

    def figures(self, reseller_ids: set[int]) -> dict[tuple[int, str], Figures]:
        return {
            key: Figures(
                mrr=_cents(values[0]),
                margin=_cents(values[1]),
                licences=values[2],
                subscriptions=values[3],
                trials=values[4],
            )
            for key, values in self.totals.items()
            if key[0] in reseller_ids and any(values)
        }


def figures_replayed(
    *, reseller_ids: Iterable[int], days: Iterable[date]
) -> dict[date, dict[tuple[int, str], Figures]]:
    """{day: {(reseller id, currency): Figures}} at the end of each of `days`, replayed from
    the audit log and the charges."""
    reseller_ids = list(reseller_ids)
    wanted = sorted(set(days))
    if not wanted:
        return {}
    replay = _Replay(
        dict(
            Subscription.objects.filter(public_id__in=_subscriptions_of(reseller_ids)).values_list(
                "public_id", "currency"
            )
        )
    )
    result: dict[date, dict[tuple[int, str], Figures]] = {}
    pending = iter(wanted)
    next_day = next(pending, None)
    for moment, stream, row in [*_changes(reseller_ids, day_end(wanted[-1])), (None, 0, None)]:
        while next_day is not None and (moment is None or day_end(next_day) <= moment):
            result[next_day] = replay.figures(set(reseller_ids))
            next_day = next(pending, None)
        if row is None:
            break
        if stream == _SUBSCRIPTION:
            _created, reseller_id, public_id, customer, after = row
            replay.subscription_changed(public_id, reseller_id, customer, after or {})
        elif stream == _CUSTOMER:
            _created, public_id, after = row
            replay.customer_changed(public_id, after or {})
        else:
            _created, public_id, monthly_cost = row
            replay.charged(public_id, monthly_cost)
    return result
