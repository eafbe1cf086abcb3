"""Domain, email and phone checks for customers, each with a message a reseller can act on."""

import idna
import phonenumbers
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _


def normalise_domain(value: str) -> str:
    """Return the domain in IDNA (ASCII) form; internationalised names are accepted."""
    domain = value.strip().rstrip(".").lower()
    if domain.startswith(("http://", "https://")) or "/" in domain or "@" in domain:
        raise ValidationError(
            _("Enter the domain only, such as example.com (no address, path or email)."),
            code="domain_syntax",
        )
    try:
        ascii_domain = idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError:
        raise ValidationError(
            _("“%(value)s” is not a valid domain name."),
            params={"value": value},
            code="domain_syntax",
        ) from None
    labels = ascii_domain.split(".")
    if len(labels) < 2 or (not labels[-1].isalpha() and not labels[-1].startswith("xn--")):
        raise ValidationError(
            _("“%(value)s” is not a valid domain name."),
            params={"value": value},
            code="domain_syntax",
        )
    return ascii_domain


def email_domain(email: str) -> str:
    part = email.rsplit("@", 1)[-1]
    try:
        return normalise_domain(part)
    except ValidationError:
        return part.lower()


def normalise_phone(value: str, *, region: str) -> str:
    """Parse with libphonenumber (national numbers read in `region`); return E.164."""
    if not value.strip():
        return ""
    try:
        number = phonenumbers.parse(value, region or None)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise ValidationError(
            _(
                "This is not a valid phone number; include the country code, "
                "such as +34 912 345 678."
            ),
            code="phone",
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
