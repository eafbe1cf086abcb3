"""The demo card gateway: Stripe's test mode, offline, for `make demo` (DEBUG and no Stripe keys).

It keeps the Stripe gateway's interface and behaviour so that every card flow of the portal
(save a card, pay by the reseller's or the customer's card, change card, a declined charge with
its retries and suspension, refunds) can be tried without an account anywhere:

- Only Stripe's documented test card numbers are taken (docs.stripe.com/testing); any other
  number is refused, so no real card number is ever typed into the demo by mistake.
- Each test number behaves as in Stripe's test mode: it is saved, declined when saved, needs the
  cardholder to authenticate when saved, or is saved and then declined on every charge.
- Nothing is stored at the gateway: a card setup travels as a signed token (it is posted back by
  the card page), and ids carry what later calls need (the card's number in its payment method
  id, a charge's outcome in its reference), so answers are the same on every call and a repeated
  charge with the same idempotency key gets the same answer.

The card page of the demo is the portal's own form (payments/card_change.html), not Stripe
Elements: the numbers typed are test numbers only.
"""

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, ClassVar, Literal

from django.core import signing
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop

from billing.payments.gateways import (
    Card,
    CardSetup,
    CardSetupFailed,
    CardSetupResult,
    ChargeOutcome,
    PaymentGateway,
    RefundOutcome,
    StripeGateway,
)

if TYPE_CHECKING:
    from django.utils.functional import _StrOrPromise as StrOrPromise

NAME = "demo"
_SALT = "billing.payments.demo-card-setup"
# A card setup (the page's form, then the authentication step) must finish within a day.
SETUP_MAX_AGE = 24 * 3600

# What a test card does when it is saved, and then when it is charged off-session.
Saving = Literal["saved", "authenticate", "declined"]
Charging = Literal["succeeds", "declined", "authentication_required"]

# Stripe's own messages for its test cards (English at the gateway, as Stripe answers without a
# locale); marked so that the pages and emails show them translated.
DECLINED = gettext_noop("Your card was declined.")
INSUFFICIENT_FUNDS = gettext_noop("Your card has insufficient funds.")
EXPIRED = gettext_noop("Your card has expired.")
INCORRECT_CVC = gettext_noop("Your card's security code is incorrect.")
AUTHENTICATION_REQUIRED = gettext_noop(
    "Your card was declined. This transaction requires authentication."
)
AUTHENTICATION_FAILED = gettext_noop(
    "We are unable to authenticate your payment method. Please choose a different payment "
    "method and try again."
)


@dataclass(frozen=True)
class DemoCard:
    number: str
    brand: str
    saving: Saving
    charging: Charging
    # What the card does, for the list on the demo's card page.
    behaviour: "StrOrPromise"
    decline_message: str = DECLINED

    @property
    def spaced(self) -> str:
        """The number as printed on the card: 4242 4242 4242 4242 (American Express: 4-6-5)."""
        if len(self.number) == 15:
            return f"{self.number[:4]} {self.number[4:10]} {self.number[10:]}"
        return " ".join(self.number[i : i + 4] for i in range(0, len(self.number), 4))


TEST_CARDS: tuple[DemoCard, ...] = (
    DemoCard("4242424242424242", "visa", "saved", "succeeds", _("Saved; every payment succeeds.")),
    DemoCard(
        "5555555555554444", "mastercard", "saved", "succeeds", _("Saved; every payment succeeds.")
    ),
    DemoCard("378282246310005", "amex", "saved", "succeeds", _("Saved; every payment succeeds.")),
    DemoCard(
        "4000002500003155",
        "visa",
        "authenticate",
        "succeeds",
        _("Asks the cardholder to authenticate when saved; then payments succeed."),
    ),
    DemoCard(
        "4000000000000341",
        "visa",
        "saved",
        "declined",
        _("Saved; every payment is declined (retries, then suspension)."),
    ),
    DemoCard(
        "4000002760003184",
        "visa",
        "authenticate",
        "authentication_required",
        _(
            "Asks the cardholder to authenticate when saved; payments made without the "
            "cardholder are declined."
        ),
    ),
    DemoCard("4000000000000002", "visa", "declined", "declined", _("Declined when saved.")),
    DemoCard(
        "4000000000009995",
        "visa",
        "declined",
        "declined",
        _("Declined when saved: insufficient funds."),
        INSUFFICIENT_FUNDS,
    ),
    DemoCard(
        "4000000000000069",
        "visa",
        "declined",
        "declined",
        _("Declined when saved: expired card."),
        EXPIRED,
    ),
    DemoCard(
        "4000000000000127",
        "visa",
        "declined",
        "declined",
        _("Declined when saved: incorrect security code."),
        INCORRECT_CVC,
    ),
)
_BY_NUMBER = {card.number: card for card in TEST_CARDS}


def card_by_number(number: str) -> DemoCard | None:
    """The test card with this number (spaces and dashes ignored), or None."""
    return _BY_NUMBER.get("".join(ch for ch in number if ch.isdigit()))


def _digest(value: str, length: int = 16) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:length]


@dataclass(frozen=True)
class DemoSetup:
    """A confirmed card setup: its id, and whether the cardholder must authenticate first."""

    setup_id: str
    needs_authentication: bool


class DemoCardDeclined(Exception):
    """The test card declined being saved; the message is Stripe's (translatable)."""


class DemoGateway(PaymentGateway):
    name = NAME
    uses_cards = True
    minimum_charge: ClassVar[dict[str, Decimal]] = StripeGateway.minimum_charge

    # Customers: one per card owner, named after the owner, as Stripe's idempotent create does.

    def customer_create(self, *, owner_key: str, name: str, email: str) -> str:
        return f"cus_demo_{_digest(owner_key)}"

    # Cards: start (a signed setup), confirm on the demo's card page, authenticate if the card
    # asks for it, then the portal reads the result as it does from Stripe.

    def card_setup_start(self, *, customer_id: str, owner_key: str) -> CardSetup:
        started = int(timezone.now().timestamp())
        secret = signing.dumps({"c": customer_id, "o": owner_key, "t": started}, salt=_SALT)
        return CardSetup(publishable_key="", client_secret=secret)

    def _unsign(self, token: str) -> dict[str, object]:
        try:
            data = signing.loads(token, salt=_SALT, max_age=SETUP_MAX_AGE)
        except signing.BadSignature as error:
            raise CardSetupFailed("Unknown or expired demo card setup") from error
        if not isinstance(data, dict):
            raise CardSetupFailed("Unknown demo card setup")
        return data

    def card_setup_confirm(
        self, *, client_secret: str, number: str, exp_month: int, exp_year: int
    ) -> DemoSetup:
        """The card page's form: save this test card to the setup. DemoCardDeclined when the
        card declines; CardSetupFailed for a setup that is not ours or too old."""
        setup = self._unsign(client_secret)
        card = card_by_number(number)
        if card is None:
            raise CardSetupFailed("Not a test card")
        if card.saving == "declined":
            raise DemoCardDeclined(card.decline_message)
        confirmed = {**setup, "n": card.number, "m": exp_month, "y": exp_year}
        needs_authentication = card.saving == "authenticate"
        if needs_authentication:
            confirmed["a"] = False
        return DemoSetup(signing.dumps(confirmed, salt=_SALT), needs_authentication)

    def card_setup_authenticate(self, *, setup_id: str, complete: bool) -> str:
        """The demo's authentication step (Stripe's 3D Secure test page): complete it, or fail
        it (DemoCardDeclined)."""
        setup = self._unsign(setup_id)
        if "n" not in setup:
            raise CardSetupFailed("The demo card setup was not confirmed")
        if not complete:
            raise DemoCardDeclined(AUTHENTICATION_FAILED)
        return signing.dumps({**setup, "a": True}, salt=_SALT)

    def card_setup_result(self, *, setup_id: str) -> CardSetupResult:
        setup = self._unsign(setup_id)
        number = str(setup.get("n", ""))
        card = card_by_number(number)
        if card is None or setup.get("a") is False:
            raise CardSetupFailed("The demo card setup was not confirmed")
        customer_id = str(setup["c"])
        exp_month, exp_year = int(str(setup["m"])), int(str(setup["y"]))
        return CardSetupResult(
            card=Card(
                payment_method_id=self._payment_method_id(card, exp_month, exp_year, customer_id),
                customer_id=customer_id,
                brand=card.brand,
                last4=card.number[-4:],
                exp_month=exp_month,
                exp_year=exp_year,
            ),
            setup_customer_id=customer_id,
            owner_key=str(setup["o"]),
            started_at=datetime.fromtimestamp(int(str(setup["t"])), tz=UTC),
        )

    @staticmethod
    def _payment_method_id(card: DemoCard, exp_month: int, exp_year: int, customer_id: str) -> str:
        # pm_demo_<number>_<MMYY>_<customer digest>: at most 46 characters (the column takes 64).
        customer = customer_id.removeprefix("cus_demo_")
        return f"pm_demo_{card.number}_{exp_month:02d}{exp_year % 100:02d}_{customer}"

    @staticmethod
    def _parse_payment_method(payment_method_id: str) -> tuple[DemoCard, int, int, str] | None:
        parts = payment_method_id.removeprefix("pm_demo_").split("_")
        if len(parts) != 3 or not payment_method_id.startswith("pm_demo_"):
            return None
        number, expiry, customer = parts
        card = card_by_number(number)
        if card is None or len(expiry) != 4 or not expiry.isdigit():
            return None
        return card, int(expiry[:2]), 2000 + int(expiry[2:]), f"cus_demo_{customer}"

    def card_get(self, *, payment_method_id: str) -> Card:
        parsed = self._parse_payment_method(payment_method_id)
        if parsed is None:  # not one of ours: as good as detached
            return Card(
                payment_method_id, customer_id="", brand="", last4="", exp_month=0, exp_year=0
            )
        card, exp_month, exp_year, customer_id = parsed
        return Card(
            payment_method_id,
            customer_id=customer_id,
            brand=card.brand,
            last4=card.number[-4:],
            exp_month=exp_month,
            exp_year=exp_year,
        )

    def card_detach(self, *, payment_method_id: str) -> None:
        pass  # nothing is kept at the demo gateway

    # Charges and refunds: the outcome follows the test card, the same on every call.

    def charge(
        self,
        *,
        customer_id: str,
        payment_method_id: str,
        amount: Decimal,
        currency: str,
        idempotency_key: str,
        description: str,
        metadata: dict[str, str],
    ) -> ChargeOutcome:
        parsed = self._parse_payment_method(payment_method_id)
        charging: Charging = parsed[0].charging if parsed else "declined"
        reference = f"pi_demo_{charging}_{_digest(idempotency_key)}"
        return self._charge_outcome(reference)

    def charge_status(self, *, reference: str) -> ChargeOutcome:
        return self._charge_outcome(reference)

    @staticmethod
    def _charge_outcome(reference: str) -> ChargeOutcome:
        charging = reference.removeprefix("pi_demo_").rpartition("_")[0]
        if charging == "succeeds":
            return ChargeOutcome("succeeded", reference=reference)
        if charging == "authentication_required":
            return ChargeOutcome("failed", reference=reference, error=AUTHENTICATION_REQUIRED)
        if charging == "declined":
            return ChargeOutcome("failed", reference=reference, error=DECLINED)
        return ChargeOutcome("pending", reference=reference)  # not ours: change nothing

    def refund(
        self,
        *,
        charge_reference: str,
        amount: Decimal,
        currency: str,
        idempotency_key: str,
        metadata: dict[str, str],
    ) -> RefundOutcome:
        return RefundOutcome("succeeded", reference=f"re_demo_{_digest(idempotency_key)}")

    def refund_status(self, *, reference: str) -> RefundOutcome:
        if reference.startswith("re_demo_"):
            return RefundOutcome("succeeded", reference=reference)
        return RefundOutcome("pending", reference=reference)  # not ours: change nothing
