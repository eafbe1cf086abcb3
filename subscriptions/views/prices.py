"""The Price book (issue 16): what the reseller's customers pay for each plan and currency, the
reseller's cost and the margin left, its customers' special prices; setting a price, giving and
ending a special price.

Every member sees the page; cost, discount and margin only a role allowed MARGIN_VIEW, the
forms only one allowed PRICES_MANAGE (the services check the role again). A POST answers with a
redirect and a message, or with the page again (400) showing the service's message beside the
field and what was typed.
"""

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from core.forms import add_service_errors
from core.http import ResellerRequest
from customers import selectors as customer_selectors
from resellers.access import reseller_required
from resellers.roles import Action, require, role_can
from subscriptions import pricing, selectors, services
from subscriptions.forms_prices import PriceRuleForm, SpecialPriceEndForm, SpecialPriceForm
from subscriptions.selectors import CustomerChoices, PriceBookRow


def _page_url(anchor: str = "") -> str:
    url = reverse("subscriptions:price_book")
    return f"{url}#{anchor}" if anchor else url


def _rule_form(row: PriceBookRow, today: Any) -> PriceRuleForm:
    """A row's form, filled with the entry in force (the list price if none)."""
    rule = row.rule
    return PriceRuleForm(
        initial={
            "plan": row.plan.public_id,
            "currency": row.currency,
            "kind": rule.kind if rule else "list",
            "markup_percent": rule.markup_percent if rule else None,
            "price": rule.price if rule else None,
            "valid_from": today,
        },
        auto_id=f"rule-{row.key}-%s",
    )


def _price_book_page(
    request: ResellerRequest,
    *,
    rule_form: PriceRuleForm | None = None,
    special_form: SpecialPriceForm | None = None,
    customers: CustomerChoices | None = None,
    status: int = 200,
) -> HttpResponse:
    reseller, role = request.reseller, request.membership.role
    customer_query = request.GET.get("customer_q", "") if request.method == "GET" else ""
    if can_manage := role_can(role, Action.PRICES_MANAGE):
        customers = customers or selectors.price_customer_choices(
            reseller=reseller, query=customer_query
        )
        special_form = special_form or _special_form(customers)
    today = timezone.localdate()
    discounts = selectors.DiscountTable(reseller=reseller)
    rows = selectors.price_book_rows(reseller=reseller, on=today, discounts=discounts)
    # The row whose form was posted keeps what was typed; the others start afresh.
    posted_key = (
        f"{rule_form.data.get('plan')}-{rule_form.data.get('currency')}" if rule_form else ""
    )
    if can_manage:
        forms = {
            row.key: rule_form if rule_form and row.key == posted_key else _rule_form(row, today)
            for row in rows
        }
    else:
        forms = {}
    page = selectors.special_price_page(
        specials=selectors.special_price_list(reseller=reseller),
        cursor=request.GET.get("cursor", ""),
    )
    context: dict[str, Any] = {
        "rows": [(row, forms.get(row.key)) for row in rows],
        # A posted form that fits no row (a plan taken off sale meanwhile): its errors on top.
        "orphan_rule_form": rule_form if rule_form and posted_key not in forms else None,
        "sees_margin": role_can(role, Action.MARGIN_VIEW),
        "can_manage": can_manage,
        "special_rows": selectors.special_price_rows(
            specials=page.object_list, on=today, discounts=discounts
        ),
        "page": page,
        "links": page.links(),
        "special_form": special_form,
        "customer_query": customer_query,
        "more_customers": customers.more if customers else False,
        "customer_choices_limit": selectors.PRICE_CUSTOMER_CHOICES,
        "notice_days": pricing.NOTICE_DAYS,
    }
    return render(request, "subscriptions/price_book.html", context, status=status)


def _special_form(customers: CustomerChoices, data: Any = None) -> SpecialPriceForm:
    return SpecialPriceForm(data, customers=customers.choices, auto_id="special-%s")


@reseller_required(Action.CUSTOMER_VIEW)
@require_GET
@vary_on_headers("HX-Request")
def price_book(request: ResellerRequest) -> HttpResponse:
    """The Price book: plans by currencies, and the customers' special prices. An htmx request
    with `customer_q` gets the special price form's customer list only, those matching it."""
    if request.htmx and "customer_q" in request.GET:
        require(request.membership.role, Action.PRICES_MANAGE)
        customers = selectors.price_customer_choices(
            reseller=request.reseller, query=request.GET["customer_q"]
        )
        return render(
            request,
            "subscriptions/price_book.html#customer_select",
            {"special_form": _special_form(customers)},
        )
    return _price_book_page(request)


@reseller_required(Action.PRICES_MANAGE)
@require_POST
def price_rule_set(request: ResellerRequest) -> HttpResponse:
    """Set what customers pay for one plan in one currency, from a day on."""
    data = request.POST
    form = PriceRuleForm(data, auto_id=f"rule-{data.get('plan')}-{data.get('currency')}-%s")
    if form.is_valid():
        values = form.cleaned_data
        try:
            rule = services.price_rule_set(
                membership=request.membership,
                plan=values["plan"],
                currency=values["currency"],
                kind=values["kind"],
                markup_percent=values["markup_percent"],
                price=values["price"],
                valid_from=values["valid_from"],
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(
                request,
                _("The price of %(plan)s in %(currency)s is set from %(date)s.")
                % {
                    "plan": rule.plan,
                    "currency": rule.currency,
                    "date": formats.date_format(rule.valid_from),
                },
            )
            return redirect(_page_url(f"price-{rule.plan.public_id}-{rule.currency}"))
    return _price_book_page(request, rule_form=form, status=400)


@reseller_required(Action.PRICES_MANAGE)
@require_POST
def special_price_add(request: ResellerRequest) -> HttpResponse:
    """Give one of the reseller's customers a special price."""
    reseller = request.reseller
    customers = selectors.price_customer_choices(reseller=reseller)
    form = _special_form(customers, request.POST)
    if form.is_valid():
        values = form.cleaned_data
        # Another reseller's customer is the same 404 as a missing one.
        customer = selectors.price_customer_get(reseller=reseller, public_id=values["customer"])
        try:
            services.customer_price_set(
                membership=request.membership,
                customer=customer,
                plan=values["plan"],
                currency=values["currency"],
                price=values["price"],
                valid_from=values["valid_from"],
                ends_on=values["ends_on"],
            )
        except ValidationError as error:
            add_service_errors(form, error)
            # The customer stays chosen, even one found beyond the first of the list.
            form.offer_customer(customer.public_id, customer.organisation)
        else:
            messages.success(
                request,
                _("%(customer)s has a special price for %(plan)s from %(date)s.")
                % {
                    "customer": customer.organisation,
                    "plan": values["plan"],
                    "date": formats.date_format(values["valid_from"]),
                },
            )
            return redirect(_page_url("special-prices"))
    return _price_book_page(request, special_form=form, customers=customers, status=400)


@reseller_required(Action.PRICES_MANAGE)
@require_POST
def special_price_end(request: ResellerRequest, customer_id: str) -> HttpResponse:
    """End a customer's special price today (withdraw it if it has not started)."""
    customer = customer_selectors.customer_get(reseller=request.reseller, public_id=customer_id)
    form = SpecialPriceEndForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose the special price to end."))
        return redirect(_page_url("special-prices"))
    special = selectors.special_price_get(
        customer=customer, special_price_id=form.cleaned_data["special_price"]
    )
    try:
        special = services.customer_price_end(membership=request.membership, customer_price=special)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        assert special.ends_on is not None  # the service has just set it
        messages.success(
            request,
            _("The special price of %(customer)s for %(plan)s ends on %(date)s.")
            % {
                "customer": customer.organisation,
                "plan": special.plan,
                "date": formats.date_format(special.ends_on),
            },
        )
    return redirect(_page_url("special-prices"))
