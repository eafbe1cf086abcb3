"""Forms of the Plans and terms pages: change plan and renewal settings. They only parse what
was typed; the rules (which plan, how many licences, who may) are the services'."""

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from subscriptions import selectors
from subscriptions.models import Plan, Subscription

Renewal = Subscription.RenewalSetting


class ChangePlanForm(forms.Form):
    plan = forms.ModelChoiceField(
        label=_("New plan"),
        queryset=Plan.objects.none(),
        to_field_name="public_id",
        widget=forms.RadioSelect,
        error_messages={
            "required": _("Choose the plan to change to."),
            "invalid_choice": _("Choose one of the plans offered."),
        },
    )

    def __init__(self, *args: Any, subscription: Subscription, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Any plan of the product on sale: whether this subscription may move to it is the
        # service's rule, and its message says why not.
        field: forms.ModelChoiceField = self.fields["plan"]  # type: ignore[assignment]
        field.queryset = selectors.plan_list_on_sale().filter(product_id=subscription.product_id)


class RenewalForm(forms.Form):
    setting = forms.ChoiceField(
        label=_("At the end of the term"),
        choices=Renewal.choices,
        widget=forms.RadioSelect,
        error_messages={"required": _("Choose what happens at renewal.")},
    )
    # Text, parsed below: a count typed beside another choice is ignored, not an error.
    renewal_licences = forms.CharField(
        label=_("Licences at renewal"),
        required=False,
        max_length=12,
        widget=forms.NumberInput(attrs={"min": 1, "step": 1, "inputmode": "numeric"}),
    )

    def clean_renewal_licences(self) -> int | None:
        raw = self.cleaned_data["renewal_licences"].strip()
        if self.cleaned_data.get("setting") != Renewal.RENEW_WITH_COUNT:
            return None
        if not raw:
            raise ValidationError(_("Enter how many licences to renew with."), code="required")
        try:
            return int(raw)
        except ValueError:
            raise ValidationError(_("Enter a whole number of licences."), code="invalid") from None
