"""Pages for the customer's own people (not reseller members)."""

from django.urls import path

from customers import views

app_name = "customer_side"

urlpatterns = [
    path("invitation/<str:token>/", views.invitation, name="invitation"),
    path("my/", views.my_organisations, name="home"),
]
