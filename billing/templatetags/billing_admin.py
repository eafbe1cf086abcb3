"""The admin index's "Billing health" box (templates/admin/index.html)."""

from django import template

from billing import selectors

register = template.Library()


@register.simple_tag
def billing_health() -> selectors.BillingHealth:
    return selectors.billing_health()
