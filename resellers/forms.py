from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from resellers.models import ADDRESS_REQUIRED, Reseller
from resellers.roles import Role
from resellers.validators import normalise_vat_id


class ResellerProfileForm(forms.ModelForm):
    """The company profile as a reseller applies with it (Become a partner); the settings page
    and the staff admin edit it with ResellerSettingsForm."""

    class Meta:
        model = Reseller
        fields = ["name", "address", "country", "vat_id", "billing_email", "currency"]
        widgets = {"address": forms.Textarea(attrs={"rows": 3})}
        help_texts = {
            "address": _(
                "Street and number, postcode and city, on separate lines (the country below). "
                "Your commission statements name you as the supplier with it."
            ),
            "vat_id": _("Required for EU companies to be invoiced without VAT (reverse charge)."),
        }
        error_messages = {"address": {"required": ADDRESS_REQUIRED}}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["address"].required = self.address_required()

    def address_required(self) -> bool:
        """A new application needs the address."""
        return True

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

    def address_required(self) -> bool:
        """An address once set cannot be removed (reseller_update_profile refuses it too); a
        reseller that applied before it was asked may still save without one."""
        return bool(self.instance.address)


class TeamInviteForm(forms.Form):
    email = forms.EmailField(label=_("Email"), max_length=254)
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices, initial=Role.SALES)


class MembershipRoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices)
