"""Staff's side of reseller economics (issue 16), imported by subscriptions.admin: discount
tiers and their rates, each reseller's tier and discount overrides, and read-only lists of the
resellers' price books and special prices.

Discounts are the vendor's terms, kept by hand like the catalogue's prices (Django's admin
history records who changed what). A discount row takes effect from a day and is never
rewritten or removed, so a reseller's cost on a past day stays what it was: a new rate is a
new row from today or a later day.
"""

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils import timezone

from subscriptions.pricing_models import (
    CustomerPrice,
    PriceRule,
    ResellerDiscount,
    ResellerTier,
    Tier,
    TierDiscount,
)
from subscriptions.services.pricing import PAST_DAY_MESSAGE


class DiscountForm(forms.ModelForm):
    """A new discount row: from today or a later day."""

    def clean_valid_from(self):
        valid_from = self.cleaned_data.get("valid_from")
        if valid_from is not None and valid_from < timezone.localdate():
            raise forms.ValidationError(PAST_DAY_MESSAGE, code="past")
        return valid_from


class TierDiscountInline(admin.TabularInline):
    """A tier's rates: added, then kept as they are (a new rate is a new row)."""

    model = TierDiscount
    form = DiscountForm
    fields = ["product", "percent", "valid_from"]
    autocomplete_fields = ["product"]
    extra = 0
    can_delete = False

    def has_change_permission(self, request: HttpRequest, obj: Tier | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Tier | None = None) -> bool:
        return False


@admin.register(Tier)
class TierAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at"]
    search_fields = ["name"]
    inlines = [TierDiscountInline]

    # Resellers' costs on past days were computed from its rates: a tier stays.
    def has_delete_permission(self, request: HttpRequest, obj: Tier | None = None) -> bool:
        return False


@admin.register(ResellerTier)
class ResellerTierAdmin(admin.ModelAdmin):
    list_display = ["reseller", "tier", "assigned_at"]
    list_filter = ["tier"]
    search_fields = ["reseller__name"]
    list_select_related = ["reseller", "tier"]
    autocomplete_fields = ["reseller"]

    # Moving a reseller to another tier changes its tier; the row stays its.
    def get_readonly_fields(self, request: HttpRequest, obj: ResellerTier | None = None):
        return ["reseller", "assigned_at"] if obj is not None else ["assigned_at"]

    def has_delete_permission(self, request: HttpRequest, obj: ResellerTier | None = None) -> bool:
        return False


@admin.register(ResellerDiscount)
class ResellerDiscountAdmin(admin.ModelAdmin):
    """Staff's overrides of one reseller's tier discount: added, never changed."""

    form = DiscountForm
    fields = ["reseller", "product", "percent", "valid_from"]
    list_display = ["reseller", "product", "percent", "valid_from"]
    list_filter = [
        ("reseller", admin.RelatedOnlyFieldListFilter),
        ("product", admin.RelatedOnlyFieldListFilter),
        ("valid_from", admin.DateFieldListFilter),
    ]
    search_fields = ["reseller__name", "product__name"]
    list_select_related = ["reseller", "product"]
    autocomplete_fields = ["reseller", "product"]

    def has_change_permission(
        self, request: HttpRequest, obj: ResellerDiscount | None = None
    ) -> bool:
        return False

    def has_delete_permission(
        self, request: HttpRequest, obj: ResellerDiscount | None = None
    ) -> bool:
        return False


class ResellerOwnedReadOnly(admin.ModelAdmin):
    """The resellers' own entries, set through their services (audited): staff read them."""

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(PriceRule)
class PriceRuleAdmin(ResellerOwnedReadOnly):
    list_display = [
        "reseller",
        "plan",
        "currency",
        "kind",
        "markup_percent",
        "price",
        "valid_from",
        "created_by",
        "created_at",
    ]
    list_filter = [
        ("reseller", admin.RelatedOnlyFieldListFilter),
        "kind",
        "currency",
        ("valid_from", admin.DateFieldListFilter),
    ]
    search_fields = ["reseller__name"]
    list_select_related = ["reseller", "plan__product", "created_by"]
    show_full_result_count = False


@admin.register(CustomerPrice)
class CustomerPriceAdmin(ResellerOwnedReadOnly):
    list_display = [
        "customer",
        "reseller",
        "plan",
        "currency",
        "price",
        "valid_from",
        "ends_on",
        "created_by",
    ]
    list_filter = [
        ("reseller", admin.RelatedOnlyFieldListFilter),
        "currency",
        ("valid_from", admin.DateFieldListFilter),
        ("ends_on", admin.DateFieldListFilter),
    ]
    search_fields = ["customer__organisation", "customer__domain", "reseller__name"]
    list_select_related = ["customer", "reseller", "plan__product", "created_by"]
    show_full_result_count = False
