"""The customer side of payments: the organisation's own card, mounted at `my/` beside the
customer's other pages (customers does not import billing)."""

from django.urls import path

from billing.payments import views

app_name = "my_payments"

urlpatterns = [
    path("<pid:customer_id>/card/", views.my_card, name="card"),
    path("<pid:customer_id>/card/change/", views.my_card_change, name="card_change"),
]
