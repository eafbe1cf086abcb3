"""Staff see webhooks read-only: the endpoints (never their secret), the events, and the
deliveries with their attempts, failed ones first to hand (filter by status). Resellers manage
their endpoints and replay events themselves, through webhooks.services."""

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy

from customers.admin import ResellerFilter
from webhooks import selectors
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class DeliveryResellerFilter(ResellerFilter):
    """Deliveries to the endpoints of one reseller, named by its ID."""

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if not self.value:
            return queryset
        if self.reseller is None:
            return queryset.none()
        return queryset.filter(endpoint__reseller=self.reseller)


class DeliveryProblemFilter(admin.SimpleListFilter):
    """The rows behind the Vendor overview's webhook counts (webhooks.selectors)."""

    title = gettext_lazy("problem")
    parameter_name = "problem"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [
            ("retrying", gettext_lazy("Failed, waiting to be tried again")),
            ("failed", gettext_lazy("Given up in the last 7 days")),
        ]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]
    ) -> QuerySet[WebhookDelivery]:
        if self.value() == "retrying":
            return queryset.filter(selectors.deliveries_retrying_q())
        if self.value() == "failed":
            return queryset.filter(selectors.deliveries_failed_recently_q(now=timezone.now()))
        return queryset


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnlyAdmin):
    list_display = [
        "url",
        "reseller",
        "created_at",
        "disabled_at",
        "disabled_reason",
        "failing_since",
    ]
    list_filter = [ResellerFilter, "disabled_reason"]
    search_fields = ["url", "reseller__name", "public_id"]
    list_select_related = ["reseller"]
    # The signing secret is never shown, not even encrypted.
    exclude = ["secret_sealed"]


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "type", "reseller", "public_id"]
    list_filter = ["type"]
    search_fields = ["public_id", "reseller__name"]
    list_select_related = ["reseller"]
    date_hierarchy = "created_at"


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    fields = readonly_fields = (
        "attempted_at",
        "response_status",
        "duration_ms",
        "error",
        "response_body",
    )
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = [
        "started_at",
        "event",
        "endpoint",
        "status",
        "attempts",
        "response_status",
        "last_attempt_at",
        "next_attempt_at",
    ]
    list_filter = [DeliveryResellerFilter, DeliveryProblemFilter, "status"]
    search_fields = ["event__public_id", "endpoint__url", "endpoint__reseller__name"]
    list_select_related = ["event", "endpoint"]
    inlines = [WebhookAttemptInline]
