"""core.formatting prints exactly what Django's own formatters print."""

from datetime import date

import pytest
from django.utils import dateformat, translation
from django.utils.formats import get_format, number_format
from hypothesis import given
from hypothesis import strategies as st

from core.formatting import date_formatter, integer_formatter, short_date_formatter

LANGUAGES = ["en", "es", "fr", "de", "nl"]
FORMATS = ["m/d/Y", "d/m/Y", "d.m.Y", "j-n-Y", "y-m-d", r"\d\a\y j", r"d\\m", "Y{m}d", "N j, Y"]


@pytest.mark.parametrize("format_string", FORMATS)
@given(value=st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)))
def test_dates_print_as_dateformat_prints_them(format_string, value):
    assert date_formatter(format_string)(value) == dateformat.format(value, format_string)


@pytest.mark.parametrize("language", LANGUAGES)
def test_short_dates_in_every_language(language):
    with translation.override(language):
        short_date = short_date_formatter()
        for value in (date(2026, 1, 5), date(2026, 11, 23), date(999, 12, 31)):
            assert short_date(value) == dateformat.format(value, get_format("SHORT_DATE_FORMAT"))


@pytest.mark.parametrize("language", LANGUAGES)
@given(value=st.integers(min_value=-(10**12), max_value=10**12))
def test_whole_numbers_are_grouped_as_number_format_groups_them(language, value):
    with translation.override(language):
        assert integer_formatter()(value) == number_format(value, force_grouping=True)
