"""The "statement issued" email: issuing a commission statement (or a correction) tells the
reseller's billing address, once, in the reseller's language, with the figures and a link to the
statement's page; queued in the issuing transaction, so a rolled-back issue sends nothing."""

from datetime import date
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import pytest
import time_machine
from django.conf import settings
from django.db import transaction
from django.urls import reverse

from billing.vat import vat_rates_seed
from commissions import margins, statements, tasks
from commissions.models import Statement
from core.models import OutboundEmail
from tests.factories import UserFactory, margin_lines

D = Decimal
MAY = date(2026, 5, 1)
# The run for May, on 1 June (the beat job's day).
JUNE_1 = "2026-06-01 03:00:00+00:00"
TEMPLATE = "statement_issued"


@pytest.fixture(autouse=True)
def no_pdf(monkeypatch: pytest.MonkeyPatch) -> None:
    # The PDF is rendered after commit by its own task (test_statements_documents.py).
    monkeypatch.setattr(tasks.statement_render_pdf, "apply_async", lambda *a, **k: None)


@pytest.fixture
def may_margins(tenant, other_tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """May's paid invoices: tenant earns 10.00 - 2.50, the other reseller 7.00 (EUR)."""
    vat_rates_seed()
    with time_machine.travel(date(2026, 5, 20)):
        lines = {
            tenant.reseller.pk: margin_lines(tenant.customer, [D("10.00"), D("-2.50")]),
            other_tenant.reseller.pk: margin_lines(other_tenant.customer, [D("7.00")]),
        }

    def paid_invoice_margins(
        *, reseller_id: int, currency: str, start: date, end: date
    ) -> list[Any]:
        return lines.get(reseller_id, []) if currency == "EUR" else []

    monkeypatch.setattr(margins, "paid_invoice_margins", paid_invoice_margins)


def statement_url(statement: Statement) -> str:
    return settings.PORTAL_URL + reverse(
        "statements:detail", kwargs={"statement_id": statement.public_id}
    )


def issue_may() -> list[Statement]:
    with time_machine.travel(JUNE_1, tick=False):
        return statements.statements_issue(month=MAY)


@pytest.mark.django_db
def test_issuing_emails_the_billing_email_once_in_the_resellers_language(
    tenant, other_tenant, may_margins, mailoutbox, django_capture_on_commit_callbacks, client_for
):
    reseller = tenant.reseller
    # Irish, domestic VAT at 23 %; Spanish-speaking, billed at its own address.
    reseller.country, reseller.language = "IE", "es"
    reseller.billing_email = "cuentas@iberia.example"
    reseller.save()

    with django_capture_on_commit_callbacks(execute=True):
        issued = issue_may()

    statement = Statement.objects.get(reseller=reseller)
    assert statement in issued and len(issued) == 2
    email = OutboundEmail.objects.get(to="cuentas@iberia.example")
    assert (email.template, email.language) == (TEMPLATE, "es")
    assert email.status == OutboundEmail.Status.SENT
    sent = [message for message in mailoutbox if message.to == ["cuentas@iberia.example"]]
    assert len(sent) == 1
    assert statement.number in email.subject
    assert "mayo de 2026" in email.subject  # the month, in Spanish
    # The figures, in the reseller's notation: commission, VAT (23 %) and total, in EUR.
    assert (statement.subtotal, statement.vat_amount, statement.total) == (
        D("7.50"),
        D("1.73"),
        D("9.23"),
    )
    for part in (email.body_text, email.body_html):
        assert statement.number in part
        assert "mayo de 2026" in part
        assert "EUR" in part
        for amount in ("7,50\xa0€", "1,73\xa0€", "9,23\xa0€"):
            assert amount in part, (amount, part)
    assert "Ver la liquidación" in email.body_html  # Spanish, not English
    # The link to the statement's page, in both parts; it opens for the reseller's owner.
    url = statement_url(statement)
    assert url in email.body_text
    assert f'href="{url}"' in email.body_html
    assert client_for(tenant.owner).get(urlsplit(url).path).status_code == 200
    # The other reseller hears of its own statement only, in its own language.
    theirs = OutboundEmail.objects.exclude(pk=email.pk).get(template=TEMPLATE)
    other_statement = Statement.objects.get(reseller=other_tenant.reseller)
    assert theirs.to == other_tenant.reseller.billing_email
    assert theirs.language == other_tenant.reseller.language
    assert other_statement.number in theirs.subject
    assert statement.number not in theirs.body_text + theirs.subject
    assert statement_url(other_statement) in theirs.body_text


@pytest.mark.django_db
def test_a_second_run_emails_nothing(
    tenant, may_margins, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        assert len(issue_may()) == 2
    assert OutboundEmail.objects.filter(template=TEMPLATE).count() == 2
    assert len(mailoutbox) == 2

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert issue_may() == []

    assert callbacks == []
    assert OutboundEmail.objects.filter(template=TEMPLATE).count() == 2
    assert len(mailoutbox) == 2


@pytest.mark.django_db
def test_a_correction_emails_the_reseller_too(
    tenant, may_margins, mailoutbox, django_capture_on_commit_callbacks
):
    tenant.reseller.country = "IE"  # domestic VAT, 23 %
    tenant.reseller.save()
    issue_may()
    statement = Statement.objects.get(reseller=tenant.reseller)

    with django_capture_on_commit_callbacks(execute=True):
        correction = statements.statement_correct(statement=statement, actor=UserFactory())

    email = OutboundEmail.objects.get(template=TEMPLATE, subject__contains=correction.number)
    assert email.to == tenant.reseller.billing_email
    assert email.status == OutboundEmail.Status.SENT
    assert [message.subject for message in mailoutbox] == [email.subject]
    for part in (email.body_text, email.body_html):
        assert correction.number in part
        assert statement.number in part  # the statement it takes back
        assert "-€7.50" in part  # a negative commission
        assert "-€9.23" in part
    assert statement_url(correction) in email.body_text


@pytest.mark.django_db
def test_a_rolled_back_issue_emails_nothing(
    tenant, may_margins, mailoutbox, django_capture_on_commit_callbacks
):
    class Abort(Exception):
        pass

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(Abort),
        transaction.atomic(),
    ):
        assert len(issue_may()) == 2
        assert OutboundEmail.objects.filter(template=TEMPLATE).count() == 2
        raise Abort

    assert callbacks == []
    assert not Statement.objects.exists()
    assert not OutboundEmail.objects.exists()
    assert mailoutbox == []


@pytest.mark.django_db
def test_the_loser_of_two_runs_at_once_emails_nothing(
    tenant, may_margins, mailoutbox, django_capture_on_commit_callbacks
):
    """A run that finds the month's statement committed by another run first (the unique
    constraint) rolls back, number and email alike."""
    issue_may()
    assert OutboundEmail.objects.filter(template=TEMPLATE).count() == 2

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        again = statements.statement_issue_for_reseller(
            reseller=tenant.reseller,
            currency="EUR",
            month=MAY,
            lines=margins.paid_invoice_margins(
                reseller_id=tenant.reseller.pk, currency="EUR", start=MAY, end=date(2026, 6, 1)
            ),
            day=date(2026, 6, 1),
        )

    assert again is None
    assert callbacks == []
    assert OutboundEmail.objects.filter(template=TEMPLATE).count() == 2
    assert mailoutbox == []
