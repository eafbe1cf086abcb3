from typing import Any

from django import forms
from django.utils import timezone
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


# The demo gateway's card page (billing.payments.demo_gateway): Stripe's test cards only.


def _luhn_valid(digits: str) -> bool:
    total = 0
    for index, digit in enumerate(reversed(digits)):
        value = int(digit) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


class DemoCardForm(forms.Form):
    """A test card typed on the demo's card page. No max_length on the text fields: the
    field-limit hint would only distract; lengths are checked in clean_*()."""

    setup = forms.CharField(widget=forms.HiddenInput)
    next = forms.CharField(max_length=500, required=False, widget=forms.HiddenInput)
    number = forms.CharField(
        label=_("Card number"),
        widget=forms.TextInput(
            attrs={
                "autocomplete": "off",
                "inputmode": "numeric",
                "placeholder": "4242 4242 4242 4242",
            }
        ),
    )
    expiry = forms.CharField(
        label=_("Expiry date"),
        help_text=_("As MM / YY, e.g. 12 / 34: any date in the future."),
        # The format's letters in the reader's language (MM / AA in Spanish).
        widget=forms.TextInput(attrs={"autocomplete": "off", "placeholder": _("MM / YY")}),
    )
    cvc = forms.CharField(
        label=_("Security code (CVC)"),
        help_text=_("Any 3 digits (4 for American Express)."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "inputmode": "numeric"}),
    )

    def clean_number(self) -> str:
        from billing.payments.demo_gateway import card_by_number

        raw = self.cleaned_data["number"]
        digits = "".join(ch for ch in raw if ch.isdigit())
        if len(raw) > 30 or not 12 <= len(digits) <= 19 or not _luhn_valid(digits):
            raise forms.ValidationError(_("Enter a valid card number."), code="invalid")
        if card_by_number(digits) is None:
            raise forms.ValidationError(
                _("The demo takes only the test card numbers listed on this page."),
                code="not_test_card",
            )
        return digits

    def clean_expiry(self) -> tuple[int, int]:
        raw = self.cleaned_data["expiry"]
        month_text, _sep, year_text = raw.replace(" ", "").partition("/")
        if not (
            month_text.isdigit()
            and year_text.isdigit()
            and len(year_text) in (2, 4)
            and 1 <= int(month_text) <= 12
        ):
            raise forms.ValidationError(_("Enter the expiry date as MM / YY."), code="invalid")
        month = int(month_text)
        year = int(year_text) + (2000 if len(year_text) == 2 else 0)
        today = timezone.localdate()
        if (year, month) < (today.year, today.month):
            raise forms.ValidationError(_("This expiry date is in the past."), code="expired")
        return month, year

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        number, cvc = cleaned.get("number"), self.cleaned_data.get("cvc")
        if number and cvc is not None:
            digits = 4 if number.startswith(("34", "37")) else 3
            if len(cvc.strip()) != digits or not cvc.strip().isdigit():
                self.add_error(
                    "cvc",
                    forms.ValidationError(
                        _("Enter the card's %(digits)d-digit security code."),
                        code="invalid",
                        params={"digits": digits},
                    ),
                )
        return cleaned


class DemoAuthenticationForm(forms.Form):
    """The demo's stand-in for the bank's authentication page (3D Secure)."""

    setup = forms.CharField(widget=forms.HiddenInput)
    next = forms.CharField(max_length=500, required=False, widget=forms.HiddenInput)
    authenticate = forms.ChoiceField(choices=[("complete", "complete"), ("fail", "fail")])
