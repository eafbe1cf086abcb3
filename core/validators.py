import zoneinfo

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(
            _("“%(value)s” is not a time zone; use a name such as Europe/Madrid."),
            params={"value": value},
            code="time_zone",
        )
