from django.contrib import admin

from subscriptions.models import Plan, PlanPrice, Product


class PlanInline(admin.TabularInline):
    model = Plan
    extra = 0
    show_change_link = True


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["name", "sku", "is_active"]
    search_fields = ["name", "sku"]
    inlines = [PlanInline]


class PlanPriceInline(admin.TabularInline):
    model = PlanPrice
    extra = 0


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ["product", "kind", "is_active"]
    list_filter = ["kind", "is_active", "product"]
    inlines = [PlanPriceInline]
