"""Calling the REST API in tests: a key made through the service, a client that sends it."""

from typing import Any

from django.test import Client

from api.models import ApiKey, Scope
from api.services import api_key_create
from resellers.models import Membership

ALL_SCOPES = list(Scope.values)


def api_key(membership: Membership, *scopes: str, name: str = "CRM sync") -> tuple[ApiKey, str]:
    """A key made by `membership` (an owner or admin) with `scopes` (all if none given)."""
    return api_key_create(membership=membership, name=name, scopes=list(scopes) or ALL_SCOPES)


class ApiClient(Client):
    """Django's test client sending `Authorization: Bearer <key>` and JSON bodies."""

    def __init__(self, key: str = "", **defaults: Any) -> None:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        super().__init__(headers=headers, **defaults)

    def post_json(self, path: str, data: Any = None, **extra: Any) -> Any:
        return self.post(path, data or {}, content_type="application/json", **extra)

    def put_json(self, path: str, data: Any = None, **extra: Any) -> Any:
        return self.put(path, data or {}, content_type="application/json", **extra)
