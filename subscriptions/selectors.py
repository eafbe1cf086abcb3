from django.db.models import QuerySet

from subscriptions.models import Plan


def plan_list_on_sale() -> QuerySet[Plan]:
    return (
        Plan.objects.filter(is_active=True, product__is_active=True)
        .select_related("product")
        .prefetch_related("prices")
    )
