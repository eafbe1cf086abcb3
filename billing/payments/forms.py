from django import forms
from django.utils.translation import gettext_lazy as _


class CardSavedForm(forms.Form):
    """Posted by the card page's script once Stripe confirmed the card setup."""

    setup_intent = forms.CharField(max_length=255, widget=forms.HiddenInput)
    next = forms.CharField(max_length=500, required=False, widget=forms.HiddenInput)


class PayerForm(forms.Form):
    """Seed 003's "Use a customer card?" checkbox: who pays the subscription."""

    use_customer_card = forms.BooleanField(
        label=_("Use a customer card?"),
        required=False,
        help_text=_(
            "Ticked: the customer is asked by email to agree; until it does, your card pays. "
            "Not ticked: your card pays."
        ),
    )
