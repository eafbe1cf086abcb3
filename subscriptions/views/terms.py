"""Plans and terms of a subscription: change plan, renewal settings, cancel, suspend; and the
customer's own read-only view of its subscriptions.

Every POST goes through one service, which holds the rule and the role check; the decorators
only keep people off pages whose only purpose their role does not allow.
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from core.forms import add_service_errors
from core.http import ResellerRequest
from customers import selectors as customer_selectors
from customers.models import Customer
from resellers.access import reseller_required
from resellers.roles import Action
from subscriptions import pricing, selectors, services
from subscriptions.forms_terms import ChangePlanForm, RenewalForm
from subscriptions.models import Plan, Subscription
from subscriptions.periods import (
    TERM_MONTHS,
    Period,
    money_round,
    monthly_period,
    period_price,
    term_end,
    yearly_period,
)

Renewal = Subscription.RenewalSetting


def _subscription(request: ResellerRequest, subscription_id: str) -> Subscription:
    return selectors.subscription_get(
        reseller=request.reseller,
        public_id=subscription_id,
    )


def _detail_url(subscription: Subscription, anchor: str = "") -> str:
    url = reverse("subscriptions:detail", kwargs={"subscription_id": subscription.public_id})
    return f"{url}#{anchor}" if anchor else url


def _renewal_form(subscription: Subscription) -> RenewalForm:
    return RenewalForm(
        initial={
            "setting": subscription.renewal_setting,
            "renewal_licences": subscription.renewal_licences or subscription.licences,
        }
    )


def _detail_page(
    request: ResellerRequest,
    subscription: Subscription,
    *,
    renewal_form: RenewalForm | None = None,
    status: int = 200,
) -> HttpResponse:
    plan = subscription.plan
    context: dict[str, Any] = {
        "subscription": subscription,
        "customer": subscription.customer,
        "plan": plan,
        "period_price": period_price(
            monthly_price=subscription.monthly_price, months=plan.months_per_period
        ),
        "recurring_amount": money_round(
            subscription.licences
            * period_price(monthly_price=subscription.monthly_price, months=plan.months_per_period)
        ),
        "ledger": selectors.subscription_ledger(subscription=subscription),
        "upcoming": pricing.upcoming_price(subscription=subscription),
        "renewal_form": renewal_form or _renewal_form(subscription),
        "plan_choices": selectors.subscription_plan_choices(subscription=subscription),
    }
    return render(request, "subscriptions/detail.html", context, status=status)


@reseller_required(Action.CUSTOMER_VIEW)
@require_GET
def subscription_detail(request: ResellerRequest, subscription_id: str) -> HttpResponse:
    """Plans and terms: plan, price, licences, period, term, renewal, payer, the ledger."""
    return _detail_page(request, _subscription(request, subscription_id))


@reseller_required(Action.LICENCES_ADD)
@require_POST
def subscription_renewal(request: ResellerRequest, subscription_id: str) -> HttpResponse:
    """Renewal settings of an annual plan (the #renewal section of Plans and terms)."""
    membership = request.membership
    subscription = _subscription(request, subscription_id)
    form = RenewalForm(request.POST)
    if form.is_valid():
        try:
            services.subscription_set_renewal(
                membership=membership,
                subscription=subscription,
                setting=form.cleaned_data["setting"],
                licences=form.cleaned_data["renewal_licences"],
            )
        except ValidationError as error:
            if hasattr(error, "error_dict"):
                add_service_errors(form, error)
            else:
                # About the subscription, not a field (e.g. not an annual plan): said at the
                # top of the page, which may not show the form at all.
                messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, _("The renewal setting was saved."))
            return redirect(_detail_url(subscription, "renewal"))
    return _detail_page(request, subscription, renewal_form=form, status=400)


# Change plan


@dataclass(frozen=True)
class PlanChangeEffect:
    """What changing to `plan` does, for the confirmation (the service does the change)."""

    plan: Plan
    timing: str  # "now" or "at_term_end"
    effective: date
    monthly_price: Decimal
    period_price: Decimal
    recurring_amount: Decimal
    term_start: date | None
    term_end: date | None  # exclusive: the renewal day
    charged_now: Decimal
    charged_period: Period | None
    # The reseller's side (shown only to roles with Action.MARGIN_VIEW): its cost of what is
    # charged now and of each period at the new plan's price.
    charged_cost: Decimal
    recurring_cost: Decimal

    @property
    def charged_margin(self) -> Decimal:
        return self.charged_now - self.charged_cost

    @property
    def recurring_margin(self) -> Decimal:
        return self.recurring_amount - self.recurring_cost


def _plan_change_effect(subscription: Subscription, plan: Plan, timing: str) -> PlanChangeEffect:
    """Mirrors services.subscription_change_plan: when the change applies, the term it starts
    and what is charged at once, at the customer's price of today (the reseller's cost of the
    first day of the period charged)."""
    today = timezone.localdate()
    quote = pricing.customer_price(
        customer=subscription.customer, plan=plan, currency=subscription.currency, on=today
    )
    monthly = quote.customer_price
    unit = period_price(monthly_price=monthly, months=plan.months_per_period)
    licences = subscription.licences
    recurring = money_round(licences * unit)
    recurring_cost = money_round(
        licences * period_price(monthly_price=quote.cost, months=plan.months_per_period)
    )
    term_start = new_term_end = None
    charged_now = charged_cost = Decimal("0.00")
    charged_period: Period | None = None
    if timing == "at_term_end":
        effective = subscription.term_end or subscription.period_end
    elif subscription.plan.is_trial:
        # Paid service starts today: a new billing day, the first period charged in advance.
        effective = today
        if plan.kind == Plan.Kind.ANNUAL_YEARLY:
            charged_period = yearly_period(on=today, anchor_day=today.day, anchor_month=today.month)
        else:
            charged_period = monthly_period(on=today, anchor_day=today.day)
        if plan.is_annual:
            term_start, new_term_end = today, term_end(start=today, anchor_day=today.day)
        charged_now, charged_cost = recurring, recurring_cost
    else:
        # Flexible → annual: the term counts from the start of the period already paid.
        effective = today
        current = subscription.period
        term_start = current.start
        new_term_end = term_end(start=current.start, anchor_day=subscription.anchor_day)
        if plan.kind == Plan.Kind.ANNUAL_YEARLY:
            charged_period = Period(current.end, new_term_end)
            charged_now = money_round(
                licences * period_price(monthly_price=monthly, months=TERM_MONTHS - 1)
            )
            cost = pricing.customer_price(
                customer=subscription.customer,
                plan=plan,
                currency=subscription.currency,
                on=charged_period.start,
            ).cost
            charged_cost = money_round(
                licences * period_price(monthly_price=cost, months=TERM_MONTHS - 1)
            )
    return PlanChangeEffect(
        plan=plan,
        timing=timing,
        effective=effective,
        monthly_price=monthly,
        period_price=unit,
        recurring_amount=recurring,
        term_start=term_start,
        term_end=new_term_end,
        charged_now=charged_now,
        charged_period=charged_period,
        charged_cost=charged_cost,
        recurring_cost=recurring_cost,
    )


@reseller_required(Action.SUBSCRIPTION_BUY)
def subscription_change_plan(request: ResellerRequest, subscription_id: str) -> HttpResponse:
    """Change plan: choose among the allowed plans (GET), read what it does and when
    (GET ?plan=…), confirm (POST)."""
    membership = request.membership
    subscription = _subscription(request, subscription_id)
    choices = selectors.subscription_plan_choices(subscription=subscription)
    timings = {plan.pk: timing for plan, timing in choices}
    data = request.POST if request.method == "POST" else request.GET
    form = ChangePlanForm(data if "plan" in data else None, subscription=subscription)
    effect: PlanChangeEffect | None = None
    if form.is_bound and form.is_valid():
        plan: Plan = form.cleaned_data["plan"]
        if request.method == "POST":
            try:
                subscription = services.subscription_change_plan(
                    membership=membership, subscription=subscription, plan=plan
                )
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                messages.success(request, _plan_changed_message(subscription, plan))
                return redirect(_detail_url(subscription))
        elif plan.pk not in timings:
            form.add_error("plan", _("Choose one of the plans offered."))
        else:
            try:
                effect = _plan_change_effect(subscription, plan, timings[plan.pk])
            except ValidationError as error:
                add_service_errors(form, error)
    context = {
        "subscription": subscription,
        "customer": subscription.customer,
        "form": form,
        "options": _plan_options(subscription, choices),
        "effect": effect,
    }
    return render(
        request,
        "subscriptions/change_plan.html",
        context,
        status=400 if form.errors else 200,
    )


def _plan_options(
    subscription: Subscription, choices: list[tuple[Plan, str]]
) -> list[dict[str, Any]]:
    """The allowed plans with the customer's price per licence per month today in the
    subscription's currency (a plan not priced in it cannot be chosen)."""
    options = []
    for plan, timing in choices:
        try:
            quote = pricing.customer_price(
                customer=subscription.customer,
                plan=plan,
                currency=subscription.currency,
                on=timezone.localdate(),
            )
        except ValidationError:
            continue
        options.append({"plan": plan, "timing": timing, "monthly_price": quote.customer_price})
    return options


def _plan_changed_message(subscription: Subscription, plan: Plan) -> str:
    if subscription.scheduled_plan_id == plan.pk:
        return _(
            "%(subscription)s changes to %(plan)s on %(date)s, at the end of its term. You can "
            "cancel the change until then."
        ) % {
            "subscription": subscription.product.name,
            "plan": plan.get_kind_display(),
            "date": formats.date_format(subscription.term_end or subscription.period_end),
        }
    return _("%(subscription)s is now on %(plan)s.") % {
        "subscription": subscription.product.name,
        "plan": plan.get_kind_display(),
    }


@reseller_required(Action.SUBSCRIPTION_CANCEL)
@require_POST
def subscription_cancel_plan_change(request: ResellerRequest, subscription_id: str) -> HttpResponse:
    """Withdraw the plan change scheduled for the end of the term."""
    membership = request.membership
    subscription = _subscription(request, subscription_id)
    try:
        services.subscription_cancel_plan_change(membership=membership, subscription=subscription)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request, _("The plan change was cancelled: the subscription stays on its plan.")
        )
    return redirect(_detail_url(subscription))


# Cancel, suspend, reactivate: a page that says what happens and when, then POST.


@reseller_required(Action.SUBSCRIPTION_CANCEL)
def subscription_cancel(request: ResellerRequest, subscription_id: str) -> HttpResponse:
    membership = request.membership
    subscription = _subscription(request, subscription_id)
    error_text = ""
    if request.method == "POST":
        try:
            subscription = services.subscription_cancel(
                membership=membership, subscription=subscription
            )
        except ValidationError as error:
            error_text = " ".join(error.messages)
        else:
            if subscription.status == Subscription.Status.CANCELLED:
                text = _("%(subscription)s was cancelled.")
            else:
                text = _(
                    "%(subscription)s will not renew: it ends on %(date)s, at the end of its term."
                )
            messages.success(
                request,
                text
                % {
                    "subscription": subscription.product.name,
                    "date": formats.date_format(
                        selectors.subscription_cancellation_date(subscription=subscription)
                    ),
                },
            )
            return redirect(_detail_url(subscription))
    context = {
        "subscription": subscription,
        "customer": subscription.customer,
        "ends_on": selectors.subscription_cancellation_date(subscription=subscription),
        "error": error_text,
    }
    return render(request, "subscriptions/cancel.html", context, status=400 if error_text else 200)


def _suspension_page(
    request: ResellerRequest, subscription_id: str, *, suspend: bool
) -> HttpResponse:
    membership = request.membership
    subscription = _subscription(request, subscription_id)
    error_text = ""
    if request.method == "POST":
        service = services.subscription_suspend if suspend else services.subscription_reactivate
        try:
            subscription = service(membership=membership, subscription=subscription)
        except ValidationError as error:
            error_text = " ".join(error.messages)
        else:
            text = (
                _("%(subscription)s was suspended.")
                if suspend
                else _("%(subscription)s was reactivated.")
            )
            messages.success(request, text % {"subscription": subscription.product.name})
            return redirect(_detail_url(subscription))
    context = {
        "subscription": subscription,
        "customer": subscription.customer,
        "suspend": suspend,
        "today": timezone.localdate(),
        "error": error_text,
    }
    return render(request, "subscriptions/suspend.html", context, status=400 if error_text else 200)


@reseller_required(Action.SUBSCRIPTION_SUSPEND)
def subscription_suspend(request: ResellerRequest, subscription_id: str) -> HttpResponse:
    return _suspension_page(request, subscription_id, suspend=True)


@reseller_required(Action.SUBSCRIPTION_SUSPEND)
def subscription_reactivate(request: ResellerRequest, subscription_id: str) -> HttpResponse:
    return _suspension_page(request, subscription_id, suspend=False)


# The customer side: read-only, for the organisation's own administrators.


def customer_side_section(request: HttpRequest, customer: Customer) -> SafeString:
    """The Subscriptions section of the customer's own organisation page."""
    return mark_safe(  # noqa: S308 - a rendered template, escaped by the template engine
        render_to_string(
            "subscriptions/_customer_side_section.html",
            {
                "customer": customer,
                "rows": [
                    (subscription, pricing.upcoming_price(subscription=subscription))
                    for subscription in selectors.subscription_list_for_customer_side(
                        customer=customer
                    )
                ],
            },
            request=request,
        )
    )


@require_GET
@login_required
def my_subscription(request: HttpRequest, customer_id: str, subscription_id: str) -> HttpResponse:
    """One subscription as the customer sees it: plan, licences, dates and the ledger."""
    customer = customer_selectors.customer_for_member(user=request.user, public_id=customer_id)
    subscription = selectors.subscription_get_for_customer_side(
        customer=customer, public_id=subscription_id
    )
    context = {
        "customer": customer,
        "subscription": subscription,
        "ledger": selectors.subscription_ledger(subscription=subscription),
        # The price from the next change on (never the reseller's cost or margin).
        "upcoming": pricing.upcoming_price(subscription=subscription),
    }
    with timezone.override(customer.time_zone):
        return render(request, "subscriptions/my_subscription.html", context)
