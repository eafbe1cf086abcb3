"""One rule for "overdue" (billing.selectors.invoices_overdue_q): an invoice still unpaid after
its due date, whether it is open or its card payment failed. The money audit of the demo found
the dashboard (€0.00 overdue), the Invoices page's Overdue filter and badge, the API's flag and
the vendor overview counting only the open ones, while the admin's filter and the
invoice.overdue webhook counted both: an invoice declined until the last retry, its
subscription suspended, was overdue to staff and to API listeners but not to its reseller."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.contrib import admin
from django.test import RequestFactory

from billing import selectors
from billing.admin import OverdueFilter
from billing.models import Invoice
from insights.selectors import dashboard_figures
from tests.factories import InvoiceFactory
from webhooks.services import invoices_newly_overdue

TODAY = date(2026, 6, 15)
STATES = [
    # (status, due date, overdue by the plain rule written here)
    (Invoice.Status.OPEN, TODAY - timedelta(days=1), True),
    (Invoice.Status.PAYMENT_FAILED, TODAY - timedelta(days=2), True),
    (Invoice.Status.PAYMENT_FAILED, TODAY, False),  # due today: not yet
    (Invoice.Status.OPEN, TODAY + timedelta(days=3), False),
    (Invoice.Status.PAID, TODAY - timedelta(days=5), False),
]


@pytest.fixture
def invoices(tenant):
    made = {}
    for _n, (status, due, overdue) in enumerate(STATES):
        invoice = InvoiceFactory(
            customer=tenant.customer,
            issue_date=due - timedelta(days=14),
            due_date=due,
            status=status,
        )
        made[invoice.pk] = overdue
    return made


@time_machine.travel(TODAY, tick=False)
def test_every_place_that_says_overdue_follows_one_rule(tenant, invoices):
    expected = {pk for pk, overdue in invoices.items() if overdue}
    reseller = tenant.reseller
    every = Invoice.objects.filter(pk__in=invoices)

    assert {i.pk for i in every if selectors.invoice_is_overdue(i, today=TODAY)} == expected
    listed = selectors.invoice_list(reseller=reseller, status=selectors.OVERDUE, today=TODAY)
    assert {i.pk for i in listed} == expected
    (owed,) = selectors.invoice_outstanding(reseller=reseller, today=TODAY)
    balances = sum(
        (selectors.invoice_balance(i) for i in every if i.pk in expected), Decimal("0.00")
    )
    assert owed.overdue_invoices == len(expected) and owed.overdue == balances

    figures = dashboard_figures(reseller=reseller, today=TODAY)
    (euros,) = figures.currencies
    assert euros.overdue == balances
    assert {row.number for row in figures.overdue} == {i.number for i in every if i.pk in expected}

    request = RequestFactory().get("/admin/billing/invoice/", {"overdue": "yes"})
    invoice_admin = admin.site.get_model_admin(Invoice)
    site_filter = OverdueFilter(request, {"overdue": ["yes"]}, Invoice, invoice_admin)
    assert {i.pk for i in site_filter.queryset(request, every)} == expected
    assert {i.pk for i in invoices_newly_overdue(today=TODAY)} == expected
