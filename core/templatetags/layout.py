"""The parts of base.html that every page renders (the language switcher's options and the
reseller's main menu), and the options of a list page's filter.

Built here rather than in template tags and loops: the layout is on every page, and its
per-node cost was a third of what the Customers page adds to a minimal view (README,
Benchmarks). What does not change between requests is built once per process.
"""

from functools import lru_cache
from typing import Any

from django import template
from django.conf import settings
from django.urls import get_script_prefix, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import capfirst
from django.utils.translation import get_language_info, gettext_lazy

register = template.Library()

_SELECTED = mark_safe(" selected")
_CURRENT = mark_safe(' aria-current="page"')


@register.simple_tag
def select_options(choices: list[tuple[str, str]], selected: str) -> SafeString:
    """`<option>`s for (value, label) pairs, the `selected` value marked: a filter's choices
    without a template loop per option."""
    return format_html_join(
        "",
        '<option value="{}"{}>{}</option>',
        ((value, _SELECTED if value == selected else "", label) for value, label in choices),
    )


@register.simple_tag
def language_options(current: str) -> SafeString:
    """An <option> per language, named in itself ("Deutsch"), `current` selected."""
    return _language_options(current)


@lru_cache(maxsize=32)
def _language_options(current: str) -> SafeString:
    return select_options(
        [(code, capfirst(_name_local(code))) for code, _name in settings.LANGUAGES], current
    )


def _name_local(code: str) -> str:
    return str(get_language_info(code)["name_local"])


# The menu: (URL name, label, the permission it needs or None). Every role sees Dashboard, Team
# and Settings; the pages themselves check the role again.
MENU = [
    ("dashboard", gettext_lazy("Dashboard"), None),
    ("customers:list", gettext_lazy("Customers"), "customer.view"),
    ("subscriptions:list", gettext_lazy("Subscriptions"), "customer.view"),
    ("subscriptions:price_book", gettext_lazy("Price book"), "customer.view"),
    ("billing:invoice_list", gettext_lazy("Invoices"), "invoice.view"),
    ("commissions:margin", gettext_lazy("Margin"), "margin.view"),
    ("statements:list", gettext_lazy("Statements"), "margin.view"),
    ("insights:reports", gettext_lazy("Reports"), "invoice.view"),
    ("resellers:team", gettext_lazy("Team"), None),
    ("resellers:settings", gettext_lazy("Settings"), None),
]


@register.simple_tag(takes_context=True)
def main_menu(context: dict[str, Any]) -> SafeString:
    """The menu's links for the member's role, the current section marked aria-current."""
    path = context["request"].path
    allowed = context.get("can", frozenset())
    urls = _menu_urls(get_script_prefix())
    # The section is the link whose URL is the longest start of the path: the Price book
    # (/subscriptions/prices/), not Subscriptions (/subscriptions/).
    current = max((url for url in urls if path.startswith(url)), key=len, default=None)
    links = []
    for (_name, label, permission), url in zip(MENU, urls, strict=True):
        if permission is not None and permission not in allowed:
            continue
        links.append(
            format_html(
                '<a href="{}"{}>{}</a>', url, _CURRENT if url == current else "", str(label)
            )
        )
    return SafeString("\n".join(links))


@lru_cache(maxsize=8)
def _menu_urls(script_prefix: str) -> list[str]:
    """The menu's URLs (they differ only by the prefix the site is mounted under)."""
    return [reverse(name) for name, _label, _permission in MENU]
