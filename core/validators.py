import functools
import re
import zoneinfo

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _


@functools.cache
def _time_zones() -> frozenset[str]:
    """The time zone database's names. Listing them reads every file of the database (600, 16 ms
    here), so once per process: the database changes with a package upgrade, which restarts it."""
    return frozenset(zoneinfo.available_timezones())


def validate_time_zone(value: str) -> None:
    if value not in _time_zones():
        raise ValidationError(
            _("“%(value)s” is not a time zone; use a name such as Europe/Madrid."),
            params={"value": value},
            code="time_zone",
        )


# Free text a person types. Lengths: a multi-line text (a postal address) is bounded here, a
# one-line text by its CharField's max_length.
ADDRESS_MAX_LENGTH = 1000

# Characters that change how text is shown without being seen: the C0 and C1 controls (ESC
# starts terminal escape sequences), DEL, the line and paragraph separators, and the Unicode
# bidi embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069), with which
# "Acme\u202eexe.cod" reads "Acmedoc.exe" ("Trojan Source"). The marks that only hint a
# direction (U+200E, U+200F, U+061C) stay allowed: right-to-left names need them.
_INVISIBLE_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# A multi-line text keeps its line breaks and tabs.
_INVISIBLE_CONTROLS_MULTI_LINE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)


def validate_name(value: str) -> None:
    """A name (of a person, organisation or company): one line, no invisible controls."""
    if _INVISIBLE_CONTROLS.search(value):
        raise ValidationError(
            _("Remove the invisible control characters from this name."), code="control"
        )


def name_clean(value: str) -> str:
    """A name from elsewhere (a Google profile), where nobody can be asked to correct it:
    the invisible controls are dropped instead of refused."""
    return " ".join(_INVISIBLE_CONTROLS.sub("", value).split())


def validate_single_line(value: str) -> None:
    """Any other one-line text (an id, a phone number): no line breaks, no invisible controls."""
    if _INVISIBLE_CONTROLS.search(value):
        raise ValidationError(
            _("Remove the invisible control characters from this text."), code="control"
        )


def validate_multi_line(value: str) -> None:
    """A text of several lines (a postal address): line breaks and tabs, no other controls."""
    if _INVISIBLE_CONTROLS_MULTI_LINE.search(value):
        raise ValidationError(
            _("Remove the invisible control characters from this text."), code="control"
        )
