from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django import forms
from django.utils.translation import gettext_lazy as _

from api.models import ApiKey, Scope


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        label=_("Name"),
        max_length=ApiKey._meta.get_field("name").max_length,
        help_text=_(
            "What will use the key, e.g. the CRM sync. The audit log shows this name beside "
            "each change made with the key."
        ),
    )
    scopes = forms.MultipleChoiceField(
        label=_("Scopes"),
        choices=Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("What the key may do. It never does more than your role allows."),
    )
    # `expires_at`, as the service names it, so that its message stands beside this field.
    expires_at = forms.DateField(
        label=_("Expires"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text=_("Optional. The key works until the end of the day chosen."),
    )

    def expires_at_in(self, time_zone: str) -> datetime | None:
        """The end of the chosen day (the start of the next one) in `time_zone`, or None."""
        day = self.cleaned_data.get("expires_at")
        if day is None:
            return None
        return datetime.combine(day + timedelta(days=1), time.min, tzinfo=ZoneInfo(time_zone))
