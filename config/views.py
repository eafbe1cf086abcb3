"""Pages that draw on several apps: the entry point and the dashboard."""

from django.http import HttpResponse
from django.shortcuts import redirect, render

from core.http import PortalRequest, ResellerRequest
from customers.models import Customer
from customers.selectors import customer_counts_by_status, customer_list, customers_of_user
from resellers.access import reseller_required
from resellers.roles import Action, role_can
from resellers.selectors import audit_list, membership_list


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
    counts = customer_counts_by_status(reseller=reseller)
    context = {
        "customer_counts": [
            (label, counts.get(value, 0))
            for value, label in Customer.Status.choices
            if value in (Customer.Status.INVITED, Customer.Status.ACTIVE, Customer.Status.CANCELLED)
        ],
        "team_size": membership_list(reseller=reseller).count(),
        "recent_customers": (
            customer_list(reseller=reseller)[:5]
            if role_can(membership.role, Action.CUSTOMER_VIEW)
            else []
        ),
        "recent_activity": audit_list(reseller=reseller)[:8],
    }
    return render(request, "dashboard.html", context)
