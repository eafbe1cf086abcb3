from django.urls import path

from commissions import statement_views as views

app_name = "statements"

urlpatterns = [
    path("", views.statement_list, name="list"),
    path("<pid:statement_id>/", views.statement_detail, name="detail"),
    path("<pid:statement_id>/pdf/", views.statement_pdf, name="pdf"),
    path("<pid:statement_id>/csv/", views.statement_csv, name="csv"),
]
