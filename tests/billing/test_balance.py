"""What an invoice still owes, from one function (billing.selectors.invoice_balance): its total,
less its credit notes, less the payments received, plus what was refunded. The card charge, the
retries, the pages' unpaid figures, the CSV and the customer side all use it; a credit note on
an invoice already paid is a refund owed, made once (by card through Stripe, by transfer by
staff). Stripe is the fake HTTP server of tests/support/fake_stripe.py."""

import csv
import io
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from billing import selectors
from billing import services as billing_services
from billing.models import Invoice, Payment, Refund
from billing.payments import services, tasks
from billing.payments.gateways import ChargeOutcome, GatewayUnavailable
from customers.models import CustomerMember
from resellers.models import AuditEvent
from tests.factories import InvoiceFactory, SubscriptionFactory, UserFactory
from tests.support.fake_stripe import reseller_card as owner_saves_card

pytestmark = pytest.mark.django_db


def credit(invoice: Invoice, amount: str, staff) -> Invoice:
    return billing_services.credit_note_issue(
        invoice=invoice, reason="Goodwill", by=staff, amount=Decimal(amount)
    )


def charged(fake) -> list[int]:
    """The amounts (cents) of the PaymentIntents Stripe was asked to create."""
    return [int(params["amount"]) for params, _headers in fake.posts("/v1/payment_intents")]


# The balance


def test_balance_is_total_less_credit_notes_less_payments_plus_refunds(tenant, admin_user):
    invoice = InvoiceFactory(subscription=SubscriptionFactory(customer=tenant.customer))
    assert selectors.invoice_balance(invoice) == Decimal("121.00")
    credit(invoice, "50.00", admin_user)  # 50.00 + 10.50 VAT
    assert selectors.invoice_balance(invoice) == Decimal("60.50")
    billing_services.invoice_mark_paid(invoice=invoice, by=admin_user)
    assert selectors.invoice_balance(invoice) == Decimal("0.00")
    payment = Payment.objects.get(invoice=invoice)
    assert payment.amount == Decimal("60.50") and payment.recorded_by == admin_user


# Charging: the balance, never the total


@pytest.fixture
def reseller_card(tenant, client_for, fake_stripe):
    return owner_saves_card(tenant, client_for, fake_stripe)


def test_a_partly_credited_unpaid_invoice_is_charged_only_its_balance(
    tenant, other_tenant, admin_user, reseller_card, fake_stripe
):
    invoice = InvoiceFactory(subscription=SubscriptionFactory(customer=tenant.customer))
    credit(invoice, "50.00", admin_user)
    assert services.invoice_charge(invoice_id=invoice.pk, attempt=1) == "succeeded"
    assert charged(fake_stripe) == [6050]
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    assert Payment.objects.get(invoice=invoice).amount == Decimal("60.50")
    assert selectors.invoice_balance(invoice) == 0


def test_a_settled_balance_is_never_charged(
    tenant, other_tenant, admin_user, reseller_card, fake_stripe
):
    invoice = InvoiceFactory(subscription=SubscriptionFactory(customer=tenant.customer))
    credit(invoice, "50.00", admin_user)
    credit(invoice, "50.00", admin_user)  # the rest: the invoice is credited in full
    assert services.invoice_charge(invoice_id=invoice.pk, attempt=1) == "not_due"
    assert charged(fake_stripe) == []
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.CREDITED


def test_a_retry_charges_the_balance_left_after_a_credit_note(
    tenant, other_tenant, admin_user, client_for, fake_stripe
):
    card = owner_saves_card(tenant, client_for, fake_stripe)
    fake_stripe.declining.add(card.gateway_payment_method_id)
    invoice = InvoiceFactory(subscription=SubscriptionFactory(customer=tenant.customer))
    assert services.invoice_charge(invoice_id=invoice.pk, attempt=1) == "failed"
    credit(invoice, "20.00", admin_user)  # 24.20 off
    fake_stripe.declining.clear()
    assert services.invoice_charge(invoice_id=invoice.pk, attempt=2) == "succeeded"
    assert charged(fake_stripe) == [12100, 9680]
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID


# Refunds: a credit note on a paid invoice


def test_a_credit_note_on_a_card_paid_invoice_is_refunded_through_stripe_once(
    tenant, other_tenant, admin_user, reseller_card, fake_stripe, django_capture_on_commit_callbacks
):
    invoice = InvoiceFactory(subscription=SubscriptionFactory(customer=tenant.customer))
    services.invoice_charge(invoice_id=invoice.pk, attempt=1)
    with django_capture_on_commit_callbacks(execute=True):
        note = credit(invoice, "50.00", admin_user)
    refund = Refund.objects.get(invoice=invoice)
    assert refund.credit_note == note
    assert refund.method == Refund.Method.CARD
    assert refund.amount == Decimal("60.50") and refund.currency == "EUR"
    assert refund.status == Refund.Status.SUCCEEDED
    posted = fake_stripe.posts("/v1/refunds")
    assert len(posted) == 1
    params, headers = posted[0]
    assert params["amount"] == "6050"
    assert params["payment_intent"] == Payment.objects.get(invoice=invoice).gateway_reference
    assert headers["Idempotency-Key"] == refund.idempotency_key
    # Asked again (a task run twice, a webhook): Stripe is not asked to refund again.
    assert services.refund_process(refund_id=refund.pk) == "succeeded"
    assert len(fake_stripe.posts("/v1/refunds")) == 1
    assert selectors.invoice_balance(invoice) == 0
    assert AuditEvent.objects.filter(action="refund.succeeded").count() == 1


def test_a_refund_is_sent_with_an_idempotency_key_so_a_lost_answer_never_refunds_twice(
    tenant, other_tenant, admin_user, reseller_card, fake_stripe
):
    invoice = InvoiceFactory(subscription=SubscriptionFactory(customer=tenant.customer))
    services.invoice_charge(invoice_id=invoice.pk, attempt=1)
    credit(invoice, "50.00", admin_user)
    refund = Refund.objects.get(invoice=invoice)
    fake_stripe.lose_answers = 1  # Stripe refunds, the answer is lost
    with pytest.raises(GatewayUnavailable):  # the task retries it
        services.refund_process(refund_id=refund.pk)
    assert services.refund_process(refund_id=refund.pk) == "succeeded"
    assert len(fake_stripe.refunds) == 1
    keys = {headers["Idempotency-Key"] for _params, headers in fake_stripe.posts("/v1/refunds")}
    assert keys == {refund.idempotency_key}


def test_a_payment_that_succeeds_after_a_full_credit_is_refunded(
    tenant, other_tenant, admin_user, reseller_card, fake_stripe
):
    """The charge was on its way when staff credited the invoice: the money that arrives is
    owed back."""
    invoice = InvoiceFactory(subscription=SubscriptionFactory(customer=tenant.customer))
    payment = Payment.objects.create(
        invoice=invoice,
        attempt=1,
        gateway="stripe",
        idempotency_key=f"{invoice.number}:1",
        amount=Decimal("121.00"),
        currency="EUR",
    )
    Invoice.objects.filter(pk=invoice.pk).update(payment_attempts=1)
    billing_services.credit_note_issue(invoice=invoice, reason="Wrong plan", by=admin_user)
    assert not Refund.objects.exists()  # nothing received yet

    services.payment_record(
        payment_id=payment.pk, outcome=ChargeOutcome("succeeded", reference="pi_late")
    )
    refund = Refund.objects.get(invoice=invoice)
    assert refund.amount == Decimal("121.00") and refund.credit_note is None
    assert refund.payment == payment


def test_manual_gateway_records_a_refund_owed_for_staff(tenant, other_tenant, admin_user):
    invoice = InvoiceFactory(subscription=SubscriptionFactory(customer=tenant.customer))
    billing_services.invoice_mark_paid(invoice=invoice, by=admin_user)
    note = credit(invoice, "100.00", admin_user)  # all of it
    refund = Refund.objects.get(invoice=invoice)
    assert (refund.method, refund.status, refund.credit_note) == (
        Refund.Method.TRANSFER,
        Refund.Status.PENDING,
        note,
    )
    assert refund.amount == Decimal("121.00")
    assert selectors.invoice_balance(invoice) == Decimal("-121.00")
    billing_services.refund_mark_refunded(refund=refund, by=admin_user)
    refund.refresh_from_db()
    assert refund.status == Refund.Status.SUCCEEDED and refund.recorded_by == admin_user
    assert selectors.invoice_balance(invoice) == 0
    with pytest.raises(ValidationError):  # never twice
        billing_services.refund_mark_refunded(refund=refund, by=admin_user)
    event = AuditEvent.objects.get(action="refund.succeeded")
    assert event.actor == admin_user


def test_a_second_credit_note_refunds_only_what_was_not_refunded(tenant, other_tenant, admin_user):
    invoice = InvoiceFactory(subscription=SubscriptionFactory(customer=tenant.customer))
    billing_services.invoice_mark_paid(invoice=invoice, by=admin_user)
    credit(invoice, "10.00", admin_user)
    credit(invoice, "10.00", admin_user)
    assert sorted(Refund.objects.values_list("amount", flat=True)) == [
        Decimal("12.10"),
        Decimal("12.10"),
    ]
    assert len(set(Refund.objects.values_list("idempotency_key", flat=True))) == 2


# Pages, CSV and customer side show the balance


def test_pages_csv_and_customer_side_show_the_balance(tenant, other_tenant, admin_user, client_for):
    invoice = InvoiceFactory(subscription=SubscriptionFactory(customer=tenant.customer))
    credit(invoice, "50.00", admin_user)
    owner = client_for(tenant.owner)
    listing = owner.get(reverse("billing:invoice_list"))
    totals = {row.currency: row for row in listing.context["totals"]}
    assert totals["EUR"].unpaid == Decimal("60.50")
    detail = owner.get(reverse("billing:invoice_detail", args=[invoice.public_id]))
    assert detail.context["balance"] == Decimal("60.50")
    export = owner.get(reverse("billing:invoice_export"))
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    balances = {row["invoice_number"]: row["balance"] for row in rows}
    assert balances[invoice.number] == "60.50"
    user = UserFactory()
    CustomerMember.objects.create(
        customer=tenant.customer, user=user, terms_accepted_at=timezone.now()
    )
    mine = client_for(user).get(
        reverse("my_invoices:detail", args=[tenant.customer.public_id, invoice.public_id])
    )
    assert mine.context["balance"] == Decimal("60.50")


def test_card_tasks_are_registered():
    assert tasks.refund_process.name.endswith("refund_process")


def test_a_refund_the_card_refuses_is_failed_for_staff_who_send_it_by_transfer(
    tenant, other_tenant, admin_user, reseller_card, fake_stripe, staff_client
):
    invoice = InvoiceFactory(subscription=SubscriptionFactory(customer=tenant.customer))
    services.invoice_charge(invoice_id=invoice.pk, attempt=1)
    payment = Payment.objects.get(invoice=invoice)
    fake_stripe.refund_failing.add(payment.gateway_reference)
    credit(invoice, "100.00", admin_user)
    refund = Refund.objects.get(invoice=invoice)
    assert services.refund_process(refund_id=refund.pk) == "failed"
    refund.refresh_from_db()
    assert refund.error == "expired_or_canceled_card"
    assert selectors.invoice_balance(invoice) == Decimal("-121.00")
    # Staff send it by transfer and record it with the admin action, as themselves.
    response = staff_client.post(
        reverse("admin:billing_refund_changelist"),
        {"action": "mark_refunded", "_selected_action": [refund.pk]},
        follow=True,
    )
    assert response.status_code == 200
    refund.refresh_from_db()
    # The method stays what the credit note printed; staff recorded that they sent it.
    assert (refund.status, refund.method, refund.recorded_by) == (
        Refund.Status.SUCCEEDED,
        Refund.Method.CARD,
        staff_client.staff,
    )
    assert selectors.invoice_balance(invoice) == 0
    assert AuditEvent.objects.get(action="refund.succeeded").actor == staff_client.staff
    # Not sent again by the daily job: it is settled.
    assert services.refund_process(refund_id=refund.pk) == "succeeded"
    assert len(fake_stripe.posts("/v1/refunds")) == 1


def test_a_refund_webhook_settles_a_refund_whose_answer_was_lost(
    tenant, other_tenant, admin_user, reseller_card, fake_stripe, client
):
    from tests.support.fake_stripe import event, sign

    invoice = InvoiceFactory(subscription=SubscriptionFactory(customer=tenant.customer))
    services.invoice_charge(invoice_id=invoice.pk, attempt=1)
    credit(invoice, "50.00", admin_user)
    refund = Refund.objects.get(invoice=invoice)
    fake_stripe.lose_answers = 1
    with pytest.raises(GatewayUnavailable):
        services.refund_process(refund_id=refund.pk)
    (stripe_refund,) = fake_stripe.refunds.values()
    payload = event("refund.updated", stripe_refund, event_id="evt_refund_1")
    response = client.post(
        "/billing/stripe/webhook/",
        payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign(payload),
    )
    assert response.status_code == 200
    refund.refresh_from_db()
    assert refund.status == Refund.Status.SUCCEEDED
    assert refund.gateway_reference == stripe_refund["id"]
    assert len(fake_stripe.refunds) == 1


def test_manual_gateway_mark_paid_then_charge_nothing_twice(tenant, other_tenant, admin_user):
    invoice = InvoiceFactory(subscription=SubscriptionFactory(customer=tenant.customer))
    billing_services.invoice_mark_paid(invoice=invoice, by=admin_user)
    with pytest.raises(ValidationError):
        billing_services.invoice_mark_paid(invoice=invoice, by=admin_user)
    assert Payment.objects.filter(invoice=invoice).count() == 1


def test_refunded_status_shows_on_the_pages_and_the_customer_side(
    tenant, other_tenant, admin_user, client_for
):
    invoice = InvoiceFactory(subscription=SubscriptionFactory(customer=tenant.customer))
    billing_services.invoice_mark_paid(invoice=invoice, by=admin_user)
    credit(invoice, "100.00", admin_user)
    owner = client_for(tenant.owner)
    detail = owner.get(reverse("billing:invoice_detail", args=[invoice.public_id])).text
    assert "To be refunded" in detail and "Refund owed" in detail
    billing_services.refund_mark_refunded(refund=Refund.objects.get(), by=admin_user)
    user = UserFactory()
    CustomerMember.objects.create(
        customer=tenant.customer, user=user, terms_accepted_at=timezone.now()
    )
    pages = [
        owner.get(reverse("billing:invoice_list")).text,
        owner.get(reverse("billing:invoice_detail", args=[invoice.public_id])).text,
        client_for(user).get(reverse("my_invoices:list", args=[tenant.customer.public_id])).text,
        client_for(user)
        .get(reverse("my_invoices:detail", args=[tenant.customer.public_id, invoice.public_id]))
        .text,
    ]
    for page in pages:
        assert 'class="badge status-refunded"' in page
        assert 'class="badge status-credited"' in page


def test_how_an_invoice_is_paid_is_fixed_at_issue(tenant, other_tenant, settings):
    """Stripe configured after an invoice was issued by transfer: its document still asks for
    a transfer (its PDF can only ever be rendered again identically)."""
    from billing import selectors
    from tests.factories import ChargeFactory
    from tests.support.fake_stripe import API_KEY, PUBLISHABLE_KEY, WEBHOOK_SECRET

    subscription = SubscriptionFactory(customer=tenant.customer)
    ChargeFactory(subscription=subscription)
    invoice = billing_services.invoice_issue_for_customer(
        customer=tenant.customer, payer=subscription.payer, day=timezone.localdate()
    )
    assert invoice is not None
    assert invoice.seller["payment_means"] == "transfer"
    settings.STRIPE_SECRET_KEY, settings.STRIPE_PUBLISHABLE_KEY = API_KEY, PUBLISHABLE_KEY
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    assert selectors.payment_means_now() == "card"
    assert selectors.invoice_pays_by_transfer(invoice)


def test_the_issued_email_says_what_is_due_and_how_it_is_really_paid(
    tenant, other_tenant, admin_user, settings
):
    from core.models import OutboundEmail
    from tests.factories import ChargeFactory

    subscription = SubscriptionFactory(customer=tenant.customer)
    ChargeFactory(subscription=subscription)
    invoice = billing_services.invoice_issue_for_customer(
        customer=tenant.customer, payer=subscription.payer, day=timezone.localdate()
    )
    assert invoice is not None
    credit(invoice, "5.00", admin_user)  # corrected before its PDF went out
    Invoice.objects.filter(pk=invoice.pk).update(pdf="invoices/x.pdf")
    from billing.notifications import invoice_email_send

    invoice_email_send(invoice=invoice)
    email = OutboundEmail.objects.get(template="invoice_issued")
    due = selectors.invoice_balance(invoice)
    assert due < invoice.total
    text = email.body_text
    assert f"{due:.2f}" in text.replace(",", ".") or str(due) in text
    # The manual gateway: a transfer, never "charged to the card".
    assert settings.VENDOR_BANK_IBAN in text
    assert "card" not in text.lower()


def test_a_charge_keeps_the_card_it_charged_for_the_receipt(
    tenant, other_tenant, reseller_card, fake_stripe
):
    invoice = InvoiceFactory(subscription=SubscriptionFactory(customer=tenant.customer))
    services.invoice_charge(invoice_id=invoice.pk, attempt=1)
    payment = Payment.objects.get(invoice=invoice)
    assert payment.card_label == "Visa \u2022\u2022\u2022\u2022 4242"


def test_the_invoice_page_says_how_it_is_really_paid(tenant, other_tenant, admin_user, client_for):
    """The manual gateway: the page names the payer and a bank transfer, never "Reseller
    card" beside a transfer received."""
    invoice = InvoiceFactory(subscription=SubscriptionFactory(customer=tenant.customer))
    billing_services.invoice_mark_paid(invoice=invoice, by=admin_user)
    page = client_for(tenant.owner).get(reverse("billing:invoice_detail", args=[invoice.public_id]))
    html = page.text
    assert page.context["by_transfer"] is True
    assert "Reseller card" not in html
    assert "Bank transfer" in html
    assert tenant.reseller.name in html  # the payer


def test_a_lost_charge_answer_on_an_invoice_credited_meanwhile_is_still_settled_and_refunded(
    tenant, other_tenant, admin_user, reseller_card, fake_stripe
):
    """Stripe took the money but its answer was lost; staff then credited the invoice in full.
    The daily job still asks about the attempt, records the payment and refunds it."""
    from datetime import timedelta

    invoice = InvoiceFactory(subscription=SubscriptionFactory(customer=tenant.customer))
    fake_stripe.lose_answers = 1
    with pytest.raises(GatewayUnavailable):
        services.invoice_charge(invoice_id=invoice.pk, attempt=1)
    billing_services.credit_note_issue(invoice=invoice, reason="Wrong plan", by=admin_user)
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.CREDITED
    Payment.objects.filter(invoice=invoice).update(created_at=timezone.now() - timedelta(hours=2))
    assert tasks.payments_retry_due() >= 1  # runs invoice_charge (tasks run eagerly in tests)
    payment = Payment.objects.get(invoice=invoice)
    assert payment.status == Payment.Status.SUCCEEDED
    refund = Refund.objects.get(invoice=invoice)
    assert refund.amount == Decimal("121.00") and refund.payment == payment
    services.refund_process(refund_id=refund.pk)
    assert fake_stripe.charged() - fake_stripe.refunded() == 0
    assert selectors.invoice_balance(invoice) == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_credit_notes_and_refund_tasks_refund_exactly_what_was_credited(
    tenant, other_tenant, admin_user, reseller_card, fake_stripe
):
    """Five staff credit the same paid invoice at once, then ten workers run its refund tasks
    at once: Stripe gives back exactly what the five notes credit, each refund once."""
    from tests.support.concurrency import in_parallel

    invoice = InvoiceFactory(subscription=SubscriptionFactory(customer=tenant.customer))
    assert services.invoice_charge(invoice_id=invoice.pk, attempt=1) == "succeeded"

    _notes, errors = in_parallel(5, lambda n: credit(invoice, "10.00", admin_user))
    assert errors == []
    refunds = list(Refund.objects.filter(invoice=invoice))
    assert len(refunds) == 5 and sum(r.amount for r in refunds) == Decimal("60.50")

    def work(n: int) -> list[str]:
        return [services.refund_process(refund_id=refund.pk) for refund in refunds]

    _results, errors = in_parallel(10, work)
    assert errors == []
    assert fake_stripe.refunded() == 6050
    assert len(fake_stripe.refunds) == 5
    assert set(Refund.objects.values_list("status", flat=True)) == {Refund.Status.SUCCEEDED}
    assert selectors.invoice_balance(invoice) == 0
