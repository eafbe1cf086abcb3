from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from resellers import services
from resellers.models import AuditEvent, Membership, Reseller, TeamInvitation


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]
    readonly_fields = ["public_id", "created_at"]


@admin.register(Reseller)
class ResellerAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "country",
        "vat_id",
        "billing_email",
        "currency",
        "status",
        "created_at",
    ]
    list_filter = ["status", "currency", "country"]
    search_fields = ["name", "billing_email", "vat_id", "public_id"]
    readonly_fields = ["public_id", "status", "created_at", "status_changed_at"]
    inlines = [MembershipInline]
    actions = ["approve", "suspend"]

    @admin.action(description=_("Approve (or reactivate) the selected resellers"))
    def approve(self, request: HttpRequest, queryset: QuerySet[Reseller]) -> None:
        for reseller in queryset:
            services.reseller_approve(reseller=reseller, by=request.user)  # type: ignore[arg-type]
        count = queryset.count()
        self.message_user(
            request,
            ngettext("%d reseller approved.", "%d resellers approved.", count) % count,
            messages.SUCCESS,
        )

    @admin.action(description=_("Suspend the selected resellers"))
    def suspend(self, request: HttpRequest, queryset: QuerySet[Reseller]) -> None:
        for reseller in queryset:
            services.reseller_suspend(reseller=reseller, by=request.user)  # type: ignore[arg-type]
        count = queryset.count()
        self.message_user(
            request,
            ngettext("%d reseller suspended.", "%d resellers suspended.", count) % count,
            messages.SUCCESS,
        )


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "reseller", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__email", "reseller__name"]
    list_select_related = ["user", "reseller"]
    raw_id_fields = ["user", "reseller"]
    readonly_fields = ["public_id", "created_at"]


@admin.register(TeamInvitation)
class TeamInvitationAdmin(admin.ModelAdmin):
    list_display = [
        "email",
        "reseller",
        "role",
        "created_at",
        "expires_at",
        "consumed_at",
        "withdrawn_at",
    ]
    list_filter = ["role"]
    search_fields = ["email", "reseller__name"]
    list_select_related = ["reseller"]
    # Never show or edit the token digest.
    exclude = ["token_hash"]
    readonly_fields = [
        "public_id",
        "reseller",
        "email",
        "role",
        "language",
        "invited_by",
        "accepted_by",
        "created_at",
        "expires_at",
        "consumed_at",
        "withdrawn_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "actor_email", "reseller", "action", "object_repr", "ip"]
    list_filter = ["action", "object_type"]
    search_fields = [
        "actor_email",
        "object_repr",
        "object_id",
        "customer_public_id",
        "reseller__name",
    ]
    list_select_related = ["reseller"]
    date_hierarchy = "created_at"
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in AuditEvent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
