"""The reseller's Margin page (issue 16) and its CSV: a month's revenue, cost and margin by
customer and by product, per currency, what is earned (paid) apart from what is expected (issued,
unpaid). Owner, admin and billing only (Action.MARGIN_VIEW): sales gets a 403. Read-only; the
figures are commissions.margins'."""

from datetime import date
from typing import Any

from django.http import HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from commissions import margins
from commissions.forms_margins import MonthForm
from core.csv import csv_response, export_refused
from core.http import ResellerRequest
from resellers.access import reseller_required
from resellers.roles import Action


def _this_month() -> date:
    """The current month in the vendor's calendar, the one the figures are counted in."""
    return margins.month_start(timezone.localdate(timezone=timezone.get_default_timezone()))


def _month_url(name: str, month: date) -> str:
    return reverse(name) + "?" + urlencode({"month": f"{month:%Y-%m}"})


@require_GET
@reseller_required(Action.MARGIN_VIEW)
def margin(request: ResellerRequest) -> HttpResponse:
    """The Margin page of the month asked for (`?month=YYYY-MM`), this month by default, with
    links to the month before and, up to this month, the month after."""
    this_month = _this_month()
    form = MonthForm(request.GET, today=this_month)
    if not form.is_valid():
        return render(request, "commissions/margin.html", {"form": form}, status=400)
    month = form.cleaned_data["month"]
    following = margins.next_month(month)
    context: dict[str, Any] = {
        # The picker shows the month shown, also when none was asked for.
        "form": MonthForm({"month": f"{month:%Y-%m}"}, today=this_month),
        "report": margins.margin_report(reseller=request.reseller, month=month),
        "month": month,
        "is_this_month": month == this_month,
        "previous_url": _month_url("commissions:margin", margins.previous_month(month)),
        "next_url": _month_url("commissions:margin", following) if following <= this_month else "",
        "this_month_url": reverse("commissions:margin"),
        "export_url": _month_url("commissions:margin_export", month),
    }
    return render(request, "commissions/margin.html", context)


@require_GET
# A streamed response: reseller_required is typed for any response.
@reseller_required(Action.MARGIN_VIEW)
def margin_export(request: ResellerRequest) -> HttpResponseBase:
    """The Margin page's figures of the month as CSV (margins.MARGIN_CSV_COLUMNS)."""
    form = MonthForm(request.GET, today=_this_month())
    if not form.is_valid():
        return export_refused(form)
    month = form.cleaned_data["month"]
    report = margins.margin_report(reseller=request.reseller, month=month)
    return csv_response(
        filename=f"margin-{month:%Y-%m}.csv",
        header=margins.MARGIN_CSV_COLUMNS,
        rows=margins.margin_csv_rows(report),
    )
