"""The portal's languages (settings.LANGUAGES) as model fields offer them, and the variant a
reseller or customer reads by default in its country.

English (United Kingdom), "en-gb", is English with British dates (06/12/2026, "6 Dec 2026",
Django's en_GB formats). Its messages are the English source itself, so it has no catalogue of
its own (translations_check asks none of the source language's variants).
"""

from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


def language_choices() -> "list[tuple[str, StrOrPromise]]":
    """settings.LANGUAGES for a model field's `choices`: a callable, so that the migrations
    refer to it instead of copying the list, and a language added needs no migration."""
    return list(settings.LANGUAGES)


def language_for_country(language: str, country: str) -> str:
    """`language` as read in `country`: its regional variant when the portal has one (English
    in the United Kingdom is "en-gb"), otherwise `language` unchanged."""
    variant = f"{language.split('-')[0]}-{country.lower()}"
    if country and variant in dict(settings.LANGUAGES):
        return variant
    return language


def language_from_locale(locale: str) -> str:
    """The portal's language for a locale such as Google's "en-GB" or "fr": the variant when the
    portal has it, else the base language, else "" (none of the portal's)."""
    languages = dict(settings.LANGUAGES)
    code = locale.strip().lower().replace("_", "-")
    for candidate in (code, code.split("-")[0]):
        if candidate in languages:
            return candidate
    return ""
