"""Settings → Webhooks: the reseller's endpoints, registering one (its secret shown once, in the
answer to the POST that made it), an endpoint's events and delivery log, disabling, enabling
and deleting it, and replaying one event or a time range. Owners and admins only."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from core.forms import add_service_errors
from core.http import ResellerRequest
from resellers.access import reseller_required
from resellers.roles import Action
from webhooks import selectors, services
from webhooks.forms import EndpointForm, EventTypesForm, ReplayRangeForm
from webhooks.models import WebhookDelivery


@reseller_required(Action.WEBHOOKS_MANAGE)
def endpoint_list(request: ResellerRequest) -> HttpResponse:
    """The endpoints and the form that registers one. The secret exists in clear only in the
    response to the POST that made it; it is never put in the session or a redirect."""
    form = EndpointForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            endpoint, secret = services.endpoint_create(
                membership=request.membership,
                url=form.cleaned_data["url"],
                description=form.cleaned_data["description"],
                event_types=form.cleaned_data["event_types"],
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            response = render(
                request, "webhooks/endpoint_created.html", {"endpoint": endpoint, "secret": secret}
            )
            add_never_cache_headers(response)
            return response
    context = {"endpoints": selectors.endpoint_list(reseller=request.reseller), "form": form}
    return render(request, "webhooks/endpoints.html", context, status=400 if form.errors else 200)


@reseller_required(Action.WEBHOOKS_MANAGE)
def endpoint_detail(request: ResellerRequest, endpoint_id: str) -> HttpResponse:
    """The endpoint's events (changed by POST) and its delivery log, with the replays."""
    endpoint = selectors.endpoint_get(reseller=request.reseller, public_id=endpoint_id)
    form = EventTypesForm(
        request.POST or None, initial={"event_types": endpoint.event_types}, prefix="types"
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.endpoint_update(
                membership=request.membership,
                endpoint=endpoint,
                event_types=form.cleaned_data["event_types"],
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, _("The endpoint's events were saved."))
            return redirect("webhooks:detail", endpoint.public_id)
    status = request.GET.get("status", "")
    context = {
        "endpoint": endpoint,
        "form": form,
        "replay_form": ReplayRangeForm(prefix="replay"),
        "deliveries": selectors.delivery_log(endpoint=endpoint, status=status),
        "status": status,
        "statuses": WebhookDelivery.Status.choices,
    }
    return render(
        request, "webhooks/endpoint_detail.html", context, status=400 if form.errors else 200
    )


@require_POST
@reseller_required(Action.WEBHOOKS_MANAGE)
def endpoint_disable(request: ResellerRequest, endpoint_id: str) -> HttpResponse:
    endpoint = selectors.endpoint_get(reseller=request.reseller, public_id=endpoint_id)
    services.endpoint_disable(membership=request.membership, endpoint=endpoint)
    messages.success(request, _("The endpoint is disabled: it receives no events."))
    return redirect("webhooks:detail", endpoint.public_id)


@require_POST
@reseller_required(Action.WEBHOOKS_MANAGE)
def endpoint_enable(request: ResellerRequest, endpoint_id: str) -> HttpResponse:
    endpoint = selectors.endpoint_get(reseller=request.reseller, public_id=endpoint_id)
    services.endpoint_enable(membership=request.membership, endpoint=endpoint)
    messages.success(
        request,
        _(
            "The endpoint is enabled. The events it missed while disabled can be sent again "
            "from its delivery log."
        ),
    )
    return redirect("webhooks:detail", endpoint.public_id)


@reseller_required(Action.WEBHOOKS_MANAGE)
def endpoint_delete(request: ResellerRequest, endpoint_id: str) -> HttpResponse:
    """GET says what deleting means; POST deletes."""
    endpoint = selectors.endpoint_get(reseller=request.reseller, public_id=endpoint_id)
    if request.method == "POST":
        services.endpoint_delete(membership=request.membership, endpoint=endpoint)
        messages.success(request, _("The endpoint %(url)s was deleted.") % {"url": endpoint.url})
        return redirect("webhooks:list")
    return render(request, "webhooks/endpoint_delete.html", {"endpoint": endpoint})


@require_POST
@reseller_required(Action.WEBHOOKS_MANAGE)
def event_replay(request: ResellerRequest, endpoint_id: str, event_id: str) -> HttpResponse:
    endpoint = selectors.endpoint_get(reseller=request.reseller, public_id=endpoint_id)
    event = selectors.event_get(reseller=request.reseller, public_id=event_id)
    try:
        services.event_replay(membership=request.membership, endpoint=endpoint, event=event)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request, _("The event %(id)s will be sent again.") % {"id": event.public_id}
        )
    return redirect("webhooks:detail", endpoint.public_id)


@require_POST
@reseller_required(Action.WEBHOOKS_MANAGE)
def events_replay_range(request: ResellerRequest, endpoint_id: str) -> HttpResponse:
    endpoint = selectors.endpoint_get(reseller=request.reseller, public_id=endpoint_id)
    form = ReplayRangeForm(request.POST, prefix="replay")
    if not form.is_valid():
        messages.error(request, _("Enter the start and the end of the time range."))
        return redirect("webhooks:detail", endpoint.public_id)
    try:
        count = services.events_replay_range(
            membership=request.membership,
            endpoint=endpoint,
            start=form.cleaned_data["start"],
            end=form.cleaned_data["end"],
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request,
            ngettext("%(count)d event is sent again.", "%(count)d events are sent again.", count)
            % {"count": count},
        )
    return redirect("webhooks:detail", endpoint.public_id)
