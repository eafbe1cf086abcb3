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


@register.filter
def money_change(amount: Decimal | int | str | None, currency: str) -> str:
    """A change of an amount, signed with a plus or a minus sign ("+€12.00"); none for no change."""
    if amount is None or amount == "":
        return ""
    value = Decimal(amount)
    shown = money_format(abs(value), currency)
    return f"+{shown}" if value > 0 else f"\u2212{shown}" if value < 0 else shown
