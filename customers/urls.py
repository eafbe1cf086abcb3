from django.urls import path

from customers import views

app_name = "customers"

urlpatterns = [
    path("", views.customer_list, name="list"),
    path("export.csv", views.customer_export, name="export"),
    path("new/", views.customer_create, name="create"),
    path("import/", views.customer_import, name="import"),
    path("<pid:customer_id>/", views.customer_detail, name="detail"),
    path("<pid:customer_id>/edit/", views.customer_edit, name="edit"),
    path(
        "<pid:customer_id>/invitation/resend/",
        views.customer_invitation_resend,
        name="invitation_resend",
    ),
    path(
        "<pid:customer_id>/invitation/withdraw/",
        views.customer_invitation_withdraw,
        name="invitation_withdraw",
    ),
]
