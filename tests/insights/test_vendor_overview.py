"""Issue 18, Staff: the admin's Vendor overview shows the resellers by revenue (and MRR and
active customers), what they are owed and overdue, the documents without a PDF, the failing
webhooks and emails and the applications waiting; every figure is the apps' own definition,
each count or amount links to the admin's list of exactly its rows, a section shows only to
staff who may view its model, and the page costs the same queries however many resellers."""

import html
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

import pytest
import time_machine
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from billing.models import Invoice
from billing.selectors import billing_health, invoice_is_overdue, invoice_outstanding
from commissions.margins import documents_issued
from core.models import OutboundEmail, User
from customers.models import Customer
from insights.snapshots import figures_live
from resellers.models import Reseller
from tests.factories import (
    CustomerFactory,
    InvoiceFactory,
    ResellerFactory,
    SubscriptionFactory,
    Tenant,
    UserFactory,
    credit_note_of,
    make_tenant,
)
from webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
TODAY = NOW.date()
MONTH = (date(2026, 6, 1), date(2026, 7, 1))
YEAR = (date(2025, 7, 1), date(2026, 7, 1))
OVERVIEW = "/admin/overview/"


@pytest.fixture(autouse=True)
def _now() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


def _line(amount: str) -> list[Any]:
    return [("Licences", 1, amount, amount, None, None)]


def _invoice(customer: Customer, issued: date, subtotal: str, **fields: Any) -> Invoice:
    return InvoiceFactory(
        customer=customer,
        issue_date=issued,
        due_date=issued + timedelta(days=14),
        lines=_line(subtotal),
        **fields,
    )


def _staff(*permissions: str, totp: bool = True) -> User:
    user = cast(User, UserFactory(is_staff=True))
    user.user_permissions.set(
        [Permission.objects.get(codename=codename) for codename in permissions]
    )
    if totp:
        TOTP.activate(user, generate_totp_secret())
    return user


def _endpoint(reseller: Reseller, **fields: Any) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(
        reseller=reseller, url="https://hooks.example/in", secret_sealed="sealed", **fields
    )


def _delivery(endpoint: WebhookEndpoint, **fields: Any) -> WebhookDelivery:
    event = WebhookEvent.objects.create(reseller=endpoint.reseller, type="invoice.paid", payload={})
    fields.setdefault("started_at", NOW - timedelta(days=1))
    return WebhookDelivery.objects.create(event=event, endpoint=endpoint, **fields)


def _email(template: str, **fields: Any) -> OutboundEmail:
    return OutboundEmail.objects.create(
        to="someone@example.com",
        template=template,
        language="en",
        subject="Subject",
        body_text="Body.",
        body_html="<p>Body.</p>",
        **fields,
    )


@pytest.fixture
def world(tenant: Tenant, other_tenant: Tenant) -> dict[str, Any]:
    """Two active resellers with invoices, credit notes, subscriptions, webhooks; an active
    one with nothing; two applications; emails. Returns what each figure must be."""
    a, b = tenant.reseller, other_tenant.reseller
    # A: this month 100 invoiced less a credit note of 50; in March 200 (overdue); a year and
    # more ago 1000 (counts in neither period); in USD 300 whose payment failed (unpaid after
    # its due date: overdue too).
    a_june = _invoice(tenant.customer, date(2026, 6, 3), "100.00")
    # Its PDF's render was lost (issued an hour ago, still none).
    a_march = _invoice(
        tenant.customer, date(2026, 3, 10), "200.00", issued_at=NOW - timedelta(hours=1)
    )
    credit_note_of(a_march, "50.00", issue_date=date(2026, 6, 5))
    _invoice(
        tenant.customer, date(2025, 6, 30), "1000.00", status=Invoice.Status.PAID
    )  # the day before the 12 months
    a_usd = _invoice(
        tenant.customer,
        date(2025, 12, 1),
        "300.00",
        currency="USD",
        status=Invoice.Status.PAYMENT_FAILED,
    )
    SubscriptionFactory(customer=tenant.customer, licences=5, monthly_price=Decimal("4.00"))
    CustomerFactory(reseller=a, status=Customer.Status.INVITED)  # not active
    # B: 500 paid this month, 80 overdue since January; two active customers.
    _invoice(other_tenant.customer, date(2026, 6, 10), "500.00", status=Invoice.Status.PAID)
    b_january = _invoice(
        other_tenant.customer,
        date(2026, 1, 5),
        "80.00",
        pdf_error="Font missing",  # its PDF failed for good
        pdf_failure_reported_at=NOW,
    )
    SubscriptionFactory(customer=other_tenant.customer, licences=10, monthly_price=Decimal("4"))
    CustomerFactory(reseller=b)
    # C: active, nothing yet. Applications: E applied before D. A suspended one counts nowhere.
    c = ResellerFactory(name="Reseller C", currency="GBP")
    applied_d = ResellerFactory(name="Applicant D", status=Reseller.Status.PENDING)
    applied_e = ResellerFactory(name="Applicant E", status=Reseller.Status.PENDING)
    Reseller.objects.filter(pk=applied_d.pk).update(created_at=NOW - timedelta(days=2))
    Reseller.objects.filter(pk=applied_e.pk).update(created_at=NOW - timedelta(days=20))
    ResellerFactory(name="Suspended F", status=Reseller.Status.SUSPENDED)

    # Webhooks: A's endpoint disabled after failing, and one working with a delivery retrying,
    # one given up 3 days ago, one given up (endpoint disabled) before any attempt yesterday;
    # one given up 10 days ago and one delivered count nowhere. B's endpoint disabled by a
    # member.
    _endpoint(a, disabled_at=NOW - timedelta(days=1), disabled_reason="failing")
    working = _endpoint(a)
    retrying = _delivery(working, attempts=2, last_attempt_at=NOW - timedelta(hours=1))
    gave_up = _delivery(
        working, status="failed", attempts=9, last_attempt_at=NOW - timedelta(days=3)
    )
    never_tried = _delivery(working, status="failed")
    _delivery(
        working,
        status="failed",
        attempts=9,
        started_at=NOW - timedelta(days=14),
        last_attempt_at=NOW - timedelta(days=10),
    )
    _delivery(working, status="delivered", attempts=1, last_attempt_at=NOW)
    _delivery(working)  # pending, never tried yet
    _endpoint(b, disabled_at=NOW - timedelta(days=3), disabled_reason="member")

    hour_ago = NOW - timedelta(hours=1)
    emails = {
        "reseller_approved": {
            "failed": [_email("reseller_approved", status="failed").pk for _ in range(2)],
            "overdue": [],
        },
        "team_invitation": {
            "failed": [_email("team_invitation", status="failed").pk],
            "overdue": [_email("team_invitation", next_attempt_at=hour_ago, queued_at=hour_ago).pk],
        },
    }
    _email("team_invitation", status="sent", sent_at=hour_ago)  # counts nowhere
    _email("team_invitation", next_attempt_at=NOW, queued_at=NOW)  # on its way

    return {
        "a": a,
        "b": b,
        "c": c,
        # (reseller, currency): (this month, 12 months, MRR, active customers)
        "revenue": {
            (b.public_id, "EUR"): ("500.00", "580.00", "40.00", 2),
            (a.public_id, "EUR"): ("50.00", "250.00", "20.00", 1),
            (c.public_id, "GBP"): ("0.00", "0.00", "0.00", 0),
            (a.public_id, "USD"): ("0.00", "300.00", "0.00", 1),
        },
        # (reseller, currency): (open, overdue, overdue invoices, oldest due date)
        "outstanding": {
            (a.public_id, "EUR"): (
                a_june.total + a_march.total - Decimal("60.50"),
                a_march.total - Decimal("60.50"),
                1,
                date(2026, 3, 24),
            ),
            (a.public_id, "USD"): (a_usd.total, a_usd.total, 1, date(2025, 12, 15)),
            (b.public_id, "EUR"): (b_january.total, b_january.total, 1, date(2026, 1, 19)),
        },
        "applications": [applied_e.public_id, applied_d.public_id],
        "pdf_missing": a_march.pk,
        "pdf_failed": b_january.pk,
        "webhooks": {
            a.public_id: {
                "disabled-failing": list(
                    WebhookEndpoint.objects.filter(reseller=a, disabled_reason="failing")
                ),
                "disabled-member": [],
                "retrying": [retrying],
                "failed": [gave_up, never_tried],
            },
            b.public_id: {
                "disabled-failing": [],
                "disabled-member": list(WebhookEndpoint.objects.filter(reseller=b)),
                "retrying": [],
                "failed": [],
            },
        },
        "emails": emails,
    }


ROW = re.compile(r"<tr (data-[^>]*)>(.*?)</tr>", re.S)
CELL = re.compile(
    r'<td data-(?:amount|count)="([\w-]+)">(?:<a href="([^"]*)">)?([^<]*)(?:</a>)?</td>'
)


def _section(page: str, section: str) -> str:
    start = page.index(f'<div class="module" id="{section}">')
    return page[start : page.index("</div>", start)]


def _rows(page: str, section: str) -> list[tuple[str, dict[str, tuple[str, str]]]]:
    """Each row of a section: its data attributes, and {cell: (link, text)}."""
    return [
        (
            attributes,
            {
                name: (html.unescape(href), html.unescape(text))
                for name, href, text in CELL.findall(body)
            },
        )
        for attributes, body in ROW.findall(_section(page, section))
    ]


def _attribute(attributes: str, name: str) -> str:
    found = re.search(rf'data-{name}="([^"]*)"', attributes)
    assert found
    return found.group(1)


def _listed(client: Client, href: str) -> list[Any]:
    """The rows of the admin list `href` leads to."""
    response = client.get(href)
    assert response.status_code == 200, href
    return list(response.context["cl"].result_list)


def _money(amount: str | Decimal, currency: str) -> str:
    symbol = {"EUR": "€", "USD": "$", "GBP": "£"}[currency]
    return f"{symbol}{Decimal(amount):,.2f}"


@pytest.mark.django_db
def test_resellers_by_revenue_match_the_reports_and_the_dashboard(staff_client, world):
    page = staff_client.get(OVERVIEW)

    assert page.status_code == 200
    rows = _rows(page.content.decode(), "revenue")
    shown = [(_attribute(attrs, "reseller"), _attribute(attrs, "currency")) for attrs, _ in rows]
    # By currency, then the most revenue over the 12 months first; only active resellers.
    assert shown == list(world["revenue"])
    for (reseller, currency), (_attributes, cells) in zip(world["revenue"], rows, strict=True):
        month, year, mrr, customers = world["revenue"][(reseller, currency)]
        assert cells["month"][1] == _money(month, currency)
        assert cells["year"][1] == _money(year, currency)
        assert cells["mrr"][1] == _money(mrr, currency)
        assert cells["customers"][1] == str(customers)
        pk = Reseller.objects.get(public_id=reseller).pk
        # The same figures as the Reports page's documents and the dashboard's MRR.
        for name, (start, end), amount in (("month", MONTH, month), ("year", YEAR, year)):
            documents = documents_issued(reseller_id=pk, currency=currency, start=start, end=end)
            assert sum((d.net for d in documents), Decimal("0.00")) == Decimal(amount)
            # Its link lists exactly those documents.
            listed = _listed(staff_client, cells[name][0])
            assert sorted(i.number for i in listed) == sorted(d.number for d in documents)
        live = figures_live(reseller_ids=[pk]).get((pk, currency))
        assert (live.mrr if live else Decimal("0.00")) == Decimal(mrr)
        listed = _listed(staff_client, cells["customers"][0])
        assert sorted(c.pk for c in listed) == sorted(
            Customer.objects.filter(reseller_id=pk, status="active").values_list("pk", flat=True)
        )
        assert len(listed) == customers


@pytest.mark.django_db
def test_overdue_by_reseller_matches_the_dashboard_and_links_to_exactly_those_invoices(
    staff_client, world
):
    page = staff_client.get(OVERVIEW).content.decode()

    rows = _rows(page, "outstanding")
    shown = {(_attribute(attrs, "reseller"), _attribute(attrs, "currency")): c for attrs, c in rows}
    assert set(shown) == set(world["outstanding"])
    for (reseller, currency), cells in shown.items():
        open_, overdue, count, oldest = world["outstanding"][(reseller, currency)]
        assert cells["open"][1] == _money(open_, currency)
        assert cells["overdue"][1] == _money(overdue, currency)
        assert cells["overdue-invoices"][1] == str(count)
        # The dashboard's figures (invoice_outstanding, its callers unchanged) agree.
        dashboard = {
            row.currency: row
            for row in invoice_outstanding(
                reseller=Reseller.objects.get(public_id=reseller), today=TODAY
            )
        }[currency]
        assert (dashboard.open, dashboard.overdue) == (open_, overdue)
        assert (dashboard.overdue_invoices, dashboard.oldest_due_date) == (count, oldest)
        invoices = Invoice.objects.filter(
            reseller__public_id=reseller, currency=currency, kind="invoice"
        )
        opened = _listed(staff_client, cells["open"][0])
        assert sorted(i.pk for i in opened) == sorted(
            i.pk for i in invoices if i.status in ("open", "payment_failed")
        )
        late = _listed(staff_client, cells["overdue"][0])
        assert sorted(i.pk for i in late) == sorted(
            i.pk for i in invoices if invoice_is_overdue(i, today=TODAY)
        )
        assert len(late) == count
    # The first overdue line is the largest amount overdue in EUR.
    first, _cells = rows[0]
    assert _attribute(first, "reseller") == world["a"].public_id
    assert "3/24/2026" in page or "03/24/2026" in page  # the oldest due date, localized


@pytest.mark.django_db
def test_pdfs_webhooks_emails_and_applications_link_to_exactly_their_rows(staff_client, world):
    page = staff_client.get(OVERVIEW).content.decode()

    health = billing_health(now=NOW)
    pdfs = _section(page, "pdfs")
    assert f'data-count="pdf-missing">{health.pdf_missing}<' in pdfs
    assert f'data-count="pdf-failed">{health.pdf_failed}<' in pdfs
    assert (health.pdf_missing, health.pdf_failed) == (1, 1)
    for problem, pk in (("missing", world["pdf_missing"]), ("failed", world["pdf_failed"])):
        href = f"/admin/billing/invoice/?pdf={problem}"
        assert f'href="{href}"' in pdfs
        assert [i.pk for i in _listed(staff_client, href)] == [pk]

    rows = {_attribute(attrs, "reseller"): cells for attrs, cells in _rows(page, "webhooks")}
    assert set(rows) == set(world["webhooks"])
    for reseller, expected in world["webhooks"].items():
        for cell, objects in expected.items():
            href, count = rows[reseller][cell]
            assert count == str(len(objects)), (reseller, cell)
            listed = _listed(staff_client, href)
            assert sorted(o.pk for o in listed) == sorted(o.pk for o in objects), (reseller, cell)

    rows = {_attribute(attrs, "template"): cells for attrs, cells in _rows(page, "emails")}
    assert list(rows) == ["reseller_approved", "team_invitation"]
    for template, expected in world["emails"].items():
        for cell, pks in expected.items():
            href, count = rows[template][cell]
            assert count == str(len(pks))
            assert sorted(e.pk for e in _listed(staff_client, href)) == sorted(pks)

    applications = _section(page, "applications")
    waiting = [_attribute(attrs, "reseller") for attrs, _ in ROW.findall(applications)]
    assert waiting == world["applications"]  # the longest waiting first
    for public_id in waiting:
        reseller = Reseller.objects.get(public_id=public_id)
        change = reverse("admin:resellers_reseller_change", args=[reseller.pk])
        assert f'href="{change}"' in applications
        assert staff_client.get(change).status_code == 200
    changelist = re.search(r'<caption><a href="([^"]*)">', applications)
    assert changelist
    listed = _listed(staff_client, html.unescape(changelist.group(1)))
    assert {r.public_id for r in listed} == set(world["applications"])


@pytest.mark.django_db
def test_the_admin_index_links_to_the_overview(staff_client):
    page = staff_client.get("/admin/").content.decode()

    assert reverse("admin:vendor_overview") == OVERVIEW
    assert f'<a href="{OVERVIEW}">Vendor overview →</a>' in page


@pytest.mark.django_db
def test_each_section_shows_only_to_staff_who_may_view_its_model(client_for, world):
    emails_only = client_for(_staff("view_outboundemail")).get(OVERVIEW)
    assert emails_only.status_code == 200
    page = emails_only.content.decode()
    assert 'id="emails"' in page
    for section in ("revenue", "outstanding", "pdfs", "webhooks", "applications"):
        assert f'id="{section}"' not in page, section
    # Nothing of any reseller's money.
    assert "580" not in page and world["b"].name not in page

    billing = client_for(_staff("view_invoice")).get(OVERVIEW).content.decode()
    assert 'id="outstanding"' in billing and 'id="pdfs"' in billing
    assert 'id="revenue"' not in billing  # that needs the resellers too
    assert 'id="emails"' not in billing and 'id="applications"' not in billing

    both = client_for(_staff("view_invoice", "view_reseller")).get(OVERVIEW).content.decode()
    assert 'id="revenue"' in both and 'id="applications"' in both
    assert 'data-count="customers"' not in both  # customers need their own permission

    endpoints = client_for(_staff("view_webhookendpoint")).get(OVERVIEW).content.decode()
    assert 'data-count="disabled-failing"' in endpoints
    assert 'data-count="retrying"' not in endpoints

    nothing = client_for(_staff()).get(OVERVIEW)
    assert nothing.status_code == 200
    assert 'class="module"' not in nothing.content.decode()


@pytest.mark.django_db
def test_only_signed_in_staff_with_a_second_factor_get_in(client_for, tenant, settings):
    anonymous = Client().get(OVERVIEW)
    assert anonymous.status_code == 302
    assert reverse("admin:login") in anonymous["Location"]

    member = client_for(tenant.owner).get(OVERVIEW)
    assert member.status_code == 302
    assert reverse("admin:login") in member["Location"]

    assert settings.ADMIN_REQUIRE_MFA is True
    without_totp = client_for(_staff("view_invoice", totp=False))
    response = without_totp.get(OVERVIEW, follow=True)
    assert response.redirect_chain[-1][0] == reverse("mfa_activate_totp")


def _resellers_with_everything(count: int) -> None:
    for n in range(count):
        tenant = make_tenant(f"Scale {n}")
        _invoice(tenant.customer, date(2026, 6, 2), "10.00")
        _invoice(tenant.customer, date(2026, 1, 2), "20.00", currency="USD")
        SubscriptionFactory(customer=tenant.customer)
        endpoint = _endpoint(tenant.reseller, disabled_at=NOW, disabled_reason="failing")
        _delivery(endpoint, status="failed", attempts=3, last_attempt_at=NOW)
        ResellerFactory(status=Reseller.Status.PENDING)
        _email(f"template_{n}", status="failed")


@pytest.mark.django_db
def test_the_queries_do_not_grow_with_the_resellers(staff_client, django_assert_max_num_queries):
    staff_client.get(OVERVIEW)  # the session, the user and its second factor read once
    counts = []
    for resellers, added in ((2, 2), (6, 4)):
        _resellers_with_everything(added)
        with CaptureQueriesContext(connection) as queries:
            page = staff_client.get(OVERVIEW)
        assert page.status_code == 200
        assert page.content.decode().count('data-amount="year"') >= resellers
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
    with django_assert_max_num_queries(counts[0]):
        staff_client.get(OVERVIEW)


@pytest.mark.django_db
def test_a_long_list_shows_the_first_lines_and_says_how_many_more(staff_client, monkeypatch):
    from insights import staff

    monkeypatch.setattr(staff, "TOP", 2)
    ResellerFactory.create_batch(3)
    for _ in range(4):
        ResellerFactory(status=Reseller.Status.PENDING)

    page = staff_client.get(OVERVIEW).content.decode()

    assert page.count('data-amount="year"') == 2
    assert '<p class="help" data-more="revenue">And 1 more line.</p>' in page
    assert '<p class="help" data-more="applications">And 2 more lines.</p>' in page
    assert timezone.now() == NOW


@pytest.mark.django_db
def test_the_page_speaks_the_staff_users_language(staff_client, world):
    page = staff_client.get(OVERVIEW, HTTP_ACCEPT_LANGUAGE="es").content.decode()

    revenue = _section(page, "revenue")
    assert "Este mes" in revenue and "Moneda" in revenue and "This month" not in revenue
    assert "Revendedor" in _section(page, "outstanding")
    # Amounts and dates in Spanish notation.
    assert "580,00\xa0€" in revenue
    assert "24/03/2026" in _section(page, "outstanding")
