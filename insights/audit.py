"""The reseller's audit log (issue 18): its events filtered as the Audit log page, its CSV and
the API list them, in keyset pages, each with its object's name, its customer and its changes
as the reader reads them. It lives here, above the apps whose objects it names (customers,
subscriptions, billing), rather than in resellers, which holds the log itself
(resellers.models.AuditEvent, resellers.selectors.audit_list)."""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import batched

from django.core.exceptions import ValidationError
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext as _

from core.audit_format import Change, audit_changes_list, audit_object_labels
from core.pagination import KeysetPage, keyset_page
from customers.models import Customer
from customers.selectors import VISIBLE_STATUSES, customer_search_q
from resellers.models import AuditEvent, Reseller
from resellers.selectors import audit_list

AUDIT_PAGE_SIZE = 50
# Newest first; the primary key breaks ties among the events one request writes.
AUDIT_SORT = "-created"


def audit_log(
    *,
    reseller: Reseller,
    actor: str = "",
    customer: str = "",
    customer_search: str = "",
    action: str = "",
    date_from: date | None = None,
    date_to: date | None = None,
) -> QuerySet[AuditEvent]:
    """The reseller's audit log as the Audit log page, its CSV and the API list it: its events,
    never one naming another reseller's customer, filtered by the actor's email (in any case),
    a customer's ID (`customer`) or words of its organisation, domain or contact email or its ID
    (`customer_search`), the action ("customer.invited", or a family with a trailing dot:
    "customer.") and the days they happened on (both included, in the current time zone: the
    reader's)."""
    events = audit_list(reseller=reseller).exclude(
        Exists(
            _customers()
            .filter(public_id=OuterRef("customer_public_id"))
            .exclude(reseller_id=reseller.pk)
        )
    )
    if actor:
        events = events.filter(actor_email__iexact=actor)
    if customer:
        events = events.filter(customer_public_id=customer)
    if customer_search:
        found = _customers().filter(customer_search_q(customer_search), reseller_id=reseller.pk)
        events = events.filter(
            Q(customer_public_id=customer_search)
            | Q(customer_public_id__in=found.values("public_id"))
        )
    if action.endswith("."):
        events = events.filter(action__startswith=action)
    elif action:
        events = events.filter(action=action)
    if date_from:
        events = events.filter(created_at__gte=_day_start(date_from))
    if date_to:
        events = events.filter(created_at__lt=_day_start(date_to + timedelta(days=1)))
    return events


def _day_start(day: date) -> datetime:
    """Midnight at the start of `day` in the current time zone."""
    return timezone.make_aware(datetime.combine(day, time.min))


def _customers() -> QuerySet[Customer]:
    return Customer.objects.all()


def audit_period_check(*, date_from: date | None, date_to: date | None) -> None:
    """A ValidationError on `date_to` when the range ends before it starts (the page's form and
    the API say it alike)."""
    if date_from and date_to and date_from > date_to:
        # As the Invoices page's filter form says it.
        raise ValidationError({"date_to": _("The end of the range is before its start.")})


def audit_actor_emails(*, reseller: Reseller) -> list[str]:
    """Everyone who appears in the reseller's audit log, by email (lower case, sorted): the
    Audit log page's choice of actor."""
    emails = (
        AuditEvent.objects.filter(reseller_id=reseller.pk)
        .exclude(actor_email="")
        .annotate(_email=Lower("actor_email"))
        .values_list("_email", flat=True)
        .distinct()
        .order_by("_email")
    )
    return list(emails)


def audit_page(*, events: QuerySet[AuditEvent], cursor: str = "") -> KeysetPage:
    """One page of `events` (from audit_log), newest first, with their reseller (what an
    amount's currency reads): one query at any depth."""
    return keyset_page(
        events.select_related("reseller"),
        keys=[F("created_at"), F("id")],
        descending=True,
        cursor=cursor,
        size=AUDIT_PAGE_SIZE,
        sort=AUDIT_SORT,
    )


@dataclass(frozen=True)
class AuditRow:
    """An audit event as the Audit log page and its CSV show it."""

    event: AuditEvent
    # The object as it reads now (core.audit_format.audit_object_labels).
    object_label: str
    # The customer's organisation while the customer is the reseller's ("" otherwise), and
    # whether its page opens (a customer that left is shown as a record, without a link).
    customer_organisation: str
    customer_linked: bool
    changes: list[Change]


def audit_rows(*, reseller: Reseller, events: Sequence[AuditEvent]) -> list[AuditRow]:
    """The events with their objects' names, their customers and their changes as the reader
    reads them: one query per kind of object and one for the customers, not one per row."""
    customer_ids = {event.customer_public_id for event in events if event.customer_public_id}
    customers = (
        {
            public_id: (organisation, status in VISIBLE_STATUSES)
            for public_id, organisation, status in _customers()
            .filter(reseller_id=reseller.pk, public_id__in=customer_ids)
            .values_list("public_id", "organisation", "status")
        }
        if customer_ids
        else {}
    )
    labels = audit_object_labels(events)
    changes = audit_changes_list(events)
    return [
        AuditRow(
            event=event,
            object_label=label,
            customer_organisation=customers.get(event.customer_public_id, ("", False))[0],
            customer_linked=customers.get(event.customer_public_id, ("", False))[1],
            changes=event_changes,
        )
        for event, label, event_changes in zip(events, labels, changes, strict=True)
    ]


# The CSV's columns, a contract with the spreadsheets and scripts that read the file (add at the
# end, never rename), as the Invoices export's are.
AUDIT_CSV_COLUMNS: tuple[str, ...] = (
    "time",  # ISO 8601 with the reader's UTC offset
    "actor",  # the email of whoever acted; "System" (in the reader's language) for the portal
    "via",  # the name of the API key that made the change; empty on the pages
    "action",  # in words, in the reader's language
    "action_code",  # as the API names it: customer.invited
    "object_type",  # app.model
    "object",  # the object's name as it reads now
    "customer_id",  # the customer's public id, empty for an event about no customer
    "organisation",  # the customer's organisation while it is the reseller's customer
    "ip",
    "changes",  # "Label: before → after; …" in the reader's language
)
# Rows read and named at a time for the CSV: one query for the events and one per kind of
# object and for the customers per batch, however long the log.
AUDIT_CSV_BATCH = 500


def audit_export_rows(*, reseller: Reseller, events: QuerySet[AuditEvent]) -> Iterator[list[str]]:
    """The CSV's data rows for `events` (from audit_log), newest first, in AUDIT_CSV_COLUMNS
    order: times in ISO 8601 with the current time zone's offset, changes as
    "Label: before → after; …" as the page shows them."""
    ordered = events.select_related("reseller").order_by("-created_at", "-id")
    for batch in batched(ordered.iterator(chunk_size=AUDIT_CSV_BATCH), AUDIT_CSV_BATCH):
        for row in audit_rows(reseller=reseller, events=batch):
            event = row.event
            yield [
                timezone.localtime(event.created_at).isoformat(),
                event.actor_email or str(_("System")),
                event.via,
                event.action_label,
                event.action,
                event.object_type,
                row.object_label,
                event.customer_public_id,
                row.customer_organisation,
                event.ip or "",
                "; ".join(
                    f"{change.label}: {change.before or '—'} → {change.after or '—'}"
                    for change in row.changes
                ),
            ]
