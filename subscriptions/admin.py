from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

# Registers the admins of reseller economics (tiers, discounts, price books).
import subscriptions.admin_pricing  # noqa: F401
from subscriptions import services
from subscriptions.models import (
    Charge,
    LicenceChange,
    Order,
    Plan,
    PlanPrice,
    PriceNotice,
    Product,
    Subscription,
)


class PlanInline(admin.TabularInline):
    """A product's plans; a plan is added on its own page, where its kind is chosen once."""

    model = Plan
    extra = 0
    show_change_link = True
    readonly_fields = ["kind"]

    def has_add_permission(self, request: HttpRequest, obj: Product | None = None) -> bool:
        return False


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
    list_display = ["product", "kind", "max_licences", "is_active"]
    list_filter = ["kind", "is_active", "product"]
    list_select_related = ["product"]
    inlines = [PlanPriceInline]
    # A price change applies to each subscription from its next period: the price of the
    # current period is kept on the subscription.

    # Subscriptions on a plan are billed by its kind and product: both are set when the plan is
    # added and stay (a new kind is a new plan).
    def get_readonly_fields(self, request: HttpRequest, obj: Plan | None = None) -> list[str]:
        return ["product", "kind"] if obj is not None else []


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def get_readonly_fields(self, request, obj=None):
        return list(self.fields or [])

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class LicenceChangeInline(ReadOnlyInline):
    model = LicenceChange
    fields = [
        "created_at",
        "kind",
        "actor_email",
        "plan",
        "licences_before",
        "licences_after",
        "amount",
        "currency",
        "period_start",
        "period_end",
        "order",
    ]
    ordering = ["-created_at", "-id"]


class ChargeInline(ReadOnlyInline):
    model = Charge
    fields = [
        "created_at",
        "kind",
        "description",
        "payer",
        "period_start",
        "period_end",
        "licences",
        "unit_price",
        "amount",
        "cost_amount",
        "margin_amount",
        "price_source",
        "currency",
        "invoiced_at",
    ]
    ordering = ["-created_at", "-id"]


class PriceNoticeInline(ReadOnlyInline):
    model = PriceNotice
    fields = ["sent_at", "old_monthly_price", "new_monthly_price", "currency", "applies_from"]
    ordering = ["-sent_at", "-id"]


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = [
        "public_id",
        "customer",
        "reseller",
        "plan",
        "licences",
        "status",
        "suspension_reason",
        "period_end",
        "term_end",
        "renewal_setting",
    ]
    list_filter = [
        ("customer__reseller", admin.RelatedOnlyFieldListFilter),
        "plan",
        "status",
        "suspension_reason",
        ("term_end", admin.DateFieldListFilter),
        "renewal_setting",
    ]
    search_fields = ["public_id", "customer__organisation", "customer__domain"]
    list_select_related = ["customer__reseller", "plan__product"]
    show_full_result_count = False
    inlines = [LicenceChangeInline, ChargeInline, PriceNoticeInline]
    actions = ["suspend", "reactivate"]

    # Licences, periods and status change only through services, so the ledger, the charges
    # and the audit log stay complete: staff read here and use the actions.
    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Subscription._meta.fields]

    @admin.display(description=_("reseller"), ordering="customer__reseller__name")
    def reseller(self, obj: Subscription) -> str:
        return obj.customer.reseller.name

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def _run(self, request: HttpRequest, queryset: QuerySet[Subscription], service, done) -> None:
        count = 0
        for subscription in queryset:
            try:
                service(subscription=subscription, by=request.user)
            except ValidationError as error:
                self.message_user(
                    request, f"{subscription}: {' '.join(error.messages)}", messages.WARNING
                )
            else:
                count += 1
        if count:
            self.message_user(request, done(count) % count, messages.SUCCESS)

    @admin.action(description=_("Suspend the selected subscriptions"), permissions=["change"])
    def suspend(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        self._run(
            request,
            queryset,
            services.subscription_suspend_by_staff,
            lambda n: ngettext("%d subscription suspended.", "%d subscriptions suspended.", n),
        )

    @admin.action(description=_("Reactivate the selected subscriptions"), permissions=["change"])
    def reactivate(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        self._run(
            request,
            queryset,
            services.subscription_reactivate_by_staff,
            lambda n: ngettext("%d subscription reactivated.", "%d subscriptions reactivated.", n),
        )


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["reference", "customer", "kind", "licences_before", "licences_after", "amount"]
    list_filter = ["kind"]
    search_fields = ["reference", "customer__organisation"]
    list_select_related = ["customer"]
    show_full_result_count = False
    exclude = ["key"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Order._meta.fields if f.name != "key"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Charge)
class ChargeAdmin(admin.ModelAdmin):
    """Charges as made: what was owed and what it was priced from (list price, the reseller's
    cost and margin, the price source and the rows). Written by the services only; staff read."""

    list_display = [
        "created_at",
        "customer",
        "kind",
        "licences",
        "amount",
        "cost_amount",
        "margin_amount",
        "currency",
        "price_source",
        "invoiced_at",
    ]
    list_filter = ["kind", "price_source", "currency"]
    search_fields = ["description", "customer__organisation", "subscription__public_id"]
    list_select_related = ["customer"]
    show_full_result_count = False
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "subscription",
                    "customer",
                    "order",
                    "kind",
                    "description",
                    "payer",
                    ("period_start", "period_end"),
                    "licences",
                    "unit_price",
                    "amount",
                    "currency",
                    "created_at",
                    "invoiced_at",
                ]
            },
        ),
        (
            _("Priced from"),
            {
                "fields": [
                    ("list_unit_price", "unit_cost", "unit_margin"),
                    ("cost_amount", "margin_amount"),
                    ("monthly_list_price", "monthly_price", "monthly_cost"),
                    "price_source",
                    ("tier", "tier_discount", "reseller_discount"),
                    ("price_rule", "customer_price"),
                ]
            },
        ),
    ]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Charge._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
