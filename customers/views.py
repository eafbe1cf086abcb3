from typing import cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from core.forms import add_service_errors
from core.models import User
from core.tokens import TokenState
from customers import selectors, services
from customers.forms import NewCustomerForm
from customers.models import Customer
from resellers.access import reseller_required
from resellers.roles import Action
from resellers.services import InvitationError, user_has_verified_email

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


@reseller_required(Action.CUSTOMER_INVITE)
def customer_create(request: HttpRequest) -> HttpResponse:
    """NEW CUSTOMER: the details, then Send invitation."""
    membership = request.membership  # type: ignore[attr-defined]
    reseller = membership.reseller
    form = NewCustomerForm(
        request.POST or None,
        initial={"language": reseller.language, "time_zone": reseller.time_zone},
    )
    if request.method == "POST" and form.is_valid():
        try:
            customer = services.customer_invite(membership=membership, **form.cleaned_data)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(
                request,
                _(
                    "Invitation sent to %(email)s. %(organisation)s is listed as Invited until it "
                    "accepts."
                )
                % {"email": customer.contact_email, "organisation": customer.organisation},
            )
            return redirect("customers:detail", customer_id=customer.public_id)
    return render(
        request,
        "customers/customer_create.html",
        {"form": form},
        status=400 if form.errors else 200,
    )


@reseller_required(Action.CUSTOMER_VIEW)
def customer_detail(request: HttpRequest, customer_id: str) -> HttpResponse:
    customer = selectors.customer_get(reseller=request.reseller, public_id=customer_id)  # type: ignore[attr-defined]
    invitation = selectors.customer_invitation_latest(customer=customer)
    return render(
        request,
        "customers/customer_detail.html",
        {"customer": customer, "invitation": invitation},
    )


def invitation(request: HttpRequest, token: str) -> HttpResponse:
    """The customer's invitation link: who invites whom, sign in with Google, accept terms."""
    found = selectors.customer_invitation_by_token(raw_token=token)
    if found is None:
        return render(request, "invitations/invalid.html", {"reason": "unknown"}, status=404)
    if found.state != TokenState.VALID:
        return render(
            request,
            "invitations/invalid.html",
            {"reason": found.state, "inviter_name": found.customer.reseller.name},
            status=410,
        )
    services.customer_invitation_opened(invitation=found)
    context = {"invitation": found, "customer": found.customer, "token": token}
    if not request.user.is_authenticated:
        return render(request, "customers/invitation.html", context)
    user = cast(User, request.user)
    if not user_has_verified_email(user, found.email):
        return render(request, "invitations/wrong_account.html", context, status=403)
    if request.method == "POST":
        try:
            services.customer_invitation_accept(
                invitation=found, user=user, terms_accepted=request.POST.get("terms") == "on"
            )
        except ValidationError as error:
            context["terms_error"] = " ".join(error.messages)
            return render(request, "customers/invitation.html", context, status=400)
        except InvitationError as error:
            return render(
                request,
                "invitations/invalid.html",
                {"reason": error.reason, "inviter_name": found.customer.reseller.name},
                status=410,
            )
        messages.success(
            request,
            _("%(reseller)s now manages the subscriptions of %(organisation)s.")
            % {
                "reseller": found.customer.reseller.name,
                "organisation": found.customer.organisation,
            },
        )
        return redirect("customer_side:home")
    return render(request, "customers/invitation.html", context)


@login_required
def my_organisations(request: HttpRequest) -> HttpResponse:
    """The customer side: the organisations this person administers, and their reseller."""
    customers = selectors.customers_of_user(user=request.user)
    return render(request, "customers/my_organisations.html", {"customers": customers})
