"""Money as people read it: the amount with its currency in the active language's notation
("€1,234.50" in English, "1.234,50 €" in German), by babel's CLDR data."""

from decimal import Decimal

from babel.core import Locale, UnknownLocaleError
from babel.numbers import format_compact_currency, format_currency
from django.utils import translation

# Half a cent: the band within which a database check holds one amount equal to a sum of
# others (subtotal + VAT = total, amount - cost = margin). The amounts are rounded to the cent,
# so the band admits nothing else; it is there for SQLite (the demo's database), which computes
# with binary floats (228.00 - 182.40 = 45.599999999999994).
HALF_CENT = Decimal("0.005")


def _locale() -> Locale:
    language = translation.get_language() or "en"
    try:
        return Locale.parse(translation.to_locale(language))
    except (ValueError, UnknownLocaleError):
        return Locale.parse("en")


def money_format(amount: Decimal | int | str | None, currency: str) -> str:
    """The amount in `currency`, in the active language's notation; "" for no amount."""
    if amount is None or amount == "":
        return ""
    return format_currency(Decimal(amount), currency, locale=_locale())


def money_format_short(amount: Decimal | int | str | None, currency: str) -> str:
    """The amount rounded to a few figures ("€12.5K" in English, "12,5 mil €" in Spanish), for a
    chart's axis, in the active language's notation; "" for no amount."""
    if amount is None or amount == "":
        return ""
    return format_compact_currency(Decimal(amount), currency, locale=_locale(), fraction_digits=1)
