from django.urls import path

from subscriptions.views import lists, orders, prices, terms

app_name = "subscriptions"

urlpatterns = [
    # the list of all customers' subscriptions
    path("", lists.subscription_list, name="list"),
    path("export.csv", lists.subscription_export, name="export"),
    # orders
    path("buy/<pid:customer_id>/", orders.subscription_buy, name="buy"),
    path("<pid:subscription_id>/licences/", orders.subscription_licences, name="licences"),
    path("orders/<pid:order_id>/", orders.order_done, name="order_done"),
    # the price book
    path("prices/", prices.price_book, name="price_book"),
    path("prices/set/", prices.price_rule_set, name="price_rule_set"),
    path("prices/special/", prices.special_price_add, name="special_price_add"),
    path(
        "prices/special/<pid:customer_id>/end/",
        prices.special_price_end,
        name="special_price_end",
    ),
    # terms
    path("<pid:subscription_id>/", terms.subscription_detail, name="detail"),
    path("<pid:subscription_id>/renewal/", terms.subscription_renewal, name="renewal"),
    path("<pid:subscription_id>/plan/", terms.subscription_change_plan, name="change_plan"),
    path(
        "<pid:subscription_id>/plan/cancel-change/",
        terms.subscription_cancel_plan_change,
        name="cancel_plan_change",
    ),
    path("<pid:subscription_id>/cancel/", terms.subscription_cancel, name="cancel"),
    path("<pid:subscription_id>/suspend/", terms.subscription_suspend, name="suspend"),
    path("<pid:subscription_id>/reactivate/", terms.subscription_reactivate, name="reactivate"),
]
