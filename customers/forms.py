from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from customers.models import Customer


class NewCustomerForm(forms.Form):
    """NEW CUSTOMER. Field checks that need the reseller live in customers.services."""

    contact_name = forms.CharField(label=_("Contact name"), max_length=200)
    contact_email = forms.EmailField(label=_("Contact email"), max_length=254)
    customer_type = forms.ChoiceField(
        label=_("Customer type"),
        choices=Customer.Type.choices,
        initial=Customer.Type.DOMAIN,
        widget=forms.RadioSelect,
        help_text=_(
            "Domain: the organisation owns a Google domain. Team: people with "
            "verified emails and no domain."
        ),
    )
    domain = forms.CharField(
        label=_("Google domain"),
        max_length=253,
        required=False,
        help_text=_("For example example.com; internationalised names are accepted."),
    )
    organisation = forms.CharField(label=_("Organisation name"), max_length=200)
    education = forms.BooleanField(label=_("Education institution"), required=False)
    crm_id = forms.CharField(label=_("CRM id"), max_length=100, required=False)
    admin_name = forms.CharField(label=_("Admin contact name"), max_length=200, required=False)
    admin_address = forms.CharField(
        label=_("Postal address"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    admin_alternate_email = forms.EmailField(
        label=_("Alternate email"),
        required=False,
        help_text=_("An address outside the customer's domain."),
    )
    admin_phone = forms.CharField(label=_("Phone"), max_length=32, required=False)
    language = forms.ChoiceField(label=_("Language"), choices=settings.LANGUAGES)
    time_zone = forms.CharField(label=_("Time zone"), max_length=64)
