"""Labels a translation cannot blur: the header's two switchers say what they switch, and the
noun "Change" carries a context so translators do not render it as the verb."""

import re
from pathlib import Path

import pytest
from django.apps import apps
from django.db.models import fields
from django.urls import reverse
from django.utils.functional import Promise

from resellers.models import Membership
from resellers.roles import Role
from tests.factories import Tenant

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def header_buttons(page: str) -> list[str]:
    header = page[: page.index("</header>")] if "</header>" in page else page
    return re.findall(r'<button type="submit" class="button small">([^<]+)</button>', header)


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["en", "es", "fr", "de", "nl"])
def test_the_reseller_and_language_switchers_have_different_labels(
    tenant: Tenant, other_tenant: Tenant, client_for, language
):
    Membership.objects.create(reseller=other_tenant.reseller, user=tenant.owner, role=Role.OWNER)
    page = client_for(tenant.owner).get(reverse("dashboard"), HTTP_ACCEPT_LANGUAGE=language)
    buttons = header_buttons(page.content.decode())
    assert len(buttons) >= 2
    assert len(set(buttons)) == len(buttons)


def test_the_noun_change_is_translated_with_a_context():
    bare = [
        path.relative_to(TEMPLATES)
        for path in TEMPLATES.rglob("*.html")
        if '{% translate "Change" %}' in path.read_text()
    ]
    assert bare == []


@pytest.mark.parametrize("label", ["core", "resellers", "customers", "subscriptions", "billing"])
def test_every_app_heading_in_the_admin_is_translatable(label):
    verbose_name = apps.get_app_config(label).verbose_name
    assert isinstance(verbose_name, Promise)


def test_djangos_strings_missing_from_its_catalogues_are_in_ours_to_translate():
    """core.admin_strings marks them so makemessages copies them into the project's .po."""
    source = (TEMPLATES.parent / "core" / "admin_strings.py").read_text()
    assert 'gettext_noop("- Select an option -")' in source
    assert 'gettext_noop("Run")' in source
    assert "- Select an option -" in str(fields.BLANK_CHOICE_LABEL)


@pytest.mark.django_db
def test_form_labels_start_with_a_capital_in_every_language(owner_client):
    """Spanish translates the verbose name "Google domain" in lower case, as verbose names are
    written; the form shows it capitalised like its neighbours."""
    page = owner_client.get(reverse("customers:create"), HTTP_ACCEPT_LANGUAGE="es")
    labels = re.findall(r"<label[^>]*>\s*([^<\s][^<]*)</label>", page.content.decode())
    assert labels
    assert [label for label in labels if label[0].islower()] == []
