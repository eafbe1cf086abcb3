"""Staff's view of the commission statements: read-only documents with their lines, payouts
added on a statement's page (through commissions.statements.payout_record, audited with the
staff user), never changed or deleted; a correction issued by an action."""

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy, ngettext

from commissions import statements
from commissions.models import Payout, Statement, StatementLine
from core.models import User


class StatementLineInline(admin.TabularInline):
    model = StatementLine
    fields = readonly_fields = (
        "position",
        "invoice_number",
        "invoice_date",
        "customer_name",
        "net",
        "margin",
    )
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class PayoutForm(forms.ModelForm):
    class Meta:
        model = Payout
        fields = ["amount", "paid_on", "method", "reference"]

    def clean(self) -> dict[str, Any]:
        """The service's rule (no payout on a correction, none beyond what is left), checked
        here too so that the page shows it on the form."""
        cleaned = super().clean() or {}
        amount = cleaned.get("amount")
        if amount is not None and self.instance.pk is None:
            statements.payout_check(statement=self.instance.statement, amount=amount)
        return cleaned


class PayoutInline(admin.TabularInline):
    """Payouts are added here, one per transfer; a recorded one is never changed or deleted."""

    model = Payout
    form = PayoutForm
    fields = ["amount", "paid_on", "method", "reference", "recorded_by", "created_at"]
    extra = 0
    can_delete = False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["recorded_by", "created_at"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is not None and obj.kind == Statement.Kind.STATEMENT

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Recorded payouts are shown read-only; new ones are added (save_formset saves them
        # through the service).
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return True

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Statement)
class StatementAdmin(admin.ModelAdmin):
    list_display = [
        "number",
        "kind",
        "reseller",
        "period_start",
        "currency",
        "total",
        "vat_treatment",
        "issue_date",
    ]
    list_filter = ["kind", "currency", "vat_treatment", "period_start"]
    search_fields = ["number", "reseller__name"]
    list_select_related = ["reseller"]
    ordering = ["-id"]
    fields = readonly_fields = (
        "number",
        "kind",
        "corrects",
        "replaces",
        "public_id",
        "reseller",
        "language",
        "period_start",
        "period_end",
        "issue_date",
        "issued_at",
        "seller",
        "buyer",
        "currency",
        "vat_treatment",
        "vat_rate",
        "subtotal",
        "vat_amount",
        "total",
        "pdf",
        "pdf_sha256",
    )
    inlines = [StatementLineInline, PayoutInline]
    actions = ["issue_correction", "issue_again"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Every field is read-only: the page saves nothing but the payouts added on it.
        return request.user.has_perm("commissions.add_payout")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Statement, form: Any, change: bool) -> None:
        """Nothing: an issued statement is never saved again."""

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        """New payouts only, each through the service (locked, checked, audited)."""
        # What the admin's change message reads from a saved formset.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        if formset.model is not Payout:
            return
        assert isinstance(request.user, User)
        for payout_form in formset.forms:
            if payout_form.instance.pk is not None or not payout_form.has_changed():
                continue
            data = payout_form.cleaned_data
            payout = statements.payout_record(
                statement=form.instance,
                amount=data["amount"],
                paid_on=data["paid_on"],
                method=data["method"],
                reference=data.get("reference", ""),
                actor=request.user,
            )
            formset.new_objects.append(payout)

    @admin.action(description=gettext_lazy("Issue a correction (take the statement back)"))
    def issue_correction(self, request: HttpRequest, queryset: QuerySet[Statement]) -> None:
        self._each(
            request,
            queryset,
            statements.statement_correct,
            lambda count: ngettext(
                "%(count)d correction issued.", "%(count)d corrections issued.", count
            ),
        )

    @admin.action(description=gettext_lazy("Issue the month again (after a correction)"))
    def issue_again(self, request: HttpRequest, queryset: QuerySet[Statement]) -> None:
        self._each(
            request,
            queryset,
            statements.statement_reissue,
            lambda count: ngettext(
                "%(count)d statement issued again.", "%(count)d statements issued again.", count
            ),
        )

    def _each(
        self,
        request: HttpRequest,
        queryset: QuerySet[Statement],
        service: Callable[..., Statement],
        done: Callable[[int], str],
    ) -> None:
        """Run `service` for each selected statement; say what was refused, and how many done."""
        assert isinstance(request.user, User)
        issued = 0
        for statement in queryset.select_related("reseller"):
            try:
                service(statement=statement, actor=request.user)
            except ValidationError as error:
                self.message_user(request, "; ".join(error.messages), messages.ERROR)
            else:
                issued += 1
        if issued:
            self.message_user(request, done(issued) % {"count": issued}, messages.SUCCESS)


@admin.register(Payout)
class PayoutAdmin(admin.ModelAdmin):
    """Browse only: payouts are recorded on their statement's page."""

    list_display = ["statement", "amount", "paid_on", "method", "reference", "recorded_by"]
    list_filter = ["method", "paid_on"]
    search_fields = ["statement__number", "reference", "statement__reseller__name"]
    list_select_related = ["statement", "recorded_by"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
