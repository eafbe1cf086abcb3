"""The Reports page (issue 18) and its CSV downloads: revenue by month, customer and product,
the charges not invoiced yet, the next 90 days' expected charges, and the licence changes, for a
range of days and a currency (insights.forms.ReportFilterForm). For the roles that see invoices
(Action.INVOICE_VIEW: owner, admin, billing; sales gets a 403); the margin column only for those
that see margins (Action.MARGIN_VIEW). Read-only; the figures are insights.reports'.

Each report is a `{% partialdef %}` of templates/insights/reports.html: an htmx request gets the
results (the filters and the four reports), or the one report its HX-Target names."""

from collections.abc import Iterable, Sequence
from typing import Any

from django.http import Http404, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from core.csv import csv_response, export_refused
from core.http import ResellerRequest
from insights import reports
from insights.forms import ReportFilterForm
from resellers.access import reseller_required
from resellers.roles import Action, role_can

# The reports' CSV files, by the slug of their URL.
REVENUE_EXPORTS = tuple(reports.REVENUE_CSV_COLUMNS)
EXPORTS = (*REVENUE_EXPORTS, "unbilled", "forecast", "licence-changes")

# The page's reports: the partial that renders each, by the id of its section (HX-Target).
SECTIONS = {
    "report-revenue": "revenue",
    "report-unbilled": "unbilled",
    "report-forecast": "forecast",
    "report-licence-changes": "licence_changes",
}


def _form(request: ResellerRequest, data: Any) -> ReportFilterForm:
    return ReportFilterForm(
        data,
        currencies=reports.report_currencies(reseller=request.reseller),
        today=timezone.localdate(),
    )


def _partial(request: ResellerRequest) -> str:
    """What an htmx request renders: the report its target names, else all the results."""
    if not request.htmx or request.htmx.history_restore_request:
        return ""
    return SECTIONS.get(request.htmx.target or "", "results")


def _revenue_tables(revenue: Any, csv_urls: dict[str, str]) -> list[dict[str, Any]]:
    """The revenue report's three tables, drawn by one loop of the template."""
    return [
        {
            "key": key,
            "caption": caption,
            "first_column": first_column,
            "lines": lines,
            "csv_url": csv_urls[f"revenue_by_{key}"],
        }
        for key, caption, first_column, lines in (
            ("month", _("By month"), _("Month"), revenue.by_month),
            ("customer", _("By customer"), _("Customer"), revenue.by_customer),
            ("product", _("By product"), _("Product"), revenue.by_product),
        )
    ]


@require_GET
@reseller_required(Action.INVOICE_VIEW)
@vary_on_headers("HX-Request", "HX-Target")
def reports_page(request: ResellerRequest) -> HttpResponse:
    """The four reports for the filters asked for (the last 12 months and this one, in the
    currency with the most revenue, by default)."""
    form = _form(request, request.GET)
    partial = _partial(request)
    context: dict[str, Any] = {"form": form, "forecast_days": reports.FORECAST_DAYS}
    if form.is_valid():
        filters = form.filters()
        params = form.params()
        reseller, zone = request.reseller, timezone.get_current_timezone()
        shown = {partial} if partial in SECTIONS.values() else set(SECTIONS.values())
        context |= {
            # The filters as they apply, also those not asked for.
            "form": ReportFilterForm(params, currencies=form.currencies, today=form.today),
            "filters": filters,
            "show_margin": role_can(request.membership.role, Action.MARGIN_VIEW),
            "csv_urls": {
                slug.replace("-", "_"): reverse("insights:report_export", kwargs={"report": slug})
                + "?"
                + urlencode(params)
                for slug in EXPORTS
            },
        }
        if "revenue" in shown:
            revenue = context["revenue"] = reports.revenue_report(
                reseller=reseller, filters=filters
            )
            context["revenue_tables"] = _revenue_tables(revenue, context["csv_urls"])
        if "unbilled" in shown:
            context["unbilled"] = reports.unbilled_report(
                reseller=reseller, currency=filters.currency, zone=zone
            )
        if "forecast" in shown:
            context["forecast"] = reports.forecast_report(
                reseller=reseller, currency=filters.currency, today=form.today
            )
        if "licence_changes" in shown:
            context["licences"] = reports.licence_report(
                reseller=reseller, filters=filters, zone=zone
            )
    elif partial:
        partial = "results"  # the filters with their errors, in place of the reports
    template = "insights/reports.html"
    if partial:
        template += f"#{partial}"
    return render(request, template, context)


@require_GET
# A streamed response: reseller_required is typed for any response.
@reseller_required(Action.INVOICE_VIEW)
def report_export(request: ResellerRequest, report: str) -> HttpResponseBase:
    """One report as CSV, for the same filters as the page (`?from=&to=&currency=`)."""
    if report not in EXPORTS:
        raise Http404(_("No such report."))
    form = _form(request, request.GET)
    if not form.is_valid():
        return export_refused(form)
    filters = form.filters()
    reseller, zone = request.reseller, timezone.get_current_timezone()
    # The file's name says what it holds: the currency (licences have none) and the range, or
    # the day for what is as of now.
    name = f"{report}-{filters.currency}-{filters.start.isoformat()}-{filters.end.isoformat()}"
    rows: Iterable[Sequence[str]]
    if report in REVENUE_EXPORTS:
        with_margin = role_can(request.membership.role, Action.MARGIN_VIEW)
        revenue = reports.revenue_report(reseller=reseller, filters=filters)
        header = reports.revenue_csv_header(report, with_margin=with_margin)
        rows = reports.revenue_csv_rows(revenue, report, with_margin=with_margin)
    elif report == "unbilled":
        name = f"{report}-{filters.currency}-{form.today.isoformat()}"
        header = reports.UNBILLED_CSV_COLUMNS
        rows = reports.unbilled_csv_rows(reseller=reseller, currency=filters.currency, zone=zone)
    elif report == "forecast":
        name = f"{report}-{filters.currency}-{form.today.isoformat()}"
        forecast = reports.forecast_report(
            reseller=reseller, currency=filters.currency, today=form.today
        )
        header = reports.FORECAST_CSV_COLUMNS
        rows = reports.forecast_csv_rows(forecast)
    else:
        name = f"{report}-{filters.start.isoformat()}-{filters.end.isoformat()}"
        header = reports.LICENCE_CSV_COLUMNS
        rows = reports.licence_csv_rows(reseller=reseller, filters=filters, zone=zone)
    return csv_response(filename=f"{name}.csv", header=header, rows=rows)
