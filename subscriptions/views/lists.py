"""The Subscriptions page (reseller side): every subscription of the reseller's customers, in
one list, filtered, in keyset pages, and its CSV. Read-only: each row links to the
subscription's own page, where the changes are made."""

from typing import Any

from django.http import HttpResponse
from django.http.response import HttpResponseBase
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from core.csv import csv_response, export_refused
from core.http import ResellerRequest
from core.lists import list_render
from resellers.access import reseller_required
from resellers.roles import Action
from subscriptions import selectors
from subscriptions.forms import SubscriptionFilterForm
from subscriptions.models import Subscription


@require_GET
@reseller_required(Action.CUSTOMER_VIEW)
@vary_on_headers("HX-Request")
def subscription_list(request: ResellerRequest) -> HttpResponse:
    """Subscriptions: all customers' subscriptions, live ones by default, with filters, a sort
    and pages that cost the same at any depth. htmx requests get the results only."""
    form = SubscriptionFilterForm(request.GET)
    context: dict[str, Any] = {"form": form}
    if form.is_valid():
        page = selectors.subscription_page_for_reseller(
            reseller=request.reseller, cursor=request.GET.get("cursor", ""), **form.filters()
        )
        params = form.params()
        context |= {
            "page": page,
            "rows": _subscription_rows(page.object_list),
            "params": params,
            "filtered": bool(params.keys() - {"sort"}),
            "links": page.links(params),
            "export_url": reverse("subscriptions:export")
            + ("?" + urlencode(params) if params else ""),
            # What an empty page says: nothing matches, or nothing at all yet (one query, only
            # when the page is empty).
            "any_subscriptions": page.count > 0
            or selectors.subscription_exists_for_reseller(reseller=request.reseller),
        }
    return list_render(request, "subscriptions/subscription_list.html", context)


def _subscription_rows(subscriptions: list[Subscription]) -> list[dict[str, Any]]:
    """Each subscription with its page's and its customer's links and its MRR."""
    return [
        {
            "subscription": subscription,
            "url": reverse(
                "subscriptions:detail", kwargs={"subscription_id": subscription.public_id}
            ),
            "customer_url": reverse(
                "customers:detail", kwargs={"customer_id": subscription.customer.public_id}
            ),
            "mrr": selectors.subscription_mrr(subscription),
        }
        for subscription in subscriptions
    ]


@require_GET
# A streamed response: reseller_required is typed for HttpResponse only.
@reseller_required(Action.CUSTOMER_VIEW)
def subscription_export(request: ResellerRequest) -> HttpResponseBase:
    """The filtered subscriptions as CSV (selectors.SUBSCRIPTION_CSV_COLUMNS), streamed from one
    query however many there are. Filters it does not know are refused, as the page does."""
    form = SubscriptionFilterForm(request.GET)
    if not form.is_valid():
        return export_refused(form)
    subscriptions = selectors.subscription_list_for_reseller(
        reseller=request.reseller, **form.filters()
    )
    return csv_response(
        filename=f"subscriptions-{timezone.localdate().isoformat()}.csv",
        header=[str(column) for column in selectors.SUBSCRIPTION_CSV_COLUMNS],
        rows=selectors.subscription_export_rows(subscriptions=subscriptions),
    )
