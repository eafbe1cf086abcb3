"""Signed-in sessions for tests, one way: written to the session store as a sign-in leaves
them (the user, the backend, the password hash), in one insert. Django's `Client.force_login`
does the same through a whole login, about a dozen queries each time."""

from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.test import Client

from core.models import User

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def session_key_for(user: User) -> str:
    """The key of a new session signed in as `user` (the value of the session cookie)."""
    store = import_module(settings.SESSION_ENGINE).SessionStore()
    store[SESSION_KEY] = user._meta.pk.value_to_string(user)
    store[BACKEND_SESSION_KEY] = MODEL_BACKEND
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.save()
    assert store.session_key is not None
    return store.session_key


def client_signed_in(user: User, **client_options: Any) -> Client:
    """A test client (Client(**client_options)) signed in as `user`."""
    client = Client(**client_options)
    client.cookies[settings.SESSION_COOKIE_NAME] = session_key_for(user)
    return client
