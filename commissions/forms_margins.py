"""The Margin page's month picker."""

import re
from collections.abc import Mapping
from datetime import date
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

_MONTH = re.compile(r"(\d{4})-(\d{2})")


class MonthForm(forms.Form):
    """`?month=YYYY-MM` (an <input type="month">); without it, the month of `today`."""

    month = forms.CharField(
        label=_("Month"),
        required=False,
        max_length=7,
        widget=forms.TextInput(attrs={"type": "month"}),
    )

    def __init__(self, data: Mapping[str, Any] | None = None, *, today: date) -> None:
        super().__init__(data)
        self.today = today

    def clean_month(self) -> date:
        value = (self.cleaned_data.get("month") or "").strip()
        if not value:
            return self.today.replace(day=1)
        match = _MONTH.fullmatch(value)
        if match is None or not 1 <= int(match[2]) <= 12 or int(match[1]) < 2000:
            raise ValidationError(_("Choose a month, as YYYY-MM."), code="invalid")
        return date(int(match[1]), int(match[2]), 1)
