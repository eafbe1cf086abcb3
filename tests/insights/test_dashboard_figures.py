"""The dashboard's figures are numbers in the reader's language: thousands grouped as the
language groups them (7,950 in English, 7.950 in German), as on the Customers page."""

import re

import pytest
from django.test import Client

from customers.selectors import CustomerSummary
from insights.views import dashboard as views
from tests.factories import Tenant

FIGURE = re.compile(
    r'<span class="figure">(?:<a [^>]*>)?([^<]*)(?:</a>)?</span>'
    r'\s*<span class="label">([^<]*)</span>'
)


@pytest.mark.parametrize(("language", "shown"), [("en", "7,950"), ("de", "7.950")])
def test_figures_group_thousands_in_the_readers_language(
    tenant: Tenant, other_tenant: Tenant, client_for, monkeypatch, language, shown
):
    summary = CustomerSummary(counts={"active": 7950}, newest=[], list_version=1)
    monkeypatch.setattr(views, "customer_summary", lambda reseller: summary)
    tenant.owner.language = language
    tenant.owner.save(update_fields=["language"])
    client: Client = client_for(tenant.owner)
    page = client.get("/dashboard/", HTTP_ACCEPT_LANGUAGE=language).text
    figures = [figure for figure, _label in FIGURE.findall(page)]
    assert shown in figures, figures
