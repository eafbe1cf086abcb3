"""The reseller's Audit log page (Settings → Audit log, owners and admins) and its CSV."""

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
from insights import audit
from insights.forms import AuditLogFilterForm
from resellers.access import reseller_required
from resellers.roles import Action


@require_GET
@reseller_required(Action.AUDIT_VIEW)
@vary_on_headers("HX-Request")
def audit_log(request: ResellerRequest) -> HttpResponse:
    """The reseller's audit log: who did what, when, from where and through which API key,
    filtered, newest first, in pages that cost the same at any depth. htmx requests get the
    results only."""
    form = AuditLogFilterForm(request.GET, reseller=request.reseller)
    context: dict[str, Any] = {"form": form}
    if form.is_valid():
        events = audit.audit_log(reseller=request.reseller, **form.filters())
        page = audit.audit_page(events=events, cursor=request.GET.get("cursor", ""))
        params = form.params()
        context |= {
            "page": page,
            "rows": audit.audit_rows(reseller=request.reseller, events=page.object_list),
            "params": params,
            "filtered": bool(params),
            "links": page.links(params),
            "export_url": reverse("insights:audit_log_export")
            + ("?" + urlencode(params) if params else ""),
        }
    return list_render(request, "insights/audit_log.html", context)


@require_GET
@reseller_required(Action.AUDIT_VIEW)
def audit_log_export(request: ResellerRequest) -> HttpResponseBase:
    """The filtered audit log as CSV (audit.AUDIT_CSV_COLUMNS), streamed however long."""
    form = AuditLogFilterForm(request.GET, reseller=request.reseller)
    if not form.is_valid():
        return export_refused(form)
    events = audit.audit_log(reseller=request.reseller, **form.filters())
    rows = audit.audit_export_rows(reseller=request.reseller, events=events)
    return csv_response(
        filename=f"audit-log-{timezone.localdate().isoformat()}.csv",
        header=audit.AUDIT_CSV_COLUMNS,
        rows=rows,
    )
