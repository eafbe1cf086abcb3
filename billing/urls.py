from django.urls import path

from billing import views

app_name = "billing"

urlpatterns = [
    # Invoices pages
    path("", views.invoice_list, name="invoice_list"),
    path("export.csv", views.invoice_export, name="invoice_export"),
    path("<pid:invoice_id>/", views.invoice_detail, name="invoice_detail"),
    path("<pid:invoice_id>/pdf/", views.invoice_pdf, name="invoice_pdf"),
]
