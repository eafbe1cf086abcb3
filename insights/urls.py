from django.urls import path

from insights.views import reports

app_name = "insights"

urlpatterns = [
    path("", reports.reports_page, name="reports"),
    path("<slug:report>.csv", reports.report_export, name="report_export"),
]
