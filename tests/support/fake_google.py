"""Google sign-in without Google: allauth's HTTP calls are answered in-process.

allauth (65.x) asks Google's token endpoint for tokens once the browser comes back to the
callback with a `code`; the `id_token` in that answer is read without checking its signature
(it came straight from Google over TLS), so a test may sign it with any key. Every other
outgoing request fails the test.
"""

import html
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import requests
from django.conf import settings
from django.test import Client

TOKEN_URL = "https://oauth2.googleapis.com/token"
AUTHORIZE_URL = "https://accounts.google.com/o/oauth2/v2/auth"
LOGIN_URL = "/accounts/google/login/"
CALLBACK_URL = "/accounts/google/login/callback/"


class UnexpectedRequest(AssertionError):
    pass


@dataclass
class GoogleIdentity:
    email: str
    verified: bool = True
    sub: str = field(default_factory=lambda: str(uuid.uuid4().int)[:21])
    given_name: str = "Pat"
    family_name: str = "Example"
    locale: str = "en"


class FakeGoogle:
    """Stands in for `requests.Session.request` while installed (see `install`)."""

    def __init__(self) -> None:
        self.identity: GoogleIdentity | None = None
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.unexpected: list[str] = []

    def install(self, monkeypatch: Any) -> "FakeGoogle":
        fake = self

        def request(session: requests.Session, method: str, url: str, *args: Any, **kwargs: Any):
            return fake.answer(method, url, kwargs)

        monkeypatch.setattr(requests.Session, "request", request)
        return self

    def id_token(self, identity: GoogleIdentity) -> str:
        now = int(time.time())
        claims = {
            "iss": "https://accounts.google.com",
            "aud": settings.GOOGLE_CLIENT_ID,
            "azp": settings.GOOGLE_CLIENT_ID,
            "sub": identity.sub,
            "email": identity.email,
            "email_verified": identity.verified,
            "name": f"{identity.given_name} {identity.family_name}",
            "given_name": identity.given_name,
            "family_name": identity.family_name,
            "locale": identity.locale,
            "iat": now,
            "exp": now + 3600,
            "jti": uuid.uuid4().hex,
        }
        # Any key will do: allauth does not check the signature of a token it fetched itself.
        return jwt.encode(claims, "not-googles-key-" + "x" * 32, algorithm="HS256")

    def answer(self, method: str, url: str, kwargs: dict[str, Any]) -> requests.Response:
        self.calls.append((method, url, kwargs))
        if method.upper() == "POST" and url == TOKEN_URL:
            data = kwargs.get("data") or {}
            if self.identity is None or not data.get("code"):
                raise UnexpectedRequest(f"token request without identity or code: {data!r}")
            if data.get("client_id") != settings.GOOGLE_CLIENT_ID:
                raise UnexpectedRequest(f"token request for another client: {data!r}")
            return self._json(
                url,
                {
                    "access_token": "ya29.test-access-token-" + uuid.uuid4().hex,
                    "expires_in": 3599,
                    "scope": "openid email profile",
                    "token_type": "Bearer",
                    "id_token": self.id_token(self.identity),
                },
            )
        self.unexpected.append(f"{method} {url}")
        raise UnexpectedRequest(f"unexpected outgoing request in a test: {method} {url}")

    @staticmethod
    def _json(url: str, payload: dict[str, Any]) -> requests.Response:
        response = requests.Response()
        response.status_code = 200
        response.url = url
        response.headers["Content-Type"] = "application/json; charset=utf-8"
        response._content = json.dumps(payload).encode()
        return response

    def sign_in(
        self,
        client: Client,
        identity: GoogleIdentity,
        *,
        next_url: str | None = None,
        login_url: str = LOGIN_URL,
    ):
        """Press "Sign in with Google", come back from Google; returns the callback response."""
        self.identity = identity
        data = {"next": next_url} if next_url else {}
        started = client.post(login_url, data)
        assert started.status_code == 302, started
        location = started["Location"]
        assert location.startswith(AUTHORIZE_URL), location
        query = parse_qs(urlsplit(location).query)
        assert query["client_id"] == [settings.GOOGLE_CLIENT_ID]
        state = query["state"][0]
        return client.get(CALLBACK_URL, {"code": "4/test-code-" + uuid.uuid4().hex, "state": state})


def form_action(content: str, contains: str) -> str:
    """The (unescaped) action of the first form in the page whose action contains `contains`."""
    for action in re.findall(r'<form[^>]*\saction="([^"]*)"', content):
        action = html.unescape(action)
        if contains in action:
            return action
    raise AssertionError(f"no form posting to {contains!r} in the page")


def signed_in_user_id(client: Client) -> str | None:
    return client.session.get("_auth_user_id")
