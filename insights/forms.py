"""The Reports page's filters (a GET form, the CSV downloads take the same): a range of days
and a currency."""

from collections.abc import Mapping
from datetime import date
from typing import TYPE_CHECKING, Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models
from django.utils.functional import Promise
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext, pgettext_lazy

from customers.selectors import SEARCH_MAX_LENGTH
from insights import audit
from insights.reports import ReportFilters, default_start
from resellers.models import AUDIT_ACTION_LABELS, AuditEvent, Reseller

if TYPE_CHECKING:
    from django.utils.functional import _StrOrPromise as StrOrPromise
from subscriptions.periods import add_months, day_in_month

# The longest range a report reads (its rows grow with it: five years of months, of ledger).
RANGE_MAX_YEARS = 5
# Days outside these years are refused as not valid dates: nothing is issued before 2000, and
# the range's arithmetic stays far from the calendar's end.
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2999, 12, 31)


def _day(label: Any) -> forms.DateField:
    return forms.DateField(
        label=label,
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )


class ReportFilterForm(forms.Form):
    """`?from=YYYY-MM-DD&to=YYYY-MM-DD&currency=EUR`, all optional: the range runs to `today`
    by default and from the first day of the month 12 months before its end (the last 12 full
    months and the month so far); the currency is the first of `currencies`, the one with the
    most revenue. Read `filters()` after is_valid()."""

    currency = forms.ChoiceField(label=_("Currency"), required=False)

    def __init__(
        self, data: Mapping[str, Any] | None = None, *, currencies: list[str], today: date
    ) -> None:
        super().__init__(data)
        self.currencies = currencies
        self.today = today
        # "from" is a Python keyword: the two dates are named here rather than declared.
        self.fields = {
            "from": _day(pgettext_lazy("start of a time range", "From")),
            "to": _day(pgettext_lazy("end of a time range", "To")),
            **self.fields,
        }
        currency = self.fields["currency"]
        assert isinstance(currency, forms.ChoiceField)
        currency.choices = [(code, code) for code in currencies]

    def _clean_day(self, name: str) -> date | None:
        value = self.cleaned_data.get(name)
        if value is not None and not FIRST_DAY <= value <= LAST_DAY:
            self.add_error(name, ValidationError(forms.DateField.default_error_messages["invalid"]))
            return None
        return value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.has_error("from") or self.has_error("to"):
            return cleaned
        end = self._clean_day("to") or self.today
        start = self._clean_day("from") or default_start(end)
        if self.errors:
            return cleaned
        if start > end:
            self.add_error("to", _("The end of the range is before its start."))
        elif end >= _years_after(start, RANGE_MAX_YEARS):
            message = ngettext(
                "Choose a range of at most %(years)d year.",
                "Choose a range of at most %(years)d years.",
                RANGE_MAX_YEARS,
            )
            self.add_error("to", message % {"years": RANGE_MAX_YEARS})
        cleaned["from"], cleaned["to"] = start, end
        cleaned["currency"] = cleaned.get("currency") or self.currencies[0]
        return cleaned

    def filters(self) -> ReportFilters:
        data = self.cleaned_data
        return ReportFilters(start=data["from"], end=data["to"], currency=data["currency"])

    def params(self) -> dict[str, str]:
        """The filters as links carry them: the CSV downloads, the form shown again."""
        filters = self.filters()
        return {
            "from": filters.start.isoformat(),
            "to": filters.end.isoformat(),
            "currency": filters.currency,
        }


def _years_after(day: date, years: int) -> date:
    """The same day `years` later (the month's last day where it is shorter: 29 February)."""
    return day_in_month(*add_months(day.year, day.month, 12 * years), day.day)


# As long as the Customers page's search.
CUSTOMER_SEARCH_MAX_LENGTH = SEARCH_MAX_LENGTH

# The Audit log page's choice of action: each action by its label, grouped by what it concerns
# (its code's family, before the dot), in this order. Every family is named here
# (tests/insights/test_audit_log.py); one that is not would be listed after the groups.
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
        emails = audit.audit_actor_emails(reseller=reseller)
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
            audit.audit_period_check(
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
