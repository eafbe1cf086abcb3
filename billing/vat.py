"""VAT: which treatment and rate an invoice gets, and the one rounding rule for its amount.

The vendor is established in `settings.VENDOR_COUNTRY`. For a buyer

- in the vendor's country: the domestic rate, VAT id or not;
- in another EU member state with a valid VAT id (python-stdnum: format and check digit):
  0 %, "Reverse charge", the buyer's VAT id printed on the invoice;
- in another EU member state without a valid VAT id (a consumer): the buyer's country's rate;
- outside the EU: 0 %, "outside the scope of EU VAT".

Rates come from the `VatRate` table (the latest `valid_from` on or before the issue date), which
staff keep current in the admin; migration 0002_vat_rates seeds it with `EU_STANDARD_RATES`.
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from billing.models import Invoice, VatRate
from resellers.validators import EU_COUNTRIES, normalise_vat_id
from subscriptions.periods import money_round

Treatment = Invoice.VatTreatment

# The standard rates of the 27 member states in force on 1 January 2025, and the changes since
# (Estonia 24 % from 1 July 2025, Romania 21 % from 1 August 2025). Migration 0002_vat_rates
# loads them; after that the table is what counts, and staff add new rates there.
EU_STANDARD_RATES: tuple[tuple[str, str, date], ...] = (
    ("AT", "20", date(2025, 1, 1)),
    ("BE", "21", date(2025, 1, 1)),
    ("BG", "20", date(2025, 1, 1)),
    ("CY", "19", date(2025, 1, 1)),
    ("CZ", "21", date(2025, 1, 1)),
    ("DE", "19", date(2025, 1, 1)),
    ("DK", "25", date(2025, 1, 1)),
    ("EE", "22", date(2025, 1, 1)),
    ("EE", "24", date(2025, 7, 1)),
    ("ES", "21", date(2025, 1, 1)),
    ("FI", "25.5", date(2025, 1, 1)),
    ("FR", "20", date(2025, 1, 1)),
    ("GR", "24", date(2025, 1, 1)),
    ("HR", "25", date(2025, 1, 1)),
    ("HU", "27", date(2025, 1, 1)),
    ("IE", "23", date(2025, 1, 1)),
    ("IT", "22", date(2025, 1, 1)),
    ("LT", "21", date(2025, 1, 1)),
    ("LU", "17", date(2025, 1, 1)),
    ("LV", "21", date(2025, 1, 1)),
    ("MT", "18", date(2025, 1, 1)),
    ("NL", "21", date(2025, 1, 1)),
    ("PL", "23", date(2025, 1, 1)),
    ("PT", "23", date(2025, 1, 1)),
    ("RO", "19", date(2025, 1, 1)),
    ("RO", "21", date(2025, 8, 1)),
    ("SE", "25", date(2025, 1, 1)),
    ("SI", "22", date(2025, 1, 1)),
    ("SK", "23", date(2025, 1, 1)),
)

ZERO = Decimal("0.00")
HUNDRED = Decimal(100)


@dataclass(frozen=True)
class VatDecision:
    treatment: str  # an Invoice.VatTreatment
    rate: Decimal  # percent, e.g. Decimal("21.00")
    # The buyer's VAT id as validated (compact, with its country prefix), or as typed when it
    # is not an EU one; "" when there is none or it is not valid.
    buyer_vat_id: str


def vat_rate(*, country: str, day: date) -> Decimal:
    """The standard rate of `country` on `day`: the latest one valid from that day or before."""
    rate = (
        VatRate.objects.filter(country=country, valid_from__lte=day)
        .order_by("-valid_from")
        .values_list("rate", flat=True)
        .first()
    )
    if rate is None:
        raise ValidationError(
            _(
                "There is no VAT rate for %(country)s on %(day)s: add one under VAT rates in "
                "the admin."
            )
            % {"country": country, "day": day.isoformat()},
            code="no_vat_rate",
        )
    return rate


def vat_id_valid(*, country: str, vat_id: str) -> str:
    """The VAT id, normalised, if it is a valid EU VAT id of `country`; otherwise ""."""
    if country not in EU_COUNTRIES or not vat_id.strip():
        return ""
    try:
        return normalise_vat_id(country=country, vat_id=vat_id)
    except ValidationError:
        return ""


def vat_decide(
    *, buyer_country: str, buyer_vat_id: str, day: date, vendor_country: str | None = None
) -> VatDecision:
    """The VAT treatment and rate of an invoice issued on `day` to this buyer.

    A buyer without a country is taken to be in the vendor's country (domestic VAT): charging
    VAT is the safe side when the place of supply is unknown.
    """
    vendor_country = vendor_country or settings.VENDOR_COUNTRY
    buyer_country = (buyer_country or vendor_country).upper()
    if buyer_country == vendor_country:
        return VatDecision(
            treatment=Treatment.DOMESTIC,
            rate=vat_rate(country=vendor_country, day=day),
            buyer_vat_id=vat_id_valid(country=buyer_country, vat_id=buyer_vat_id)
            or buyer_vat_id.strip(),
        )
    if buyer_country in EU_COUNTRIES:
        valid_id = vat_id_valid(country=buyer_country, vat_id=buyer_vat_id)
        if valid_id:
            return VatDecision(Treatment.REVERSE_CHARGE, ZERO, valid_id)
        return VatDecision(
            treatment=Treatment.EU_CONSUMER,
            rate=vat_rate(country=buyer_country, day=day),
            buyer_vat_id="",
        )
    return VatDecision(Treatment.OUTSIDE_EU, ZERO, buyer_vat_id.strip())


def vat_amount(*, subtotal: Decimal, rate: Decimal) -> Decimal:
    """VAT on an invoice's subtotal (never per line), by the project's one rounding rule
    (`money_round`: half-up to the cent). The total is subtotal + this, so it reconciles."""
    return money_round(subtotal * rate / HUNDRED)


def vat_legal_mention(*, treatment: str, buyer_vat_id: str, buyer_country: str = "") -> str:
    """The sentence an invoice must carry for its VAT treatment, in the active language
    ("" for domestic VAT). Render it under `translation.override(invoice.language)`."""
    if treatment == Treatment.REVERSE_CHARGE:
        return _(
            "Reverse charge: VAT to be accounted for by the customer (Article 196 of Council "
            "Directive 2006/112/EC). Customer VAT id: %(vat_id)s."
        ) % {"vat_id": buyer_vat_id}
    if treatment == Treatment.OUTSIDE_EU:
        return _("Outside the scope of EU VAT.")
    if treatment == Treatment.EU_CONSUMER:
        return _("VAT charged at the rate of the customer's country (%(country)s).") % {
            "country": buyer_country
        }
    return ""


def vat_rates_seed() -> int:
    """Load `EU_STANDARD_RATES` into the table where missing (the migration does this; a test
    database built from the models without migrations needs it too). Returns rows added."""
    held = set(VatRate.objects.values_list("country", "valid_from"))
    missing = [
        VatRate(country=country, valid_from=valid_from, rate=Decimal(rate))
        for country, rate, valid_from in EU_STANDARD_RATES
        if (country, valid_from) not in held
    ]
    # Two loads at once: the second finds the rows there (the unique constraint) and adds none.
    VatRate.objects.bulk_create(missing, ignore_conflicts=True)
    return len(missing)
