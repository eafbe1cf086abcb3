"""The dashboard in headless Chromium, in each language (issue 18's "done when"): a year of a
reseller's business made through the services on past days (purchases, licences added, a
suspension, a trial, billing runs, a payment), the snapshots written by the job, then every
figure and every chart point on the page compared with what is read here, independently:

- the figures (MRR, margin, licences, trials ending, open and overdue, customers by status)
  with the subscriptions and invoices as they are now;
- each month's MRR and licences with the business as it stood at that month's end (recorded
  while the history was made), the current month with today's;
- each month's invoiced and paid amounts with the invoices issued and paid in that month.

It also checks the page speaks the language (its heading, a month's name, money in the
language's notation) and logs no CSP violation.
"""

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
import time_machine
from babel.dates import format_date
from babel.numbers import format_currency
from django.utils import timezone

from billing import services as billing_services
from billing.models import Invoice
from customers.models import Customer
from insights.services import snapshots_take
from subscriptions import services
from subscriptions.models import Plan, Subscription
from tests.factories import CustomerFactory, catalogue, make_tenant, owner_of
from tests.support.browser import csp_collect, csp_violations, session_cookie
from tests.support.insights import plain_figures

pytestmark = pytest.mark.browser

HEADINGS = {
    "en": "Dashboard",
    "es": "Panel de control",
    "fr": "Tableau de bord",
    "de": "Dashboard",
    "nl": "Dashboard",
}


def _month(day: date) -> date:
    return day.replace(day=1)


def _months(today: date) -> list[date]:
    months = [_month(today)]
    while len(months) < 12:
        previous = months[0] - timedelta(days=1)
        months.insert(0, _month(previous))
    return months


def _at(day: date) -> datetime:
    return datetime.combine(day, time(11), tzinfo=UTC)


def _build_history(today: date):
    """A year of business, recorded as it stood after each day's changes."""
    plans = catalogue(currencies=("EUR",))
    tenant = make_tenant("Nimbus Browser")
    owner = owner_of(tenant)
    customers = [tenant.customer, *CustomerFactory.create_batch(3, reseller=tenant.reseller)]
    CustomerFactory(reseller=tenant.reseller, status=Customer.Status.INVITED)
    other = make_tenant("Other Reseller")
    states: dict[date, dict] = {}

    def on(days_ago: int, action) -> None:
        day = today - timedelta(days=days_ago)
        with time_machine.travel(_at(day), tick=False):
            action()
        states[day] = plain_figures(tenant.reseller)

    def buy(customer: Customer, kind: str, licences: int) -> Subscription:
        return services.subscription_buy(
            membership=owner,
            customer=customer,
            plan=plans[kind],
            licences=licences,
            payer="reseller_card",
            order_key=services.order_key_new(),
        ).subscription

    bought: dict[str, Subscription] = {}
    on(330, lambda: bought.update(a=buy(customers[0], Plan.Kind.FLEXIBLE, 5)))
    on(200, lambda: bought.update(b=buy(customers[1], Plan.Kind.ANNUAL_MONTHLY, 12)))
    on(199, lambda: billing_services.billing_run(day=timezone.localdate()))
    on(
        190,
        lambda: [
            billing_services.invoice_mark_paid(invoice=invoice, by=None)
            for invoice in Invoice.objects.filter(reseller=tenant.reseller)
        ],
    )
    on(150, lambda: bought.update(d=buy(customers[3], Plan.Kind.FLEXIBLE, 7)))
    on(
        120,
        lambda: services.subscription_change_licences(
            membership=owner,
            subscription=Subscription.objects.get(pk=bought["a"].pk),
            new_count=8,
            expected_count=5,
            order_key=services.order_key_new(),
        ),
    )
    on(
        45,
        lambda: services.subscription_suspend(
            membership=owner, subscription=Subscription.objects.get(pk=bought["d"].pk)
        ),
    )
    on(40, lambda: billing_services.billing_run(day=timezone.localdate()))
    on(25, lambda: buy(customers[2], Plan.Kind.TRIAL, 3))
    # The other reseller's business never shows.
    with time_machine.travel(_at(today - timedelta(days=60)), tick=False):
        services.subscription_buy(
            membership=owner_of(other),
            customer=other.customer,
            plan=plans[Plan.Kind.FLEXIBLE],
            licences=50,
            payer="reseller_card",
            order_key=services.order_key_new(),
        )
    return tenant, states


def _at_month_end(states: dict[date, dict], month: date, today: date) -> dict:
    """The business as it stood at the end of `month` (today's for the current month)."""
    end = today if month == _month(today) else (month + timedelta(days=32)).replace(day=1)
    days = [day for day in states if day < end] if month != _month(today) else list(states)
    return states[max(days)] if days else {}


def _money_by_month(reseller, months: list[date]) -> tuple[dict, dict]:
    """Invoiced (invoices less credit notes) and paid (invoices paid, less their credit notes)
    per month, read from the invoices."""
    invoiced = dict.fromkeys(months, Decimal(0))
    paid = dict.fromkeys(months, Decimal(0))
    for document in Invoice.objects.filter(reseller=reseller):
        month = _month(document.issue_date)
        sign = -1 if document.kind == Invoice.Kind.CREDIT_NOTE else 1
        if month in invoiced:
            invoiced[month] += sign * abs(document.total)
        if document.kind == Invoice.Kind.INVOICE and document.paid_at:
            credited = sum(
                (abs(note.total) for note in Invoice.objects.filter(corrects=document)),
                Decimal(0),
            )
            paid_month = _month(timezone.localdate(document.paid_at))
            if paid_month in paid:
                paid[paid_month] += document.total - credited
    return invoiced, paid


def _chart(page, chart: str) -> dict[str, list[Decimal]]:
    rows = page.eval_on_selector_all(
        f'table[data-chart="{chart}"] tbody tr',
        "rows => rows.map(row => [row.dataset.month,"
        " [...row.querySelectorAll('td')].map(cell => cell.dataset.value)])",
    )
    return {month: [Decimal(value) for value in values] for month, values in rows}


def _figures(page) -> dict[str, Decimal]:
    pairs = page.eval_on_selector_all(
        "[data-figure]",
        "nodes => nodes.map(node => [node.dataset.figure + (node.dataset.currency ? ':'"
        " + node.dataset.currency : ''), node.dataset.value])",
    )
    return {name: Decimal(value) for name, value in pairs}


@pytest.mark.django_db(transaction=True)
def test_every_figure_and_chart_point_matches_the_books_in_each_language(browser, live_server):
    today = timezone.localdate()
    tenant, states = _build_history(today)
    snapshots_take(today=today)
    months = _months(today)
    now = plain_figures(tenant.reseller)["EUR"]
    invoiced, paid = _money_by_month(tenant.reseller, months)
    unpaid = Invoice.objects.filter(
        reseller=tenant.reseller, kind=Invoice.Kind.INVOICE, paid_at__isnull=True
    )
    open_total = sum((invoice.total for invoice in unpaid), Decimal(0))
    overdue_total = sum((i.total for i in unpaid if i.due_date < today), Decimal(0))
    trials_ending = (
        Subscription.objects.filter(
            customer__reseller=tenant.reseller,
            status=Subscription.Status.TRIAL,
            term_end__gt=today,
            term_end__lte=today + timedelta(days=7),
        )
        .exclude(customer__status__in=["access_revoked", "transferred_out"])
        .count()
    )
    expected_figures = {
        "mrr:EUR": now[0],
        "margin:EUR": now[1],
        "licences": now[2],
        "trials-ending": trials_ending,
        "open:EUR": open_total,
        "overdue:EUR": overdue_total,
        **{
            f"customers-{status}": Customer.objects.filter(
                reseller=tenant.reseller, status=status
            ).count()
            for status in ("invited", "active", "cancelled")
        },
    }
    expected_mrr = {}
    expected_licences = {}
    for month in months:
        state = _at_month_end(states, month, today).get("EUR", (0, 0, 0, 0, 0))
        if month == _month(today):
            state = now
        key = month.strftime("%Y-%m")
        expected_mrr[key] = [Decimal(state[0]), Decimal(state[1])]
        expected_licences[key] = [Decimal(state[2])]
    expected_invoices = {
        month.strftime("%Y-%m"): [invoiced[month], paid[month]] for month in months
    }
    assert any(values[0] for values in expected_mrr.values()), "a history to chart"
    assert any(values[0] for values in expected_invoices.values())

    for language in ("en", "es", "fr", "de", "nl"):
        tenant.owner.language = language
        tenant.owner.save(update_fields=["language"])
        context = browser.new_context(base_url=live_server.url, locale=language)
        context.add_cookies([session_cookie(tenant.owner, live_server.url)])
        page = context.new_page()
        csp_collect(context, page)
        page.goto("/dashboard/")
        assert page.locator("h1").inner_text() == HEADINGS[language], language
        figures = _figures(page)
        for name, value in expected_figures.items():
            assert figures.get(name) == Decimal(str(value)), (language, name, figures)
        assert _chart(page, "chart-mrr") == expected_mrr, language
        assert _chart(page, "chart-licences") == expected_licences, language
        assert _chart(page, "chart-invoices") == expected_invoices, language
        # In the reader's language: money in its notation, months by their names.
        text = page.locator("main").inner_text()
        assert format_currency(now[0], "EUR", locale=language) in text, language
        month_name = format_date(months[0], "MMMM", locale=language)
        table = page.locator('table[data-chart="chart-mrr"]').text_content() or ""
        assert month_name.lower() in table.lower(), (language, month_name)
        assert csp_violations(page) == [], language
        context.close()
