from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from resellers.models import Reseller
from resellers.roles import Role
from resellers.validators import normalise_vat_id


class ResellerProfileForm(forms.ModelForm):
    class Meta:
        model = Reseller
        fields = ["name", "country", "vat_id", "billing_email", "currency"]
        help_texts = {
            "vat_id": _("Required for EU companies to be invoiced without VAT (reverse charge)."),
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        country = data.get("country")
        if country and "vat_id" in data:
            try:
                data["vat_id"] = normalise_vat_id(country=str(country), vat_id=data["vat_id"])
            except ValidationError as error:
                self.add_error("vat_id", error)
        return data


class ResellerSettingsForm(ResellerProfileForm):
    class Meta(ResellerProfileForm.Meta):
        fields = [*ResellerProfileForm.Meta.fields, "language", "time_zone"]


class TeamInviteForm(forms.Form):
    email = forms.EmailField(label=_("Email"), max_length=254)
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices, initial=Role.SALES)


class MembershipRoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices)
