from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _
from django_countries import countries

from core.validators import (
    ADDRESS_MAX_LENGTH,
    validate_multi_line,
    validate_name,
    validate_single_line,
)
from customers import selectors
from customers.models import COUNTRY_REQUIRED, Customer


def _country_choices() -> list[tuple[str, str]]:
    # A callable: the names are listed in the language of each request. The empty choice comes
    # first, so that a form without a country shows none chosen instead of the list's first.
    return [("", "---------"), *countries]


class CustomerContactForm(forms.Form):
    """The details a reseller keeps up to date. Checks that need the reseller or the domain live
    in customers.services."""

    organisation = forms.CharField(
        label=_("Organisation name"), max_length=200, validators=[validate_name]
    )
    contact_name = forms.CharField(
        label=_("Contact name"), max_length=200, validators=[validate_name]
    )
    contact_email = forms.EmailField(label=_("Contact email"), max_length=254)
    education = forms.BooleanField(label=_("Education institution"), required=False)
    country = forms.ChoiceField(
        label=_("Country"),
        choices=_country_choices,
        help_text=_("Where the organisation is established; its invoices' VAT follows it."),
        error_messages={"required": COUNTRY_REQUIRED},
    )
    vat_id = forms.CharField(
        label=_("VAT id"),
        max_length=32,
        required=False,
        validators=[validate_single_line],
        help_text=_("For a business in the EU: its invoices then use the reverse charge."),
    )
    crm_id = forms.CharField(
        label=_("CRM id"), max_length=100, required=False, validators=[validate_single_line]
    )
    admin_name = forms.CharField(
        label=_("Admin contact name"), max_length=200, required=False, validators=[validate_name]
    )
    admin_address = forms.CharField(
        label=_("Postal address"),
        max_length=ADDRESS_MAX_LENGTH,
        required=False,
        validators=[validate_multi_line],
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    admin_alternate_email = forms.EmailField(
        label=_("Alternate email"),
        required=False,
        help_text=_("An address outside the customer's domain."),
    )
    admin_phone = forms.CharField(
        label=_("Phone"), max_length=32, required=False, validators=[validate_single_line]
    )
    language = forms.ChoiceField(label=_("Language"), choices=settings.LANGUAGES)
    time_zone = forms.CharField(label=_("Time zone"), max_length=64)


class NewCustomerForm(CustomerContactForm):
    """NEW CUSTOMER: the contact details plus what identifies the customer."""

    customer_type = forms.ChoiceField(
        label=_("Customer type"),
        choices=Customer.Type.choices,
        initial=Customer.Type.DOMAIN,
        widget=forms.RadioSelect,
        help_text=_(
            "Domain customer: the organisation owns a Google domain. Team customer: people "
            "with verified emails and no domain."
        ),
    )
    domain = forms.CharField(
        label=_("Google domain"),
        max_length=253,
        required=False,
        help_text=_("For example example.com; internationalised names are accepted."),
    )

    field_order = [
        "contact_name",
        "contact_email",
        "customer_type",
        "domain",
        "organisation",
        "country",
        "vat_id",
        "education",
        "crm_id",
    ]


class TransferTokenForm(forms.Form):
    """Customer side: the reseller a transfer token is for. Checked in customers.services."""

    reseller_id = forms.CharField(
        label=_("New reseller's ID"),
        max_length=64,
        help_text=_("The reseller finds its ID on its Settings page in this portal."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )


class ImportCustomerForm(forms.Form):
    """Import with transfer token: a domain customer is named by its domain, a team customer
    (no domain) by the customer ID its organisation page shows. The checks live in
    customers.services.customer_import."""

    customer_type = forms.ChoiceField(
        label=_("Customer type"),
        choices=Customer.Type.choices,
        initial=Customer.Type.DOMAIN,
        # Absent (a link or an older page posting only the domain): a domain customer.
        required=False,
        widget=forms.RadioSelect,
    )
    domain = forms.CharField(
        label=_("Google domain"),
        max_length=254,
        required=False,
        help_text=_("For a domain customer."),
    )
    customer_id = forms.CharField(
        label=_("Customer ID"),
        max_length=64,
        required=False,
        help_text=_(
            "For a team customer, which has no domain: the ID shown on its organisation page "
            "in this portal, beside its transfer token."
        ),
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    token = forms.CharField(
        label=_("Transfer token"),
        max_length=200,
        help_text=_("Generated by the customer for your reseller ID; it works once."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    country = forms.ChoiceField(
        label=_("Country"),
        choices=_country_choices,
        required=False,
        help_text=_(
            "Where the organisation is established, asked only if its record has no country "
            "(its invoices need one); otherwise the country on record is kept."
        ),
    )


class CustomerFilterForm(forms.Form):
    """The Customers page's search, status filter and sort (a GET form; the template draws its
    own fields, for their htmx attributes). What it does not know falls back to the default, as
    a hand-edited or outdated link should: it shows the list rather than an error."""

    q = forms.CharField(required=False)
    status = forms.CharField(required=False)
    sort = forms.CharField(required=False)

    def clean_q(self) -> str:
        return selectors.customer_search_normalise(self.cleaned_data["q"])

    def clean_status(self) -> str:
        status = self.cleaned_data["status"]
        return status if status in (*selectors.VISIBLE_STATUSES, *selectors.FORMER_STATUSES) else ""

    def clean_sort(self) -> str:
        return selectors.customer_sort_valid(self.cleaned_data["sort"])

    def filters(self) -> dict[str, str]:
        """customer_page's keyword arguments; a field that did not validate is left at its
        default (call after is_valid())."""
        data = getattr(self, "cleaned_data", {})
        return {
            "query": data.get("q", ""),
            "status": data.get("status", ""),
            "sort": data.get("sort") or selectors.DEFAULT_CUSTOMER_SORT,
        }

    def params(self) -> dict[str, str]:
        """What every link of the page keeps, without empty values or the default sort (a new
        search, filter or sort starts at the first page)."""
        filters = self.filters()
        values = {"q": filters["query"], "status": filters["status"], "sort": filters["sort"]}
        if values["sort"] == selectors.DEFAULT_CUSTOMER_SORT:
            values["sort"] = ""
        return {name: value for name, value in values.items() if value}
