from datetime import date
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from billing import selectors
from billing.models import Invoice
from subscriptions.models import Payer


def _month_first_day(value: str) -> date | None:
    """ "2026-11" → 1 November 2026; None for anything else."""
    year, _sep, month = value.partition("-")
    if not (len(year) == 4 and year.isdigit() and month.isdigit() and 1 <= int(month) <= 12):
        return None
    return date(int(year), int(month), 1)


def _month_last_day(first: date) -> date:
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return date.fromordinal(following.toordinal() - 1)


class InvoiceFilterForm(forms.Form):
    """The Invoices page's filters (a GET form); the CSV export takes the same."""

    customer = forms.CharField(
        label=_("Customer"),
        max_length=selectors.CUSTOMER_QUERY_MAX_LENGTH,
        required=False,
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": _("Organisation or customer ID")}
        ),
    )
    status = forms.ChoiceField(label=_("Status"), required=False)
    payer = forms.ChoiceField(
        label=_("Paid with"),
        required=False,
        choices=[("", _("Any card")), *Payer.choices],
    )
    month = forms.CharField(
        label=_("Month"),
        required=False,
        max_length=7,
        widget=forms.TextInput(attrs={"type": "month", "placeholder": "YYYY-MM"}),
    )
    date_from = forms.DateField(
        label=_("Issued from"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label=_("Issued until"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        labels = dict(Invoice.Status.choices) | {selectors.OVERDUE: _("Overdue")}
        status = self.fields["status"]
        assert isinstance(status, forms.ChoiceField)
        status.choices = [("", _("Any status"))] + [
            (value, labels[value]) for value in selectors.STATUS_FILTERS
        ]

    def clean_customer(self) -> str:
        return selectors.invoice_customer_query_normalise(self.cleaned_data["customer"])

    def clean_month(self) -> date | None:
        value = self.cleaned_data["month"].strip()
        if not value:
            return None
        first = _month_first_day(value)
        if first is None:
            raise forms.ValidationError(_("Enter a month as YYYY-MM, for example 2026-11."))
        return first

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        month, start, end = (cleaned.get(name) for name in ("month", "date_from", "date_to"))
        if month and (start or end):
            raise forms.ValidationError(_("Choose either a month or a range of dates, not both."))
        if start and end and start > end:
            self.add_error("date_to", _("The end of the range is before its start."))
        return cleaned

    def filters(self) -> dict[str, Any]:
        """invoice_list's keyword arguments; call after is_valid()."""
        data = self.cleaned_data
        if data.get("month"):
            period = selectors.InvoicePeriod(data["month"], _month_last_day(data["month"]))
        else:
            period = selectors.InvoicePeriod(data.get("date_from"), data.get("date_to"))
        return {
            "customer": data.get("customer", ""),
            "status": data.get("status", ""),
            "payer": data.get("payer", ""),
            "period": period,
        }

    def params(self) -> dict[str, str]:
        """The filters as they go back into links (pages, export), without empty ones."""
        data = self.cleaned_data
        values = {
            "customer": data.get("customer", ""),
            "status": data.get("status", ""),
            "payer": data.get("payer", ""),
            "month": data["month"].strftime("%Y-%m") if data.get("month") else "",
            "date_from": data["date_from"].isoformat() if data.get("date_from") else "",
            "date_to": data["date_to"].isoformat() if data.get("date_to") else "",
        }
        return {name: value for name, value in values.items() if value}
