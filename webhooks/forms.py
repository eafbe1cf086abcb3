from django import forms
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from webhooks.models import EventType, WebhookEndpoint


class EventTypesField(forms.MultipleChoiceField):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(
            label=_("Events"),
            choices=EventType.choices,
            widget=forms.CheckboxSelectMultiple,
            help_text=_("The endpoint receives only these events."),
            **kwargs,  # type: ignore[arg-type]
        )


class EndpointForm(forms.Form):
    url = forms.CharField(
        label=_("URL"),
        max_length=WebhookEndpoint._meta.get_field("url").max_length,
        help_text=_("An https address that accepts POST requests."),
        widget=forms.URLInput(attrs={"placeholder": "https://"}),
    )
    description = forms.CharField(
        label=_("Description"),
        required=False,
        max_length=WebhookEndpoint._meta.get_field("description").max_length,
        help_text=_("Optional, e.g. the tool that receives the events."),
    )
    event_types = EventTypesField()


class EventTypesForm(forms.Form):
    event_types = EventTypesField()


class ReplayRangeForm(forms.Form):
    """Read in the current time zone, the one the delivery log shows its times in."""

    start = forms.DateTimeField(
        label=pgettext_lazy("start of a time range", "From"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    end = forms.DateTimeField(
        label=pgettext_lazy("end of a time range", "To"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
