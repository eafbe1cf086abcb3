"""Dates and whole numbers in the active language's notation, for tables that show one per row.

`django.utils.dateformat.format` parses its format string and builds a formatter object for
every value: on a page of 25 rows that was a noticeable share of the Customers page's time.
The portal's languages write short dates with day, month and year numbers only (m/d/Y,
d/m/Y, d.m.Y, j-n-Y), which one `str.format` template per page does as well. Any other
format falls back to Django's formatter, so the result is always what `|date:"SHORT_DATE_FORMAT"`
would print. Whole numbers likewise: the separator is looked up once per page, not per number.
"""

from collections.abc import Callable
from datetime import date

from django.utils import dateformat
from django.utils.formats import get_format, number_format

# Django's format characters for day, month and year numbers, as str.format fields.
_NUMERIC_FIELDS = {
    "d": "{0.day:02d}",
    "j": "{0.day}",
    "m": "{0.month:02d}",
    "n": "{0.month}",
    "Y": "{0.year:04d}",
    "y": "{1:02d}",  # the year's last two digits, passed as the second argument
}


def date_formatter(format_string: str) -> Callable[[date], str]:
    """A function printing a date as `dateformat.format(value, format_string)` does (the
    format split the way Django splits it)."""
    template: list[str] = []
    for n, piece in enumerate(dateformat.re_formatchars.split(format_string)):
        if n % 2:
            if piece not in _NUMERIC_FIELDS:
                return lambda value: dateformat.format(value, format_string)
            template.append(_NUMERIC_FIELDS[piece])
        else:
            text = dateformat.re_escaped.sub(r"\1", piece)
            template.append(text.replace("{", "{{").replace("}", "}}"))
    pattern = "".join(template)
    return lambda value: pattern.format(value, value.year % 100)


def short_date_formatter() -> Callable[[date], str]:
    """The active language's SHORT_DATE_FORMAT as a function (look it up once per page)."""
    return date_formatter(get_format("SHORT_DATE_FORMAT"))


def integer_formatter() -> Callable[[int], str]:
    """The active language's grouped whole numbers ("12,345", "12.345") as a function, what
    `number_format(value, force_grouping=True)` prints, with the format looked up once."""
    separator = get_format("THOUSAND_SEPARATOR")
    if get_format("NUMBER_GROUPING") != 3:
        return lambda value: number_format(value, force_grouping=True)
    return lambda value: f"{value:,}".replace(",", separator)
