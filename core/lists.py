"""What the list pages (Customers, Invoices, Subscriptions, Audit log) answer an htmx request:
their filters and page links swap the results (#results) alone. Their pages are
core.pagination's; their filter bar is templates/_filters.html."""

from typing import Any

from django.http import HttpResponse
from django.shortcuts import render

from core.http import PortalRequest


def list_render(request: PortalRequest, template: str, context: dict[str, Any]) -> HttpResponse:
    """The list page, or for an htmx request only its "results" partial, with `fragment` set
    (the results then bring the filters' messages along, templates/_filter_errors.html). A
    history restore (htmx found nothing in its cache) gets the whole page."""
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, f"{template}#results", {**context, "fragment": True})
    return render(request, template, context)
