from typing import Any, cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from core.adapters import invitation_sign_up_allow
from core.csv import csv_response
from core.forms import add_service_errors
from core.http import PortalRequest, ResellerRequest
from core.lists import list_render
from core.models import User
from core.ratelimit import RateLimited, rate_limited_response
from core.tokens import TokenState
from customers import extensions, selectors, services
from customers.forms import (
    CustomerContactForm,
    CustomerFilterForm,
    ImportCustomerForm,
    NewCustomerForm,
    TransferTokenForm,
)
from customers.models import Customer
from resellers.access import reseller_required
from resellers.roles import Action
from resellers.services import InvitationError, user_has_verified_email


def _rate_limited(request: HttpRequest, error: RateLimited) -> HttpResponse:
    return rate_limited_response(
        request, error, back_url=reverse("customers:list"), back_label=_("Back to customers")
    )


def _customer_filters(request: ResellerRequest) -> CustomerFilterForm:
    """The Customers page's search, status and sort from the query string, as the page and its
    CSV read them. A value the form does not know falls back to its default (form.filters)."""
    form = CustomerFilterForm(request.GET)
    form.is_valid()
    return form


@reseller_required(Action.CUSTOMER_VIEW)
@vary_on_headers("HX-Request")
def customer_list(request: ResellerRequest) -> HttpResponse:
    """Customers: search as you type, status filter (former customers too), sortable columns,
    pages that cost the same at any depth. htmx requests get the results only."""
    form = _customer_filters(request)
    filters = form.filters()
    page = selectors.customer_page(
        reseller=request.reseller, cursor=request.GET.get("cursor", ""), **filters
    )
    params = form.params()
    former = filters["status"] in selectors.FORMER_STATUSES
    choices = dict(Customer.Status.choices)
    context = {
        "page": page,
        "rows": _customer_rows(page.object_list, linked=not former),
        "query": filters["query"],
        "status": filters["status"],
        "sort": filters["sort"],
        "params": params,
        "former": former,
        "current_statuses": [(value, choices[value]) for value in selectors.VISIBLE_STATUSES],
        "former_statuses": [(value, choices[value]) for value in selectors.FORMER_STATUSES],
        "sorting": {
            key: _column_sort(params, filters["sort"], key) for key in selectors.CUSTOMER_SORTS
        },
        "links": page.links(params),
        "export_url": reverse("customers:export") + ("?" + urlencode(params) if params else ""),
    }
    return list_render(request, "customers/customer_list.html", context)


@require_GET
# A streamed response: reseller_required is typed for HttpResponse only.
@reseller_required(Action.CUSTOMER_VIEW)
def customer_export(request: ResellerRequest) -> HttpResponseBase:
    """All the customers the list shows with its search, status and sort (not only a page), as
    CSV (selectors.CUSTOMER_CSV_COLUMNS), streamed."""
    return csv_response(
        filename=f"customers-{timezone.localdate().isoformat()}.csv",
        header=[str(column) for column in selectors.CUSTOMER_CSV_COLUMNS],
        rows=selectors.customer_export_rows(
            reseller=request.reseller, **_customer_filters(request).filters()
        ),
    )


def _customer_rows(customers: list[dict[str, Any]], *, linked: bool) -> list[dict[str, Any]]:
    """The page's rows (dictionaries of selectors.CUSTOMER_ROW_FIELDS) with what the table
    shows beside their columns: the type's and status's labels, the Manage link (none for a
    former customer), and the Plan and Licences of the apps above customers (one query for the
    page). The template formats them."""
    # The labels in the request's language, once per page (each lazy label would translate
    # itself again in every row).
    statuses = {value: str(label) for value, label in Customer.Status.choices}
    types = {value: str(label) for value, label in Customer.Type.choices}
    summaries = extensions.row_summaries([customer["id"] for customer in customers])
    return [
        {
            **customer,
            "type_label": types[customer["customer_type"]],
            "status_label": statuses[customer["status"]],
            "url": reverse("customers:detail", kwargs={"customer_id": customer["public_id"]})
            if linked
            else "",
            "plan": "",
            "licences": None,
            **summaries.get(customer["id"], {}),
        }
        for customer in customers
    ]


def _column_sort(params: dict[str, str], current: str, key: str) -> dict[str, str]:
    """A column header's link (the other direction when sorted by it, else ascending; dates
    newest first), keeping the search and filter, and its aria-sort."""
    if current == key:
        following, aria = f"-{key}", "ascending"
    elif current == f"-{key}":
        following, aria = key, "descending"
    else:
        following, aria = ("-created" if key == "created" else key), ""
    return {"url": "?" + urlencode({**params, "sort": following}), "aria": aria}


@reseller_required(Action.CUSTOMER_INVITE)
def customer_create(request: ResellerRequest) -> HttpResponse:
    """NEW CUSTOMER: the details, then Send invitation."""
    membership = request.membership
    reseller = membership.reseller
    form = NewCustomerForm(
        request.POST or None,
        initial={
            "language": reseller.language,
            "time_zone": reseller.time_zone,
            "country": reseller.country,
        },
    )
    if request.method == "POST" and form.is_valid():
        try:
            customer = services.customer_invite(membership=membership, **form.cleaned_data)
        except ValidationError as error:
            add_service_errors(form, error)
        except RateLimited as error:
            return _rate_limited(request, error)
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


@reseller_required(Action.CUSTOMER_INVITE)
def customer_import(request: ResellerRequest) -> HttpResponse:
    """Import with transfer token: the customer's domain and the token it generated for us."""
    membership = request.membership
    form = ImportCustomerForm(
        request.POST or None, initial={"domain": request.GET.get("domain", "")}
    )
    if request.method == "POST" and form.is_valid():
        try:
            customer = services.customer_import(membership=membership, **form.cleaned_data)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(
                request,
                _(
                    "%(organisation)s is now your customer. Its administrators and its history "
                    "moved with it."
                )
                % {"organisation": customer.organisation},
            )
            return redirect("customers:detail", customer_id=customer.public_id)
    return render(
        request,
        "customers/customer_import.html",
        {"form": form, "valid_days": settings.TRANSFER_TOKEN_VALID_DAYS},
        status=400 if form.errors else 200,
    )


@reseller_required(Action.CUSTOMER_VIEW)
def customer_detail(request: ResellerRequest, customer_id: str) -> HttpResponse:
    """Manage: the customer's details, invitation, subscriptions, invoices and activity."""
    customer = selectors.customer_get(reseller=request.reseller, public_id=customer_id)
    return render(
        request,
        "customers/customer_detail.html",
        {
            "customer": customer,
            "invitation": selectors.customer_invitation_latest(customer=customer),
            "activity": selectors.customer_activity(customer=customer),
            "sections": extensions.sections_render(request, customer, side="reseller"),
        },
    )


@reseller_required(Action.CUSTOMER_EDIT)
def customer_edit(request: ResellerRequest, customer_id: str) -> HttpResponse:
    membership = request.membership
    customer = selectors.customer_get(reseller=membership.reseller, public_id=customer_id)
    form = CustomerContactForm(
        request.POST or None,
        initial={field: getattr(customer, field) for field in services.CONTACT_FIELDS},
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.customer_update_contact(
                membership=membership, customer=customer, **form.cleaned_data
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, _("The customer's details were saved."))
            return redirect("customers:detail", customer_id=customer.public_id)
    return render(
        request,
        "customers/customer_edit.html",
        {"form": form, "customer": customer},
        status=400 if form.errors else 200,
    )


@reseller_required(Action.CUSTOMER_INVITE)
@require_POST
def customer_invitation_resend(request: ResellerRequest, customer_id: str) -> HttpResponse:
    membership = request.membership
    customer = selectors.customer_get(reseller=membership.reseller, public_id=customer_id)
    try:
        customer = services.customer_invitation_resend(membership=membership, customer=customer)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    except RateLimited as error:
        return _rate_limited(request, error)
    else:
        messages.success(
            request,
            _("A new invitation was sent to %(email)s; the previous link no longer works.")
            % {"email": customer.contact_email},
        )
    return redirect("customers:detail", customer_id=customer.public_id)


@reseller_required(Action.CUSTOMER_INVITE)
@require_POST
def customer_invitation_withdraw(request: ResellerRequest, customer_id: str) -> HttpResponse:
    membership = request.membership
    customer = selectors.customer_get(reseller=membership.reseller, public_id=customer_id)
    try:
        services.customer_invitation_withdraw(membership=membership, customer=customer)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request,
            _(
                "The invitation to %(organisation)s was withdrawn; its link no longer works. "
                "You can send it again later."
            )
            % {"organisation": customer.organisation},
        )
    return redirect("customers:detail", customer_id=customer.public_id)


def invitation(request: HttpRequest, token: str) -> HttpResponse:
    """The customer's invitation link: who invites whom, sign in with Google, accept terms."""
    found = selectors.customer_invitation_by_token(raw_token=token)
    if found is None:
        return render(request, "invitations/invalid.html", {"reason": "unknown"}, status=404)
    if found.state != TokenState.VALID:
        reason: str = found.state
        if reason == TokenState.WITHDRAWN and selectors.customer_invitation_replaced(found):
            reason = "replaced"
        return render(
            request,
            "invitations/invalid.html",
            {"reason": reason, "inviter_name": found.customer.reseller.name},
            status=410,
        )
    services.customer_invitation_opened(invitation=found)
    context = {"invitation": found, "customer": found.customer, "token": token}
    if not request.user.is_authenticated:
        invitation_sign_up_allow(request, found)
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


# The customer side: an organisation's own administrators (CustomerMember). Every page finds
# the customer through the signed-in person's memberships, so another customer's id is a 404.

ACTIVITY_PAGE_SIZE = 20


def _activity_page(customer: Customer, page: str | None) -> dict[str, Any]:
    """One page of the customer's activity, newest first, and whether older entries exist."""
    try:
        number = min(max(int(page or 1), 1), 10_000)
    except ValueError:
        number = 1
    start = (number - 1) * ACTIVITY_PAGE_SIZE
    # One row more than the page shows tells whether there is an older page.
    events = list(
        selectors.customer_activity(customer=customer, limit=start + ACTIVITY_PAGE_SIZE + 1)[start:]
    )
    return {
        "activity": events[:ACTIVITY_PAGE_SIZE],
        "activity_page": number,
        "activity_has_older": len(events) > ACTIVITY_PAGE_SIZE,
    }


def _organisation_page(
    request: PortalRequest,
    customer: Customer,
    *,
    transfer_form: TransferTokenForm | None = None,
    new_token: dict[str, Any] | None = None,
    status: int = 200,
) -> HttpResponse:
    context = {
        "customer": customer,
        "can_revoke": customer.status == Customer.Status.ACTIVE,
        "can_transfer": customer.status in services.TRANSFER_TOKEN_STATUSES,
        "transfer_form": transfer_form or TransferTokenForm(),
        "transfer_tokens": selectors.transfer_token_list_open(customer=customer),
        "transfer_token_valid_days": settings.TRANSFER_TOKEN_VALID_DAYS,
        "new_token": new_token,
        "sections": extensions.sections_render(request, customer, side="customer"),
        **_activity_page(customer, request.GET.get("activity")),
    }
    template = "customers/my_organisation.html"
    if request.htmx and request.method == "GET" and "activity" in request.GET:
        template += "#activity"
    # Dates read in the organisation's own time zone.
    with timezone.override(customer.time_zone):
        return render(request, template, context, status=status)


@login_required
def my_organisation(request: PortalRequest, customer_id: str) -> HttpResponse:
    """The organisation page: details, reseller, subscriptions, invoices, transfer, activity."""
    customer = selectors.customer_for_member(user=request.user, public_id=customer_id)
    return _organisation_page(request, customer)


@login_required
def my_access_revoke(request: HttpRequest, customer_id: str) -> HttpResponse:
    """Revoke partner access: GET says what it means, POST does it."""
    customer = selectors.customer_for_member(user=request.user, public_id=customer_id)
    if request.method == "POST":
        try:
            services.customer_access_revoke(customer=customer, user=cast(User, request.user))
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(
                request,
                _(
                    "%(reseller)s can no longer see or manage %(organisation)s. We have told "
                    "the reseller by email."
                )
                % {"reseller": customer.reseller.name, "organisation": customer.organisation},
            )
        return redirect("customer_side:organisation", customer_id=customer.public_id)
    with timezone.override(customer.time_zone):
        return render(request, "customers/my_access_revoke.html", {"customer": customer})


@login_required
def my_transfer_token_create(request: PortalRequest, customer_id: str) -> HttpResponse:
    """Generate a transfer token. The raw token is in this response only: it is not stored
    (only its digest is), so it is rendered here rather than carried through a redirect."""
    customer = selectors.customer_for_member(user=request.user, public_id=customer_id)
    if request.method != "POST":
        url = reverse("customer_side:organisation", kwargs={"customer_id": customer.public_id})
        return redirect(f"{url}#transfer")
    form = TransferTokenForm(request.POST)
    if form.is_valid():
        try:
            raw = services.transfer_token_create(
                customer=customer,
                user=cast(User, request.user),
                reseller_public_id=form.cleaned_data["reseller_id"],
            )
        except ValidationError as error:
            add_service_errors(form, error)
        except RateLimited as error:
            url = reverse("customer_side:organisation", kwargs={"customer_id": customer.public_id})
            return rate_limited_response(
                request,
                error,
                back_url=f"{url}#transfer",
                back_label=_("Back to your organisation"),
            )
        else:
            # Earlier open tokens were withdrawn under the customer's lock: the open one is new.
            token = selectors.transfer_token_list_open(customer=customer).first()
            response = _organisation_page(request, customer, new_token={"raw": raw, "token": token})
            add_never_cache_headers(response)
            return response
    return _organisation_page(request, customer, transfer_form=form, status=400)


@login_required
@require_POST
def my_transfer_token_withdraw(
    request: HttpRequest, customer_id: str, transfer_token_id: str
) -> HttpResponse:
    customer = selectors.customer_for_member(user=request.user, public_id=customer_id)
    token = selectors.transfer_token_get(customer=customer, public_id=transfer_token_id)
    try:
        services.transfer_token_withdraw(
            customer=customer, user=cast(User, request.user), token=token
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request,
            _("The transfer token for %(reseller)s no longer works.")
            % {"reseller": token.to_reseller.name},
        )
    url = reverse("customer_side:organisation", kwargs={"customer_id": customer.public_id})
    return redirect(f"{url}#transfer")
