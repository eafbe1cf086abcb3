"""The payment gateway: how issued invoices get paid.

- `ManualGateway` (the default, no keys): no cards; invoices wait until staff mark them paid in
  the admin, and the PDF prints the vendor's bank details for a transfer.
- `StripeGateway` (when STRIPE_SECRET_KEY, STRIPE_PUBLISHABLE_KEY and STRIPE_WEBHOOK_SECRET are
  all set): cards saved with SetupIntents, invoices charged off-session. Its Stripe calls are
  in `billing.payments.stripe_api`.
- `DemoGateway` (in development, DEBUG without Stripe keys): Stripe's test mode, offline, in
  `billing.payments.demo_gateway`.

`gateway()` returns the configured one.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar, Literal

from django.conf import settings

from billing.payments import stripe_api

ChargeStatus = Literal["succeeded", "failed", "pending"]


class CardsNotUsed(Exception):
    """The manual gateway takes no cards: invoices are paid by bank transfer."""


class GatewayUnavailable(Exception):
    """The gateway could not be reached: try again later (with the same idempotency key)."""


class CardSetupFailed(Exception):
    """The card could not be saved (not confirmed, refused, or no such setup)."""


@dataclass(frozen=True)
class CardSetup:
    """What the browser needs to collect a card (Stripe Elements)."""

    publishable_key: str
    client_secret: str


@dataclass(frozen=True)
class Card:
    """A saved card as the gateway holds it now. `customer_id` is empty once it is detached."""

    payment_method_id: str
    customer_id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int


@dataclass(frozen=True)
class CardSetupResult:
    """A confirmed card setup: the card, whose setup it was (owner key), and when it started."""

    card: Card
    setup_customer_id: str
    owner_key: str
    started_at: datetime


@dataclass(frozen=True)
class ChargeOutcome:
    status: ChargeStatus
    reference: str = ""
    error: str = ""


RefundStatus = Literal["succeeded", "failed", "pending"]


@dataclass(frozen=True)
class RefundOutcome:
    status: RefundStatus
    reference: str = ""
    error: str = ""


class PaymentGateway(ABC):
    name: ClassVar[str]
    # Whether invoices are charged to saved cards (else staff mark them paid).
    uses_cards: ClassVar[bool]
    # The smallest amount a card may be charged, per currency (none: no minimum).
    minimum_charge: ClassVar[dict[str, Decimal]] = {}

    @abstractmethod
    def customer_create(self, *, owner_key: str, name: str, email: str) -> str:
        """The gateway's customer record for a card owner; returns its id."""

    @abstractmethod
    def card_setup_start(self, *, customer_id: str, owner_key: str) -> CardSetup: ...

    @abstractmethod
    def card_setup_result(self, *, setup_id: str) -> CardSetupResult:
        """The card a confirmed setup saved; CardSetupFailed if it did not."""

    @abstractmethod
    def card_get(self, *, payment_method_id: str) -> Card: ...

    @abstractmethod
    def card_detach(self, *, payment_method_id: str) -> None: ...

    @abstractmethod
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
        """Charge a saved card off-session. The same key never charges twice."""

    @abstractmethod
    def charge_status(self, *, reference: str) -> ChargeOutcome:
        """Where a charge stands now."""

    def charge_find(self, *, idempotency_key: str) -> ChargeOutcome | None:
        """The charge made with this key, found without the key's own protection (which
        expires); None when there is none."""
        return None

    @abstractmethod
    def refund(
        self,
        *,
        charge_reference: str,
        amount: Decimal,
        currency: str,
        idempotency_key: str,
        metadata: dict[str, str],
    ) -> RefundOutcome:
        """Give back `amount` of a charge to its card. The same key never refunds twice."""

    @abstractmethod
    def refund_status(self, *, reference: str) -> RefundOutcome:
        """Where a refund stands now."""

    def refund_find(self, *, charge_reference: str, idempotency_key: str) -> RefundOutcome | None:
        """The refund of this charge made with this key (in its metadata), found without the
        key's own protection; None when there is none."""
        return None


class ManualGateway(PaymentGateway):
    name = "manual"
    uses_cards = False

    def _refuse(self) -> Any:
        raise CardsNotUsed("The manual gateway takes no cards: invoices are paid by bank transfer.")

    def customer_create(self, *, owner_key: str, name: str, email: str) -> str:
        return self._refuse()

    def card_setup_start(self, *, customer_id: str, owner_key: str) -> CardSetup:
        return self._refuse()

    def card_setup_result(self, *, setup_id: str) -> CardSetupResult:
        return self._refuse()

    def card_get(self, *, payment_method_id: str) -> Card:
        return self._refuse()

    def card_detach(self, *, payment_method_id: str) -> None:
        self._refuse()

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
        return self._refuse()

    def charge_status(self, *, reference: str) -> ChargeOutcome:
        return self._refuse()

    def refund(
        self,
        *,
        charge_reference: str,
        amount: Decimal,
        currency: str,
        idempotency_key: str,
        metadata: dict[str, str],
    ) -> RefundOutcome:
        return self._refuse()

    def refund_status(self, *, reference: str) -> RefundOutcome:
        return self._refuse()


def minor_units(amount: Decimal) -> int:
    """EUR, USD and GBP amounts in cents/pence, as Stripe takes them."""
    return int((amount * 100).to_integral_value())


def _card(payment_method: dict[str, Any]) -> Card:
    card = payment_method.get("card") or {}
    customer = payment_method.get("customer") or ""
    if isinstance(customer, dict):
        customer = customer.get("id", "")
    return Card(
        payment_method_id=payment_method["id"],
        customer_id=customer,
        brand=str(card.get("brand", "")),
        last4=str(card.get("last4", "")),
        exp_month=int(card.get("exp_month") or 0),
        exp_year=int(card.get("exp_year") or 0),
    )


# PaymentIntent statuses: settled either way, or still moving. An off-session charge that
# needs the cardholder (requires_action) cannot complete without them: a failure.
_SUCCEEDED = {"succeeded"}
_PENDING = {"processing", "requires_capture"}


def _outcome(payment_intent: dict[str, Any]) -> ChargeOutcome:
    status = payment_intent.get("status", "")
    if status in _SUCCEEDED:
        return ChargeOutcome("succeeded", reference=payment_intent["id"])
    if status in _PENDING:
        return ChargeOutcome("pending", reference=payment_intent["id"])
    last_error = payment_intent.get("last_payment_error") or {}
    return ChargeOutcome(
        "failed",
        reference=payment_intent["id"],
        error=str(last_error.get("message") or status),
    )


# Refund statuses: https://docs.stripe.com/api/refunds/object#refund_object-status
_REFUND_FAILED = {"failed", "canceled"}


def _refund_outcome(refund: dict[str, Any]) -> RefundOutcome:
    status = refund.get("status", "")
    if status == "succeeded":
        return RefundOutcome("succeeded", reference=refund["id"])
    if status in _REFUND_FAILED:
        reason = str(refund.get("failure_reason") or status)
        return RefundOutcome("failed", reference=refund["id"], error=reason)
    return RefundOutcome("pending", reference=refund["id"])  # pending, requires_action


class StripeGateway(PaymentGateway):
    name = "stripe"
    uses_cards = True
    # Stripe refuses smaller charges (amount_too_small); its documented minimums, at
    # docs.stripe.com/currencies ("Minimum and maximum charge amounts").
    minimum_charge: ClassVar[dict[str, Decimal]] = {
        "EUR": Decimal("0.50"),
        "USD": Decimal("0.50"),
        "GBP": Decimal("0.30"),
    }

    def __init__(self, *, publishable_key: str) -> None:
        self.publishable_key = publishable_key

    def customer_create(self, *, owner_key: str, name: str, email: str) -> str:
        try:
            return str(
                stripe_api.customer_create(owner_key=owner_key, name=name, email=email)["id"]
            )
        except stripe_api.Unavailable as error:
            raise GatewayUnavailable(str(error)) from error

    def card_setup_start(self, *, customer_id: str, owner_key: str) -> CardSetup:
        try:
            setup_intent = stripe_api.setup_intent_create(
                customer_id=customer_id, owner_key=owner_key
            )
        except stripe_api.Unavailable as error:
            raise GatewayUnavailable(str(error)) from error
        return CardSetup(
            publishable_key=self.publishable_key, client_secret=setup_intent["client_secret"]
        )

    def card_setup_result(self, *, setup_id: str) -> CardSetupResult:
        try:
            setup_intent = stripe_api.setup_intent_retrieve(setup_id)
        except stripe_api.Unavailable as error:
            raise GatewayUnavailable(str(error)) from error
        except stripe_api.Refused as error:
            raise CardSetupFailed(str(error)) from error
        payment_method = setup_intent.get("payment_method")
        if setup_intent.get("status") != "succeeded" or not isinstance(payment_method, dict):
            raise CardSetupFailed(f"SetupIntent {setup_id} is {setup_intent.get('status')}")
        return CardSetupResult(
            card=_card(payment_method),
            setup_customer_id=str(setup_intent.get("customer") or ""),
            owner_key=str((setup_intent.get("metadata") or {}).get("portal_owner", "")),
            started_at=datetime.fromtimestamp(int(setup_intent["created"]), tz=UTC),
        )

    def card_get(self, *, payment_method_id: str) -> Card:
        try:
            return _card(stripe_api.payment_method_retrieve(payment_method_id))
        except stripe_api.Unavailable as error:
            raise GatewayUnavailable(str(error)) from error
        except stripe_api.Refused:
            # No such payment method (any more): as good as detached.
            return Card(
                payment_method_id, customer_id="", brand="", last4="", exp_month=0, exp_year=0
            )

    def card_detach(self, *, payment_method_id: str) -> None:
        try:
            stripe_api.payment_method_detach(payment_method_id)
        except stripe_api.Unavailable as error:
            raise GatewayUnavailable(str(error)) from error
        except stripe_api.Refused:
            pass  # detached already: the outcome wanted

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
        try:
            payment_intent = stripe_api.payment_intent_create(
                amount=minor_units(amount),
                currency=currency,
                customer_id=customer_id,
                payment_method_id=payment_method_id,
                idempotency_key=idempotency_key,
                description=description,
                metadata=metadata,
            )
        except stripe_api.Unavailable as error:
            raise GatewayUnavailable(str(error)) from error
        except stripe_api.Refused as error:
            reference = (error.payment_intent or {}).get("id", "")
            return ChargeOutcome("failed", reference=reference, error=str(error))
        return _outcome(payment_intent)

    def charge_find(self, *, idempotency_key: str) -> ChargeOutcome | None:
        try:
            found = stripe_api.payment_intents_with_key(idempotency_key)
        except stripe_api.Unavailable as error:
            raise GatewayUnavailable(str(error)) from error
        return _outcome(found[0]) if found else None

    def charge_status(self, *, reference: str) -> ChargeOutcome:
        try:
            return _outcome(stripe_api.payment_intent_retrieve(reference))
        except stripe_api.Unavailable as error:
            raise GatewayUnavailable(str(error)) from error
        except stripe_api.Refused:
            return ChargeOutcome("pending", reference=reference)  # unknown here: change nothing

    def refund(
        self,
        *,
        charge_reference: str,
        amount: Decimal,
        currency: str,
        idempotency_key: str,
        metadata: dict[str, str],
    ) -> RefundOutcome:
        try:
            refund = stripe_api.refund_create(
                payment_intent_id=charge_reference,
                amount=minor_units(amount),
                idempotency_key=idempotency_key,
                metadata=metadata,
            )
        except stripe_api.Unavailable as error:
            raise GatewayUnavailable(str(error)) from error
        except stripe_api.Refused as error:
            return RefundOutcome("failed", error=str(error))
        return _refund_outcome(refund)

    def refund_status(self, *, reference: str) -> RefundOutcome:
        try:
            return _refund_outcome(stripe_api.refund_retrieve(reference))
        except stripe_api.Unavailable as error:
            raise GatewayUnavailable(str(error)) from error
        except stripe_api.Refused:
            return RefundOutcome("pending", reference=reference)  # unknown here: change nothing

    def refund_find(self, *, charge_reference: str, idempotency_key: str) -> RefundOutcome | None:
        try:
            refunds = stripe_api.refunds_of(charge_reference)
        except stripe_api.Unavailable as error:
            raise GatewayUnavailable(str(error)) from error
        for refund in refunds:
            if (refund.get("metadata") or {}).get("refund_key") == idempotency_key:
                return _refund_outcome(refund)
        return None


def stripe_configured() -> bool:
    return bool(
        settings.STRIPE_SECRET_KEY
        and settings.STRIPE_PUBLISHABLE_KEY
        and settings.STRIPE_WEBHOOK_SECRET
    )


def demo_cards() -> bool:
    """Whether cards go to the demo gateway: in development (DEBUG) without Stripe keys."""
    return bool(settings.DEBUG) and not stripe_configured()


def gateway() -> PaymentGateway:
    """Stripe when all three keys are set; else, in development, the demo gateway (Stripe's
    test cards, offline); else the manual gateway."""
    if stripe_configured():
        return StripeGateway(publishable_key=settings.STRIPE_PUBLISHABLE_KEY)
    if demo_cards():
        from billing.payments.demo_gateway import DemoGateway  # it builds on this module

        return DemoGateway()
    return ManualGateway()
