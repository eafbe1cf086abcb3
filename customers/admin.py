from django.contrib import admin

from customers.models import Customer, CustomerInvitation


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["organisation", "domain", "contact_email", "reseller", "status", "created_at"]
    list_filter = ["status", "customer_type"]
    search_fields = ["organisation", "domain", "contact_email"]
    list_select_related = ["reseller"]
    raw_id_fields = ["reseller"]
    readonly_fields = ["public_id", "created_at"]
    show_full_result_count = False


class CustomerInvitationInline(admin.TabularInline):
    model = CustomerInvitation
    extra = 0
    can_delete = False
    # The token digest is never shown.
    fields = (
        "email",
        "created_at",
        "opened_at",
        "expires_at",
        "consumed_at",
        "withdrawn_at",
        "accepted_by",
    )
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


CustomerAdmin.inlines = [CustomerInvitationInline]
