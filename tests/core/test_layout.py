"""The layout's menu and language switcher (core.templatetags.layout)."""

import re

from django.test import RequestFactory
from django.utils import translation

from core.templatetags.layout import language_options, main_menu, select_options


def menu(path: str, can: frozenset[str]) -> str:
    return main_menu({"request": RequestFactory().get(path), "can": can})


def test_the_menu_marks_the_current_section_and_follows_the_role():
    everything = frozenset({"customer.view", "invoice.view", "margin.view"})
    html = menu("/customers/abc/", everything)
    assert re.findall(r">([^<]+)</a>", html) == [
        "Dashboard",
        "Customers",
        "Subscriptions",
        "Price book",
        "Invoices",
        "Margin",
        "Statements",
        "Reports",
        "Team",
        "Settings",
    ]
    assert re.findall(r'aria-current="page">([^<]+)<', html) == ["Customers"]
    assert re.findall(r'aria-current="page">([^<]+)<', menu("/dashboard/", everything)) == [
        "Dashboard"
    ]
    assert 'aria-current="page"' not in menu("/", everything)
    # The longest match marks the section: the Price book lives under /subscriptions/.
    assert re.findall(
        r'aria-current="page">([^<]+)<', menu("/subscriptions/prices/", everything)
    ) == ["Price book"]
    assert re.findall(r'aria-current="page">([^<]+)<', menu("/subscriptions/", everything)) == [
        "Subscriptions"
    ]
    assert "Invoices" not in menu("/", frozenset({"customer.view"}))
    assert "Margin" not in menu("/", frozenset({"customer.view"}))  # sales: no margins
    assert "Customers" not in menu("/", frozenset())


def test_the_menu_speaks_the_active_language():
    with translation.override("de"):
        assert "Kunden" in menu("/", frozenset({"customer.view"}))


def test_language_options_name_each_language_in_itself_with_the_current_one_selected():
    html = language_options("fr")
    assert re.findall(r'<option value="(\w+)"', html) == ["en", "es", "fr", "de", "nl"]
    assert '<option value="fr" selected>Français</option>' in html
    assert "Nederlands" in html and html.count("selected") == 1


def test_every_page_of_a_member_shows_the_menu_and_switcher(owner_client):
    body = owner_client.get("/customers/").content.decode()
    assert '<nav class="menu"' in body and 'aria-current="page">Customers<' in body
    assert '<option value="en" selected>English</option>' in body


def test_select_options_mark_the_chosen_value_and_escape_labels():
    html = select_options([("a", "Alpha"), ("b", "<b>")], "b")
    assert html == '<option value="a">Alpha</option><option value="b" selected>&lt;b&gt;</option>'
