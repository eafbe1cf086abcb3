from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from core.audit_format import audit_changes
from resellers import services
from resellers.forms import ResellerSettingsForm
from resellers.models import AuditEvent, Membership, Reseller, TeamInvitation


class MembershipInline(admin.TabularInline):
    """The team, for reading: its owners change roles and members in the portal (the services
    keep a team from losing its last owner and audit each change)."""

    model = Membership
    extra = 0
    can_delete = False
    fields = readonly_fields = ("user", "role", "created_at")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Reseller)
class ResellerAdmin(admin.ModelAdmin):
    """Staff correct a reseller's profile with the owner's own form and service (audited with
    the staff user) and approve or suspend it with the actions. Resellers are created by their
    application (the partner page), never added or deleted here."""

    form = ResellerSettingsForm
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

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Reseller, form: Any, change: bool) -> None:
        services.reseller_update_profile_by_staff(
            reseller=obj,
            by=request.user,  # type: ignore[arg-type]
            **{
                name: form.cleaned_data[name]
                for name in form.changed_data
                if name in services.PROFILE_FIELDS
            },
        )

    @admin.action(
        description=_("Approve (or reactivate) the selected resellers"), permissions=["change"]
    )
    def approve(self, request: HttpRequest, queryset: QuerySet[Reseller]) -> None:
        for reseller in queryset:
            services.reseller_approve(reseller=reseller, by=request.user)  # type: ignore[arg-type]
        count = queryset.count()
        self.message_user(
            request,
            ngettext("%d reseller approved.", "%d resellers approved.", count) % count,
            messages.SUCCESS,
        )

    @admin.action(description=_("Suspend the selected resellers"), permissions=["change"])
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
    """For reading, as the inline on the reseller: team changes go through the team's services."""

    list_display = ["user", "reseller", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__email", "reseller__name"]
    list_select_related = ["user", "reseller"]
    readonly_fields = ["public_id", "reseller", "user", "role", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


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

    # Withdrawing is the team's service (it audits); a deleted row would leave no trace.
    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
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
        # The changes as the portal shows them, then the raw record.
        return [*(f.name for f in AuditEvent._meta.fields), "changes"]

    @admin.display(description=_("Changes"))
    def changes(self, obj: AuditEvent) -> str:
        rows = ((c.label, c.before or "—", c.after or "—") for c in audit_changes(obj))
        return format_html_join("", "<div>{}: {} → {}</div>", rows)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
