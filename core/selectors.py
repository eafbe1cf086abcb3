"""Reads of core for the vendor's staff: the pending work behind the admin's "Background work"
box (templates/admin/index.html).

Each app registers the lines of its work next to its sweep (core.sweeper.backlog_register, in
its AppConfig.ready): core the emails, billing the PDFs and the card charges. A line counts rows
with the same conditions its sweep queues them by, so what staff see is what "Queue again now"
queues, and links to the admin's list of exactly those rows.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Min, Q, QuerySet
from django.urls import reverse
from django.utils.translation import gettext, ngettext

from core import sweeper
from core.models import OutboundEmail


@dataclass(frozen=True)
class BacklogLine:
    key: str  # stable, for the page's markup and tests: "emails-overdue"
    label: str  # translated
    count: int
    oldest: datetime | None  # when the oldest of those rows was created (or issued)
    url: str  # the admin's list of exactly those rows


def work_backlog(*, now: datetime) -> list[BacklogLine]:
    """Every app's lines of pending work, in the order the apps registered them."""
    return [
        line
        for reader, _queued_text in sweeper.backlog_registered().values()
        for line in reader(now=now)
    ]


def backlog_line(
    *, key: str, label: str, rows: QuerySet[Any], oldest_field: str, url: str
) -> BacklogLine:
    """The count of `rows` and the oldest of their `oldest_field`, in one query."""
    found = rows.aggregate(count=Count("pk"), oldest=Min(oldest_field))
    return BacklogLine(key=key, label=label, count=found["count"], oldest=found["oldest"], url=url)


# Emails


def emails_overdue_q(*, now: datetime) -> Q:
    """Emails the sweeper queues again (core.tasks.emails_sweep): pending and not sent within
    WORK_REQUEUE_AFTER of being due and queued, or claimed by a worker that did not finish
    within EMAIL_SEND_LEASE."""
    lost = Q(status=OutboundEmail.Status.PENDING) & sweeper.overdue_q(
        due_field="next_attempt_at", queued_field="queued_at", now=now
    )
    return lost | emails_stuck_q(now=now)


def emails_stuck_q(*, now: datetime) -> Q:
    """Emails a worker claimed for sending and did not finish within EMAIL_SEND_LEASE: it died
    mid-send (the sweeper hands them back)."""
    lease_over = now - timedelta(seconds=settings.EMAIL_SEND_LEASE)
    return Q(status=OutboundEmail.Status.SENDING, claimed_at__lt=lease_over)


def emails_pending_q(*, now: datetime) -> Q:
    """Emails not sent yet and on their way: queued, backing off after a temporary failure,
    or being sent (not overdue)."""
    unsent = Q(status__in=(OutboundEmail.Status.PENDING, OutboundEmail.Status.SENDING))
    return unsent & ~emails_overdue_q(now=now)


def emails_failed_q() -> Q:
    """Emails given up (a permanent SMTP failure, or the last retry): for staff to look at."""
    return Q(status=OutboundEmail.Status.FAILED)


def emails_backlog(*, now: datetime) -> list[BacklogLine]:
    """The emails' lines: pending, overdue, failed; each links to the admin's Delivery filter."""
    changelist = reverse("admin:core_outboundemail_changelist")
    lines = [
        ("pending", gettext("Emails waiting to be sent"), emails_pending_q(now=now)),
        ("overdue", gettext("Emails overdue (their task was lost)"), emails_overdue_q(now=now)),
        ("failed", gettext("Emails failed"), emails_failed_q()),
    ]
    return [
        backlog_line(
            key=f"emails-{delivery}",
            label=label,
            rows=OutboundEmail.objects.filter(rows),
            oldest_field="created_at",
            url=f"{changelist}?delivery={delivery}",
        )
        for delivery, label, rows in lines
    ]


def emails_queued_text(count: int) -> str:
    """How many emails a sweep queued, e.g. "3 emails" (the admin's message)."""
    return ngettext("%(count)d email", "%(count)d emails", count) % {"count": count}
