from html import escape
from typing import Any, cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.http import urlencode
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from core.adapters import invitation_sign_up_allow
from core.formatting import integer_formatter, short_date_formatter
from core.forms import add_service_errors
from core.models import User
from core.pagination import LAST, KeysetPage
from core.ratelimit import RateLimited, rate_limited_response
from core.tokens import TokenState
from customers import extensions, selectors, services
from customers.forms import (
    CustomerContactForm,
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


@reseller_required(Action.CUSTOMER_VIEW)
@vary_on_headers("HX-Request")
def customer_list(request: HttpRequest) -> HttpResponse:
    """Customers: search as you type, status filter (former customers too), sortable columns,
    pages that cost the same at any depth. htmx requests get the results only."""
    status = request.GET.get("status", "")
    if status not in (*selectors.VISIBLE_STATUSES, *selectors.FORMER_STATUSES):
        status = ""
    query = selectors.customer_search_normalise(request.GET.get("q", ""))
    sort = selectors.customer_sort_valid(request.GET.get("sort", ""))
    page = selectors.customer_page(
        reseller=request.reseller,  # type: ignore[attr-defined]
        query=query,
        status=status,
        sort=sort,
        cursor=request.GET.get("cursor", ""),
    )
    # What every link of the page keeps (a new search, filter or sort starts at the first page).
    params = {"q": query, "status": status, "sort": sort}
    params = {
        name: value
        for name, value in params.items()
        if value and not (name == "sort" and value == selectors.DEFAULT_CUSTOMER_SORT)
    }
    former = status in selectors.FORMER_STATUSES
    choices = dict(Customer.Status.choices)
    rows = _customer_rows(page.object_list, linked=not former)
    # The Plan and Licences columns come from the apps above customers, in one query per page.
    summaries = extensions.row_summaries([customer["id"] for customer in page.object_list])
    for row, customer in zip(rows, page.object_list, strict=True):
        row.update(summaries.get(customer["id"], {}))
    context = {
        "page": page,
        "rows": rows,
        "rows_html": _customer_rows_html(rows, manage_label=_("Manage")),
        "query": query,
        "status": status,
        "sort": sort,
        "params": params,
        "former": former,
        "current_statuses": [(value, choices[value]) for value in selectors.VISIBLE_STATUSES],
        "former_statuses": [(value, choices[value]) for value in selectors.FORMER_STATUSES],
        "sorting": {key: _column_sort(params, sort, key) for key in selectors.CUSTOMER_SORTS},
        "links": _page_links(params, page),
        "summary": _page_summary(page),
    }
    template = "customers/customer_list.html"
    if request.htmx and not request.htmx.history_restore_request:  # type: ignore[attr-defined]
        template += "#results"
    return render(request, template, context)


# Stands for a customer's public id in a URL reversed once per page instead of once per row.
_PUBLIC_ID_PLACEHOLDER = "0" * 16


def _customer_rows(customers: list[dict[str, Any]], *, linked: bool) -> list[dict[str, str]]:
    """The table's cells as strings, worked out once per page from the page's rows (dictionaries
    of selectors.CUSTOMER_ROW_FIELDS). Half the page's time went into the template engine
    looking up model attributes, get_FOO_display(), {% url %} and |date for every row; plain
    dictionaries of strings render several times faster."""
    statuses = {value: str(label) for value, label in Customer.Status.choices}
    types = {value: str(label) for value, label in Customer.Type.choices}
    detail_url = reverse("customers:detail", args=[_PUBLIC_ID_PLACEHOLDER])
    short_date = short_date_formatter()
    return [
        {
            "organisation": customer["organisation"],
            "domain": customer["domain"],
            "contact_name": customer["contact_name"],
            "contact_email": customer["contact_email"],
            "type": types[customer["customer_type"]],
            "status": customer["status"],
            "status_label": statuses[customer["status"]],
            "created": short_date(timezone.localtime(customer["created_at"])),
            "url": detail_url.replace(_PUBLIC_ID_PLACEHOLDER, customer["public_id"])
            if linked
            else "",
            # Filled by extensions.row_summaries; present here, as a missing key costs the
            # template several times a found one.
            "licences": "",
            "plan": "",
        }
        for customer in customers
    ]


# One table row; every cell is escaped by _customer_rows_html.
_ROW_HTML = (
    "<tr><td>{}</td><td>{}</td><td>{}<br><small>{}</small></td><td>{}</td>"
    '<td><span class="badge status-{}">{}</span></td><td>{}</td><td>{}</td><td>{}</td>'
    "<td>{}</td></tr>"
)
_MANAGE_HTML = '<a class="button small secondary" href="{}">{}</a>'


def _customer_rows_html(rows: list[dict[str, str]], *, manage_label: str) -> SafeString:
    """The table body, built here rather than by the template engine: 25 rows of 11 cells
    were a third of the page's time in variable lookups and escaping (the page must stay
    within 3x a minimal view, README Benchmarks). The cells are plain strings, so the
    standard library's `html.escape` (what Django's `escape` calls, without its lazy-string
    checks, several times slower here) escapes them."""
    manage = escape(manage_label)
    return mark_safe(  # noqa: S308 (every cell is escaped above)
        "\n".join(
            _ROW_HTML.format(
                escape(row["organisation"]),
                escape(row["domain"] or "—"),
                escape(row["contact_name"]),
                escape(row["contact_email"]),
                escape(row["type"]),
                escape(row["status"]),
                escape(row["status_label"]),
                escape(row["licences"] or "—"),
                escape(row["plan"] or "—"),
                escape(row["created"]),
                _MANAGE_HTML.format(escape(row["url"]), manage) if row["url"] else "",
            )
            for row in rows
        )
    )


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


def _page_summary(page: KeysetPage) -> str:
    """Where the page is: "26-50 of 9,183", or "12 customers" when all fit on one page."""
    grouped = integer_formatter()
    if page.has_other_pages:
        return _("%(start)s–%(end)s of %(total)s") % {  # noqa: RUF001 (the en dash of ranges)
            "start": grouped(page.start_index),
            "end": grouped(page.end_index),
            "total": grouped(page.count),
        }
    return ngettext("%(total)s customer", "%(total)s customers", page.count) % {
        "total": grouped(page.count)
    }


def _page_links(params: dict[str, str], page: KeysetPage) -> dict[str, str]:
    """First, Previous, Next and Last, keeping the search, filter and sort ("" when none)."""

    def to(cursor: str | None) -> str:
        return "?" + urlencode({**params, "cursor": cursor}) if cursor else ""

    return {
        "first": "?" + urlencode(params) if page.has_previous else "",
        "previous": to(page.previous_cursor),
        "next": to(page.next_cursor),
        "last": to(LAST) if page.has_next else "",
    }


@reseller_required(Action.CUSTOMER_INVITE)
def customer_create(request: HttpRequest) -> HttpResponse:
    """NEW CUSTOMER: the details, then Send invitation."""
    membership = request.membership  # type: ignore[attr-defined]
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
def customer_import(request: HttpRequest) -> HttpResponse:
    """Import with transfer token: the customer's domain and the token it generated for us."""
    membership = request.membership  # type: ignore[attr-defined]
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
def customer_detail(request: HttpRequest, customer_id: str) -> HttpResponse:
    """Manage: the customer's details, invitation, subscriptions, invoices and activity."""
    customer = selectors.customer_get(reseller=request.reseller, public_id=customer_id)  # type: ignore[attr-defined]
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
def customer_edit(request: HttpRequest, customer_id: str) -> HttpResponse:
    membership = request.membership  # type: ignore[attr-defined]
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
def customer_invitation_resend(request: HttpRequest, customer_id: str) -> HttpResponse:
    membership = request.membership  # type: ignore[attr-defined]
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
def customer_invitation_withdraw(request: HttpRequest, customer_id: str) -> HttpResponse:
    membership = request.membership  # type: ignore[attr-defined]
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
    request: HttpRequest,
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
    if request.htmx and request.method == "GET" and "activity" in request.GET:  # type: ignore[attr-defined]
        template += "#activity"
    # Dates read in the organisation's own time zone.
    with timezone.override(customer.time_zone):
        return render(request, template, context, status=status)


@login_required
def my_organisation(request: HttpRequest, customer_id: str) -> HttpResponse:
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
def my_transfer_token_create(request: HttpRequest, customer_id: str) -> HttpResponse:
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
