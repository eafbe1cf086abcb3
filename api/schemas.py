"""Shapes every resource of the API shares."""

from decimal import Decimal

from ninja import Schema
from pydantic import Field

from api.routes.examples import eur, examples

CENT = Decimal("0.01")


class Money(Schema):
    """An amount as a decimal string with two decimals ("12.80"), and its ISO 4217 currency."""

    amount: str = Field(description='A decimal string with two decimals, e.g. "12.80".')
    currency: str

    model_config = examples(eur("12.80"))


def money(amount: Decimal, currency: str) -> dict[str, str]:
    """Money as the API writes it (Money): rounded to the cent, never in exponent notation."""
    return {"amount": f"{Decimal(amount).quantize(CENT):f}", "currency": currency}
