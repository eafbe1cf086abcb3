"""Every call to Stripe, in one module: customers, SetupIntents, PaymentMethods, PaymentIntents
and webhook signatures. It speaks Stripe's objects as plain dicts and raises three errors of
its own; `billing.payments.gateways.StripeGateway` turns them into the gateway's terms.

The client talks to `stripe.api_base` (Stripe itself unless a test points it at a fake server).
"""

import functools
import json
import time
from typing import Any

import stripe
from django.conf import settings

# Stripe retries a request that failed on the network with the same idempotency key.
NETWORK_RETRIES = 2


class Unavailable(Exception):
    """Stripe could not be reached or answered with a server error: worth retrying later."""


class Refused(Exception):
    """Stripe refused the request (a declined card, a detached payment method, bad input).
    `payment_intent` is the PaymentIntent a declined charge left behind, if any."""

    def __init__(self, message: str, *, code: str = "", payment_intent: dict[str, Any] | None):
        super().__init__(message)
        self.code = code
        self.payment_intent = payment_intent


class InvalidWebhook(Exception):
    """Not a Stripe event signed for our endpoint: no, a wrong, a stale or a future
    Stripe-Signature, or a signed body that is not a well-formed event."""


@functools.lru_cache(maxsize=4)
def _client(api_key: str, api_base: str) -> stripe.StripeClient:
    return stripe.StripeClient(
        api_key, base_addresses={"api": api_base}, max_network_retries=NETWORK_RETRIES
    )


def _v1() -> Any:
    return _client(settings.STRIPE_SECRET_KEY, stripe.api_base).v1


def _call(method: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    try:
        result = method(*args, **kwargs)
    except stripe.CardError as error:
        payment_intent = error.error.payment_intent if error.error else None
        raise Refused(
            error.user_message or str(error),
            code=error.code or "",
            payment_intent=payment_intent.to_dict() if payment_intent else None,
        ) from error
    except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as error:
        raise Unavailable(str(error)) from error
    except stripe.InvalidRequestError as error:
        raise Refused(
            error.user_message or str(error), code=error.code or "", payment_intent=None
        ) from error
    return result.to_dict()


def customer_create(*, owner_key: str, name: str, email: str) -> dict[str, Any]:
    """One Stripe Customer per card owner; the key makes a repeated or concurrent create (within
    Stripe's 24 hours of idempotency) return the same customer."""
    return _call(
        _v1().customers.create,
        params={"name": name, "email": email, "metadata": {"portal_owner": owner_key}},
        options={"idempotency_key": f"portal-customer:{owner_key}"},
    )


def setup_intent_create(*, customer_id: str, owner_key: str) -> dict[str, Any]:
    """A SetupIntent for saving a card to charge later without the cardholder present."""
    return _call(
        _v1().setup_intents.create,
        params={
            "customer": customer_id,
            "usage": "off_session",
            "payment_method_types": ["card"],
            "metadata": {"portal_owner": owner_key},
        },
    )


def setup_intent_retrieve(setup_intent_id: str) -> dict[str, Any]:
    """The SetupIntent as it is now, with its PaymentMethod expanded."""
    return _call(
        _v1().setup_intents.retrieve,
        setup_intent_id,
        params={"expand": ["payment_method"]},
    )


def payment_method_retrieve(payment_method_id: str) -> dict[str, Any]:
    return _call(_v1().payment_methods.retrieve, payment_method_id)


def payment_method_detach(payment_method_id: str) -> dict[str, Any]:
    return _call(_v1().payment_methods.detach, payment_method_id)


def payment_intent_create(
    *,
    amount: int,
    currency: str,
    customer_id: str,
    payment_method_id: str,
    idempotency_key: str,
    description: str,
    metadata: dict[str, str],
) -> dict[str, Any]:
    """Charge a saved card now, without the cardholder (off-session). A decline raises
    `Refused` carrying the PaymentIntent; the same key never charges twice."""
    return _call(
        _v1().payment_intents.create,
        params={
            "amount": amount,
            "currency": currency.lower(),
            "customer": customer_id,
            "payment_method": payment_method_id,
            "payment_method_types": ["card"],
            "off_session": True,
            "confirm": True,
            "description": description,
            "metadata": metadata,
        },
        options={"idempotency_key": idempotency_key},
    )


def payment_intent_retrieve(payment_intent_id: str) -> dict[str, Any]:
    return _call(_v1().payment_intents.retrieve, payment_intent_id)


def payment_intents_with_key(payment_key: str) -> list[dict[str, Any]]:
    """The PaymentIntents made for one payment attempt (its key is in their metadata), found
    by Stripe's search: for an attempt whose idempotency key Stripe may have forgotten."""
    quoted = payment_key.replace("\\", "\\\\").replace("'", "\\'")
    result = _call(
        _v1().payment_intents.search, params={"query": f"metadata['payment_key']:'{quoted}'"}
    )
    return list(result.get("data", []))


def refund_create(
    *, payment_intent_id: str, amount: int, idempotency_key: str, metadata: dict[str, str]
) -> dict[str, Any]:
    """Refund `amount` (minor units) of a PaymentIntent to its card; the same key never
    refunds twice."""
    return _call(
        _v1().refunds.create,
        params={"payment_intent": payment_intent_id, "amount": amount, "metadata": metadata},
        options={"idempotency_key": idempotency_key},
    )


def refund_retrieve(refund_id: str) -> dict[str, Any]:
    return _call(_v1().refunds.retrieve, refund_id)


def refunds_of(payment_intent_id: str) -> list[dict[str, Any]]:
    """The refunds of a PaymentIntent (at most 100: an invoice is refunded a few times)."""
    result = _call(_v1().refunds.list, params={"payment_intent": payment_intent_id, "limit": 100})
    return list(result.get("data", []))


# How far a webhook's clocks may be ahead of ours: Stripe's tolerance for a stale signature
# (the library refuses one older than this), applied to the future too.
WEBHOOK_TOLERANCE = stripe.Webhook.DEFAULT_TOLERANCE  # seconds


def event_construct(*, payload: bytes, signature: str | None) -> dict[str, Any]:
    """Verify a webhook request's Stripe-Signature (HMAC-SHA256 of "<t>.<body>" with the
    endpoint secret, signed at most five minutes ago or ahead) and return its event: a JSON
    object with a string id and type, an integer `created` no more than five minutes ahead, and
    a `data.object`. Anything else raises InvalidWebhook, even when validly signed: the
    endpoint answers 400 and stores nothing."""
    try:
        stripe.WebhookSignature.verify_header(
            payload, signature, settings.STRIPE_WEBHOOK_SECRET or None, WEBHOOK_TOLERANCE
        )
        # The event as Stripe sent it, for storing (the library's object holds the same data).
        event: Any = json.loads(payload)
    except (stripe.SignatureVerificationError, ValueError, RecursionError) as error:
        # ValueError: not JSON, or not UTF-8; RecursionError: nested too deep to parse.
        raise InvalidWebhook(str(error)) from error
    now = time.time()
    # The library refuses a stale signature, not one from the future.
    if _signature_timestamp(signature or "") > now + WEBHOOK_TOLERANCE:
        raise InvalidWebhook("Signature timestamp in the future")
    if not (
        isinstance(event, dict)
        and isinstance(event.get("id"), str)
        and event["id"]
        and isinstance(event.get("type"), str)
        and isinstance(event.get("data"), dict)
        and isinstance(event["data"].get("object"), dict)
    ):
        raise InvalidWebhook("Not a Stripe event")
    created = event.get("created")
    # bool is an int in Python; a Unix time, from 1970 until five minutes from now.
    if type(created) is not int or not 0 < created <= now + WEBHOOK_TOLERANCE:
        raise InvalidWebhook("Not a Stripe event: created is not a time up to now")
    try:
        holds_nul = _holds_nul(event)
    except RecursionError as error:  # parsed, but nested too deep to walk
        raise InvalidWebhook("Not a Stripe event: nested too deep") from error
    if holds_nul:
        # PostgreSQL stores no NUL character in text or jsonb; Stripe never sends one.
        raise InvalidWebhook("Not a Stripe event: NUL character")
    return event


def _signature_timestamp(signature: str) -> int:
    """The t= of a Stripe-Signature header the library has verified, read as it reads it."""
    items = [item.split("=", 2) for item in signature.split(",")]
    return int(next(item[1] for item in items if item[0] == "t"))


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(key) or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False
