"""Forms of the Price book page: a price book entry, a customer's special price, the end of
one. They only parse what was typed; the rules (never below cost, not in the past, who may)
are subscriptions.services.pricing's, whose messages the view shows beside these fields."""

from typing import TYPE_CHECKING, Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from resellers.models import Currency
from subscriptions import selectors
from subscriptions.models import Plan, PriceRule

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

# Amounts are typed in a number field: the browser sends "12.50" in every language.
_MONEY = forms.NumberInput(attrs={"min": 0, "step": "0.01", "inputmode": "decimal"})
_PERCENT = forms.NumberInput(attrs={"min": 0, "step": "0.01", "inputmode": "decimal"})
_DAY = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def _plan_field(label: "StrOrPromise") -> forms.ModelChoiceField:
    return forms.ModelChoiceField(
        label=label,
        queryset=Plan.objects.none(),
        to_field_name="public_id",
        empty_label=_("Choose a plan"),
        error_messages={
            "required": _("Choose a plan."),
            "invalid_choice": _("Choose one of the plans on sale."),
        },
    )


def _priceable_plans(form: forms.Form) -> None:
    field: forms.ModelChoiceField = form.fields["plan"]  # type: ignore[assignment]
    field.queryset = selectors.price_book_plans()


class PriceRuleForm(forms.Form):
    """How the customers pay for one plan in one currency from a day on (price_rule_set)."""

    plan = _plan_field(_("Plan"))
    currency = forms.ChoiceField(label=_("Currency"), choices=Currency.choices)
    kind = forms.ChoiceField(
        label=_("Customer price"),
        choices=PriceRule.Kind.choices,
        error_messages={"required": _("Choose how the customer price is set.")},
    )
    markup_percent = forms.DecimalField(
        label=_("Markup on cost (%)"),
        required=False,
        max_digits=7,
        decimal_places=2,
        widget=_PERCENT,
    )
    price = forms.DecimalField(
        label=_("Fixed price per licence per month"),
        required=False,
        max_digits=10,
        decimal_places=2,
        widget=_MONEY,
    )
    valid_from = forms.DateField(
        label=pgettext_lazy("price valid from a day", "From"),
        widget=_DAY,
        error_messages={"required": _("Enter the day the price applies from.")},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _priceable_plans(self)
        # One form per row of the page: the plan and currency are the row's.
        self.fields["plan"].widget = forms.HiddenInput()
        self.fields["currency"].widget = forms.HiddenInput()
        self.fields["valid_from"].initial = timezone.localdate


class SpecialPriceForm(forms.Form):
    """A customer's special price (customer_price_set). The customer is its public id, found by
    the view among the reseller's customers: another reseller's is a 404 there, as a missing
    one is."""

    # Text with a list to choose from: any id is taken here, and the view looks it up.
    customer = forms.CharField(
        label=_("Customer"),
        max_length=16,
        widget=forms.Select,
        error_messages={"required": _("Choose the customer.")},
    )
    plan = _plan_field(_("Plan"))
    currency = forms.ChoiceField(label=_("Currency"), choices=Currency.choices)
    price = forms.DecimalField(
        label=_("Price per licence per month"),
        max_digits=10,
        decimal_places=2,
        widget=_MONEY,
        error_messages={"required": _("Enter the price per licence per month.")},
    )
    valid_from = forms.DateField(
        label=pgettext_lazy("price valid from a day", "From"),
        widget=_DAY,
        error_messages={"required": _("Enter the day the price applies from.")},
    )
    ends_on = forms.DateField(
        label=pgettext_lazy("price valid until a day", "Until"),
        required=False,
        widget=_DAY,
        help_text=_("The first day it no longer applies. Empty: no end."),
    )

    def __init__(self, *args: Any, customers: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _priceable_plans(self)
        self._customer_select().choices = [("", _("Choose a customer")), *customers]
        self.fields["valid_from"].initial = timezone.localdate

    def _customer_select(self) -> forms.Select:
        widget = self.fields["customer"].widget
        assert isinstance(widget, forms.Select)
        return widget

    def offer_customer(self, public_id: str, organisation: str) -> None:
        """Have the list offer this customer (one found beyond the first of the list)."""
        select = self._customer_select()
        choices = list(select.choices)
        if (public_id, organisation) not in choices:
            select.choices = [choices[0], (public_id, organisation), *choices[1:]]


class SpecialPriceEndForm(forms.Form):
    """Which of the customer's special prices to end (from today)."""

    special_price = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
