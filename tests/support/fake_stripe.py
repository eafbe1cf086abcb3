"""A fake Stripe API for tests: a local HTTP server in a thread that keeps customers,
SetupIntents, PaymentMethods and PaymentIntents in memory and answers the stripe library the
way Stripe does (form-encoded requests, JSON objects, error bodies, Idempotency-Key replay).

The portal's client is pointed at it with `stripe.api_base`, so everything above the HTTP
boundary (the library, billing.payments.stripe_api, the gateway, the services) is the real
code. Webhook payloads are signed the way Stripe signs them: v1 = HMAC-SHA256 of
"<timestamp>.<body>" with the endpoint secret.
"""

import hashlib
import hmac
import itertools
import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from django.urls import reverse

from billing.models import PaymentCard

if TYPE_CHECKING:
    from tests.factories import Tenant

API_KEY = "sk_test_fake"
PUBLISHABLE_KEY = "pk_test_fake"
WEBHOOK_SECRET = "whsec_test_secret"


def sign(payload: str, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """The Stripe-Signature header Stripe sends with `payload`."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = hmac.new(
        secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256
    ).hexdigest()
    return f"t={timestamp},v1={signature}"


def _nest(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """metadata[invoice]=X&expand[0]=y -> {"metadata": {"invoice": "X"}, "expand": ["y"]}."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+", key)
        node = result
        for part, following in itertools.pairwise(parts):
            node = node.setdefault(part, [] if following.isdigit() else {})
            if isinstance(node, list):
                break
        last = parts[-1]
        if isinstance(node, list):
            node.append(value)
        else:
            node[last] = value
    return result


class StripeError(Exception):
    def __init__(self, status: int, body: dict[str, Any]):
        self.status = status
        self.body = body


class FakeStripe:
    def __init__(self) -> None:
        self.customers: dict[str, dict[str, Any]] = {}
        self.setup_intents: dict[str, dict[str, Any]] = {}
        self.payment_methods: dict[str, dict[str, Any]] = {}
        self.payment_intents: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        # Refunds of these PaymentIntents fail (the card account is closed).
        self.refund_failing: set[str] = set()
        self.declining: set[str] = set()  # payment methods whose charges are declined
        self.unreachable = False  # answer 500 to everything (Stripe down)
        # Do the next N POSTs but lose their answers (a 500 the library must not retry), as
        # when the connection drops after Stripe acted.
        self.lose_answers = 0
        self.requests: list[tuple[str, str, dict[str, Any], dict[str, str]]] = []
        self._idempotent: dict[str, tuple[int, dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # The server

    def start(self) -> str:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            # Headers and body go out in two writes: without this, Nagle's algorithm and the
            # client's delayed ACK hold the body back ~40 ms.
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, method: str) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                params = _nest(parse_qsl(parts.query) + parse_qsl(body))
                status, answer = fake.handle(method, parts.path, params, dict(self.headers))
                lost = method == "POST" and fake.lose_answers > 0
                if lost:
                    fake.lose_answers -= 1
                    status, answer = 500, {"error": {"type": "api_error", "message": "Lost"}}
                data = json.dumps(answer).encode()
                self.send_response(status)
                if lost or fake.unreachable:
                    self.send_header("Stripe-Should-Retry", "false")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Request-Id", f"req_{next(fake._ids)}")
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._answer("GET")

            def do_POST(self) -> None:
                self._answer("POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # shutdown() waits for the loop to look at its flag: every 0.5 s by default, which
        # cost each test that used the fake half a second of waiting.
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        ).start()
        return f"http://127.0.0.1:{self._server.server_port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def handle(
        self, method: str, path: str, params: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests.append((method, path, params, headers))
            if headers.get("Authorization") != f"Bearer {API_KEY}":
                return 401, {"error": {"type": "invalid_request_error", "message": "Bad key"}}
            if self.unreachable:
                return 500, {"error": {"type": "api_error", "message": "Stripe is down"}}
            key = headers.get("Idempotency-Key")
            # A repeated key replays the first answer, as Stripe does (for 24 hours).
            if method == "POST" and key and key in self._idempotent:
                return self._idempotent[key]
            try:
                answer = 200, self._route(method, path, params)
            except StripeError as error:
                answer = error.status, error.body
            if method == "POST" and key:
                self._idempotent[key] = answer
            return answer

    def _route(self, method: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
        match = re.fullmatch(r"/v1/(\w+)(?:/(\w+))?(?:/(\w+))?", path)
        if not match:
            raise self._missing(path)
        collection, object_id, action = match.groups()
        if method == "POST" and collection == "customers" and object_id is None:
            return self._customer_create(params)
        if method == "POST" and collection == "setup_intents" and object_id is None:
            return self._setup_intent_create(params)
        if method == "GET" and collection == "setup_intents" and object_id:
            setup_intent = dict(self._get(self.setup_intents, object_id))
            if "payment_method" in params.get("expand", []) and setup_intent["payment_method"]:
                setup_intent["payment_method"] = self.payment_methods[
                    setup_intent["payment_method"]
                ]
            return setup_intent
        if method == "GET" and collection == "payment_methods" and object_id:
            return self._get(self.payment_methods, object_id)
        if method == "POST" and collection == "payment_methods" and action == "detach":
            payment_method = self._get(self.payment_methods, object_id)
            if payment_method["customer"] is None:
                raise StripeError(
                    400,
                    {
                        "error": {
                            "type": "invalid_request_error",
                            "message": "The payment method is not attached to a customer.",
                        }
                    },
                )
            payment_method["customer"] = None
            return payment_method
        if method == "POST" and collection == "payment_intents" and object_id is None:
            return self._payment_intent_create(params)
        if method == "GET" and collection == "payment_intents" and object_id == "search":
            return self._payment_intent_search(params.get("query", ""))
        if method == "GET" and collection == "payment_intents" and object_id:
            return self._get(self.payment_intents, object_id)
        if method == "POST" and collection == "refunds" and object_id is None:
            return self._refund_create(params)
        if method == "GET" and collection == "refunds" and object_id:
            return self._get(self.refunds, object_id)
        if method == "GET" and collection == "refunds":
            intent = params.get("payment_intent")
            found = [r for r in self.refunds.values() if r["payment_intent"] == intent]
            return {"object": "list", "url": "/v1/refunds", "has_more": False, "data": found}
        raise self._missing(path)

    # Objects

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}"

    def _missing(self, what: str) -> StripeError:
        return StripeError(
            404,
            {
                "error": {
                    "type": "invalid_request_error",
                    "code": "resource_missing",
                    "message": f"No such object: '{what}'",
                }
            },
        )

    def _get(self, objects: dict[str, dict[str, Any]], object_id: str | None) -> dict[str, Any]:
        if object_id not in objects:
            raise self._missing(str(object_id))
        return objects[object_id]

    def _customer_create(self, params: dict[str, Any]) -> dict[str, Any]:
        customer = {
            "id": self._new_id("cus"),
            "object": "customer",
            "name": params.get("name"),
            "email": params.get("email"),
            "metadata": params.get("metadata", {}),
            "created": int(time.time()),
        }
        self.customers[customer["id"]] = customer
        return customer

    def _setup_intent_create(self, params: dict[str, Any]) -> dict[str, Any]:
        setup_id = self._new_id("seti")
        setup_intent = {
            "id": setup_id,
            "object": "setup_intent",
            "client_secret": f"{setup_id}_secret_x",
            "customer": params.get("customer"),
            "usage": params.get("usage"),
            "metadata": params.get("metadata", {}),
            "status": "requires_payment_method",
            "payment_method": None,
            "created": int(time.time()),
        }
        self.setup_intents[setup_id] = setup_intent
        return setup_intent

    def _payment_intent_create(self, params: dict[str, Any]) -> dict[str, Any]:
        payment_method = self._get(self.payment_methods, params.get("payment_method"))
        payment_intent = {
            "id": self._new_id("pi"),
            "object": "payment_intent",
            "amount": int(params["amount"]),
            "currency": params["currency"],
            "customer": params.get("customer"),
            "payment_method": payment_method["id"],
            "off_session": params.get("off_session") == "true",
            "confirm": params.get("confirm") == "true",
            "description": params.get("description"),
            "metadata": params.get("metadata", {}),
            "created": int(time.time()),
            "status": "succeeded",
            "last_payment_error": None,
        }
        self.payment_intents[payment_intent["id"]] = payment_intent
        declined = payment_method["id"] in self.declining or payment_method[
            "customer"
        ] != params.get("customer")
        if declined:
            error = {
                "type": "card_error",
                "code": "card_declined",
                "decline_code": "insufficient_funds",
                "message": "Your card has insufficient funds.",
            }
            payment_intent["status"] = "requires_payment_method"
            payment_intent["last_payment_error"] = error
            raise StripeError(402, {"error": {**error, "payment_intent": payment_intent}})
        return payment_intent

    def _refund_create(self, params: dict[str, Any]) -> dict[str, Any]:
        """A refund of a succeeded PaymentIntent, never more than is left of it (Stripe's
        charge_already_refunded / amount_too_large otherwise)."""
        payment_intent = self._get(self.payment_intents, params.get("payment_intent"))
        amount = int(params.get("amount") or payment_intent["amount"])
        refunded = sum(
            r["amount"]
            for r in self.refunds.values()
            if r["payment_intent"] == payment_intent["id"] and r["status"] != "failed"
        )
        if payment_intent["status"] != "succeeded" or amount > payment_intent["amount"] - refunded:
            raise StripeError(
                400,
                {
                    "error": {
                        "type": "invalid_request_error",
                        "code": "amount_too_large",
                        "message": "Refund amount is greater than the amount left to refund.",
                    }
                },
            )
        refund = {
            "id": self._new_id("re"),
            "object": "refund",
            "amount": amount,
            "currency": payment_intent["currency"],
            "payment_intent": payment_intent["id"],
            "metadata": params.get("metadata", {}),
            "created": int(time.time()),
            "status": "succeeded",
            "failure_reason": None,
        }
        if payment_intent["id"] in self.refund_failing:
            refund["status"], refund["failure_reason"] = "failed", "expired_or_canceled_card"
        self.refunds[refund["id"]] = refund
        return refund

    def refunded(self) -> int:
        """Minor units refunded so far, over all PaymentIntents."""
        return sum(r["amount"] for r in self.refunds.values() if r["status"] == "succeeded")

    def charged(self) -> int:
        """Minor units charged (succeeded PaymentIntents)."""
        return sum(p["amount"] for p in self.payment_intents.values() if p["status"] == "succeeded")

    def _payment_intent_search(self, query: str) -> dict[str, Any]:
        """Stripe's search, for the one query the portal makes: by metadata payment_key."""
        match = re.fullmatch(r"metadata\['payment_key'\]:'((?:[^'\\]|\\.)*)'", query)
        if not match:
            raise StripeError(400, {"error": {"type": "invalid_request_error", "message": query}})
        key = re.sub(r"\\(.)", r"\1", match.group(1))
        found = [
            intent
            for intent in self.payment_intents.values()
            if intent["metadata"].get("payment_key") == key
        ]
        return {
            "object": "search_result",
            "url": "/v1/payment_intents/search",
            "has_more": False,
            "data": found,
        }

    def forget_idempotency_keys(self) -> None:
        """What Stripe does after 24 hours: a repeated key is a new request again."""
        with self._lock:
            self._idempotent.clear()

    # What the browser does with Stripe.js, and changes made at Stripe directly

    def card_confirmed(
        self,
        client_secret: str,
        *,
        brand: str = "visa",
        last4: str = "4242",
        exp_month: int = 12,
        exp_year: int = 2030,
        declines: bool = False,
    ) -> str:
        """The cardholder entered a card in Stripe Elements and confirmed the SetupIntent:
        a PaymentMethod attached to the intent's customer. Returns the SetupIntent id."""
        with self._lock:
            setup_intent = next(
                s for s in self.setup_intents.values() if s["client_secret"] == client_secret
            )
            payment_method = {
                "id": self._new_id("pm"),
                "object": "payment_method",
                "type": "card",
                "customer": setup_intent["customer"],
                "card": {
                    "brand": brand,
                    "last4": last4,
                    "exp_month": exp_month,
                    "exp_year": exp_year,
                },
                "created": int(time.time()),
            }
            self.payment_methods[payment_method["id"]] = payment_method
            if declines:
                self.declining.add(payment_method["id"])
            setup_intent["status"] = "succeeded"
            setup_intent["payment_method"] = payment_method["id"]
            return str(setup_intent["id"])

    def count(self, method: str, path: str) -> int:
        return Counter((m, p) for m, p, _params, _headers in self.requests)[(method, path)]

    def posts(self, path: str) -> list[tuple[dict[str, Any], dict[str, str]]]:
        return [(p, h) for m, pth, p, h in self.requests if m == "POST" and pth == path]


def event(
    event_type: str, obj: dict[str, Any], *, event_id: str, created: int | None = None
) -> str:
    """A webhook payload as Stripe sends it."""
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "api_version": "2025-01-27.acacia",
            "created": int(time.time()) if created is None else created,
            "livemode": False,
            "pending_webhooks": 1,
            "type": event_type,
            "data": {"object": obj},
        }
    )


def fake_stripe_fixture(settings: Any, monkeypatch: Any) -> Any:
    """Stripe configured with test keys and its API served by a FakeStripe."""
    import stripe

    fake = FakeStripe()
    monkeypatch.setattr(stripe, "api_base", fake.start())
    settings.STRIPE_SECRET_KEY = API_KEY
    settings.STRIPE_PUBLISHABLE_KEY = PUBLISHABLE_KEY
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    yield fake
    fake.stop()


def save_card(client, fake: "FakeStripe", change_url: str, **card) -> PaymentCard:
    """What a person does on a card page: Stripe Elements confirms, the page posts the id."""
    page = client.get(change_url)
    assert page.status_code == 200
    setup_id = fake.card_confirmed(page.context["setup"].client_secret, **card)
    response = client.post(change_url, {"setup_intent": setup_id})
    assert response.status_code == 302, response.content.decode()
    return PaymentCard.objects.get(
        gateway_payment_method_id=fake.setup_intents[setup_id]["payment_method"]
    )


def reseller_card(tenant: "Tenant", client_for, fake: "FakeStripe", **card) -> PaymentCard:
    """The reseller's owner saves a card on the reseller's card page."""
    return save_card(client_for(tenant.owner), fake, reverse("payments:card_change"), **card)
