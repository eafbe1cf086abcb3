"""Reads. Everything tenant-owned is looked up through the reseller it belongs to."""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import batched
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.db.models.functions import Lower
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from core.audit_format import Change, audit_changes_list, audit_object_labels
from core.pagination import KeysetPage, keyset_page
from core.tokens import token_digest
from resellers.models import AuditEvent, Membership, Reseller, TeamInvitation
from resellers.roles import Role

AUDIT_PAGE_SIZE = 50
# Newest first; the primary key breaks ties among the events one request writes.
AUDIT_SORT = "-created"


def memberships_for_user(*, user) -> list[Membership]:
    return list(
        Membership.objects.filter(user=user).select_related("reseller").order_by("reseller__name")
    )


def membership_landing(*, memberships: list[Membership]) -> Membership | None:
    """Where a user without a chosen reseller (just signed in) lands: the reseller last used,
    else the one where the user's role is highest; one open for business before a pending one."""
    rank = {role: index for index, role in enumerate(Role.values)}  # owner first
    return min(
        memberships,
        key=lambda m: (
            not m.reseller.is_active,
            -(m.last_used_at.timestamp() if m.last_used_at else float("-inf")),
            rank.get(m.role, len(rank)),
            m.reseller.name,
        ),
        default=None,
    )


def membership_list(*, reseller: Reseller) -> QuerySet[Membership]:
    return reseller.memberships.select_related("user").order_by("user__email")


def membership_managers(*, reseller_id: int) -> QuerySet[Membership]:
    """The reseller's owners and admins, with their users, by email: those emailed about what
    needs the team's attention (a customer that left, a failing webhook endpoint, renewals)."""
    return (
        Membership.objects.filter(reseller_id=reseller_id, role__in=[Role.OWNER, Role.ADMIN])
        .select_related("user")
        .order_by("user__email")
    )


def membership_get(*, reseller: Reseller, public_id: str) -> Membership:
    try:
        return membership_list(reseller=reseller).get(public_id=public_id)
    except Membership.DoesNotExist:
        raise Http404(_("No such team member.")) from None


def team_invitation_list_open(*, reseller: Reseller) -> QuerySet[TeamInvitation]:
    return reseller.invitations.filter(
        consumed_at__isnull=True, withdrawn_at__isnull=True
    ).select_related("invited_by")


def team_invitation_get(*, reseller: Reseller, public_id: str) -> TeamInvitation:
    try:
        return reseller.invitations.get(public_id=public_id)
    except TeamInvitation.DoesNotExist:
        raise Http404(_("No such invitation.")) from None


def team_invitation_by_token(*, raw_token: str) -> TeamInvitation | None:
    """The invitation a link's token belongs to, whatever its state; None if it never existed."""
    return (
        TeamInvitation.objects.select_related("reseller", "invited_by")
        .filter(token_hash=token_digest(raw_token))
        .first()
    )


def team_invitations_open_for_user(*, user) -> QuerySet[TeamInvitation]:
    """Valid invitations to any of the user's verified addresses, for the Become a partner page."""
    from allauth.account.models import EmailAddress
    from django.utils import timezone

    emails = EmailAddress.objects.filter(user=user, verified=True).values_list("email", flat=True)
    matches_an_email = Q(pk__in=[])
    for email in emails:
        matches_an_email |= Q(email__iexact=email)
    return (
        TeamInvitation.objects.filter(
            matches_an_email,
            consumed_at__isnull=True,
            withdrawn_at__isnull=True,
            expires_at__gt=timezone.now(),
        )
        .select_related("reseller", "invited_by")
        .order_by("-created_at")
    )


def owner_count(*, reseller: Reseller) -> int:
    return reseller.memberships.filter(role="owner").count()


def audit_list(*, reseller: Reseller) -> QuerySet[AuditEvent]:
    # Without the actor's row: each event keeps the actor's email, which is what pages show.
    return AuditEvent.objects.filter(reseller_id=reseller.pk)


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
        from customers.selectors import customer_search_q

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


def _customers() -> QuerySet[Any]:
    # The customers app sits above this one in the import order (which is why an audit event
    # keeps its customer's public id rather than a key); the audit log is the one reader here
    # that names customers, so it imports them when it runs.
    from customers.models import Customer

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
    from customers.selectors import VISIBLE_STATUSES

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
