from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from customers import selectors
from customers.models import Customer
from resellers.access import reseller_required
from resellers.roles import Action

PAGE_SIZE = 25


@reseller_required(Action.CUSTOMER_VIEW)
def customer_list(request: HttpRequest) -> HttpResponse:
    reseller = request.reseller  # type: ignore[attr-defined]
    status = request.GET.get("status", "")
    if status not in selectors.VISIBLE_STATUSES:
        status = ""
    customers = selectors.customer_list(reseller=reseller, status=status)
    page = Paginator(customers, PAGE_SIZE).get_page(request.GET.get("page"))
    statuses = [
        (value, label)
        for value, label in Customer.Status.choices
        if value in selectors.VISIBLE_STATUSES
    ]
    context = {"page": page, "status": status, "statuses": statuses}
    template = "customers/customer_list.html"
    if request.htmx:  # type: ignore[attr-defined]
        template += "#results"
    return render(request, template, context)


@reseller_required(Action.CUSTOMER_VIEW)
def customer_detail(request: HttpRequest, customer_id: str) -> HttpResponse:
    customer = selectors.customer_get(reseller=request.reseller, public_id=customer_id)  # type: ignore[attr-defined]
    return render(request, "customers/customer_detail.html", {"customer": customer})
