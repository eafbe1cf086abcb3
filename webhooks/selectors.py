"""Reads of a reseller's webhooks, always through its tenant: another reseller's endpoint or
event is the same 404, with the same text, as a missing one."""

from datetime import datetime, timedelta

from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils.translation import gettext as _

from resellers.models import Reseller
from webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent

DELIVERY_LOG_LENGTH = 50


def endpoint_list(*, reseller: Reseller) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(reseller=reseller).order_by("created_at", "pk")


def endpoint_get(*, reseller: Reseller, public_id: str) -> WebhookEndpoint:
    try:
        return endpoint_list(reseller=reseller).get(public_id=public_id)
    except WebhookEndpoint.DoesNotExist:
        raise Http404(_("No such webhook endpoint.")) from None


def event_get(*, reseller: Reseller, public_id: str) -> WebhookEvent:
    try:
        return WebhookEvent.objects.get(reseller=reseller, public_id=public_id)
    except WebhookEvent.DoesNotExist:
        raise Http404(_("No such webhook event.")) from None


def delivery_log(*, endpoint: WebhookEndpoint, status: str = "") -> list[WebhookDelivery]:
    """The endpoint's latest deliveries (newest first), with their events and attempts."""
    deliveries = endpoint.deliveries.select_related("event").prefetch_related("attempt_log")
    if status in WebhookDelivery.Status.values:
        deliveries = deliveries.filter(status=status)
    return list(deliveries.order_by("-started_at", "-pk")[:DELIVERY_LOG_LENGTH])


def deliveries_due_exist(*, now: datetime) -> bool:
    """Whether the minute job has work: events without their deliveries, or deliveries due."""
    return (
        WebhookEvent.objects.filter(fanned_out_at__isnull=True).exists()
        or WebhookDelivery.objects.filter(
            status=WebhookDelivery.Status.PENDING,
            next_attempt_at__lte=now,
            endpoint__disabled_at__isnull=True,
        ).exists()
    )


# For the vendor's staff (the admin's Vendor overview and the deliveries' Problem filter)

FAILED_RECENTLY = timedelta(days=7)


def deliveries_retrying_q() -> Q:
    """Deliveries that failed at least once and wait for their next try."""
    return Q(status=WebhookDelivery.Status.PENDING, attempts__gt=0)


def deliveries_failed_recently_q(*, now: datetime) -> Q:
    """Deliveries given up within FAILED_RECENTLY: their three days of retries ran out (by
    their last attempt), or their endpoint was disabled before any attempt (by their start)."""
    since = now - FAILED_RECENTLY
    return Q(status=WebhookDelivery.Status.FAILED) & (
        Q(last_attempt_at__gte=since) | Q(last_attempt_at__isnull=True, started_at__gte=since)
    )
