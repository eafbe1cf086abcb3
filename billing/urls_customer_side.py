"""The customer side of billing, read-only: mounted at `my/` beside customers' own customer-side
pages (customers does not import billing)."""

from django.urls import path

from billing import views

app_name = "my_invoices"

urlpatterns = [
    path("<pid:customer_id>/invoices/", views.my_invoice_list, name="list"),
    path("<pid:customer_id>/invoices/<pid:invoice_id>/", views.my_invoice, name="detail"),
    path("<pid:customer_id>/invoices/<pid:invoice_id>/pdf/", views.my_invoice_pdf, name="pdf"),
]
