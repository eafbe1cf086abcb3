"""Webhooks: the outbox (events recorded in the transaction of the change), the endpoints a
reseller registers, replays, and the delivery of one attempt.

Delivery, at least once. `event_record` writes the event in the caller's transaction and queues
its sending on commit; then `events_fan_out` makes one pending delivery per enabled endpoint
that listens to its type (the on-commit task, or the minute job for events whose task was
lost). A delivery is claimed
with SELECT ... FOR UPDATE SKIP LOCKED and pushed a lease ahead before it is sent, outside any
transaction: two workers (the on-commit task and the minute job) never send it at once, and a
worker killed mid-send leaves it due again when the lease ends. A 2xx answer delivers it; any
other outcome is retried after 5 s, 5 min, 30 min, 2 h, 5 h, then every 10 h, the last attempt
three days after the first. An endpoint whose deliveries have all failed for three days is
disabled, and its reseller's owners and admins are emailed once.
"""

import json
import logging
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cryptography.fernet import InvalidToken
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.db.models import Exists, Model, OuterRef, QuerySet, Value
from django.db.models.functions import Concat
from django.utils import timezone
from django.utils.translation import gettext as _

from core.emails import email_queue
from core.queue import task_enqueue_on_commit
from resellers.models import Membership, Reseller
from resellers.roles import Action, require
from resellers.selectors import membership_managers
from resellers.services import audit_record
from webhooks import transport
from webhooks.models import (
    EventType,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from webhooks.payloads import customer_data, payload_data

if TYPE_CHECKING:
    from billing.models import Invoice

logger = logging.getLogger(__name__)

# After the n-th failed attempt of a series, wait RETRY_DELAYS[n - 1] (the last one repeats).
RETRY_DELAYS = [
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
]
RETRY_FOR = timedelta(days=3)
# A claimed delivery is due again after this if its sender vanished: well above an attempt's
# longest time (connect and read timeouts) so that two senders never overlap.
CLAIM_LEASE = timedelta(minutes=2)
ENDPOINTS_PER_RESELLER = 20
DELIVERIES_PER_RUN = 100

Status = WebhookDelivery.Status


# The outbox


def event_record(
    *,
    reseller: Reseller,
    type: str,
    data: dict[str, Any],
    dedupe_key: str | None = None,
) -> WebhookEvent:
    """Write the event in the caller's transaction (one INSERT, the outbox row) and queue its
    sending on commit: the task makes a delivery per enabled endpoint of `reseller` listening
    to `type` and sends them (and the minute job does whatever that queueing lost)."""
    if type not in EventType.values:
        raise ValueError(f"Unknown webhook event type: {type}")
    now = timezone.now()
    event = WebhookEvent.objects.create(
        reseller=reseller,
        type=type,
        payload={"type": type, "timestamp": now.isoformat(), "data": data},
        dedupe_key=dedupe_key,
    )
    from webhooks.tasks import webhook_event_send

    task_enqueue_on_commit(webhook_event_send, event.pk)
    return event


def events_fan_out(*, now: datetime, event_id: int | None = None) -> int:
    """Make the deliveries of the events not fanned out yet (or of that one): one per enabled
    endpoint of the event's reseller listening to its type. Locked with SKIP LOCKED, so two
    workers share the events; a delivery made twice is made once (unique event and endpoint).
    Returns how many events it fanned out."""
    with transaction.atomic():
        pending = WebhookEvent.objects.select_for_update(skip_locked=True).filter(
            fanned_out_at__isnull=True
        )
        if event_id is not None:
            pending = pending.filter(pk=event_id)
        events = list(pending.order_by("created_at", "pk")[:DELIVERIES_PER_RUN])
        if not events:
            return 0
        endpoints: dict[int, list[WebhookEndpoint]] = {}
        for endpoint in WebhookEndpoint.objects.filter(
            reseller_id__in={event.reseller_id for event in events}, disabled_at__isnull=True
        ):
            endpoints.setdefault(endpoint.reseller_id, []).append(endpoint)
        WebhookDelivery.objects.bulk_create(
            [
                WebhookDelivery(event=event, endpoint=endpoint, started_at=now, next_attempt_at=now)
                for event in events
                for endpoint in endpoints.get(event.reseller_id, [])
                if event.type in endpoint.event_types
            ],
            ignore_conflicts=True,
        )
        WebhookEvent.objects.filter(pk__in=[event.pk for event in events]).update(fanned_out_at=now)
    return len(events)


def event_announced(type: str, obj: Model) -> None:
    """core.events listener: the announced change becomes an event of the object's reseller (a
    transfer also of the reseller the customer left)."""
    reseller, data = payload_data(obj)
    if type == EventType.CUSTOMER_TRANSFERRED:
        previous = getattr(obj, "previous", None)
        data = {**data, "direction": "in"}
        if previous is not None:
            event_record(
                reseller=previous.reseller,
                type=type,
                data={**customer_data(previous), "direction": "out"},
            )
    if reseller is not None:
        event_record(reseller=reseller, type=type, data=data)


def _send_on_commit(delivery_ids: Iterable[int]) -> None:
    from webhooks.tasks import webhook_delivery_send

    for delivery_id in delivery_ids:
        task_enqueue_on_commit(webhook_delivery_send, delivery_id)


def invoices_newly_overdue(*, today: date) -> "QuerySet[Invoice]":
    """The invoices past their due date and unpaid (billing's own rule) that became overdue in
    the last week (not the whole past on the first run) and were not announced yet; those of a
    reseller (none after its customer revoked its access: Customer.reseller_serving)."""
    from billing.models import Invoice
    from billing.selectors import invoices_overdue_q

    announced = WebhookEvent.objects.filter(
        dedupe_key=Concat(Value("invoice.overdue:"), OuterRef("public_id"))
    )
    return Invoice.objects.filter(
        invoices_overdue_q(today=today),
        due_date__gte=today - timedelta(days=7),
        reseller__isnull=False,
    ).filter(~Exists(announced))


def invoices_overdue_announce(*, today: date) -> int:
    """invoice.overdue, once per invoice (invoices_newly_overdue). Returns how many events it
    recorded."""
    overdue = (
        invoices_newly_overdue(today=today)
        .select_related("customer", "reseller", "corrects")
        .order_by("due_date", "pk")
    )
    recorded = 0
    for invoice in overdue:
        reseller, data = payload_data(invoice)
        assert reseller is not None  # invoices_newly_overdue: a reseller's
        try:
            with transaction.atomic():
                event_record(
                    reseller=reseller,
                    type=EventType.INVOICE_OVERDUE,
                    data=data,
                    dedupe_key=f"invoice.overdue:{invoice.public_id}",
                )
        except IntegrityError:
            continue  # announced meanwhile by a parallel run
        recorded += 1
    return recorded


# Endpoints


def _manageable(membership: Membership) -> None:
    require(membership.role, Action.WEBHOOKS_MANAGE)


def _audit(
    membership: Membership,
    endpoint: WebhookEndpoint,
    action: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    audit_record(
        actor=membership.user,
        reseller=membership.reseller,
        action=action,
        obj=endpoint,
        before=before,
        after=after,
    )


def endpoint_url_check(url: str) -> str:
    """An https URL (http only to a loopback host, in development) whose host is not a private
    or reserved address (checked again at each delivery: webhooks.transport)."""
    url = url.strip()
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        raise ValidationError({"url": _("Enter a full https URL.")}) from None
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.username or parts.password:
        raise ValidationError({"url": _("The URL cannot contain a user name or password.")})
    if parts.scheme == "http" and not (
        transport.private_targets_allowed() and transport.host_is_loopback(host)
    ):
        raise ValidationError({"url": _("The URL must start with https://.")})
    if not transport.private_targets_allowed():
        try:
            transport.target_resolve(url)
        except transport.TargetUnresolvable:
            pass  # a name unknown today may exist tomorrow: checked again at each delivery
        except transport.TargetRefused as refused:
            raise ValidationError({"url": str(refused)}) from None
    return url


def _event_types_check(event_types: Iterable[str]) -> list[str]:
    chosen = sorted(set(event_types))
    if not chosen:
        raise ValidationError({"event_types": _("Choose at least one event type.")})
    unknown = set(chosen) - set(EventType.values)
    if unknown:
        raise ValidationError(
            {"event_types": _("Unknown event type: %(type)s.") % {"type": sorted(unknown)[0]}}
        )
    return chosen


@transaction.atomic
def endpoint_create(
    *, membership: Membership, url: str, event_types: Iterable[str], description: str = ""
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; returns it and its secret, which is shown this once."""
    _manageable(membership)
    reseller = Reseller.objects.select_for_update().get(pk=membership.reseller_id)
    # Locked: two pages saving at once cannot both pass the limit.
    if WebhookEndpoint.objects.filter(reseller=reseller).count() >= ENDPOINTS_PER_RESELLER:
        raise ValidationError(
            _("A reseller can have at most %(count)d webhook endpoints.")
            % {"count": ENDPOINTS_PER_RESELLER}
        )
    secret = transport.secret_new()
    endpoint = WebhookEndpoint(
        reseller=reseller,
        url=endpoint_url_check(url),
        description=description.strip(),
        event_types=_event_types_check(event_types),
        secret_sealed=transport.secret_seal(secret),
        created_by=membership,
    )
    endpoint.full_clean()
    endpoint.save()
    _audit(
        membership,
        endpoint,
        "webhook_endpoint.created",
        after={"url": endpoint.url, "event_types": endpoint.event_types},
    )
    return endpoint, secret


def _endpoint_lock(membership: Membership, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    _manageable(membership)
    if endpoint.reseller_id != membership.reseller_id:
        raise PermissionDenied
    return WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)


@transaction.atomic
def endpoint_update(
    *,
    membership: Membership,
    endpoint: WebhookEndpoint,
    event_types: Iterable[str],
    description: str | None = None,
) -> WebhookEndpoint:
    endpoint = _endpoint_lock(membership, endpoint)
    before = {"event_types": endpoint.event_types, "description": endpoint.description}
    endpoint.event_types = _event_types_check(event_types)
    if description is not None:
        endpoint.description = description.strip()
    endpoint.full_clean()
    endpoint.save(update_fields=["event_types", "description"])
    after = {"event_types": endpoint.event_types, "description": endpoint.description}
    if after != before:
        _audit(membership, endpoint, "webhook_endpoint.updated", before, after)
    return endpoint


@transaction.atomic
def endpoint_disable(*, membership: Membership, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    endpoint = _endpoint_lock(membership, endpoint)
    if endpoint.disabled_at is None:
        endpoint.disabled_at = timezone.now()
        endpoint.disabled_reason = WebhookEndpoint.DisabledReason.BY_MEMBER
        endpoint.save(update_fields=["disabled_at", "disabled_reason"])
        _deliveries_give_up(endpoint, error=_("The endpoint was disabled."))
        _audit(membership, endpoint, "webhook_endpoint.disabled")
    return endpoint


@transaction.atomic
def endpoint_enable(*, membership: Membership, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """Enable again; the events missed meanwhile are sent by a replay of their time range."""
    endpoint = _endpoint_lock(membership, endpoint)
    was_disabled = endpoint.disabled_at is not None
    endpoint.disabled_at = None
    endpoint.disabled_reason = ""
    endpoint.failing_since = None
    endpoint.save(update_fields=["disabled_at", "disabled_reason", "failing_since"])
    if was_disabled:
        _audit(membership, endpoint, "webhook_endpoint.enabled")
    return endpoint


@transaction.atomic
def endpoint_delete(*, membership: Membership, endpoint: WebhookEndpoint) -> None:
    endpoint = _endpoint_lock(membership, endpoint)
    _audit(membership, endpoint, "webhook_endpoint.deleted", before={"url": endpoint.url})
    endpoint.delete()


def _deliveries_give_up(endpoint: WebhookEndpoint, *, error: str) -> int:
    return WebhookDelivery.objects.filter(endpoint=endpoint, status=Status.PENDING).update(
        status=Status.FAILED, next_attempt_at=None, error=error[:500]
    )


# Replays: the same event (same webhook-id, so receivers dedupe), signed anew, to one endpoint.


def _replay(endpoint: WebhookEndpoint, events: Iterable[WebhookEvent]) -> int:
    now = timezone.now()
    replayed = []
    for event in events:
        delivery, _created = WebhookDelivery.objects.select_for_update().get_or_create(
            event=event, endpoint=endpoint, defaults={"started_at": now, "next_attempt_at": now}
        )
        delivery.status = Status.PENDING
        delivery.attempts = 0
        delivery.started_at = now
        delivery.next_attempt_at = now
        delivery.save(update_fields=["status", "attempts", "started_at", "next_attempt_at"])
        replayed.append(delivery.pk)
    _send_on_commit(replayed)
    return len(replayed)


def _replayable(endpoint: WebhookEndpoint) -> None:
    if endpoint.disabled_at is not None:
        raise ValidationError(_("Enable the endpoint before replaying events to it."))


@transaction.atomic
def event_replay(
    *, membership: Membership, endpoint: WebhookEndpoint, event: WebhookEvent
) -> WebhookDelivery:
    """Send one event to the endpoint again (even one delivered, or of a type it no longer
    listens to: the member asked for this one)."""
    endpoint = _endpoint_lock(membership, endpoint)
    _replayable(endpoint)
    if event.reseller_id != endpoint.reseller_id:
        raise PermissionDenied
    _replay(endpoint, [event])
    _audit(membership, endpoint, "webhook_endpoint.replayed", after={"event": event.public_id})
    return WebhookDelivery.objects.get(event=event, endpoint=endpoint)


REPLAY_RANGE_MAX = timedelta(days=31)
REPLAY_EVENTS_MAX = 10_000


@transaction.atomic
def events_replay_range(
    *, membership: Membership, endpoint: WebhookEndpoint, start: datetime, end: datetime
) -> int:
    """Send again every event of the reseller between `start` (included) and `end` (excluded)
    that the endpoint listens to; returns how many."""
    endpoint = _endpoint_lock(membership, endpoint)
    _replayable(endpoint)
    if end <= start:
        raise ValidationError(_("The end of the range must be after its start."))
    if end - start > REPLAY_RANGE_MAX:
        raise ValidationError(_("Replay at most 31 days at a time."))
    events = WebhookEvent.objects.filter(
        reseller_id=endpoint.reseller_id,
        type__in=endpoint.event_types,
        created_at__gte=start,
        created_at__lt=end,
    ).order_by("created_at", "pk")[:REPLAY_EVENTS_MAX]
    count = _replay(endpoint, events)
    _audit(
        membership,
        endpoint,
        "webhook_endpoint.replayed",
        after={"from": start.isoformat(), "to": end.isoformat(), "events": count},
    )
    return count


# Delivery


def deliveries_claim(
    *, now: datetime, delivery_id: int | None = None, event_id: int | None = None
) -> list[int]:
    """Claim the due deliveries (or that one, or that event's, if due): locked with SKIP
    LOCKED, so two workers claim different rows, and pushed a lease ahead, so neither sends
    what the other holds."""
    with transaction.atomic():
        due = WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",)).filter(
            status=Status.PENDING,
            next_attempt_at__lte=now,
            endpoint__disabled_at__isnull=True,
        )
        if delivery_id is not None:
            due = due.filter(pk=delivery_id)
        if event_id is not None:
            due = due.filter(event_id=event_id)
        due = due.order_by("next_attempt_at", "pk")
        ids = list(due.values_list("pk", flat=True)[:DELIVERIES_PER_RUN])
        if ids:
            WebhookDelivery.objects.filter(pk__in=ids).update(next_attempt_at=now + CLAIM_LEASE)
    return ids


def delivery_attempt(*, delivery_id: int) -> str:
    """Send a claimed delivery once and record the outcome; returns its status."""
    delivery = (
        WebhookDelivery.objects.select_related("event", "endpoint").filter(pk=delivery_id).first()
    )
    if delivery is None:
        return "deleted"  # its endpoint was deleted since it was claimed
    event, endpoint = delivery.event, delivery.endpoint
    body = json.dumps(event.payload, separators=(",", ":"), ensure_ascii=False)
    attempted_at = timezone.now()
    try:
        secret = transport.secret_open(endpoint.secret_sealed)
    except InvalidToken:
        # SECRET_KEY changed without its old value in SECRET_KEY_FALLBACKS: recorded as a
        # failed attempt (staff see it), not retried every lease as an error would be.
        answer = transport.Answer(
            status=None,
            body="",
            error=_("The endpoint's secret cannot be read with the current SECRET_KEY."),
            duration_ms=0,
        )
    else:
        headers = transport.signed_headers(
            secret=secret, event_id=event.public_id, timestamp=attempted_at, body=body
        )
        answer = transport.post(url=endpoint.url, body=body, headers=headers)
    return _attempt_record(delivery_id, attempted_at=attempted_at, answer=answer)


def _next_attempt(delivery: WebhookDelivery, *, now: datetime) -> datetime | None:
    """When to try again after the delivery's latest failure (None: its three days are over);
    the last try falls on the third day itself."""
    deadline = delivery.started_at + RETRY_FOR
    if now >= deadline:
        return None
    delay = RETRY_DELAYS[min(delivery.attempts, len(RETRY_DELAYS)) - 1]
    return min(now + delay, deadline)


@transaction.atomic
def _attempt_record(delivery_id: int, *, attempted_at: datetime, answer: transport.Answer) -> str:
    now = timezone.now()
    delivery = WebhookDelivery.objects.select_for_update().filter(pk=delivery_id).first()
    if delivery is None:
        return "deleted"  # its endpoint was deleted while it was being sent
    WebhookAttempt.objects.create(
        delivery=delivery,
        attempted_at=attempted_at,
        response_status=answer.status,
        response_body=answer.body,
        error=answer.error,
        duration_ms=answer.duration_ms,
    )
    delivery.attempts += 1
    delivery.last_attempt_at = attempted_at
    delivery.response_status = answer.status
    delivery.response_body = answer.body
    delivery.error = answer.error
    delivery.duration_ms = answer.duration_ms
    endpoints = WebhookEndpoint.objects.filter(pk=delivery.endpoint_id)
    if answer.delivered:
        delivery.status = Status.DELIVERED
        delivery.delivered_at = now
        delivery.next_attempt_at = None
        endpoints.filter(failing_since__isnull=False).update(failing_since=None)
    else:
        delivery.next_attempt_at = _next_attempt(delivery, now=now)
        if delivery.next_attempt_at is None:
            delivery.status = Status.FAILED
        endpoints.filter(failing_since__isnull=True).update(failing_since=attempted_at)
    delivery.save()
    if not answer.delivered:
        endpoint = endpoints.get()
        if endpoint.failing_since is not None and endpoint.failing_since <= now - RETRY_FOR:
            endpoint_disable_failing(endpoint=endpoint, now=now)
    return delivery.status


def endpoint_disable_failing(*, endpoint: WebhookEndpoint, now: datetime) -> bool:
    """Disable an endpoint that has failed for three days and email its reseller's owners and
    admins, once: only the call that disables it sends (a conditional UPDATE)."""
    disabled = WebhookEndpoint.objects.filter(pk=endpoint.pk, disabled_at__isnull=True).update(
        disabled_at=now, disabled_reason=WebhookEndpoint.DisabledReason.FAILING
    )
    if not disabled:
        return False
    _deliveries_give_up(
        endpoint, error=_("The endpoint was disabled after three days of failures.")
    )
    reseller = endpoint.reseller
    for member in membership_managers(reseller_id=reseller.pk):
        email_queue(
            to=member.user.email,
            template="webhook_endpoint_disabled",
            context={
                "reseller_name": reseller.name,
                "endpoint_url": endpoint.url,
                "failing_since": endpoint.failing_since,
                "portal_url": settings.PORTAL_URL,
            },
            language=member.user.language,
        )
    audit_record(
        actor=None,
        reseller=reseller,
        action="webhook_endpoint.disabled",
        obj=endpoint,
        after={"reason": WebhookEndpoint.DisabledReason.FAILING},
    )
    logger.warning("Webhook endpoint %s disabled after three days of failures", endpoint.public_id)
    return True
