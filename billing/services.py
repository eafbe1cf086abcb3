"""Writes for invoicing: the daily billing run, credit notes, marking an invoice paid.

Invoices are issued by the vendor to the customer organisation from the `Charge`s the
subscriptions produce. Numbers come from a `DocumentCounter` row locked in the issuing
transaction, so each series (INV, CN) is gapless per year. An issued document never changes
(model guard, and triggers on PostgreSQL: billing/immutability.py); corrections are credit notes.

Hooks for the other parts of billing. Each registry is a plain list of callables taking the
document; register with `services.on_invoice_issued.append(fn)` in `BillingConfig.ready()`
(billing/apps.py). A hook should be quick: enqueue a Celery task with the id, don't do the work.

- `on_invoice_issued`: after the transaction that issued an invoice (kind "invoice") commits,
  once per invoice: render its PDF, charge the card (payments), email it.
- `on_credit_note_issued`: after the transaction that issued a credit note commits (kind
  "credit_note"; never charge one): render its PDF, email it.
- `on_pdf_requested`: after commit, when staff ask for a document's PDF again (admin action).
  These three run through `transaction.on_commit(..., robust=True)`: a hook that raises is
  logged and the others still run; the issued document stays issued.
- `on_invoice_paid`: INSIDE the transaction that marks an invoice paid (`invoice_mark_paid`,
  with the invoice row locked), so what a hook writes (e.g. reactivating subscriptions
  suspended for pending_payment) commits or rolls back with the payment. A hook that raises
  undoes the payment; side effects (emails, PDFs) belong in on_commit inside the hook.

Snapshots on each document (JSON, written once):
- `seller`: name, address, country, vat_id, email, iban, bic (settings.VENDOR_*).
- `buyer`: organisation, address, country, vat_id (validated; "" if none or invalid unless
  domestic/outside the EU), email, contact_name, domain, payer_name (who pays: the reseller's
  name for the reseller card, the organisation for the customer card).
The VAT sentence to print comes from `billing.vat.vat_legal_mention(...)`.

Credit notes: kind "credit_note", `corrects` the original, numbered CN-YYYY-NNNNNN, their
amounts stored as POSITIVE numbers (the kind says they are credits), same VAT treatment and
rate as the original, status "credited" (a credit note is never paid or overdue). When the
credit notes add up to the whole invoice, the invoice's status becomes "credited".
"""

import logging
from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Min, Q, QuerySet, Sum
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from billing.models import DocumentCounter, Invoice, InvoiceLine
from billing.vat import vat_amount, vat_decide
from core.models import User
from customers.models import Customer
from resellers.services import audit_record
from subscriptions import services as subscription_services
from subscriptions.models import Charge, Payer
from subscriptions.periods import CENT

logger = logging.getLogger(__name__)

Kind = Invoice.Kind
Status = Invoice.Status

INVOICE_SERIES = "INV"
CREDIT_NOTE_SERIES = "CN"
MAX_AMOUNT = Decimal("1e10")  # the amount columns hold 12 digits, 2 after the point

InvoiceHook = Callable[[Invoice], None]

on_invoice_issued: list[InvoiceHook] = []
on_credit_note_issued: list[InvoiceHook] = []
on_pdf_requested: list[InvoiceHook] = []
on_invoice_paid: list[InvoiceHook] = []


def _after_commit(hooks: list[InvoiceHook], document: Invoice) -> int:
    for hook in list(hooks):
        transaction.on_commit(partial(hook, document), robust=True)
    return len(hooks)


# Numbers


def _number_take(series: str, year: int) -> str:
    """The next number of `series` in `year`, e.g. INV-2026-000042.

    The counter row is locked (SELECT ... FOR UPDATE) until the caller's transaction ends: a
    concurrent issue waits here for it, and a rolled-back issue rolls its increment back, so
    numbers are never skipped or given twice. Callers take the number last, just before
    writing the document, to hold this one lock, shared by all issuers, as briefly as possible.
    """
    counter = DocumentCounter.objects.select_for_update().filter(series=series, year=year).first()
    if counter is None:
        # The year's first document. ON CONFLICT DO NOTHING: a concurrent first issue's
        # INSERT waits for ours to end and then does nothing; both then lock the one row.
        DocumentCounter.objects.bulk_create(
            [DocumentCounter(series=series, year=year)], ignore_conflicts=True
        )
        counter = DocumentCounter.objects.select_for_update().get(series=series, year=year)
    counter.last_number += 1
    counter.save(update_fields=["last_number"])
    return f"{series}-{year}-{counter.last_number:06d}"


# Snapshots


def _seller() -> dict[str, str]:
    return {
        "name": settings.VENDOR_NAME,
        "address": settings.VENDOR_ADDRESS,
        "country": settings.VENDOR_COUNTRY,
        "vat_id": settings.VENDOR_VAT_ID,
        "email": settings.VENDOR_EMAIL,
        "iban": settings.VENDOR_BANK_IBAN,
        "bic": settings.VENDOR_BANK_BIC,
    }


def _buyer(customer: Customer, *, vat_id: str, payer: str) -> dict[str, str]:
    return {
        "organisation": customer.organisation,
        "address": customer.admin_address,
        "country": str(customer.country or ""),
        "vat_id": vat_id,
        "email": customer.contact_email,
        "contact_name": customer.contact_name,
        "domain": customer.domain,
        "payer_name": (
            customer.reseller.name if payer == Payer.RESELLER_CARD else customer.organisation
        ),
    }


def _audit(document: Invoice, *, actor: User | None, action: str, **changes: Any) -> None:
    audit_record(
        actor=actor,
        reseller=document.reseller,
        action=action,
        obj=document,
        before=changes.get("before"),
        after=changes.get("after"),
        customer_public_id=document.customer.public_id,
    )


def _clean(document: Invoice) -> None:
    # Uniqueness and the check constraints are the database's to enforce (a query each here).
    document.full_clean(
        exclude=["customer", "reseller", "corrects"],
        validate_unique=False,
        validate_constraints=False,
    )


# The billing run


def _charges_due(day: date) -> QuerySet[Charge]:
    """Charges not invoiced yet, created on `day` or before (in the portal's time zone)."""
    cutoff = timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min))
    return Charge.objects.filter(invoiced_at__isnull=True, created_at__lt=cutoff)


def billing_due(*, day: date) -> list[tuple[int, str, str]]:
    """(customer id, payer, currency) of the invoice each customer is due on `day`: at most one
    per customer per day (SPEC), for the payer and currency of its oldest charge not yet
    invoiced. The customer's other payer's or currency's charges come on a following day."""
    groups = (
        _charges_due(day)
        .values("customer_id", "payer", "currency")
        .annotate(first=Min("created_at"), first_id=Min("id"))
        .order_by("customer_id", "first", "first_id")
        .values_list("customer_id", "payer", "currency")
    )
    due: dict[int, tuple[int, str, str]] = {}
    for customer_id, payer, currency in groups:
        due.setdefault(customer_id, (customer_id, payer, currency))
    return list(due.values())


@transaction.atomic
def invoice_issue_for_customer(
    *, customer: Customer, payer: str, day: date, currency: str | None = None
) -> Invoice | None:
    """Issue, dated `day`, the invoice of the customer's charges not yet invoiced that `payer`
    pays in `currency` (None: the currency of its oldest such charge). None if there is
    nothing to invoice, or the customer already has an invoice of that day.

    At most one invoice per customer per day (SPEC), and an invoice has one payer and one
    currency, because one card charge pays one invoice. A customer whose subscriptions are
    paid by two cards (the reseller's and its own), or in two currencies, gets the other
    group's invoice from the next day's run: its charges wait, uninvoiced, until then.
    """
    # Locked: all the customer's due charges, whatever their payer. A concurrent run for the
    # same customer waits here, then finds the invoice of the day and issues nothing.
    due = list(
        _charges_due(day)
        .filter(customer_id=customer.pk)
        .select_for_update(of=("self",))
        .order_by("created_at", "id")
    )
    charges = [charge for charge in due if charge.payer == payer]
    if not charges:
        return None
    currency = currency or charges[0].currency
    charges = [charge for charge in charges if charge.currency == currency]
    if not charges:
        return None
    already = Invoice.objects.filter(kind=Kind.INVOICE, customer_id=customer.pk, issue_date=day)
    if already.exists():
        return None

    decision = vat_decide(
        buyer_country=str(customer.country or ""), buyer_vat_id=customer.vat_id, day=day
    )
    subtotal = sum((charge.amount for charge in charges), Decimal("0.00"))
    vat = vat_amount(subtotal=subtotal, rate=decision.rate)
    invoice = Invoice(
        kind=Kind.INVOICE,
        customer=customer,
        reseller=customer.reseller,
        payer=payer,
        currency=currency,
        language=customer.language,
        issue_date=day,
        due_date=day + timedelta(days=settings.INVOICE_PAYMENT_TERMS_DAYS),
        seller=_seller(),
        buyer=_buyer(customer, vat_id=decision.buyer_vat_id, payer=payer),
        vat_treatment=decision.treatment,
        vat_rate=decision.rate,
        subtotal=subtotal,
        vat_amount=vat,
        total=subtotal + vat,
        status=Status.OPEN,
        line_count=len(charges),
    )
    invoice.number = _number_take(INVOICE_SERIES, day.year)
    _clean(invoice)
    invoice.save()
    InvoiceLine.objects.bulk_create(
        InvoiceLine(
            invoice=invoice,
            position=position,
            charge=charge,
            subscription_id=charge.subscription_id,
            description=charge.description,
            period_start=charge.period_start,
            period_end=charge.period_end,
            licences=charge.licences,
            unit_price=charge.unit_price,
            amount=charge.amount,
        )
        for position, charge in enumerate(charges, start=1)
    )
    marked = subscription_services.charges_mark_invoiced(
        charge_ids=[charge.pk for charge in charges], at=timezone.now()
    )
    if marked != len(charges):  # the row locks make this impossible; never invoice twice
        raise RuntimeError(f"{invoice.number}: {len(charges) - marked} charges already invoiced")
    _audit(
        invoice,
        actor=None,
        action="invoice.issued",
        after={
            "number": invoice.number,
            "total": str(invoice.total),
            "currency": currency,
            "payer": payer,
        },
    )
    _after_commit(on_invoice_issued, invoice)
    return invoice


def billing_run(*, day: date) -> list[Invoice]:
    """Issue the day's invoices (billing_due: one per customer with charges not yet invoiced),
    each in its own transaction. Running it again the same day issues nothing new.
    A customer whose invoice cannot be issued (e.g. no VAT rate for its country) is logged and
    left for the next run; the others are issued."""
    groups = billing_due(day=day)
    customers = Customer.objects.select_related("reseller").in_bulk(
        {customer_id for customer_id, _payer, _currency in groups}
    )
    issued = []
    for customer_id, payer, currency in groups:
        try:
            invoice = invoice_issue_for_customer(
                customer=customers[customer_id], payer=payer, currency=currency, day=day
            )
        except ValidationError:
            logger.exception("Billing run %s: customer %s not invoiced", day, customer_id)
            continue
        if invoice is not None:
            issued.append(invoice)
    return issued


# Credit notes


def _amount(value: object) -> Decimal:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        amount = Decimal(0)
    if not amount.is_finite() or not 0 < amount < MAX_AMOUNT or amount != amount.quantize(CENT):
        message = _("Enter an amount above zero, in whole cents.")
        raise ValidationError({"amount": ValidationError(message, code="invalid")})
    return amount


@transaction.atomic
def credit_note_issue(
    *,
    invoice: Invoice,
    reason: str,
    by: User | None,
    amount: Decimal | None = None,
    lines: Sequence[InvoiceLine] | None = None,
    day: date | None = None,
) -> Invoice:
    """Issue a credit note correcting `invoice`: for `amount` (before VAT), or for whole
    `lines` of it, or, with neither, for everything not credited yet. Its VAT follows the
    invoice's treatment and rate; the note that completes the credit takes exactly the VAT
    still uncredited, so an invoice's credit notes add up to it to the cent."""
    # Locked: two staff crediting the same invoice at once must not credit more than it was.
    original = (
        Invoice.objects.select_for_update(of=("self",))
        .select_related("customer", "reseller")
        .get(pk=invoice.pk)
    )
    if original.kind != Kind.INVOICE:
        raise ValidationError(_("A credit note cannot be credited."), code="kind")
    reason = (reason or "").strip()
    if not reason:
        message = _("Say why the invoice is credited.")
        raise ValidationError({"reason": ValidationError(message, code="required")})
    credited = original.credit_notes.aggregate(subtotal=Sum("subtotal"), vat=Sum("vat_amount"))
    left_subtotal = original.subtotal - (credited["subtotal"] or 0)
    left_vat = original.vat_amount - (credited["vat"] or 0)
    if left_subtotal <= 0:
        raise ValidationError(
            _("%(number)s is already credited in full.") % {"number": original.number},
            code="credited",
        )
    day = day or timezone.localdate()

    with translation.override(original.language):
        new_lines: list[InvoiceLine]
        if lines is not None:
            if not lines or any(line.invoice_id != original.pk for line in lines):
                raise ValidationError(
                    {"lines": _("Choose lines of %(number)s.") % {"number": original.number}}
                )
            new_lines = [_line_copy(line) for line in lines]
        elif amount is not None or credited["subtotal"]:
            credit = left_subtotal if amount is None else _amount(amount)
            new_lines = [
                InvoiceLine(
                    description=(
                        _("Credit on %(number)s: %(reason)s")
                        % {"number": original.number, "reason": reason}
                    )[:255],
                    unit_price=credit,
                    amount=credit,
                )
            ]
        else:  # the whole invoice, nothing credited yet: its lines, mirrored
            new_lines = [_line_copy(line) for line in original.lines.order_by("position")]
    subtotal = sum((line.amount for line in new_lines), Decimal("0.00"))
    if subtotal > left_subtotal:
        message = _("At most %(amount)s %(currency)s before VAT can still be credited.") % {
            "amount": left_subtotal,
            "currency": original.currency,
        }
        raise ValidationError({"amount": ValidationError(message, code="too_much")})
    completes = subtotal == left_subtotal
    vat = (
        left_vat
        if completes
        else min(vat_amount(subtotal=subtotal, rate=original.vat_rate), left_vat)
    )

    note = Invoice(
        kind=Kind.CREDIT_NOTE,
        corrects=original,
        customer=original.customer,
        reseller=original.reseller,
        payer=original.payer,
        currency=original.currency,
        language=original.language,
        issue_date=day,
        due_date=day,
        seller=original.seller,
        buyer=original.buyer,
        vat_treatment=original.vat_treatment,
        vat_rate=original.vat_rate,
        subtotal=subtotal,
        vat_amount=vat,
        total=subtotal + vat,
        status=Status.CREDITED,
        line_count=len(new_lines),
    )
    note.number = _number_take(CREDIT_NOTE_SERIES, day.year)
    _clean(note)
    note.save()
    for position, line in enumerate(new_lines, start=1):
        line.invoice = note
        line.position = position
    InvoiceLine.objects.bulk_create(new_lines)
    _audit(
        note,
        actor=by,
        action="credit_note.issued",
        after={
            "number": note.number,
            "corrects": original.number,
            "total": str(note.total),
            "currency": note.currency,
            "reason": reason,
        },
    )
    if completes and original.status != Status.CREDITED:
        before = original.status
        original.status = Status.CREDITED
        original.next_payment_attempt = None
        original.save(update_fields=["status", "next_payment_attempt"])
        _audit(
            original,
            actor=by,
            action="invoice.credited",
            before={"status": before},
            after={"status": original.status, "credit_note": note.number},
        )
    _after_commit(on_credit_note_issued, note)
    return note


def _line_copy(line: InvoiceLine) -> InvoiceLine:
    return InvoiceLine(
        subscription_id=line.subscription_id,
        description=line.description,
        period_start=line.period_start,
        period_end=line.period_end,
        licences=line.licences,
        unit_price=line.unit_price,
        amount=line.amount,
    )


# Payment and documents


UNPAID_STATUSES = (Status.OPEN, Status.PAYMENT_FAILED)


def invoices_overdue_q(*, today: date) -> Q:
    """Invoices still unpaid (open, or their card payment failed) after their due date."""
    return Q(kind=Kind.INVOICE, status__in=UNPAID_STATUSES, due_date__lt=today)


@transaction.atomic
def invoice_mark_paid(
    *, invoice: Invoice, by: User | None, paid_at: datetime | None = None
) -> Invoice:
    """The invoice is paid: staff saw the transfer (manual gateway) or a gateway confirmed it.
    Runs the `on_invoice_paid` hooks in this transaction."""
    # Locked: a card payment confirmed at the same moment must not mark it paid twice.
    locked = (
        Invoice.objects.select_for_update(of=("self",))
        .select_related("customer", "reseller")
        .get(pk=invoice.pk)
    )
    if locked.kind != Kind.INVOICE:
        raise ValidationError(_("A credit note is not paid."), code="kind")
    if locked.status not in UNPAID_STATUSES:
        raise ValidationError(
            _("%(number)s is %(status)s: only an unpaid invoice can be marked paid.")
            % {"number": locked.number, "status": locked.get_status_display().lower()},
            code="status",
        )
    before = locked.status
    locked.status = Status.PAID
    locked.paid_at = paid_at or timezone.now()
    locked.next_payment_attempt = None
    locked.save(update_fields=["status", "paid_at", "next_payment_attempt"])
    _audit(
        locked,
        actor=by,
        action="invoice.paid",
        before={"status": before},
        after={"status": locked.status, "paid_at": locked.paid_at.isoformat()},
    )
    for hook in list(on_invoice_paid):
        hook(locked)
    return locked


def invoice_pdf_request(*, invoice: Invoice) -> int:
    """Render the document's PDF again (after commit, by the hooks part of billing.pdf
    registers). Returns how many hooks were asked; none installed is an error."""
    if not on_pdf_requested:
        raise ValidationError(_("No PDF renderer is installed."), code="no_renderer")
    return _after_commit(on_pdf_requested, invoice)
