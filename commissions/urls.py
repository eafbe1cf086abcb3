from django.urls import path

from commissions import views

app_name = "commissions"

urlpatterns = [
    # The Margin page and its CSV (commissions.margins)
    path("", views.margin, name="margin"),
    path("export.csv", views.margin_export, name="margin_export"),
]
