"""Buy a subscription, Add licences with + and -, Order now; and the subscriptions section of the
reseller's customer page and the Customers list's plan and licence columns."""

from decimal import Decimal
from typing import Any, cast

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Sum
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from core.forms import add_service_errors
from core.http import ResellerRequest
from customers import selectors as customer_selectors
from customers.models import Customer
from resellers.access import reseller_required
from resellers.roles import Action, role_can
from subscriptions import selectors, services
from subscriptions.forms import BuyForm, LicenceForm, licences_change_text
from subscriptions.models import Plan, Subscription

# What the Add licences form's buttons ask for: "+", "-", the price of the typed number, or
# the order itself. Only "order" changes anything.
STEP_UP = "up"
STEP_DOWN = "down"
STEP_SHOW = "show"
STEP_ORDER = "order"


def _not_sellable_reason(customer: Customer) -> str:
    if customer.status == Customer.Status.INVITED:
        return _(
            "%(organisation)s has not accepted the invitation yet. Licences can be bought for it "
            "once it has."
        ) % {"organisation": customer.organisation}
    return _("Licences cannot be bought for a customer whose status is %(status)s.") % {
        "status": customer.get_status_display()
    }


# Buy


# The order forms are never cached: a page brought back from the browser's cache would carry an
# order key already used, and its order would be the earlier one.
def _purchase_preview(
    form: BuyForm, data: QueryDict, customer: Customer, currency: str
) -> tuple[services.LicenceQuote | None, Plan | None, str]:
    """What the chosen plan and number cost the customer (due now, per period), or why there
    is no price; nothing until both are given."""
    plan = form.plans.get(data.get("plan", ""))
    typed = data.get("licences", "").strip()
    if plan is None or not typed:
        return None, plan, ""
    try:
        count = int(typed)
    except ValueError:
        return None, plan, _("Enter a whole number of licences.")
    try:
        quote = services.subscription_preview_purchase(
            customer=customer, plan=plan, licences=count, currency=currency
        )
    except ValidationError as error:
        return None, plan, " ".join(error.messages)
    return quote, plan, ""


@reseller_required(Action.SUBSCRIPTION_BUY)
@never_cache
@vary_on_headers("HX-Request")
def subscription_buy(request: ResellerRequest, customer_id: str) -> HttpResponse:
    """Buy: product and plan, licences, who pays. Only for an Active customer."""
    membership = request.membership
    reseller = membership.reseller
    customer = customer_selectors.customer_get(reseller=reseller, public_id=customer_id)
    if customer.status != Customer.Status.ACTIVE:
        return render(
            request,
            "subscriptions/buy.html",
            {"customer": customer, "not_sellable": _not_sellable_reason(customer)},
            status=400 if request.method == "POST" else 200,
        )
    held = [
        subscription
        for subscription in selectors.subscription_list(reseller=reseller, customer=customer)
        if subscription.is_live
    ]
    # Products already held stay on offer: a repeated submit must find its plan to be answered
    # with the first order, and the service says "add licences instead" to a new one.
    plans = list(selectors.plan_list_for_purchase(currency=reseller.currency))
    form = BuyForm(
        request.POST or None,
        plans=plans,
        currency=reseller.currency,
        initial={"key": services.order_key_new()},
    )
    if request.method == "POST" and form.is_valid():
        try:
            order = services.subscription_buy(
                membership=membership,
                customer=customer,
                plan=form.cleaned_data["plan"],
                licences=form.cleaned_data["licences"],
                payer=form.cleaned_data["payer"],
                order_key=form.cleaned_data["key"],
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            return redirect("subscriptions:order_done", order_id=order.public_id)
    # The price before Order now: htmx asks for it (GET) as the plan or number changes; without
    # JavaScript it shows with the page the form comes back on.
    quote, quote_plan, quote_error = _purchase_preview(
        form, request.POST if request.method == "POST" else request.GET, customer, reseller.currency
    )
    context = {
        "customer": customer,
        "form": form,
        "held": held,
        "has_plans": bool(plans),
        "quote": quote,
        "quote_plan": quote_plan,
        "quote_error": quote_error,
    }
    if request.htmx and request.method == "GET":
        return render(request, "subscriptions/buy.html#preview", context)
    return render(request, "subscriptions/buy.html", context, status=400 if form.errors else 200)


# Add licences


def _error_code(error: ValidationError, field: str) -> str | None:
    errors = getattr(error, "error_dict", {}).get(field, [])
    return errors[0].code if errors else None


def _stale_message(count: int) -> str:
    # The service's words for the same situation, found before ordering.
    return _(
        "Someone changed the number of licences to %(count)d while this page was open. Check "
        "the new count and order again."
    ) % {"count": count}


def _licence_data(
    source: QueryDict, subscription: Subscription, step: str
) -> tuple[QueryDict, str]:
    """The form's data to render or order with, and a notice if the page was stale.

    Anything but an order brings the page up to date: the count it is based on becomes the
    current one (saying so if that changed) and a missing order key is made. "+" and "-" move
    the typed number by one."""
    data = source.copy()
    notice = ""
    if step != STEP_ORDER:
        shown = data.get("expected", "")
        if shown.isdigit() and int(shown) != subscription.licences:
            notice = _stale_message(subscription.licences)
        data["expected"] = str(subscription.licences)
        if not data.get("key"):
            data["key"] = services.order_key_new()
    if step in (STEP_UP, STEP_DOWN):
        typed = LicenceForm(data).typed_count()
        if typed is not None:
            data["licences"] = str(typed + 1 if step == STEP_UP else typed - 1)
    return data, notice


def _preview(
    form: LicenceForm, subscription: Subscription, role: str
) -> tuple[services.LicenceQuote | None, str]:
    """The quote for the typed number, or the reason there is none beside the field; and the
    service's code when it needs more than its message: "unchanged" (the current count: said
    without an error) or "annual_no_removal" (the page links to the renewal settings)."""
    if not form.is_valid():
        return None, ""
    count = form.cleaned_data["licences"]
    try:
        quote = services.subscription_preview_licences(subscription=subscription, new_count=count)
    except ValidationError as error:
        code = _error_code(error, "licences") or ""
        if code != "unchanged":
            add_service_errors(form, error)
        return None, code
    if quote.change < 0 and not role_can(role, Action.LICENCES_REMOVE):
        form.add_error("licences", _removal_not_allowed())
        return None, ""
    return quote, ""


def _removal_not_allowed() -> str:
    return _("Your role can add licences but not remove them. Ask an admin or the owner.")


def _licence_page(
    request: ResellerRequest,
    subscription: Subscription,
    form: LicenceForm,
    *,
    notice: str = "",
    code: str = "",
    status: int = 200,
) -> HttpResponse:
    """`code`: why the order was refused, if the service said so."""
    role = request.membership.role
    if not form.errors:
        quote, code = _preview(form, subscription, role)
    else:
        quote = None
    plan = subscription.plan
    can_remove = role_can(role, Action.LICENCES_REMOVE) and not plan.is_annual
    count = form.typed_count()
    context: dict[str, Any] = {
        "subscription": subscription,
        "customer": subscription.customer,
        "form": form,
        "quote": quote,
        "change_text": licences_change_text(quote.change) if quote else "",
        "unchanged": code == "unchanged",
        "renewal_hint": code == "annual_no_removal",
        "notice": notice,
        "limit": plan.licence_limit,
        # Here, not in the template: the htmx fragments need it too.
        "terms_url": reverse(
            "subscriptions:detail", kwargs={"subscription_id": subscription.public_id}
        ),
        "can_remove": can_remove,
        "may_remove_by_role": role_can(role, Action.LICENCES_REMOVE),
        "plus_disabled": count is not None and count >= plan.licence_limit,
        "minus_disabled": count is not None
        and (count <= 1 or (count <= subscription.licences and not can_remove)),
    }
    template = "subscriptions/licences.html"
    if request.htmx:
        # htmx swaps only 2xx answers: the messages travel in the fragment.
        template += "#preview" if request.method == "GET" else "#quantity"
        status = 200
    return render(request, template, context, status=status)


@reseller_required(Action.LICENCES_ADD)
@never_cache
@vary_on_headers("HX-Request")
def subscription_licences(request: ResellerRequest, subscription_id: str) -> HttpResponse:
    """Manage → Add licences: the number with + and -, the prorated price before ordering,
    Order now. GET with `licences` (htmx, as the number is typed) previews; POST with
    step=up/down/show re-renders (+ and - without JavaScript); step=order orders."""
    membership = request.membership
    subscription = selectors.subscription_get(
        reseller=membership.reseller, public_id=subscription_id
    )
    source: QueryDict
    if request.method == "POST":
        step = request.POST.get("step", STEP_SHOW)
        source = request.POST
    elif "licences" in request.GET:
        step, source = STEP_SHOW, request.GET
    else:
        # First visit: one licence more than now (or the plan's maximum), previewed at once.
        step = STEP_SHOW
        first = min(subscription.licences + 1, subscription.plan.licence_limit)
        source = QueryDict(f"licences={first}")
    data, notice = _licence_data(source, subscription, step)
    form = LicenceForm(data)
    if step != STEP_ORDER or not form.is_valid():
        return _licence_page(
            request,
            subscription,
            form,
            notice=notice,
            status=400 if step == STEP_ORDER else 200,
        )
    try:
        order = services.subscription_change_licences(
            membership=membership,
            subscription=subscription,
            new_count=form.cleaned_data["licences"],
            expected_count=form.cleaned_data["expected"],
            order_key=form.cleaned_data["key"],
        )
    except PermissionDenied:
        form.add_error("licences", _removal_not_allowed())
        return _licence_page(request, subscription, form, status=403)
    except ValidationError as error:
        if _error_code(error, "licences") == "stale":
            # Ask again from the count as it is now (the page's hidden count is the current
            # one), keeping the typed number and the key.
            subscription = selectors.subscription_get(
                reseller=membership.reseller, public_id=subscription_id
            )
            form = LicenceForm(data)
            notice = " ".join(error.message_dict["licences"])
            return _licence_page(request, subscription, form, notice=notice, status=409)
        add_service_errors(form, error)
        code = _error_code(error, "licences") or ""
        return _licence_page(request, subscription, form, code=code, status=400)
    done_url = reverse("subscriptions:order_done", kwargs={"order_id": order.public_id})
    if request.htmx:
        return HttpResponseClientRedirect(done_url)
    return redirect(done_url)


@reseller_required(Action.CUSTOMER_VIEW)
@require_GET
def order_done(request: ResellerRequest, order_id: str) -> HttpResponse:
    """The confirmation after Order now or Buy: reference, what changed, the amount; and for
    roles that see margins, the reseller's cost and margin on it, as its charges keep them."""
    order = selectors.order_get(reseller=request.reseller, public_id=order_id)
    margin = None
    if role_can(request.membership.role, Action.MARGIN_VIEW):
        margin = order.charges.aggregate(
            cost=Coalesce(Sum("cost_amount"), Decimal("0.00")),
            margin=Coalesce(Sum("margin_amount"), Decimal("0.00")),
        )
    return render(
        request,
        "subscriptions/order_done.html",
        {
            "order": order,
            "subscription": order.subscription,
            "customer": order.customer,
            "change_text": licences_change_text(order.licences_after - order.licences_before),
            "margin": margin,
        },
    )


# The customer page's subscriptions section and the Customers list's columns (registered in
# SubscriptionsConfig.ready()).


def customer_section(request: HttpRequest, customer: Customer) -> SafeString:
    """The reseller's view of a customer's subscriptions, with Add licences and Buy."""
    # Rendered only into the reseller's customer page, which is behind reseller_required.
    membership = cast(ResellerRequest, request).membership
    subscriptions = list(
        selectors.subscription_list(reseller=membership.reseller, customer=customer)
    )
    return render_to_string(
        "subscriptions/_customer_section.html",
        {
            "customer": customer,
            "subscriptions": subscriptions,
            "can_buy": role_can(membership.role, Action.SUBSCRIPTION_BUY)
            and customer.status == Customer.Status.ACTIVE,
            "can_add": role_can(membership.role, Action.LICENCES_ADD),
            "not_sellable": _not_sellable_reason(customer)
            if customer.status != Customer.Status.ACTIVE
            else "",
        },
        request=request,
    )


def customer_row_summaries(customer_ids: list[int]) -> dict[int, dict[str, Any]]:
    """The Customers list's Plan (the plans' names) and Licences (a number, which its template
    formats), and the number of live subscriptions (its CSV), for a page of customers, in one
    query for the page. No subscription, no entry."""
    summaries = selectors.customer_plan_summaries(customer_ids=customer_ids)
    kinds = {value: str(label) for value, label in Plan.Kind.choices}
    return {
        pk: {
            "plan": ", ".join(kinds[kind] for kind in summary.plan_kinds),
            "licences": summary.licences,
            "subscriptions": summary.subscriptions,  # live ones: the Customers CSV
        }
        for pk, summary in summaries.items()
        if summary.plan_kinds
    }
