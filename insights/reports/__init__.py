"""The Reports page's reads (insights.views.reports): a reseller's revenue by month, customer
and product, its customers' charges not invoiced yet, the charges expected in the next 90
days, and the licence changes, each with the rows of its CSV.

Every read takes the reseller and costs a fixed number of queries, however many rows: one
module per report.
"""

from insights.reports.common import (
    ReportFilters,
    default_start,
    report_currencies,
)
from insights.reports.forecast import (
    FORECAST_CSV_COLUMNS,
    FORECAST_DAYS,
    ExpectedCharge,
    ForecastReport,
    forecast_csv_rows,
    forecast_report,
)
from insights.reports.licences import (
    LICENCE_CSV_COLUMNS,
    LicenceReport,
    licence_csv_rows,
    licence_report,
)
from insights.reports.revenue import (
    REVENUE_CSV_COLUMNS,
    RevenueReport,
    revenue_csv_header,
    revenue_csv_rows,
    revenue_report,
)
from insights.reports.unbilled import (
    UNBILLED_CSV_COLUMNS,
    UnbilledReport,
    unbilled_csv_rows,
    unbilled_report,
)

__all__ = [
    "FORECAST_CSV_COLUMNS",
    "FORECAST_DAYS",
    "LICENCE_CSV_COLUMNS",
    "REVENUE_CSV_COLUMNS",
    "UNBILLED_CSV_COLUMNS",
    "ExpectedCharge",
    "ForecastReport",
    "LicenceReport",
    "ReportFilters",
    "RevenueReport",
    "UnbilledReport",
    "default_start",
    "forecast_csv_rows",
    "forecast_report",
    "licence_csv_rows",
    "licence_report",
    "report_currencies",
    "revenue_csv_header",
    "revenue_csv_rows",
    "revenue_report",
    "unbilled_csv_rows",
    "unbilled_report",
]
