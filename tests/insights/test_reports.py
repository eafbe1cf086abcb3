"""The Reports page (insights.views.reports) and its figures (insights.reports): revenue by
month, customer and product with credit notes shared out, the charges not invoiced yet, the
next 90 days' forecast checked against what the daily job then charges, the licence changes;
the filters and bad input, the CSV files (formulas neutralised), who may see what, another
reseller's data never counted, empty states, and a number of queries that does not grow with
the rows."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.csv import line as csv_line
from customers.models import Customer
from insights import reports
from insights.reports import ReportFilters
from resellers import roles
from resellers.roles import Action, Role
from subscriptions import services as subscription_services
from subscriptions.models import Charge, LicenceChange, Plan, Subscription
from tests.factories import (
    ChargeFactory,
    CustomerFactory,
    PlanFactory,
    SubscriptionFactory,
    Tenant,
    buy,
    change,
    charge_priced,
    credit_note_of,
    invoice_of_charges,
    make_tenant,
    owner_of,
)
from tests.support.sessions import client_signed_in

D = Decimal
NOW = datetime(2026, 3, 15, 10, tzinfo=UTC)
TODAY = NOW.date()
# The default range on TODAY: the last 12 full months and this one so far.
DEFAULT = ReportFilters(start=date(2025, 3, 1), end=TODAY, currency="EUR")
EMPTY_MESSAGES = (
    "No invoice or credit note in EUR was issued in this range.",
    "Nothing to invoice: every charge in EUR is on an invoice.",
    "No charge in EUR is expected in this time.",
    "No licence was bought, added or removed in this range.",
)


@pytest.fixture(autouse=True)
def _march(time_machine):
    time_machine.move_to(NOW, tick=False)


def client_as(tenant: Tenant, role: str) -> Client:
    return client_signed_in(tenant.member(role))


def csv_lines(response) -> list[str]:
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    return b"".join(response.streaming_content).decode().splitlines()


def row(*cells: object) -> str:
    """A CSV line as core.csv writes it (a public id may start with "-": it is quoted then)."""
    return csv_line([str(cell) for cell in cells]).removesuffix("\r\n")


def section(body: str, name: str) -> str:
    """The HTML of one report's section."""
    start = body.index(f'<section id="report-{name}"')
    return body[start : body.index("</section>", start)]


def figures(lines) -> list[tuple]:
    return [(line.name, line.invoiced, line.credited, line.revenue, line.margin) for line in lines]


@pytest.fixture
def history(tenant: Tenant, other_tenant: Tenant) -> dict[str, object]:
    """Documents of two customers over the default range, and around it: an invoice of two
    products in January, half of it credited in February, an invoice in March; one issued
    before the range, one in USD, and another reseller's."""
    mail = PlanFactory(product__name="Mail", product__sku="mail")
    drive = PlanFactory(product__name="Drive", product__sku="drive")
    first = tenant.customer
    second = CustomerFactory(reseller=tenant.reseller, organisation="Beta Ltd")
    first_mail = SubscriptionFactory(customer=first, plan=mail)
    january = invoice_of_charges(
        [
            charge_priced(first_mail, amount="60.00", cost="45.00"),
            charge_priced(
                SubscriptionFactory(customer=first, plan=drive), amount="40.00", cost="30.00"
            ),
        ],
        issue_date=date(2026, 1, 10),
    )
    credit_note_of(january, "50.00", issue_date=date(2026, 2, 5))
    invoice_of_charges(
        [
            charge_priced(
                SubscriptionFactory(customer=second, plan=mail), amount="10.00", cost="7.00"
            )
        ],
        issue_date=date(2026, 3, 1),
    )
    # Before the range.
    invoice_of_charges(
        [charge_priced(first_mail, amount="999.00", cost="1.00")], issue_date=date(2025, 2, 28)
    )
    # In USD.
    invoice_of_charges(
        [
            charge_priced(
                SubscriptionFactory(customer=first, currency="USD"),
                amount="500.00",
                cost="400.00",
            )
        ],
        issue_date=date(2026, 1, 11),
    )
    # Another reseller's, in the range.
    invoice_of_charges(
        [
            charge_priced(
                SubscriptionFactory(customer=other_tenant.customer, plan=mail),
                amount="777.00",
                cost="1.00",
            )
        ],
        issue_date=date(2026, 1, 12),
    )
    return {"first": first, "second": second}


# Revenue


def test_revenue_by_month_customer_and_product_with_a_credit_note_shared_out(tenant, history):
    revenue = reports.revenue_report(reseller=tenant.reseller, filters=DEFAULT)
    assert revenue.documents == 3
    # Every month of the range, with or without documents.
    assert [line.month for line in revenue.by_month] == [
        date(2025, month, 1) for month in range(3, 13)
    ] + [date(2026, month, 1) for month in (1, 2, 3)]
    by_month = {line.key: line for line in revenue.by_month}
    assert figures([by_month["2026-01"], by_month["2026-02"], by_month["2026-03"]]) == [
        ("", D("100.00"), D("0.00"), D("100.00"), D("25.00")),
        ("", D("0.00"), D("50.00"), D("-50.00"), D("-12.50")),
        ("", D("10.00"), D("0.00"), D("10.00"), D("3.00")),
    ]
    assert all(line.revenue == 0 for key, line in by_month.items() if key < "2026-01")
    first = history["first"]
    assert figures(revenue.by_customer) == [
        (first.organisation, D("100.00"), D("50.00"), D("50.00"), D("12.50")),
        ("Beta Ltd", D("10.00"), D("0.00"), D("10.00"), D("3.00")),
    ]
    # The credit note of 50.00 takes 30.00 from Mail and 20.00 from Drive (60:40), and the
    # margin back in proportion to each product's.
    assert figures(revenue.by_product) == [
        ("Mail", D("70.00"), D("30.00"), D("40.00"), D("10.50")),
        ("Drive", D("40.00"), D("20.00"), D("20.00"), D("5.00")),
    ]
    assert figures([revenue.total]) == [("Total", D("110.00"), D("50.00"), D("60.00"), D("15.50"))]


def test_revenue_counts_documents_by_their_issue_date_both_ends_included(tenant, history):
    january = ReportFilters(start=date(2026, 1, 10), end=date(2026, 2, 5), currency="EUR")
    revenue = reports.revenue_report(reseller=tenant.reseller, filters=january)
    assert [line.key for line in revenue.by_month] == ["2026-01", "2026-02"]
    assert revenue.total.revenue == D("50.00")
    usd = ReportFilters(start=date(2026, 1, 1), end=date(2026, 1, 31), currency="USD")
    assert reports.revenue_report(reseller=tenant.reseller, filters=usd).total.revenue == D(
        "500.00"
    )


def test_the_page_shows_the_revenue_and_links_the_customers_still_the_resellers(
    owner_client, tenant, history
):
    second = history["second"]
    assert isinstance(second, Customer)
    second.status = Customer.Status.TRANSFERRED_OUT
    second.save()
    response = owner_client.get("/reports/")
    assert response.status_code == 200
    body = response.content.decode()
    revenue = section(body, "revenue")
    assert "January 2026" in revenue and "March 2025" in revenue
    assert "€110.00" in revenue and "€60.00" in revenue and "-€50.00" in revenue
    assert "777" not in body and "999" not in body and "500.00" not in revenue
    first = history["first"]
    assert f'<a href="/customers/{first.public_id}/">{first.organisation}</a>' in revenue
    # A former customer is listed, without a link (its page is a 404).
    assert "Beta Ltd" in revenue and f"/customers/{second.public_id}/" not in revenue
    # The margin column, for a role that sees margins.
    assert '<th scope="col" class="num">Margin</th>' in revenue and "€15.50" in revenue
    # Each table's CSV with the same filters.
    for slug in ("revenue-by-month", "revenue-by-customer", "revenue-by-product"):
        assert (
            f'href="/reports/{slug}.csv?from=2025-03-01&amp;to=2026-03-15&amp;currency=EUR"'
            in revenue
        )


def test_the_revenue_csv_files(owner_client, tenant, history):
    query = "?from=2026-01-01&to=2026-03-31&currency=EUR"
    assert csv_lines(owner_client.get("/reports/revenue-by-month.csv" + query)) == [
        "month,currency,invoiced,credited,revenue,margin",
        "2026-01,EUR,100.00,0.00,100.00,25.00",
        "2026-02,EUR,0.00,50.00,-50.00,-12.50",
        "2026-03,EUR,10.00,0.00,10.00,3.00",
    ]
    first = history["first"]
    second = history["second"]
    assert isinstance(first, Customer) and isinstance(second, Customer)
    assert csv_lines(owner_client.get("/reports/revenue-by-customer.csv" + query)) == [
        "customer_id,customer,currency,invoiced,credited,revenue,margin",
        row(first.public_id, first.organisation, "EUR", "100.00", "50.00", "50.00", "12.50"),
        row(second.public_id, "Beta Ltd", "EUR", "10.00", "0.00", "10.00", "3.00"),
    ]
    response = owner_client.get("/reports/revenue-by-product.csv" + query)
    assert (
        'filename="revenue-by-product-EUR-2026-01-01-2026-03-31.csv"'
        in (response["Content-Disposition"])
    )
    assert csv_lines(response) == [
        "sku,product,currency,invoiced,credited,revenue,margin",
        "mail,Mail,EUR,70.00,30.00,40.00,10.50",
        "drive,Drive,EUR,40.00,20.00,20.00,5.00",
    ]


def test_the_margin_only_for_a_role_that_sees_margins(monkeypatch, tenant, history):
    monkeypatch.setitem(
        roles.PERMISSIONS, Role.BILLING, roles.PERMISSIONS[Role.BILLING] - {Action.MARGIN_VIEW}
    )
    client = client_as(tenant, Role.BILLING)
    revenue = section(client.get("/reports/").content.decode(), "revenue")
    assert "€60.00" in revenue
    assert "Margin" not in revenue and "€15.50" not in revenue
    lines = csv_lines(client.get("/reports/revenue-by-month.csv?from=2026-01-01&to=2026-01-31"))
    assert lines == ["month,currency,invoiced,credited,revenue", "2026-01,EUR,100.00,0.00,100.00"]


# Not invoiced yet


def test_unbilled_charges_by_customer_and_one_by_one(owner_client, tenant, other_tenant):
    reseller = tenant.reseller
    reseller.time_zone = "Europe/Amsterdam"
    reseller.save()
    subscription = SubscriptionFactory(customer=tenant.customer, plan__product__name="Mail")
    with time_machine.travel(datetime(2026, 3, 14, 23, 30, tzinfo=UTC), tick=False):
        oldest = ChargeFactory(subscription=subscription, licences=2, unit_price=D("4.00"))
    ChargeFactory(
        subscription=subscription, kind=Charge.Kind.PRORATION, licences=1, unit_price=D("1.25")
    )
    second = CustomerFactory(reseller=reseller, organisation="Beta Ltd")
    ChargeFactory(
        subscription=SubscriptionFactory(customer=second), licences=10, unit_price=D("4.00")
    )
    # Invoiced already, in another currency, another reseller's: not counted.
    invoice_of_charges([ChargeFactory(subscription=subscription, kind=Charge.Kind.PLAN_CHANGE)])
    ChargeFactory(subscription=SubscriptionFactory(customer=tenant.customer, currency="USD"))
    ChargeFactory(subscription=SubscriptionFactory(customer=other_tenant.customer))

    report = reports.unbilled_report(
        reseller=reseller, currency="EUR", zone=timezone.get_default_timezone()
    )
    assert [(line.name, line.charges, line.amount) for line in report.by_customer] == [
        ("Beta Ltd", 1, D("40.00")),
        (tenant.customer.organisation, 2, D("9.25")),
    ]
    assert (report.total.charges, report.total.amount) == (3, D("49.25"))

    body = section(owner_client.get("/reports/").content.decode(), "unbilled")
    assert "€49.25" in body and "€9.25" in body
    # The oldest charge's day in the reseller's time zone: 00:30 on 15 March in Amsterdam.
    assert "03/15/2026" in body and "03/14/2026" not in body
    assert "whatever the range" in body

    lines = csv_lines(owner_client.get("/reports/unbilled.csv?from=2020-01-01&to=2020-12-31"))
    assert lines[0] == (
        "customer_id,customer,subscription_id,product,kind,period_start,period_end,licences,"
        "amount,currency,created"
    )
    assert len(lines) == 4  # a row per charge, whatever the range
    start, end = oldest.period_start.isoformat(), oldest.period_end.isoformat()
    assert (
        row(
            tenant.customer.public_id,
            tenant.customer.organisation,
            subscription.public_id,
            "Mail",
            "Billing period",
            start,
            end,
            2,
            "8.00",
            "EUR",
            "2026-03-15T00:30:00+01:00",
        )
        in lines
    )
    assert any(
        ",Licences added during the period," in line and ",1.25,EUR," in line for line in lines
    )


def test_amounts_and_labels_in_the_readers_language(owner_client, tenant, history):
    owner_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "de"
    ChargeFactory(
        subscription=SubscriptionFactory(customer=tenant.customer, plan__product__name="Mail")
    )
    body = owner_client.get("/reports/").content.decode()
    assert "110,00\xa0€" in section(body, "revenue") and "-50,00\xa0€" in section(body, "revenue")
    assert "Januar 2026" in section(body, "revenue")
    lines = csv_lines(owner_client.get("/reports/unbilled.csv"))
    # The kind in German, the amounts as a spreadsheet reads them.
    assert ",Abrechnungszeitraum," in lines[1] and ",20.00,EUR," in lines[1]


# Forecast


@pytest.fixture
def live(tenant: Tenant, other_tenant: Tenant, plans: dict[str, Plan]) -> dict[str, Subscription]:
    """Subscriptions bought through the services at various times, brought up to date by the
    daily job on TODAY (15 March 2026), each of its own customer."""
    owner = owner_of(tenant)

    def customer(name: str) -> Customer:
        return CustomerFactory(reseller=tenant.reseller, organisation=name)

    bought: dict[str, Subscription] = {}
    with time_machine.travel(date(2025, 4, 20), tick=False):
        # Annual, paid yearly: its term ends on 20 April, renewed with 7 licences.
        bought["yearly"] = buy(owner, plans[Plan.Kind.ANNUAL_YEARLY], 3, customer("A yearly"))
        subscription_services.subscription_set_renewal(
            membership=owner, subscription=bought["yearly"], setting="renew_with_count", licences=7
        )
    with time_machine.travel(date(2025, 5, 10), tick=False):
        # Annual, paid monthly, cancelled at the end of its term (10 May).
        bought["cancelled_at_term_end"] = buy(
            owner, plans[Plan.Kind.ANNUAL_MONTHLY], 2, customer("B cancelled")
        )
        subscription_services.subscription_cancel(
            membership=owner, subscription=bought["cancelled_at_term_end"]
        )
    with time_machine.travel(date(2025, 5, 20), tick=False):
        # Annual, paid monthly, moving to the flexible plan at the end of its term (20 May).
        bought["plan_change"] = buy(
            owner, plans[Plan.Kind.ANNUAL_MONTHLY], 4, customer("C plan change")
        )
        subscription_services.subscription_change_plan(
            membership=owner, subscription=bought["plan_change"], plan=plans[Plan.Kind.FLEXIBLE]
        )
    with time_machine.travel(date(2026, 1, 31), tick=False):
        # Flexible from 31 January: its periods start on the 31st, or the month's last day.
        bought["flexible"] = buy(owner, plans[Plan.Kind.FLEXIBLE], 5, customer("D flexible"))
    # Bring nothing: a trial, another reseller's. A suspended subscription is still charged
    # (its periods go on, as the daily job rolls them).
    bought["trial"] = buy(owner, plans[Plan.Kind.TRIAL], 3, customer("E trial"))
    bought["suspended"] = buy(owner, plans[Plan.Kind.FLEXIBLE], 9, customer("F suspended"))
    subscription_services.subscription_suspend(membership=owner, subscription=bought["suspended"])
    bought["other"] = buy(
        owner_of(other_tenant), plans[Plan.Kind.FLEXIBLE], 50, other_tenant.customer
    )
    for subscription in Subscription.objects.all():
        subscription_services.subscription_renew_due(subscription_id=subscription.pk, today=TODAY)
    for name, subscription in bought.items():
        subscription.refresh_from_db()
        assert subscription.period_end > TODAY, name
    return bought


def test_the_forecast_rolls_periods_and_terms_as_the_daily_job_will(tenant, live):
    forecast = reports.forecast_report(reseller=tenant.reseller, currency="EUR", today=TODAY)
    assert (forecast.after, forecast.until) == (TODAY, date(2026, 6, 13))
    got = [
        (
            charge.subscription_public_id,
            charge.day,
            charge.licences,
            charge.unit_price,
            charge.months,
            charge.amount,
            charge.kind,
            charge.price_estimated,
        )
        for charge in forecast.charges
    ]
    ids = {name: subscription.public_id for name, subscription in live.items()}
    assert got == [
        (ids["plan_change"], date(2026, 3, 20), 4, D("3.20"), 1, D("12.80"), "monthly", False),
        (ids["flexible"], date(2026, 3, 31), 5, D("4.00"), 1, D("20.00"), "monthly", False),
        (
            ids["cancelled_at_term_end"],
            date(2026, 4, 10),
            2,
            D("3.20"),
            1,
            D("6.40"),
            "monthly",
            False,
        ),
        (ids["suspended"], date(2026, 4, 15), 9, D("4.00"), 1, D("36.00"), "monthly", False),
        # The yearly term renews with the 7 licences chosen, for 12 months.
        (ids["yearly"], date(2026, 4, 20), 7, D("3.00"), 12, D("252.00"), "renewal", False),
        (ids["plan_change"], date(2026, 4, 20), 4, D("3.20"), 1, D("12.80"), "monthly", False),
        (ids["flexible"], date(2026, 4, 30), 5, D("4.00"), 1, D("20.00"), "monthly", False),
        # 10 May ends the cancelled term: nothing more. 20 May: the flexible plan, at the price
        # of today (said to be an estimate).
        (ids["suspended"], date(2026, 5, 15), 9, D("4.00"), 1, D("36.00"), "monthly", False),
        (ids["plan_change"], date(2026, 5, 20), 4, D("3.20"), 1, D("12.80"), "renewal", True),
        (ids["flexible"], date(2026, 5, 31), 5, D("4.00"), 1, D("20.00"), "monthly", False),
    ]
    assert [(line.key, line.charges, line.amount) for line in forecast.by_month] == [
        ("2026-03", 2, D("32.80")),
        ("2026-04", 5, D("327.20")),
        ("2026-05", 3, D("68.80")),
        ("2026-06", 0, D("0.00")),
    ]
    assert forecast.total.amount == D("428.80") and forecast.has_estimates

    # What the daily job then charges, day after day up to the horizon: the same periods,
    # licences and amounts, but for the plan change, whose new plan is priced on its day.
    day = TODAY
    while day < forecast.until:
        day += timedelta(days=1)
        with time_machine.travel(day, tick=False):
            for subscription in live.values():
                subscription_services.subscription_renew_due(
                    subscription_id=subscription.pk, today=day
                )
    charged = list(
        Charge.objects.filter(
            customer__reseller=tenant.reseller,
            kind=Charge.Kind.PERIOD,
            period_start__gt=TODAY,
            subscription__status__in=["active", "suspended", "cancelled"],
        )
        .order_by("period_start", "subscription__customer__organisation")
        .values_list("subscription__public_id", "period_start", "licences", "amount")
    )
    expected = [(charge[0], charge[1], charge[2], charge[5]) for charge in got]
    assert [
        row for row in charged if row[0] != ids["plan_change"] or row[1] < date(2026, 5, 20)
    ] == [row for row in expected if row[0] != ids["plan_change"] or row[1] < date(2026, 5, 20)]
    [after_change] = [
        row for row in charged if row[0] == ids["plan_change"] and row[1] >= date(2026, 5, 20)
    ]
    assert after_change[:3] == (ids["plan_change"], date(2026, 5, 20), 4)
    assert after_change[3] == D("16.00")  # 4 x 4.00: the flexible plan's price


def test_the_forecast_on_the_page_and_its_csv(owner_client, tenant, live):
    body = section(owner_client.get("/reports/").content.decode(), "forecast")
    assert "€428.80" in body and "€327.20" in body and "June 2026" in body
    assert 'id="forecast-estimates"' in body
    assert "Trials and cancelled subscriptions bring nothing" in body
    lines = csv_lines(owner_client.get("/reports/forecast.csv"))
    assert lines[0] == (
        "date,customer_id,customer,subscription_id,product,plan,licences,unit_price,months,"
        "amount,currency,kind,price_estimated"
    )
    yearly = live["yearly"]
    assert (
        row(
            "2026-04-20",
            yearly.customer.public_id,
            yearly.customer.organisation,
            yearly.public_id,
            "Shared Contacts for Gmail",
            "Annual, paid yearly",
            7,
            "3.00",
            12,
            "252.00",
            "EUR",
            "Renewal of the term",
            "",
        )
        in lines
    )
    assert sum(line.endswith(",yes") for line in lines) == 1
    assert len(lines) == 11  # the header and 10 charges


# Licence changes


def test_licence_changes_by_customer_from_the_ledger(owner_client, tenant, other_tenant, plans):
    reseller = tenant.reseller
    reseller.time_zone = "Europe/Amsterdam"
    reseller.save()
    owner = owner_of(tenant)
    with time_machine.travel(datetime(2026, 2, 28, 23, 30, tzinfo=UTC), tick=False):
        # 00:30 on 1 March in Amsterdam: inside a range from 1 March.
        subscription = buy(owner, plans[Plan.Kind.FLEXIBLE], 5)
    change(owner, subscription, 8)
    change(owner, subscription, 6)
    second = CustomerFactory(reseller=reseller, organisation="Beta Ltd")
    buy(owner, plans[Plan.Kind.FLEXIBLE], 2, customer=second)
    buy(owner_of(other_tenant), plans[Plan.Kind.FLEXIBLE], 40, other_tenant.customer)

    march = ReportFilters(start=date(2026, 3, 1), end=date(2026, 3, 31), currency="EUR")
    report = reports.licence_report(
        reseller=reseller, filters=march, zone=timezone.get_default_timezone()
    )
    # In UTC the purchase was on 28 February.
    assert [
        (line.name, line.added, line.removed, line.net, line.changes) for line in report.by_customer
    ] == [
        ("Beta Ltd", 2, 0, 2, 1),
        (tenant.customer.organisation, 3, 2, 1, 2),
    ]
    query = "?from=2026-03-01&to=2026-03-31"
    body = section(owner_client.get("/reports/" + query).content.decode(), "licence-changes")
    # The customer's: 5 bought and 3 added, 2 removed, a net of 6.
    assert (
        '<td class="num">8</td>\n        <td class="num">2</td>\n        <td class="num">+6</td>'
        in body
    )
    lines = csv_lines(owner_client.get("/reports/licence-changes.csv" + query))
    assert lines[0] == (
        "time,customer_id,customer,subscription_id,product,plan,kind,before,after,difference,by,"
        "amount,currency"
    )
    assert lines[1] == row(
        "2026-03-01T00:30:00+01:00",
        tenant.customer.public_id,
        tenant.customer.organisation,
        subscription.public_id,
        "Shared Contacts for Gmail",
        "Flexible",
        "Purchase",
        0,
        5,
        5,
        tenant.owner.email,
        "20.00",
        "EUR",
    )
    assert ",Licences removed,8,6,-2," in lines[3]
    assert len(lines) == 5  # four entries, none of another reseller's
    # The ledger's net per customer is the sum of its entries' differences.
    ledger = LicenceChange.objects.filter(subscription__customer=tenant.customer)
    assert sum(entry.licences_after - entry.licences_before for entry in ledger) == 6


# The filters


def test_default_filters_and_currencies(owner_client, tenant, other_tenant):
    SubscriptionFactory(customer=tenant.customer, currency="GBP")
    invoice_of_charges(
        [charge_priced(SubscriptionFactory(customer=tenant.customer), amount="10.00", cost="9.00")]
    )
    invoice_of_charges(
        [
            charge_priced(
                SubscriptionFactory(customer=tenant.customer, currency="USD"),
                amount="20.00",
                cost="9.00",
            )
        ]
    )
    # Another reseller's currencies are not offered.
    SubscriptionFactory(customer=other_tenant.customer, currency="EUR")
    # The currency with the most revenue first, then the others.
    assert reports.report_currencies(reseller=tenant.reseller) == ["USD", "EUR", "GBP"]
    assert reports.report_currencies(reseller=other_tenant.reseller) == ["EUR"]
    body = owner_client.get("/reports/").content.decode()
    assert 'name="from" value="2025-03-01"' in body and 'name="to" value="2026-03-15"' in body
    assert '<option value="USD" selected>USD</option>' in body
    assert '<option value="GBP">GBP</option>' in body
    # Without `from`: the 12 months before the end's month.
    body = owner_client.get("/reports/?to=2025-06-30&currency=GBP").content.decode()
    assert 'name="from" value="2024-06-01"' in body
    assert '<option value="GBP" selected>GBP</option>' in body


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"from": "2026-02-30"}, "from", "Enter a valid date."),
        ({"from": "last year"}, "from", "Enter a valid date."),
        ({"to": "1999-12-31"}, "to", "Enter a valid date."),
        ({"to": "12026-01-01"}, "to", "Enter a valid date."),
        (
            {"from": "2026-03-02", "to": "2026-03-01"},
            "to",
            "The end of the range is before its start.",
        ),
        ({"from": "2020-01-01", "to": "2025-01-01"}, "to", "Choose a range of at most 5 years."),
        ({"currency": "GBP"}, "currency", "Select a valid choice."),
        ({"currency": "<b>EUR"}, "currency", "Select a valid choice."),
    ],
)
def test_bad_filters_are_said_next_to_the_field_and_kept(
    owner_client, tenant, params, field, message
):
    invoice_of_charges(
        [charge_priced(SubscriptionFactory(customer=tenant.customer), amount="10.00", cost="9.00")]
    )
    response = owner_client.get("/reports/", params)
    assert response.status_code == 200
    body = response.content.decode()
    error = body[body.index(f'id="id_{field}_error"') :]
    assert message in error[: error.index("</span>")]
    assert '<span class="filter has-error">' in body
    typed = params[field].replace("<", "&lt;").replace(">", "&gt;")
    assert f'value="{typed}"' in body or field == "currency"
    assert "Correct the filters to see the reports." in body
    assert 'id="report-revenue"' not in body
    # The CSV files refuse them too, in words.
    export = owner_client.get("/reports/revenue-by-month.csv", params)
    assert export.status_code == 400
    assert message in export.content.decode()


def test_a_range_of_five_years_is_allowed(owner_client, tenant):
    response = owner_client.get("/reports/?from=2020-01-01&to=2024-12-31")
    assert response.status_code == 200
    assert 'id="report-revenue"' in response.content.decode()


def test_an_unknown_report_is_a_404(owner_client, tenant):
    assert owner_client.get("/reports/revenue.csv").status_code == 404
    assert owner_client.get("/reports/Unbilled.csv").status_code == 404


def test_empty_states_and_another_resellers_data_never_shown(
    client_for, tenant, other_tenant, history
):
    empty = make_tenant("Reseller C")
    body = client_for(empty.owner).get("/reports/").content.decode()
    for message in EMPTY_MESSAGES:
        assert message in body
    assert csv_lines(client_for(empty.owner).get("/reports/revenue-by-customer.csv")) == [
        "customer_id,customer,currency,invoiced,credited,revenue,margin"
    ]
    # The other reseller sees its own invoice, none of the first's.
    other = client_for(other_tenant.owner)
    body = other.get("/reports/").content.decode()
    assert "€777.00" in section(body, "revenue")
    assert "Beta Ltd" not in body and "€60.00" not in body and "€50.00" not in body
    assert [
        cells.split(",")[-1] for cells in csv_lines(other.get("/reports/revenue-by-month.csv"))[1:]
    ] == ["0.00"] * 10 + ["776.00", "0.00", "0.00"]


def test_csv_cells_never_carry_a_formula(owner_client, tenant):
    tenant.customer.organisation = '=HYPERLINK("http://x.example","a")'
    tenant.customer.save()
    subscription = SubscriptionFactory(customer=tenant.customer, plan__product__name="@SUM(A1)")
    invoice_of_charges([charge_priced(subscription, amount="10.00", cost="9.00")])
    ChargeFactory(subscription=subscription)
    lines = csv_lines(owner_client.get("/reports/revenue-by-customer.csv"))
    assert lines[1].endswith(
        ',"\'=HYPERLINK(""http://x.example"",""a"")",EUR,10.00,0.00,10.00,1.00'
    )
    lines = csv_lines(owner_client.get("/reports/revenue-by-product.csv"))
    assert ',"\'@SUM(A1)",EUR,' in lines[1]
    lines = csv_lines(owner_client.get("/reports/unbilled.csv"))
    assert "\"'=HYPERLINK(" in lines[1] and ',"\'@SUM(A1)",' in lines[1]


# Roles


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN, Role.BILLING])
def test_the_roles_that_see_invoices_see_the_reports(tenant, role):
    client = client_as(tenant, role)
    assert client.get("/reports/").status_code == 200
    assert client.get("/reports/unbilled.csv").status_code == 200


def test_sales_gets_a_403(tenant):
    client = client_as(tenant, Role.SALES)
    assert client.get("/reports/").status_code == 403
    for slug in (
        "revenue-by-month",
        "revenue-by-customer",
        "revenue-by-product",
        "unbilled",
        "forecast",
        "licence-changes",
    ):
        assert client.get(f"/reports/{slug}.csv").status_code == 403


def test_signed_out_goes_to_sign_in(client, tenant):
    response = client.get("/reports/")
    assert response.status_code == 302 and "login" in response["Location"]


# htmx


def test_htmx_gets_the_results_or_the_one_report_it_targets(owner_client, tenant, history):
    results = owner_client.get("/reports/", HTTP_HX_REQUEST="true").content.decode()
    assert results.lstrip().startswith('<div id="results">')
    assert "<html" not in results and 'id="report-licence-changes"' in results
    only = owner_client.get(
        "/reports/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="report-revenue"
    ).content.decode()
    assert only.lstrip().startswith('<section id="report-revenue"')
    assert 'id="report-unbilled"' not in only and "€60.00" in only
    # Filters refused: the filters with their errors, whatever the target.
    refused = owner_client.get(
        "/reports/?from=soon", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="report-revenue"
    ).content.decode()
    assert refused.lstrip().startswith('<div id="results">')
    assert 'id="id_from_error"' in refused and 'id="report-revenue"' not in refused


# Queries


def _business(tenant: Tenant, customers: int) -> None:
    """Each customer with two products' invoice, a credit note, a charge not invoiced, a
    subscription, ledger entries."""
    plans = [PlanFactory(), PlanFactory()]
    for n in range(customers):
        customer = CustomerFactory(reseller=tenant.reseller)
        subscriptions = [SubscriptionFactory(customer=customer, plan=plan) for plan in plans]
        invoice = invoice_of_charges(
            [
                charge_priced(subscription, amount="10.00", cost="8.00")
                for subscription in subscriptions
            ],
            issue_date=TODAY - timedelta(days=40 * n),
        )
        credit_note_of(invoice, "3.00")
        ChargeFactory(subscription=subscriptions[0])
        for subscription in subscriptions:
            LicenceChange.objects.create(
                subscription=subscription,
                kind=LicenceChange.Kind.PURCHASE,
                plan=subscription.plan,
                licences_before=0,
                licences_after=5,
                amount=D("20.00"),
                currency="EUR",
                period_start=subscription.period_start,
                period_end=subscription.period_end,
            )


def test_the_queries_do_not_grow_with_the_rows(
    owner_client, tenant, other_tenant, django_assert_max_num_queries
):
    _business(tenant, 2)
    with CaptureQueriesContext(connection) as few:
        assert owner_client.get("/reports/").status_code == 200
    _business(tenant, 6)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = owner_client.get("/reports/")
    body = response.content.decode()
    assert section(body, "revenue").count('<a href="/customers/') == 8
    assert section(body, "licence-changes").count('<a href="/customers/') == 8
    for slug in ("revenue-by-customer", "unbilled", "forecast", "licence-changes"):
        with CaptureQueriesContext(connection) as export:
            csv_lines(owner_client.get(f"/reports/{slug}.csv"))
        assert len(export.captured_queries) <= len(few.captured_queries), slug
