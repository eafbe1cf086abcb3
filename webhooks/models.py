"""Webhooks (issue 17): a reseller's endpoints, the events (the transactional outbox, written in
the transaction of the change they report) and one delivery per event and endpoint, with a log
of its attempts."""

import secrets

from django.db import models
from django.utils.translation import gettext_lazy as _

from core.ids import PublicIdField
from resellers.models import Membership, Reseller


class EventType(models.TextChoices):
    CUSTOMER_INVITED = "customer.invited", _("Customer invited")
    CUSTOMER_ACCEPTED = "customer.accepted", _("Customer accepted the invitation")
    CUSTOMER_REVOKED = "customer.revoked", _("Customer revoked the reseller's access")
    CUSTOMER_TRANSFERRED = "customer.transferred", _("Customer transferred")
    SUBSCRIPTION_CREATED = "subscription.created", _("Subscription created")
    SUBSCRIPTION_LICENCES_CHANGED = "subscription.licences_changed", _("Licences changed")
    SUBSCRIPTION_PLAN_CHANGED = "subscription.plan_changed", _("Plan changed")
    SUBSCRIPTION_SUSPENDED = "subscription.suspended", _("Subscription suspended")
    SUBSCRIPTION_REACTIVATED = "subscription.reactivated", _("Subscription reactivated")
    SUBSCRIPTION_CANCELLED = "subscription.cancelled", _("Subscription cancelled")
    SUBSCRIPTION_RENEWED = "subscription.renewed", _("Subscription renewed")
    INVOICE_ISSUED = "invoice.issued", _("Invoice issued")
    INVOICE_PAID = "invoice.paid", _("Invoice paid")
    INVOICE_OVERDUE = "invoice.overdue", _("Invoice overdue")
    INVOICE_CREDITED = "invoice.credited", _("Invoice credited")
    PAYMENT_FAILED = "payment.failed", _("Payment failed")


def event_id_new() -> str:
    """The event's `webhook-id`: the same on every delivery and replay, so receivers dedupe."""
    return "evt_" + secrets.token_urlsafe(18)


class WebhookEndpoint(models.Model):
    """Where a reseller wants its events: an https URL, the types it listens to, and the secret
    its deliveries are signed with (Standard Webhooks)."""

    class DisabledReason(models.TextChoices):
        BY_MEMBER = "member", _("by a team member")
        FAILING = "failing", _("after three days of failed deliveries")

    public_id = PublicIdField()
    reseller = models.ForeignKey(
        Reseller,
        on_delete=models.CASCADE,
        related_name="webhook_endpoints",
        verbose_name=_("reseller"),
    )
    url = models.URLField(_("URL"), max_length=2000)
    description = models.CharField(_("description"), max_length=200, blank=True)
    event_types = models.JSONField(_("event types"), default=list)
    # "whsec_" + base64 of 24 random bytes, encrypted with a key derived from SECRET_KEY
    # (webhooks.signing): signing needs it in clear, so it cannot be hashed; shown once.
    secret_sealed = models.TextField(_("secret (encrypted)"), editable=False)
    created_by = models.ForeignKey(
        Membership,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    disabled_at = models.DateTimeField(_("disabled"), null=True, blank=True)
    disabled_reason = models.CharField(
        _("why disabled"), max_length=10, choices=DisabledReason.choices, blank=True
    )
    # Since when every delivery to it has failed (none delivered since); cleared by a success.
    failing_since = models.DateTimeField(_("failing since"), null=True, blank=True)

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["reseller", "created_at"]

    def __str__(self) -> str:
        return self.url

    @property
    def is_enabled(self) -> bool:
        return self.disabled_at is None


class WebhookEvent(models.Model):
    """One change to report: written in the transaction that made it (the outbox)."""

    public_id = models.CharField(
        _("event id"), max_length=32, unique=True, default=event_id_new, editable=False
    )
    reseller = models.ForeignKey(
        Reseller,
        on_delete=models.CASCADE,
        related_name="webhook_events",
        verbose_name=_("reseller"),
    )
    type = models.CharField(_("type"), max_length=40, choices=EventType.choices)
    payload = models.JSONField(_("payload"))
    # For events that a job finds rather than a service makes (an invoice overdue): once each.
    dedupe_key = models.CharField(
        _("dedupe key"), max_length=80, unique=True, null=True, blank=True, editable=False
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    # When its deliveries were made (one per endpoint listening then): after the commit, so
    # that the change's own transaction writes this one row and reads nothing.
    fanned_out_at = models.DateTimeField(_("deliveries made"), null=True, blank=True)

    class Meta:
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["reseller", "created_at"], name="webhook_event_reseller"),
            models.Index(
                fields=["created_at"],
                condition=models.Q(fanned_out_at__isnull=True),
                name="webhook_event_to_fan_out",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.public_id}"


class WebhookDelivery(models.Model):
    """An event on its way to one endpoint: pending until a 2xx answer (delivered) or until
    its three days of retries run out (failed)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed")

    event = models.ForeignKey(
        WebhookEvent, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("event")
    )
    endpoint = models.ForeignKey(
        WebhookEndpoint,
        on_delete=models.CASCADE,
        related_name="deliveries",
        verbose_name=_("endpoint"),
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    # Attempts since the delivery was created or replayed (the backoff step), and when that
    # series began: retries stop three days after it.
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    started_at = models.DateTimeField(_("started"))
    # When it is due (pending); a claimed delivery is pushed a lease ahead while it is sent.
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    last_attempt_at = models.DateTimeField(_("last attempt"), null=True, blank=True)
    response_status = models.PositiveSmallIntegerField(_("response code"), null=True, blank=True)
    response_body = models.TextField(_("response (first 1 KB)"), blank=True)
    error = models.CharField(_("error"), max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-started_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], name="webhook_delivery_once"),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="webhook_delivery_due"),
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.endpoint}"


class WebhookAttempt(models.Model):
    """One POST of a delivery, for the delivery log: when, the answer's code and first 1 KB, or
    the error."""

    delivery = models.ForeignKey(
        WebhookDelivery,
        on_delete=models.CASCADE,
        related_name="attempt_log",
        verbose_name=_("delivery"),
    )
    attempted_at = models.DateTimeField(_("time"))
    response_status = models.PositiveSmallIntegerField(_("response code"), null=True, blank=True)
    response_body = models.TextField(_("response (first 1 KB)"), blank=True)
    error = models.CharField(_("error"), max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"))

    class Meta:
        verbose_name = _("webhook attempt")
        verbose_name_plural = _("webhook attempts")
        ordering = ["-attempted_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.delivery} @ {self.attempted_at:%Y-%m-%d %H:%M:%S}"
