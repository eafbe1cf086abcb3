"""The entry point: where a signed-in person lands (the dashboard is insights.views)."""

from django.http import HttpResponse
from django.shortcuts import redirect

from core.http import PortalRequest
from customers.selectors import customers_of_user


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
