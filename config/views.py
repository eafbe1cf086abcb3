"""Pages that draw on several apps: the entry point and the dashboard."""

from django.http import HttpResponse
from django.shortcuts import redirect, render

from config.selectors import dashboard_activity
from core.http import PortalRequest, ResellerRequest
from customers.models import Customer
from customers.selectors import customer_summary, customers_of_user
from resellers.access import reseller_required
from resellers.roles import Action, role_can
from resellers.selectors import membership_list


def home(request: PortalRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect("account_login")
    membership = request.membership
    if membership is None:
        if request.user.is_staff:
            return redirect("admin:index")
        if customers_of_user(user=request.user).exists():
            return redirect("customer_side:home")
        return redirect("resellers:apply")
    if not membership.reseller.is_active:
        return redirect("resellers:status")
    return redirect("dashboard")


@reseller_required()
def dashboard(request: ResellerRequest) -> HttpResponse:
    membership = request.membership
    reseller = membership.reseller
    # Counts and the newest customers from the cache while no customer changes (the selector
    # says how it stays exact): at 10,000 customers their queries were most of the page's time.
    customers = customer_summary(reseller=reseller)
    context = {
        "customer_counts": [
            (label, customers.counts.get(value, 0))
            for value, label in Customer.Status.choices
            if value in (Customer.Status.INVITED, Customer.Status.ACTIVE, Customer.Status.CANCELLED)
        ],
        "team_size": membership_list(reseller=reseller).count(),
        "recent_customers": (
            [
                {**customer, "status_label": Customer.Status(customer["status"]).label}
                for customer in customers.newest
            ]
            if role_can(membership.role, Action.CUSTOMER_VIEW)
            else []
        ),
        "recent_activity": dashboard_activity(
            reseller=reseller, list_version=customers.list_version
        ),
    }
    return render(request, "dashboard.html", context)
