"""`{{ amount|money:currency }}`: see core.money."""

from decimal import Decimal

from django import template

from core.money import money_format, money_format_short

register = template.Library()


@register.filter
def money(amount: Decimal | int | str | None, currency: str) -> str:
    return money_format(amount, currency)


@register.filter
def money_short(amount: Decimal | int | str | None, currency: str) -> str:
    return money_format_short(amount, currency)
