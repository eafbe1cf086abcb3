from django.urls import path

from insights.views import audit, reports

app_name = "insights"

urlpatterns = [
    path("reports/", reports.reports_page, name="reports"),
    path("reports/<slug:report>.csv", reports.report_export, name="report_export"),
    path("settings/audit-log/", audit.audit_log, name="audit_log"),
    path("settings/audit-log/export.csv", audit.audit_log_export, name="audit_log_export"),
]
