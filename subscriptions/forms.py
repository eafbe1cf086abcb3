"""Forms of the ordering pages. They parse what was typed; the services judge it (licence
limits, plan rules, roles) and their messages are shown beside the fields."""

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from core.money import money_format
from customers.selectors import SEARCH_MAX_LENGTH, customer_search_normalise
from resellers.models import Currency
from subscriptions import selectors
from subscriptions.models import Payer, Plan, Subscription
from subscriptions.periods import TERM_MONTHS, TRIAL_DAYS
from subscriptions.services import ORDER_KEY_MAX_LENGTH


def plan_label(plan: Plan, *, currency: str) -> str:
    """A plan as the Buy page offers it: kind, price and commitment."""
    prices = getattr(plan, "price_list", None)
    if prices is None:
        prices = [price for price in plan.prices.all() if price.currency == currency]
    monthly = prices[0].monthly_price if prices else Decimal("0.00")
    values = {
        "kind": plan.get_kind_display(),
        "price": money_format(monthly, currency),
        "yearly": money_format(monthly * TERM_MONTHS, currency),
        "limit": plan.licence_limit,
        "days": TRIAL_DAYS,
    }
    if plan.is_trial:
        return _("%(kind)s: free for %(days)d days, at most %(limit)d licences") % values
    if plan.kind == Plan.Kind.FLEXIBLE:
        text = _(
            "%(kind)s: %(price)s per licence per month, billed monthly, no commitment; "
            "at most %(limit)d licences"
        )
    elif plan.kind == Plan.Kind.ANNUAL_MONTHLY:
        text = _(
            "%(kind)s: %(price)s per licence per month, billed monthly, 12-month commitment; "
            "at most %(limit)d licences"
        )
    else:
        text = _(
            "%(kind)s: %(price)s per licence per month, billed yearly (%(yearly)s per licence), "
            "12-month commitment; at most %(limit)d licences"
        )
    return text % values


class BuyForm(forms.Form):
    plan = forms.ChoiceField(
        label=gettext_lazy("Product and plan"),
        widget=forms.RadioSelect,
        error_messages={"required": gettext_lazy("Choose a product and plan.")},
    )
    licences = forms.IntegerField(
        label=gettext_lazy("Licences"),
        help_text=gettext_lazy("A trial has at most 10 licences; each plan shows its maximum."),
        error_messages={
            "required": gettext_lazy("Enter the number of licences."),
            "invalid": gettext_lazy("Enter a whole number of licences."),
        },
        widget=forms.NumberInput(attrs={"min": 1, "step": 1, "inputmode": "numeric"}),
    )
    payer = forms.ChoiceField(
        label=gettext_lazy("Who pays"),
        choices=Payer.choices,
        initial=Payer.RESELLER_CARD,
        widget=forms.RadioSelect,
        help_text=gettext_lazy(
            "Whose card pays this subscription's invoices: yours or the customer's. You can "
            "change it later on the subscription's page."
        ),
        error_messages={"required": gettext_lazy("Choose who pays.")},
    )
    key = forms.CharField(widget=forms.HiddenInput, max_length=ORDER_KEY_MAX_LENGTH)

    def __init__(self, *args: Any, plans: Iterable[Plan], currency: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.plans = {plan.public_id: plan for plan in plans}
        groups: dict[str, list[tuple[str, str]]] = {}
        for plan in self.plans.values():
            groups.setdefault(plan.product.name, []).append(
                (plan.public_id, plan_label(plan, currency=currency))
            )
        self.fields["plan"].choices = list(groups.items())  # type: ignore[attr-defined]

    def clean_plan(self) -> Plan:
        return self.plans[self.cleaned_data["plan"]]


class LicenceForm(forms.Form):
    """Add licences: the new total, the count the page showed and the one-time order key."""

    licences = forms.IntegerField(
        label=gettext_lazy("Number of licences"),
        error_messages={
            "required": gettext_lazy("Enter the number of licences."),
            "invalid": gettext_lazy("Enter a whole number of licences."),
        },
    )
    # The count the page showed: if it changed meanwhile the order is refused and asked again.
    expected = forms.IntegerField(widget=forms.HiddenInput, min_value=0)
    key = forms.CharField(
        widget=forms.HiddenInput,
        max_length=ORDER_KEY_MAX_LENGTH,
        error_messages={"required": gettext_lazy("This form has expired. Open the page again.")},
    )

    def typed_count(self) -> int | None:
        """The number in the field, valid or not as an order, or None if it is not a number."""
        value = self["licences"].value()
        try:
            return int(str(value).strip())
        except (TypeError, ValueError):
            return None


def licences_change_text(change: int) -> str:
    if change >= 0:
        return ngettext("%(n)d licence added", "%(n)d licences added", change) % {"n": change}
    return ngettext("%(n)d licence removed", "%(n)d licences removed", -change) % {"n": -change}


class SubscriptionFilterForm(forms.Form):
    """The Subscriptions page's filters and sort (a GET form); the CSV export takes the same.
    As on the Invoices page, a value a filter does not know (a hand-edited link, a product id
    that does not exist, a malformed date) is an error beside it, not a silently wider list; an
    unknown sort falls back to the default, as on the Customers page."""

    customer = forms.CharField(
        label=gettext_lazy("Customer"),
        required=False,
        widget=forms.TextInput(
            # Longer searches are cut to this (clean_customer): the box takes no more.
            attrs={
                "type": "search",
                "placeholder": gettext_lazy("Organisation, domain or email"),
                "maxlength": SEARCH_MAX_LENGTH,
            }
        ),
    )
    status = forms.ChoiceField(
        label=gettext_lazy("Status"),
        required=False,
        choices=[
            # Translators: the Subscriptions page's default status filter: not cancelled.
            ("", gettext_lazy("Live")),
            (selectors.ALL_STATUSES, gettext_lazy("All")),
            *Subscription.Status.choices,
        ],
    )
    product = forms.ChoiceField(label=gettext_lazy("Product"), required=False)
    plan = forms.ChoiceField(
        label=gettext_lazy("Plan"),
        required=False,
        choices=[
            ("", gettext_lazy("Any plan")),
            # Translators: a plan filter option: both annual plans (paid monthly or yearly).
            (selectors.ANNUAL_PLANS, gettext_lazy("Annual, paid either way")),
            *Plan.Kind.choices,
        ],
    )
    renewal = forms.ChoiceField(
        label=gettext_lazy("Renewal setting"),
        required=False,
        choices=[("", gettext_lazy("Any renewal setting")), *Subscription.RenewalSetting.choices],
    )
    currency = forms.ChoiceField(
        label=gettext_lazy("Currency"),
        required=False,
        choices=[("", gettext_lazy("Any currency")), *Currency.choices],
    )
    term_ends_before = forms.DateField(
        label=gettext_lazy("Term ends before"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    sort = forms.CharField(
        label=gettext_lazy("Sort by"),
        required=False,
        widget=forms.Select(
            choices=[
                ("customer", gettext_lazy("Customer, A to Z")),
                ("-customer", gettext_lazy("Customer, Z to A")),
                ("term_end", gettext_lazy("Term or period end, soonest first")),
                ("-term_end", gettext_lazy("Term or period end, latest first")),
                ("-licences", gettext_lazy("Licences, most first")),
                ("licences", gettext_lazy("Licences, fewest first")),
                ("-created", gettext_lazy("Newest first")),
                ("created", gettext_lazy("Oldest first")),
            ]
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        product = self.fields["product"]
        assert isinstance(product, forms.ChoiceField)
        product.choices = [
            ("", gettext_lazy("Any product")),
            *selectors.subscription_product_choices(),
        ]

    def clean_customer(self) -> str:
        return customer_search_normalise(self.cleaned_data["customer"])

    def clean_sort(self) -> str:
        return selectors.subscription_sort_valid(self.cleaned_data["sort"])

    def filters(self) -> dict[str, Any]:
        """subscription_list_for_reseller's (and _page's) keyword arguments; call after
        is_valid()."""
        data = self.cleaned_data
        return {
            "query": data.get("customer", ""),
            "status": data.get("status", ""),
            "product": data.get("product", ""),
            "plan_kind": data.get("plan", ""),
            "renewal": data.get("renewal", ""),
            "currency": data.get("currency", ""),
            "term_ends_before": data.get("term_ends_before"),
            "sort": data.get("sort") or selectors.DEFAULT_SUBSCRIPTION_SORT,
        }

    def params(self) -> dict[str, str]:
        """The filters as they go back into links (pages, export), without empty ones or the
        default sort."""
        data = self.cleaned_data
        values = {
            name: data.get(name, "")
            for name in ("customer", "status", "product", "plan", "renewal", "currency")
        }
        ends = data.get("term_ends_before")
        values["term_ends_before"] = ends.isoformat() if ends else ""
        sort = data.get("sort", "")
        values["sort"] = "" if sort == selectors.DEFAULT_SUBSCRIPTION_SORT else sort
        return {name: value for name, value in values.items() if value}
