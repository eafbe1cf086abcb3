"""Pages for the customer's own people (not reseller members)."""

from django.urls import path

from customers import views

app_name = "customer_side"

urlpatterns = [
    path("invitation/<str:token>/", views.invitation, name="invitation"),
    path("my/", views.my_organisations, name="home"),
    path("my/<pid:customer_id>/", views.my_organisation, name="organisation"),
    path("my/<pid:customer_id>/revoke/", views.my_access_revoke, name="access_revoke"),
    path(
        "my/<pid:customer_id>/transfer-token/",
        views.my_transfer_token_create,
        name="transfer_token_create",
    ),
    path(
        "my/<pid:customer_id>/transfer-tokens/<pid:transfer_token_id>/withdraw/",
        views.my_transfer_token_withdraw,
        name="transfer_token_withdraw",
    ),
]
