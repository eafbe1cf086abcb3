from typing import TYPE_CHECKING, Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models
from django.utils.functional import Promise
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from resellers import selectors
from resellers.models import ADDRESS_REQUIRED, AUDIT_ACTION_LABELS, AuditEvent, Reseller
from resellers.roles import Role
from resellers.validators import normalise_vat_id

if TYPE_CHECKING:
    from django.utils.functional import _StrOrPromise as StrOrPromise


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


# As long as the Customers page's search (customers.selectors.SEARCH_MAX_LENGTH).
CUSTOMER_SEARCH_MAX_LENGTH = 100

# The Audit log page's choice of action: each action by its label, grouped by what it concerns
# (its code's family, before the dot), in this order. Every family is named here
# (tests/resellers/test_audit_log.py); one that is not would be listed after the groups.
AUDIT_ACTION_GROUPS: list[tuple[Promise, tuple[str, ...]]] = [
    (_("Company profile"), ("reseller",)),
    (_("Team"), ("membership", "team_invitation")),
    (_("Customers"), ("customer",)),
    (_("Subscriptions"), ("subscription",)),
    (_("Payment card"), ("payment_card", "card_consent")),
    (_("Invoices"), ("invoice", "credit_note", "payment", "refund")),
    (_("Price book"), ("price_rule", "customer_price")),
    (_("Statements"), ("statement",)),
    (_("API keys"), ("api_key",)),
    (_("Webhooks"), ("webhook_endpoint",)),
]


def _audit_action_choices() -> list[Any]:
    by_family: dict[str, list[tuple[str, Any]]] = {}
    for code, label in AUDIT_ACTION_LABELS.items():
        by_family.setdefault(code.split(".")[0], []).append((code, label))
    choices: list[Any] = [("", _("Any action"))]
    for group, families in AUDIT_ACTION_GROUPS:
        actions = [choice for family in families for choice in by_family.pop(family, [])]
        choices.append((group, actions))
    choices += [choice for rest in by_family.values() for choice in rest]
    return choices


def _audit_field_label(name: str) -> "StrOrPromise":
    field = AuditEvent._meta.get_field(name)
    assert isinstance(field, models.Field)
    return capfirst(field.verbose_name)


class _EmailChoiceField(forms.ChoiceField):
    """An email address among the choices (which are in lower case), in any case: the API
    takes the actor's address so too."""

    def to_python(self, value: Any) -> str:
        return str(super().to_python(value)).strip().lower()

    def prepare_value(self, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value


class AuditLogFilterForm(forms.Form):
    """The Audit log page's filters (a GET form); its CSV export takes the same."""

    actor = _EmailChoiceField(label=_audit_field_label("actor"), required=False)
    customer = forms.CharField(
        label=_("Customer"),
        max_length=CUSTOMER_SEARCH_MAX_LENGTH,
        required=False,
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": _("Organisation or customer ID")}
        ),
    )
    action = forms.ChoiceField(label=_audit_field_label("action"), required=False)
    date_from = forms.DateField(
        label=pgettext_lazy("start of a time range", "From"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    date_to = forms.DateField(
        label=pgettext_lazy("end of a time range", "To"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    def __init__(self, *args: Any, reseller: Reseller, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        emails = selectors.audit_actor_emails(reseller=reseller)
        # Someone who has not acted (yet) is a valid choice too, when asked for by a link: the
        # page then says nothing matches rather than refusing the address.
        asked = str(self.data.get("actor", "")).strip().lower()
        if asked and asked not in emails and _is_email(asked):
            emails = sorted([*emails, asked])
        actor = self.fields["actor"]
        action = self.fields["action"]
        assert isinstance(actor, forms.ChoiceField) and isinstance(action, forms.ChoiceField)
        actor.choices = [("", _("Anyone")), *((email, email) for email in emails)]
        action.choices = _audit_action_choices()

    def clean_customer(self) -> str:
        return " ".join(self.cleaned_data["customer"].split())

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        try:
            selectors.audit_period_check(
                date_from=cleaned.get("date_from"), date_to=cleaned.get("date_to")
            )
        except ValidationError as error:
            self.add_error(None, error)
        return cleaned

    def filters(self) -> dict[str, Any]:
        """audit_log's keyword arguments; call after is_valid()."""
        data = self.cleaned_data
        return {
            "actor": data["actor"],
            "customer_search": data["customer"],
            "action": data["action"],
            "date_from": data["date_from"],
            "date_to": data["date_to"],
        }

    def params(self) -> dict[str, str]:
        """The filters as they go back into links (pages, export), without empty ones."""
        data = self.cleaned_data
        values = {
            "actor": data["actor"],
            "customer": data["customer"],
            "action": data["action"],
            "date_from": data["date_from"].isoformat() if data["date_from"] else "",
            "date_to": data["date_to"].isoformat() if data["date_to"] else "",
        }
        return {name: value for name, value in values.items() if value}


def _is_email(value: str) -> bool:
    try:
        validate_email(value)
    except ValidationError:
        return False
    return True
