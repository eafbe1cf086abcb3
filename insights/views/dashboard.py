"""The dashboard: the reseller's figures per currency, twelve months of charts, the renewals
desk, the overdue invoices and what happened lately. Each figure links to the list behind it."""

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import SimpleLazyObject
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from core.http import ResellerRequest
from customers.models import Customer
from customers.selectors import customer_summary
from insights import charts, selectors
from resellers.access import reseller_required
from resellers.roles import Action, role_can
from subscriptions import services as subscription_services
from subscriptions.models import Subscription
from subscriptions.selectors import subscription_get

Renewal = Subscription.RenewalSetting


def _window(raw: str | None) -> int:
    try:
        days = int(raw or "")
    except ValueError:
        return selectors.RENEWAL_WINDOWS[0]
    return days if days in selectors.RENEWAL_WINDOWS else selectors.RENEWAL_WINDOWS[0]


def _desk(request: ResellerRequest, figures: selectors.Dashboard, window: int) -> dict[str, Any]:
    role = request.membership.role
    return {
        # The rows' fragment is kept under the figures they come from, for the role (its
        # buttons), the language and the time zone.
        "desk_key": ":".join(
            [figures.key, str(window), role, get_language(), timezone.get_current_timezone_name()]
        )
        if figures.key
        else "",
        "renewal_window": window,
        "renewal_tabs": [(days, figures.renewals[days]) for days in selectors.RENEWAL_WINDOWS],
        "renewal_until": figures.today + timedelta(days=window),
        "renewal_rows": figures.desk[window],
        "renewal_count": figures.renewals[window],
        "can_change_renewal": role_can(request.membership.role, Action.LICENCES_ADD),
        "can_cancel": role_can(request.membership.role, Action.SUBSCRIPTION_CANCEL),
    }


def _charts(entry: selectors.CurrencyDashboard | None, show_margin: bool) -> dict[str, Any]:
    if entry is None:
        return {}
    months = [point.month for point in entry.months]
    revenue = [(_("MRR"), "mrr", [point.mrr for point in entry.months])]
    if show_margin:
        revenue.append((_("Margin"), "margin", [point.margin for point in entry.months]))
    return {
        "mrr_chart": SimpleLazyObject(lambda: charts.line_chart(months, revenue)),
        "invoice_chart": SimpleLazyObject(
            lambda: charts.bar_chart(
                months,
                [
                    (_("Invoiced"), "invoiced", [point.invoiced for point in entry.months]),
                    (_("Paid"), "paid", [point.paid for point in entry.months]),
                ],
            )
        ),
    }


@reseller_required()
def dashboard(request: ResellerRequest) -> HttpResponse:
    membership = request.membership
    reseller = request.reseller
    role = membership.role
    today = timezone.localdate()
    figures = selectors.dashboard_figures(reseller=reseller, today=today)
    by_currency = {entry.currency: entry for entry in figures.currencies}
    chosen = request.GET.get("currency", "")
    current = by_currency.get(chosen) or (figures.currencies[0] if figures.currencies else None)
    customers = customer_summary(reseller=reseller)
    can_view_customers = role_can(role, Action.CUSTOMER_VIEW)
    context: dict[str, Any] = {
        "figures": figures,
        "current": current,
        "licences_total": sum(entry.licences for entry in figures.currencies),
        "trials_until": today + timedelta(days=selectors.TRIAL_DAYS_AHEAD),
        "show_margin": role_can(role, Action.MARGIN_VIEW),
        "show_invoices": role_can(role, Action.INVOICE_VIEW),
        "customer_counts": [
            (value, label, customers.counts.get(value, 0))
            for value, label in Customer.Status.choices
            if value in (Customer.Status.INVITED, Customer.Status.ACTIVE, Customer.Status.CANCELLED)
        ],
        "recent_customers": (
            [
                {**customer, "status_label": Customer.Status(customer["status"]).label}
                for customer in customers.newest
            ]
            if can_view_customers
            else []
        ),
        # Read and drawn only when their fragment is not in the cache.
        "recent_activity": SimpleLazyObject(
            lambda: selectors.dashboard_activity(
                reseller=reseller, list_version=customers.list_version
            )
        ),
        "licence_chart": SimpleLazyObject(
            lambda: charts.line_chart(
                [month for month, _count in figures.licences_by_month],
                [(_("Licences"), "licences", [n for _month, n in figures.licences_by_month])],
            )
        ),
        **_charts(current, role_can(role, Action.MARGIN_VIEW)),
        **_desk(request, figures, _window(request.GET.get("renewals"))),
    }
    # The keys of the page's cached fragments: what each is drawn from, and for whom.
    if figures.key:
        for_whom = [role, get_language(), timezone.get_current_timezone_name()]
        context["top_key"] = ":".join(
            [
                figures.key,
                str(customers.list_version),
                current.currency if current else "",
                *for_whom,
            ]
        )
        context["bottom_key"] = ":".join(
            [
                figures.key,
                str(customers.list_version),
                *for_whom,
            ]
        )
    if request.htmx and request.GET.get("part") == "renewals":
        return render(request, "insights/dashboard.html#renewals", context)
    return render(request, "insights/dashboard.html", context)


@reseller_required(Action.LICENCES_ADD)
@require_POST
def renewal_set(request: ResellerRequest, subscription_id: str) -> HttpResponse:
    """The renewals desk's one click: renew automatically, or cancel at the end of the term,
    through the service (which checks the role again and audits the change)."""
    subscription = subscription_get(reseller=request.reseller, public_id=subscription_id)
    window = _window(request.POST.get("renewals"))
    setting = request.POST.get("setting", "")
    if setting not in (Renewal.AUTO_RENEW, Renewal.CANCEL_AT_TERM_END):
        messages.error(request, _("Choose what happens at renewal."))
    else:
        try:
            subscription_services.subscription_set_renewal(
                membership=request.membership, subscription=subscription, setting=setting
            )
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        except PermissionDenied as error:
            messages.error(request, str(error) or _("Your role does not allow this."))
        else:
            messages.success(
                request,
                _("%(customer)s: %(setting)s.")
                % {
                    "customer": subscription.customer.organisation,
                    "setting": Renewal(setting).label,
                },
            )
    url = reverse("dashboard") + "?" + urlencode({"renewals": window}) + "#renewals"
    if request.htmx:
        figures = selectors.dashboard_figures(reseller=request.reseller, today=timezone.localdate())
        context = {"figures": figures, **_desk(request, figures, window)}
        return render(request, "insights/dashboard.html#renewals", context)
    return redirect(url)
