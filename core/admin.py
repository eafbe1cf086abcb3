from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from core.models import OutboundEmail, User


@admin.register(User)
class PortalUserAdmin(UserAdmin):
    ordering = ["email"]
    list_display = ["email", "first_name", "last_name", "is_staff", "is_active", "last_login"]
    search_fields = ["email", "first_name", "last_name"]
    readonly_fields = ["public_id", "last_login", "date_joined"]
    fieldsets = (
        (None, {"fields": ("email", "password", "public_id")}),
        ("Personal", {"fields": ("first_name", "last_name", "language")}),
        (
            "Permissions",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("email", "is_staff", "password1", "password2")}),
    )

    # Passwords are for staff only: resellers and customers sign in with Google (or the
    # development sign-in). A user saved here without staff status keeps no usable password,
    # and staff cannot set one for such a user (core.adapters refuses it at sign-in too).
    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        if not obj.is_staff:
            obj.set_unusable_password()
        super().save_model(request, obj, form, change)

    def user_change_password(
        self, request: HttpRequest, id: str, form_url: str = ""
    ) -> HttpResponse:
        user = self.get_object(request, unquote(id))
        if user is not None and not user.is_staff:
            raise PermissionDenied
        return super().user_change_password(request, id, form_url)


@admin.register(OutboundEmail)
class OutboundEmailAdmin(admin.ModelAdmin):
    list_display = ["created_at", "to", "template", "language", "status", "attempts"]
    list_filter = ["status", "template", "language"]
    search_fields = ["to"]
    # The sealed one-time links are never shown, not even encrypted.
    exclude = ["secrets_sealed"]
    readonly_fields = [f.name for f in OutboundEmail._meta.fields if f.name != "secrets_sealed"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
