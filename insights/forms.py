"""The Reports page's filters (a GET form, the CSV downloads take the same): a range of days
and a currency."""

from collections.abc import Mapping
from datetime import date
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext, pgettext_lazy

from insights.reports import ReportFilters, default_start
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
