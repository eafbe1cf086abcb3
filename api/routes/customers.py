"""Customers: list (search, status, sort, keyset cursors), get, invite (create), update the
contact details, resend or withdraw the invitation. The same forms check the input as on the
pages, and the same services do the work."""

from datetime import datetime
from typing import Annotated, Any, Literal

from django.http import HttpResponse
from ninja import Query, Router, Schema, Status
from ninja.params.functions import Path
from pydantic import Field

from api.auth import ApiRequest, KeyAuth
from api.models import Scope
from api.problems import form_invalid
from api.routes.examples import (
    CURSOR,
    CURSOR_DESCRIPTION,
    CUSTOMER_ID,
    example,
    examples,
)
from customers import selectors, services
from customers.forms import CustomerContactForm, CustomerFilterForm, NewCustomerForm
from customers.models import Customer
from resellers.roles import Action, require

router = Router(tags=["Customers"])

# The examples the docs show (and schemathesis sends): one customer, Acme Iberia, seen the same
# way by every operation.
ROW_EXAMPLE: dict[str, Any] = {
    "id": CUSTOMER_ID,
    "organisation": "Acme Iberia",
    "domain": "acme-iberia.es",
    "customer_type": "domain",
    "contact_name": "Lucía Fernández",
    "contact_email": "lucia.fernandez@acme-iberia.es",
    "status": "active",
    "created_at": "2026-11-02T10:14:31Z",
}
CONTACT_EXAMPLE: dict[str, Any] = {
    "organisation": "Acme Iberia",
    "contact_name": "Lucía Fernández",
    "contact_email": "lucia.fernandez@acme-iberia.es",
    "country": "ES",
    "vat_id": "ESB87654323",
    "education": False,
    "crm_id": "HUB-20417",
    "admin_name": "Javier Moreno",
    "admin_address": "Calle de Serrano 21\n28001 Madrid",
    "admin_alternate_email": "it@acme-iberia.es",
    "admin_phone": "+34 910 555 214",
    "language": "es",
    "time_zone": "Europe/Madrid",
}
DETAIL_EXAMPLE: dict[str, Any] = {
    **ROW_EXAMPLE,
    **{key: value for key, value in CONTACT_EXAMPLE.items() if key != "organisation"},
    "accepted_at": "2026-11-02T16:52:08Z",
    "invitation": {
        "state": "used",
        "expires_at": "2026-11-09T10:14:31Z",
        "sent_at": "2026-11-02T10:14:31Z",
    },
}
INVITED_EXAMPLE: dict[str, Any] = {
    **DETAIL_EXAMPLE,
    "status": "invited",
    "accepted_at": None,
    "invitation": {**DETAIL_EXAMPLE["invitation"], "state": "valid"},
}
# The path's customer id, with its example (the pid converter already checks its shape).
CustomerId = Annotated[str, Path(description="The customer's id.", example=CUSTOMER_ID)]


class CustomerRow(Schema):
    id: str
    organisation: str
    domain: str
    customer_type: Literal["domain", "team"]
    contact_name: str
    contact_email: str
    status: Literal["invited", "active", "access_revoked", "transferred_out", "cancelled"]
    created_at: datetime

    model_config = examples(ROW_EXAMPLE)


class Invitation(Schema):
    state: Literal["valid", "expired", "used", "withdrawn"]
    expires_at: datetime
    sent_at: datetime

    model_config = examples(INVITED_EXAMPLE["invitation"])


class CustomerOut(CustomerRow):
    country: str
    vat_id: str
    education: bool
    crm_id: str
    admin_name: str
    admin_address: str
    admin_alternate_email: str
    admin_phone: str
    language: str
    time_zone: str
    accepted_at: datetime | None
    invitation: Invitation | None

    model_config = examples(DETAIL_EXAMPLE, INVITED_EXAMPLE)


class CustomerPage(Schema):
    items: list[CustomerRow]
    count: int
    next_cursor: str | None
    previous_cursor: str | None

    model_config = examples(
        {
            "items": [
                ROW_EXAMPLE,
                {
                    **ROW_EXAMPLE,
                    "id": "Tn5sW1eYq8RkZ0bU",
                    "organisation": "Acme Logistics Portugal",
                    "domain": "acmelog.pt",
                    "contact_name": "João Silva",
                    "contact_email": "joao.silva@acmelog.pt",
                    "status": "invited",
                    "created_at": "2026-10-28T08:03:55Z",
                },
            ],
            "count": 2,
            "next_cursor": None,
            "previous_cursor": None,
        }
    )


class ListFilters(Schema):
    q: str = Field("", json_schema_extra=example("acme"))
    status: str = Field(
        "",
        description="invited, active, access_revoked, transferred_out or cancelled.",
        json_schema_extra=example("active"),
    )
    sort: str = Field(
        "",
        description="organisation, domain, status or created; `-` before it reverses it.",
        json_schema_extra=example("-created"),
    )
    cursor: str = Field(
        "",
        description=CURSOR_DESCRIPTION,
        json_schema_extra=example(CURSOR),
    )


class ContactIn(Schema):
    organisation: str
    contact_name: str
    contact_email: str
    country: str
    vat_id: str = ""
    education: bool = False
    crm_id: str = ""
    admin_name: str = ""
    admin_address: str = ""
    admin_alternate_email: str = ""
    admin_phone: str = ""
    language: str | None = None
    time_zone: str | None = None

    model_config = examples(CONTACT_EXAMPLE)


class CustomerIn(ContactIn):
    customer_type: Literal["domain", "team"] = "domain"
    domain: str = ""
    country: str = ""

    model_config = examples(
        {
            "organisation": "Acme Iberia",
            "contact_name": "Lucía Fernández",
            "contact_email": "lucia.fernandez@acme-iberia.es",
            "customer_type": "domain",
            "domain": "acme-iberia.es",
            "country": "ES",
            "vat_id": "ESB87654323",
            "language": "es",
            "time_zone": "Europe/Madrid",
        }
    )


def _row(customer: Customer | dict) -> dict:
    values = customer if isinstance(customer, dict) else vars(customer)
    return {**values, "id": values["public_id"]}


def _detail(customer: Customer) -> dict:
    invitation = selectors.customer_invitation_latest(customer=customer)
    return {
        **_row(customer),
        "country": str(customer.country),
        "invitation": None
        if invitation is None
        else {
            "state": invitation.state.value,
            "expires_at": invitation.expires_at,
            "sent_at": invitation.created_at,
        },
    }


@router.get(
    "/",
    response=CustomerPage,
    auth=KeyAuth(Scope.READ),
    url_name="customer_list",
    summary="List customers",
)
def customer_list(request: ApiRequest, filters: Query[ListFilters]) -> dict:
    """The reseller's customers, newest first unless `sort` says otherwise (organisation,
    domain, status, created; `-` before a key reverses it). `q` searches organisation, domain
    and contact email; `status` filters (a former customer's status lists those too). Follow
    `next_cursor` for the next page."""
    require(request.membership.role, Action.CUSTOMER_VIEW)
    form = CustomerFilterForm(filters.dict())
    form.is_valid()
    page = selectors.customer_page(
        reseller=request.reseller, **form.filters(), cursor=filters.cursor
    )
    return {
        "items": [_row(row) for row in page.object_list],
        "count": page.count,
        "next_cursor": page.next_cursor,
        "previous_cursor": page.previous_cursor,
    }


@router.get(
    "/{pid:customer_id}",
    response=CustomerOut,
    auth=KeyAuth(Scope.READ),
    url_name="customer_get",
    summary="Get a customer",
)
def customer_get(request: ApiRequest, customer_id: CustomerId) -> dict:
    """One customer as its page shows it: organisation, domain, contact and administrator
    details, status, when it accepted, and its latest invitation (`state`: valid, expired,
    used or withdrawn). Another reseller's customer is a 404, as a missing one is."""
    require(request.membership.role, Action.CUSTOMER_VIEW)
    return _detail(selectors.customer_get(reseller=request.reseller, public_id=customer_id))


@router.post(
    "/",
    response={201: CustomerOut},
    auth=KeyAuth(Scope.CUSTOMERS_WRITE),
    url_name="customer_create",
    summary="Invite a customer",
)
def customer_create(request: ApiRequest, payload: CustomerIn) -> HttpResponse | Status[dict]:
    """Invite a customer: the invitation email goes to `contact_email` at once. `language`,
    `time_zone` and `country` default to the reseller's."""
    reseller = request.reseller
    data = payload.dict()
    data["language"] = data["language"] or reseller.language
    data["time_zone"] = data["time_zone"] or reseller.time_zone
    data["country"] = data["country"] or str(reseller.country)
    form = NewCustomerForm(data)
    if not form.is_valid():
        return form_invalid(form)
    customer = services.customer_invite(membership=request.membership, **form.cleaned_data)
    return Status(201, _detail(customer))


@router.put(
    "/{pid:customer_id}",
    response=CustomerOut,
    auth=KeyAuth(Scope.CUSTOMERS_WRITE),
    url_name="customer_update",
    summary="Update a customer's contact details",
)
def customer_update(
    request: ApiRequest, customer_id: CustomerId, payload: ContactIn
) -> HttpResponse | dict:
    """Replace the customer's contact details (every field; those left out are emptied or set
    to their default)."""
    require(request.membership.role, Action.CUSTOMER_EDIT)
    customer = selectors.customer_get(reseller=request.reseller, public_id=customer_id)
    data = payload.dict()
    data["language"] = data["language"] or customer.language
    data["time_zone"] = data["time_zone"] or customer.time_zone
    form = CustomerContactForm(data)
    if not form.is_valid():
        return form_invalid(form)
    customer = services.customer_update_contact(
        membership=request.membership, customer=customer, **form.cleaned_data
    )
    return _detail(customer)


@router.post(
    "/{pid:customer_id}/invitation/resend",
    response=CustomerOut,
    auth=KeyAuth(Scope.CUSTOMERS_WRITE),
    url_name="customer_invitation_resend",
    summary="Resend the invitation",
)
def customer_invitation_resend(request: ApiRequest, customer_id: CustomerId) -> dict:
    """Send the invitation again, with a new link (the old one stops working)."""
    customer = selectors.customer_get(reseller=request.reseller, public_id=customer_id)
    return _detail(
        services.customer_invitation_resend(membership=request.membership, customer=customer)
    )


@router.delete(
    "/{pid:customer_id}/invitation",
    response=CustomerOut,
    auth=KeyAuth(Scope.CUSTOMERS_WRITE),
    url_name="customer_invitation_withdraw",
    summary="Withdraw the invitation",
)
def customer_invitation_withdraw(request: ApiRequest, customer_id: CustomerId) -> dict:
    """Withdraw a customer's open invitation: its link stops working."""
    customer = selectors.customer_get(reseller=request.reseller, public_id=customer_id)
    return _detail(
        services.customer_invitation_withdraw(membership=request.membership, customer=customer)
    )


# Customer import with a transfer token (issue 17).

from customers.forms import ImportCustomerForm  # noqa: E402


class ImportIn(Schema):
    token: str
    customer_type: Literal["domain", "team"] = "domain"
    domain: str = ""
    customer_id: str = ""
    country: str = ""

    model_config = examples(
        {
            "token": "Zk3_fP9qLw2vB7xN0cR5tY8uH1jM4sD6gA-eK2oT9iQ",
            "customer_type": "domain",
            "domain": "acme-iberia.es",
        },
        {
            "token": "Rm8-aQ2wE5tY1uI4oP7sD0fG3hJ6kL9zX2cV5bN8mQ1",
            "customer_type": "team",
            "customer_id": "Hb2Lk9PqZ4xW7sMc",
            "country": "PT",
        },
    )


@router.post(
    "/import",
    response={201: CustomerOut},
    auth=KeyAuth(Scope.CUSTOMERS_WRITE),
    url_name="customer_import",
    summary="Import a customer with a transfer token",
)
def customer_import(request: ApiRequest, payload: ImportIn) -> HttpResponse | Status[dict]:
    """Import a customer of another reseller with the transfer token it generated for your
    reseller ID: name a domain customer by `domain`, a team customer (no domain) by its
    `customer_id`. The organisation, its administrators, history and subscriptions move here.
    `country` is needed only when the organisation's record has none. A token works once."""
    form = ImportCustomerForm(payload.dict())
    if not form.is_valid():
        return form_invalid(form)
    customer = services.customer_import(membership=request.membership, **form.cleaned_data)
    return Status(201, _detail(customer))
