import copy
from collections.abc import Iterator
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.views.main import ChangeList
from django.contrib.admin.widgets import ForeignKeyRawIdWidget
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from core.pagination import EstimatedCountPaginator
from customers import selectors, services
from customers.models import COUNTRY_REQUIRED, Customer, CustomerInvitation, TransferToken
from resellers.models import Reseller

# Moving a customer sends emails and writes audit rows in the request: keep a batch small.
MOVE_AT_ONCE = 100


class ResellerFilter(admin.ListFilter):
    """Customers of one reseller, named by its ID. Listing every reseller as a choice would be a
    long list and a query over all customers on each page; this costs one indexed lookup."""

    title = gettext_lazy("reseller")
    parameter_name = "reseller"
    template = "admin/customers/reseller_filter.html"

    def __init__(self, request: HttpRequest, params: dict[str, Any], model: Any, model_admin: Any):
        super().__init__(request, params, model, model_admin)
        values = params.pop(self.parameter_name, [])
        self.value = (values[-1] if values else "").strip()
        self.reseller = None
        if self.value:
            self.used_parameters[self.parameter_name] = self.value
            self.reseller = Reseller.objects.filter(public_id=self.value).first()
        self.other_params: list[tuple[str, str]] = []

    def has_output(self) -> bool:
        return True

    def expected_parameters(self) -> list[str | None]:
        return [self.parameter_name]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Customer]) -> QuerySet[Customer]:
        if not self.value:
            return queryset
        if self.reseller is None:
            return queryset.none()
        return queryset.filter(reseller=self.reseller)

    def choices(self, changelist: ChangeList) -> Iterator[dict[str, Any]]:
        # The template's GET form keeps the changelist's other filters and search.
        self.other_params = [
            (name, value)
            for name, value in changelist.params.items()
            if name != self.parameter_name
        ]
        yield {
            "selected": not self.value,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": _("All"),
        }
        if self.value:
            yield {
                "selected": True,
                "query_string": changelist.get_query_string({self.parameter_name: self.value}),
                "display": self.reseller.name if self.reseller else _("No reseller has this ID"),
            }


class MoveToResellerForm(forms.Form):
    """The intermediate page of the admin action Move to another reseller."""

    reseller = forms.ModelChoiceField(
        label=gettext_lazy("New reseller"),
        queryset=Reseller.objects.all(),
        help_text=gettext_lazy("Use the magnifying glass to find the reseller."),
    )

    def __init__(self, *args: Any, admin_site: admin.AdminSite, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A raw id with a lookup popup: there can be many resellers, and it works without JS.
        self.fields["reseller"].widget = ForeignKeyRawIdWidget(
            Customer._meta.get_field("reseller").remote_field, admin_site
        )

    def clean_reseller(self) -> Reseller:
        reseller = self.cleaned_data["reseller"]
        if not reseller.is_active:
            raise ValidationError(
                _("%(reseller)s is not an active reseller.") % {"reseller": reseller.name}
            )
        return reseller


class CustomerAdminForm(forms.ModelForm):
    """The contact details, checked as the reseller's edit checks them (customers.services), so
    an error shows next to its field before anything is saved."""

    class Meta:
        error_messages = {"country": {"required": COUNTRY_REQUIRED}}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        customer = copy.copy(self.instance)
        for name in services.CONTACT_FIELDS:
            if name in cleaned:
                setattr(customer, name, cleaned[name])
        try:
            services.customer_contact_check(customer=customer)
        except ValidationError as error:
            for name, errors in error.message_dict.items():
                self.add_error(name if name in self.fields else None, errors)
        return cleaned


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    """Staff correct a customer's contact details here, saved through the same service as the
    reseller's edit and audited with the staff user. Who the customer belongs to and its status
    change only through services: moving it with the action Move to another reseller
    (customer_transfer moves its subscriptions, audits and emails); customers are created by
    invitation or import, never added or deleted here."""

    form = CustomerAdminForm
    list_display = ["organisation", "domain", "contact_email", "reseller", "status", "created_at"]
    list_filter = ["status", ResellerFilter, "customer_type"]
    search_fields = ["organisation", "domain", "contact_email"]
    list_select_related = ["reseller"]
    # Everything but the contact details (services.CONTACT_FIELDS) is owned by a service; the
    # domain and the type identify the customer.
    readonly_fields = [
        "public_id",
        "reseller",
        "status",
        "domain",
        "customer_type",
        "created_at",
        "accepted_at",
        "previous",
    ]
    show_full_result_count = False
    # Unfiltered, the page count is PostgreSQL's estimate, not a COUNT(*) of 100,000 rows.
    paginator = EstimatedCountPaginator
    # Newest first by primary key (creation order): the primary key index serves it at any
    # size, where "-created_at" would sort all 100,000 rows for each page.
    ordering = ["-id"]
    actions = ["move_to_reseller"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Customer, form: Any, change: bool) -> None:
        services.customer_update_contact_by_staff(
            customer=obj,
            by=request.user,  # type: ignore[arg-type]
            **{
                name: form.cleaned_data[name]
                for name in form.changed_data
                if name in services.CONTACT_FIELDS
            },
        )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Customer], search_term: str
    ) -> tuple[QuerySet[Customer], bool]:
        """The Customers page's search (organisation, domain or contact email contains the
        term, whatever the case), which the trigram index of the stored search text serves at
        100,000 customers; search_fields only names what it covers and shows the box."""
        term = selectors.customer_search_normalise(search_term)
        if not term:
            return queryset, False
        return queryset.filter(selectors.customer_search_q(term)), False

    @admin.action(description=gettext_lazy("Move to another reseller"), permissions=["change"])
    def move_to_reseller(
        self, request: HttpRequest, queryset: QuerySet[Customer]
    ) -> HttpResponse | None:
        customers = list(queryset.select_related("reseller")[: MOVE_AT_ONCE + 1])
        if len(customers) > MOVE_AT_ONCE:
            self.message_user(
                request,
                _("Select at most %(count)d customers to move at once.") % {"count": MOVE_AT_ONCE},
                messages.ERROR,
            )
            return None
        form = MoveToResellerForm(
            request.POST if "apply" in request.POST else None, admin_site=self.admin_site
        )
        if not form.is_valid():
            context = {
                **self.admin_site.each_context(request),
                "title": _("Move customers to another reseller"),
                "opts": self.model._meta,
                "customers": customers,
                "form": form,
                "media": self.media + form.media,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(
                request, "admin/customers/customer/move_to_reseller.html", context
            )
        to_reseller = form.cleaned_data["reseller"]
        moved = 0
        for customer in customers:
            try:
                services.customer_transfer(
                    customer=customer,
                    to_reseller=to_reseller,
                    actor=request.user,  # type: ignore[arg-type]
                    via="staff",
                )
            except ValidationError as error:
                self.message_user(
                    request,
                    _("%(customer)s was not moved: %(reason)s")
                    % {"customer": customer, "reason": " ".join(error.messages)},
                    messages.ERROR,
                )
            else:
                moved += 1
        if moved:
            self.message_user(
                request,
                ngettext(
                    "%(count)d customer moved to %(reseller)s.",
                    "%(count)d customers moved to %(reseller)s.",
                    moved,
                )
                % {"count": moved, "reseller": to_reseller.name},
                messages.SUCCESS,
            )
        return None


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


class TransferTokenInline(admin.TabularInline):
    model = TransferToken
    extra = 0
    can_delete = False
    # The token digest is never shown.
    fields = (
        "to_reseller",
        "created_by",
        "created_at",
        "expires_at",
        "consumed_at",
        "withdrawn_at",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[TransferToken]:
        return super().get_queryset(request).select_related("to_reseller", "created_by")

    def has_add_permission(self, request, obj=None) -> bool:
        return False


CustomerAdmin.inlines = [CustomerInvitationInline, TransferTokenInline]
