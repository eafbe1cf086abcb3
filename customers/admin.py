from django.contrib import admin

from customers.models import Customer


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["organisation", "domain", "contact_email", "reseller", "status", "created_at"]
    list_filter = ["status", "customer_type"]
    search_fields = ["organisation", "domain", "contact_email"]
    list_select_related = ["reseller"]
    raw_id_fields = ["reseller"]
    readonly_fields = ["public_id", "created_at"]
    show_full_result_count = False
