"""Random public ids: what URLs carry instead of sequential primary keys."""

import secrets

from django.db import models
from django.utils.translation import gettext_lazy as _

PUBLIC_ID_LENGTH = 16
PUBLIC_ID_PATTERN = r"[A-Za-z0-9_-]{16}"


def new_public_id() -> str:
    """12 random bytes: 96 bits, URL-safe, exactly 16 characters; never starting with "-",
    which a spreadsheet would read as a formula (core.csv then writes it with a leading quote)
    and a command line as an option."""
    while True:
        public_id = secrets.token_urlsafe(12)
        if not public_id.startswith("-"):
            return public_id


class PublicIdField(models.CharField):
    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("verbose_name", _("public id"))
        kwargs.setdefault("max_length", PUBLIC_ID_LENGTH)
        kwargs.setdefault("unique", True)
        kwargs.setdefault("editable", False)
        kwargs.setdefault("default", new_public_id)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]


class PublicIdConverter:
    """`<pid:name>` in URL patterns: a public id, never a primary key."""

    regex = PUBLIC_ID_PATTERN

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value
