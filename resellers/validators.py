from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from stdnum.eu import vat as eu_vat
from stdnum.exceptions import InvalidChecksum
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.util import clean

# Greece's VAT prefix is EL, not its ISO country code.
_VAT_PREFIX = {"GR": "EL"}
EU_COUNTRIES = frozenset(
    [
        "AT",
        "BE",
        "BG",
        "CY",
        "CZ",
        "DE",
        "DK",
        "EE",
        "ES",
        "FI",
        "FR",
        "GR",
        "HR",
        "HU",
        "IE",
        "IT",
        "LT",
        "LU",
        "LV",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SE",
        "SI",
        "SK",
    ]
)


def normalise_vat_id(*, country: str, vat_id: str) -> str:
    """Validate an EU VAT id for `country` with python-stdnum; return it compact, prefixed.

    Outside the EU a VAT id is optional and kept as typed (trimmed).
    """
    vat_id = vat_id.strip()
    if not vat_id or country not in EU_COUNTRIES:
        return vat_id
    prefix = _VAT_PREFIX.get(country, country)
    number = clean(vat_id, " -./,").upper()
    if not number[:2].isalpha():
        number = prefix + number
    if number[:2] != prefix:
        raise ValidationError(
            _(
                "This VAT id does not belong to the selected country "
                "(its VAT ids start with %(prefix)s)."
            )
            % {"prefix": prefix},
            code="vat_country",
        )
    try:
        return eu_vat.validate(number)
    except InvalidChecksum:
        raise ValidationError(
            _("This VAT id has a wrong check digit: please check it for typing errors."),
            code="vat_checksum",
        ) from None
    except StdnumError:
        raise ValidationError(
            _("This is not a valid VAT id for the selected country."), code="vat_format"
        ) from None
