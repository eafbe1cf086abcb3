"""Writes for invoicing: the daily billing run, credit notes, marking an invoice paid.

Invoices are issued by the vendor to the customer organisation from the `Charge`s the
subscriptions produce. Numbers come from a `DocumentCounter` row locked in the issuing
transaction, so each series (INV, CN) is gapless per year. An issued document never changes
(model guard, and triggers on PostgreSQL: billing/immutability.py); corrections are credit notes.

What issuing and paying set off, called by name where it happens:
- an invoice issued: its PDF rendered (billing.rendering_tasks.invoice_pdf_enqueue) and its
  card charged (billing.payments.services.invoice_charge_enqueue), each after the issuing
  transaction commits and on its own (`transaction.on_commit(..., robust=True)`): one that
  fails is logged, the other still runs, and the invoice stays issued;
- a credit note issued: its PDF rendered, after commit (a credit note is never charged);
- staff asking for a document's PDF again (admin action): rendered again, after commit;
- an invoice paid: the suspensions its failed payment caused lift
  (billing.payments.services.suspensions_lift_after_payment), INSIDE the transaction that
  marks it paid (with the invoice row locked), so what that writes commits or rolls back with
  the payment; one that raises undoes the payment.
billing.payments builds on this module (it imports it), so its two are imported where called.

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
from typing import Any, NamedTuple, cast

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Field, Sum, Value
from django.db.models.functions import Greatest
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from billing import facturx
from billing.models import BillingHold, DocumentCounter, Invoice, InvoiceLine, Payment, Refund
from billing.rendering_tasks import invoice_pdf_enqueue, invoice_pdf_regenerate
from billing.selectors import (
    UNPAID_STATUSES,
    billing_due,
    invoice_balance,
    invoice_pays_by_transfer,
    payment_means_now,
)
from billing.vat import vat_amount, vat_decide
from core.events import event_announce
from core.models import User
from core.queue import task_enqueue_on_commit
from customers.models import Customer
from resellers.models import Reseller
from resellers.services import audit_record
from subscriptions import services as subscription_services
from subscriptions.models import Charge, Payer
from subscriptions.periods import CENT

logger = logging.getLogger(__name__)

Kind = Invoice.Kind
Status = Invoice.Status

# Payment.gateway of money staff received by hand (a bank transfer).
MANUAL_PAYMENT = "manual"

INVOICE_SERIES = "INV"
CREDIT_NOTE_SERIES = "CN"
MAX_AMOUNT = Decimal("1e10")  # the amount columns hold 12 digits, 2 after the point


def _after_commit(action: Callable[[Invoice], None], document: Invoice) -> None:
    """`action(document)` once the caller's transaction commits, on its own: if it raises, the
    error is logged, the other actions still run and the document stays issued."""
    transaction.on_commit(partial(action, document), robust=True)


# Numbers


def _number_take(series: str, year: int) -> str:
    """The next number of `series` in `year`, e.g. INV-2026-000042.

    One statement, UPDATE ... RETURNING, takes the counter row's lock and the number: the row
    stays locked until the caller's transaction ends, so a concurrent issue waits here for it
    (then increments what that one committed), and a rolled-back issue rolls its increment
    back: numbers are never skipped or given twice. (A SELECT ... FOR UPDATE then an UPDATE
    did the same in two round trips, inside the lock.) Callers take the number last, just
    before writing the document, to hold this one lock, shared by all issuers, as briefly as
    possible.
    """
    with connection.cursor() as cursor:
        cursor.execute(_NUMBER_NEXT_SQL, [series, year])
        row = cursor.fetchone()
        if row is None:
            # The year's first document. ON CONFLICT DO NOTHING: a concurrent first issue's
            # INSERT waits for ours to end and then does nothing; both then lock the one row.
            DocumentCounter.objects.bulk_create(
                [DocumentCounter(series=series, year=year)], ignore_conflicts=True
            )
            cursor.execute(_NUMBER_NEXT_SQL, [series, year])
            row = cursor.fetchone()
    return f"{series}-{year}-{row[0]:06d}"


_NUMBER_NEXT_SQL = (
    f"UPDATE {DocumentCounter._meta.db_table} SET last_number = last_number + 1 "  # noqa: S608
    "WHERE series = %s AND year = %s RETURNING last_number"
)


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
        # How the invoice is to be paid, fixed on the document (billing.pdf).
        "payment_means": payment_means_now(),
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


def _cents(total: Decimal | None) -> Decimal:
    """A sum of amounts, to the cent (SQLite, the demo's database, adds decimals as floats)."""
    return Decimal(total or 0).quantize(CENT)


# The billing run


# A number of the right form that no issued invoice has: the render check runs before the real
# one is taken.
_NUMBER_TO_CHECK = "{series}-{year}-000000"
_HOLD_REASON_MAX = BillingHold._meta.get_field("reason").max_length or 500


def _render_problem(invoice: Invoice, lines: list[InvoiceLine]) -> str:
    """Why the unsaved invoice's PDF could not be made, for staff; "" if it can.

    The PDF's Factur-X XML is built and checked by the function the PDF itself uses
    (billing.facturx.invoice_facturx_xml), on the unsaved invoice and its lines in memory. The
    XML's rules are what a customer's details can break; laying out the whole PDF here would
    cost the run tens of milliseconds per invoice.
    """
    invoice.number = _NUMBER_TO_CHECK.format(series=INVOICE_SERIES, year=invoice.issue_date.year)
    try:
        facturx.invoice_facturx_xml(
            invoice, pays_by_transfer=invoice_pays_by_transfer(invoice), lines=lines
        )
    except facturx.FacturXInvalid as error:
        return _hold_reason(invoice, error)
    finally:
        invoice.number = ""
    return ""


def _hold_reason(invoice: Invoice, error: facturx.FacturXInvalid) -> str:
    # In the portal's language, not the invoice's: staff read it.
    with translation.override(settings.LANGUAGE_CODE):
        if error.code == "buyer_country":
            return f"{error} " + _("Set the country, the next billing run invoices it.")
        organisation = invoice.customer.organisation
        lead = _("%(organisation)s's invoice cannot be made:") % {"organisation": organisation}
        tail = _("Correct it, the next billing run tries again.")
        detail = str(error)
        room = _HOLD_REASON_MAX - len(lead) - len(tail) - 2
        if len(detail) > room:
            detail = detail[: room - 1] + "\u2026"
        return f"{lead} {detail} {tail}"


def _billing_hold_record(customer: Customer, *, reason: str, day: date) -> None:
    """The customer's charges wait for a later run: open its hold (one open hold per customer)
    or see it again, and log why."""
    seen = BillingHold.objects.filter(customer_id=customer.pk, resolved_on__isnull=True).update(
        reason=reason, last_seen_on=Greatest("last_seen_on", Value(day))
    )
    if not seen:
        BillingHold.objects.create(
            customer=customer, reason=reason, first_seen_on=day, last_seen_on=day
        )
    logger.warning(
        "Billing run %s: customer %s not invoiced, held: %s", day, customer.public_id, reason
    )


class _DueCharge(NamedTuple):
    """What an invoice line takes from a charge."""

    id: int
    subscription_id: int | None
    payer: str
    currency: str
    description: str
    period_start: date | None
    period_end: date | None
    licences: int | None
    unit_price: Decimal
    amount: Decimal


# The billing run's statements for each invoice, written once in SQL (table names from the
# models): each costs the database a fraction of a millisecond, and building it through the
# ORM cost several times that in Python for every invoice (docs/benchmarks.md, Billing run).
# charges_due (billing.selectors) says which charges are due; the first statement is that rule
# for one customer, with their rows locked (tests/billing/test_run_speed.py holds the two to
# the same answer).
_CHARGES_LOCK_SQL = (
    "SELECT id, subscription_id, payer, currency, description, period_start, period_end, "  # noqa: S608
    f"licences, unit_price, amount FROM {Charge._meta.db_table} WHERE customer_id = %s "
    "AND invoiced_at IS NULL AND created_at < %s ORDER BY created_at, id"
)
_ISSUE_FLAGS_SQL = (
    f"SELECT EXISTS (SELECT 1 FROM {Invoice._meta.db_table} WHERE kind = %s "  # noqa: S608
    "AND customer_id = %s AND issue_date = %s), "
    f"EXISTS (SELECT 1 FROM {BillingHold._meta.db_table} WHERE customer_id = %s "
    "AND resolved_on IS NULL)"
)


def _charges_lock(*, customer_id: int, day: date) -> list[_DueCharge]:
    """The customer's charges due on `day` (charges_due), oldest first, their rows locked
    until the caller's transaction ends (where the database locks rows: not SQLite)."""
    cutoff = timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min))
    sql = _CHARGES_LOCK_SQL
    if connection.features.has_select_for_update:
        sql += " FOR UPDATE"
    with connection.cursor() as cursor:
        cursor.execute(sql, [customer_id, connection.ops.adapt_datetimefield_value(cutoff)])
        rows = cursor.fetchall()
    # The values as the ORM would read them: the converters of each field and of the database
    # (PostgreSQL has none for these types; SQLite gives decimals as floats, dates as text).
    columns = [
        cast("Field[Any, Any]", Charge._meta.get_field(name)).cached_col
        for name in _DueCharge._fields
    ]
    converters = [
        (
            column,
            connection.ops.get_db_converters(column) + column.field.get_db_converters(connection),
        )
        for column in columns
    ]
    if not any(functions for _column, functions in converters):
        return [_DueCharge(*row) for row in rows]
    return [_DueCharge(*map(_db_value, row, converters)) for row in rows]


def _db_value(value: Any, converters: tuple[Any, list[Callable[..., Any]]]) -> Any:
    column, functions = converters
    for convert in functions:
        value = convert(value, column, connection)
    return value


def _issue_flags(*, customer_id: int, day: date) -> tuple[bool, bool]:
    """Whether the customer has an invoice dated `day`, and whether a hold of it is open."""
    issue_date = connection.ops.adapt_datefield_value(day)
    with connection.cursor() as cursor:
        cursor.execute(_ISSUE_FLAGS_SQL, [Kind.INVOICE, customer_id, issue_date, customer_id])
        already, held = cursor.fetchone()
    return bool(already), bool(held)


def _invoice_reseller(customer: Customer, *, payer: str) -> Reseller | None:
    """The reseller an invoice goes through: the customer's, or none once the customer revoked
    its access (Customer.reseller_serving), except for charges the reseller's card still pays
    (made before the revoke): the reseller pays that invoice, so it is the reseller's. The same
    rule for a query: billing.selectors.billed_through_reseller_q."""
    return customer.reseller if payer == Payer.RESELLER_CARD else customer.reseller_serving


@transaction.atomic
def invoice_issue_for_customer(
    *, customer: Customer, payer: str, day: date, currency: str | None = None
) -> Invoice | None:
    """Issue, dated `day`, the invoice of the customer's charges not yet invoiced that `payer`
    pays in `currency` (None: the currency of its oldest such charge). None if there is
    nothing to invoice, or the customer already has an invoice of that day.

    No invoice without its PDF: before a number is taken, the invoice's Factur-X XML is built
    and checked as the PDF will be. An invoice that would fail (e.g. the customer has no
    country) is not issued and returns None: its charges wait for a later run, and a
    BillingHold tells staff why (resolved by the run that issues the customer's invoice).

    At most one invoice per customer per day (SPEC), and an invoice has one payer and one
    currency, because one card charge pays one invoice. A customer whose subscriptions are
    paid by two cards (the reseller's and its own), or in two currencies, gets the other
    group's invoice from the next day's run: its charges wait, uninvoiced, until then.
    """
    # Locked: all the customer's due charges, whatever their payer. A concurrent run for the
    # same customer waits here, then finds the invoice of the day and issues nothing.
    due = _charges_lock(customer_id=customer.pk, day=day)
    charges = [charge for charge in due if charge.payer == payer]
    if not charges:
        return None
    currency = currency or charges[0].currency
    charges = [charge for charge in charges if charge.currency == currency]
    if not charges:
        return None
    # Read after the lock, in a statement of its own, so that it sees what a concurrent run
    # that held the lock committed: the customer's invoice of the day (then nothing more is
    # issued), and whether a hold is open (closed below if this invoice is issued).
    already, held = _issue_flags(customer_id=customer.pk, day=day)
    if already:
        return None

    try:
        decision = vat_decide(
            buyer_country=str(customer.country or ""), buyer_vat_id=customer.vat_id, day=day
        )
    except ValidationError as error:
        # E.g. no VAT rate for the customer's country on that day: staff add it in the admin.
        with translation.override(settings.LANGUAGE_CODE):
            lead = _("%(organisation)s's invoice cannot be made:") % {
                "organisation": customer.organisation
            }
            tail = _("Correct it, the next billing run tries again.")
        reason = f"{lead} {' '.join(error.messages)} {tail}"[:_HOLD_REASON_MAX]
        _billing_hold_record(customer, reason=reason, day=day)
        return None
    subtotal = sum((charge.amount for charge in charges), Decimal("0.00"))
    vat = vat_amount(subtotal=subtotal, rate=decision.rate)
    invoice = Invoice(
        kind=Kind.INVOICE,
        customer=customer,
        reseller=_invoice_reseller(customer, payer=payer),
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
    lines = [
        InvoiceLine(
            position=position,
            charge_id=charge.id,
            subscription_id=charge.subscription_id,
            description=charge.description,
            period_start=charge.period_start,
            period_end=charge.period_end,
            licences=charge.licences,
            unit_price=charge.unit_price,
            amount=charge.amount,
        )
        for position, charge in enumerate(charges, start=1)
    ]
    problem = _render_problem(invoice, lines)
    if problem:
        _billing_hold_record(customer, reason=problem, day=day)
        return None
    # Checked, and the charges marked, before the number is taken: the counter row's lock, which
    # every issuer waits for, is then held for the invoice, its lines and the audit row only.
    # (The placeholder number has a real one's form and length.)
    invoice.number = _NUMBER_TO_CHECK.format(series=INVOICE_SERIES, year=day.year)
    _clean(invoice)
    marked = subscription_services.charges_mark_invoiced(
        charge_ids=[charge.id for charge in charges], at=timezone.now()
    )
    if marked != len(charges):  # the row locks make this impossible; never invoice twice
        raise RuntimeError(f"{customer.public_id}: {len(charges) - marked} charges invoiced")
    if held:  # issued at last: the customer's open hold is over
        BillingHold.objects.filter(customer_id=customer.pk, resolved_on__isnull=True).update(
            resolved_on=day
        )
    invoice.number = _number_take(INVOICE_SERIES, day.year)
    invoice.save()
    for line in lines:
        line.invoice = invoice
    InvoiceLine.objects.bulk_create(lines)
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
    event_announce("invoice.issued", invoice)
    # After commit, each on its own: render its PDF (which emails it), charge its card.
    from billing.payments.services import invoice_charge_enqueue

    _after_commit(invoice_pdf_enqueue, invoice)
    _after_commit(invoice_charge_enqueue, invoice)
    return invoice


def billing_run(*, day: date) -> list[Invoice]:
    """Issue the day's invoices (billing_due: one per customer with charges not yet invoiced),
    each in its own transaction. Running it again the same day issues nothing new.
    A customer whose invoice cannot be issued (e.g. no VAT rate for its country) is logged and
    left for the next run; the others are issued. One whose invoice could not be rendered
    (e.g. no country) is held the same way, with a BillingHold staff see in the admin."""
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
    original = invoice_lock(invoice_id=invoice.pk)
    if original.kind != Kind.INVOICE:
        raise ValidationError(_("A credit note cannot be credited."), code="kind")
    reason = (reason or "").strip()
    if not reason:
        message = _("Say why the invoice is credited.")
        raise ValidationError({"reason": ValidationError(message, code="required")})
    credited = original.credit_notes.aggregate(subtotal=Sum("subtotal"), vat=Sum("vat_amount"))
    left_subtotal = original.subtotal - _cents(credited["subtotal"])
    left_vat = original.vat_amount - _cents(credited["vat"])
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
    event_announce("invoice.credited", note)
    invoice_settle(invoice=original, by=by, credit_note=note)
    _after_commit(invoice_pdf_enqueue, note)  # its PDF, after commit; a credit is not charged
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


def invoice_lock(*, invoice_id: int) -> Invoice:
    """The invoice with its row locked (SELECT ... FOR UPDATE) until the caller's transaction
    ends. Every change of an invoice's money (a payment attempt or its outcome, a credit note,
    a refund) takes this lock first, so the balance it reads next is the one the change applies
    to, and all of them lock in one order: the invoice, then its payment or refund."""
    return (
        Invoice.objects.select_for_update(of=("self",))
        .select_related("customer", "reseller")
        .get(pk=invoice_id)
    )


@transaction.atomic
def invoice_mark_paid(
    *, invoice: Invoice, by: User | None, paid_at: datetime | None = None
) -> Invoice:
    """Staff saw the bank transfer (manual gateway): record a payment of the invoice's balance,
    received by hand, and settle the invoice (billing.selectors.invoice_balance)."""
    locked = invoice_lock(invoice_id=invoice.pk)
    if locked.kind != Kind.INVOICE:
        raise ValidationError(_("A credit note is not paid."), code="kind")
    if locked.status not in UNPAID_STATUSES:
        raise ValidationError(
            _("%(number)s is %(status)s: only an unpaid invoice can be marked paid.")
            % {"number": locked.number, "status": locked.get_status_display().lower()},
            code="status",
        )
    balance = invoice_balance(locked)
    if balance > 0:
        attempt = locked.payment_attempts + 1
        payment = Payment.objects.create(
            invoice=locked,
            attempt=attempt,
            gateway=MANUAL_PAYMENT,
            idempotency_key=f"{locked.number}:{attempt}",
            amount=balance,
            currency=locked.currency,
            status=Payment.Status.SUCCEEDED,
            recorded_by=by,
        )
        if paid_at is not None:  # received earlier than staff recorded it
            Payment.objects.filter(pk=payment.pk).update(created_at=paid_at, updated_at=paid_at)
            payment.refresh_from_db()
        locked.payment_attempts = attempt
        locked.save(update_fields=["payment_attempts"])
        payment_received(invoice=locked, payment=payment, by=by, at=paid_at)
    else:
        invoice_settle(invoice=locked, by=by, at=paid_at)
    return locked


def payment_received(
    *, invoice: Invoice, payment: Payment, by: User | None, at: datetime | None = None
) -> None:
    """Money arrived for `invoice` (locked by the caller, `payment` already succeeded): the
    payer gets a receipt after commit, and the invoice is settled if nothing is left to pay,
    or a refund is owed if it was overpaid (e.g. a charge that was on its way when staff
    credited the invoice)."""
    _audit(
        invoice,
        actor=by,
        action="payment.received",
        after={
            "payment": payment.idempotency_key,
            "amount": str(payment.amount),
            "currency": payment.currency,
            "gateway": payment.gateway,
        },
    )
    transaction.on_commit(partial(_receipt_send, payment.pk), robust=True)
    invoice_settle(invoice=invoice, by=by, at=at)


def _receipt_send(payment_id: int) -> None:
    from billing.notifications import payment_receipt_send

    payment_receipt_send(payment=Payment.objects.get(pk=payment_id))


def invoice_settle(
    *,
    invoice: Invoice,
    by: User | None,
    at: datetime | None = None,
    credit_note: Invoice | None = None,
) -> Decimal:
    """Bring the invoice's status in line with its balance after a payment, a credit note or a
    refund. Call it with the invoice locked (in the caller's transaction). Returns the balance.

    - credited in full: "credited", whatever it was (its payments, if any, are refunded);
    - nothing left to pay: "paid", and the suspensions its failed payment caused lift, in
      this transaction;
    - overpaid: a refund is owed for the difference, once (_refunds_owe)."""
    balance = invoice_balance(invoice)
    credited = _cents(invoice.credit_notes.aggregate(total=Sum("total"))["total"])
    before = invoice.status
    if credited and credited >= invoice.total:
        invoice.status = Status.CREDITED
    elif balance <= 0 and before in UNPAID_STATUSES:
        invoice.status = Status.PAID
        invoice.paid_at = at or timezone.now()
    if invoice.status != before:
        invoice.next_payment_attempt = None
        invoice.save(update_fields=["status", "paid_at", "next_payment_attempt"])
        _audit(
            invoice,
            actor=by,
            action="invoice.credited" if invoice.status == Status.CREDITED else "invoice.paid",
            before={"status": before},
            after={"status": invoice.status, "balance": str(balance)},
        )
        if invoice.status == Status.PAID:  # a credit in full is announced with its credit note
            event_announce("invoice.paid", invoice)
        if before in UNPAID_STATUSES:
            from billing.payments.services import suspensions_lift_after_payment

            suspensions_lift_after_payment(invoice)
    if balance < 0:
        _refunds_owe(invoice, balance=balance, by=by, credit_note=credit_note)
    return balance


# Refunds: money owed back once the invoice is overpaid


def _refunds_owe(
    invoice: Invoice, *, balance: Decimal, by: User | None, credit_note: Invoice | None
) -> list[Refund]:
    """Record the refunds an overpaid invoice still owes: what it was overpaid (its `balance`,
    as invoice_settle read it with the invoice locked), less the refunds already on their way.
    Each is taken from a payment received, newest first: to its card through the gateway (a
    Celery task after commit, with an idempotency key: never twice), or, for money received by
    transfer, for staff to send back. `credit_note`: the note that made it overpaid, if that is
    what just happened (its PDF says how the amount is refunded). Returns the new refunds."""
    outstanding = _cents(
        Refund.objects.filter(
            invoice=invoice, status__in=(Refund.Status.PENDING, Refund.Status.FAILED)
        ).aggregate(total=Sum("amount"))["total"]
    )
    owed = -balance - outstanding
    if owed <= 0:
        return []
    refunds = []
    sequence = invoice.refunds.count()
    payments = invoice.payments.filter(status=Payment.Status.SUCCEEDED).order_by("-id")
    for payment in [*payments, None]:
        if owed <= 0:
            break
        if payment is not None:
            taken = _cents(payment.refunds.aggregate(total=Sum("amount"))["total"])
            amount = min(owed, payment.amount - taken)
            if amount <= 0:
                continue
        else:
            amount = owed  # more than was received by payments: staff send it back
        sequence += 1
        by_card = payment is not None and payment.gateway != MANUAL_PAYMENT
        refund = Refund(
            invoice=invoice,
            credit_note=credit_note,
            payment=payment,
            method=Refund.Method.CARD if by_card else Refund.Method.TRANSFER,
            gateway=payment.gateway if payment is not None else MANUAL_PAYMENT,
            amount=amount,
            currency=invoice.currency,
            idempotency_key=f"{invoice.number}:refund:{sequence}",
        )
        refund.full_clean(exclude=["invoice", "credit_note", "payment"], validate_unique=False)
        refund.save()
        owed -= amount
        refunds.append(refund)
        _audit(
            invoice,
            actor=by,
            action="refund.owed",
            after={
                "refund": refund.idempotency_key,
                "amount": str(amount),
                "currency": refund.currency,
                "method": refund.method,
                "credit_note": credit_note.number if credit_note else None,
            },
        )
        if by_card:
            from billing.payments.tasks import refund_process

            task_enqueue_on_commit(refund_process, refund.pk)
    return refunds


def refund_record(
    *, refund: Refund, status: str, reference: str = "", error: str = "", by: User | None = None
) -> Refund:
    """Record where a refund stands (the gateway's answer, or staff who sent it by transfer).
    Call it with the invoice and the refund locked. A settled refund never changes again."""
    if reference:
        refund.gateway_reference = reference
    if status == Refund.Status.PENDING:
        refund.save(update_fields=["gateway_reference", "updated_at"])
        return refund
    before = refund.status
    refund.status = status
    refund.error = error[:500]
    refund.recorded_by = by
    if status == Refund.Status.SUCCEEDED:
        refund.refunded_at = timezone.now()
    refund.save(
        update_fields=[
            "status",
            "error",
            "gateway_reference",
            "recorded_by",
            "refunded_at",
            "updated_at",
        ]
    )
    _audit(
        refund.invoice,
        actor=by,
        action=f"refund.{status}",
        before={"refund_status": before},
        after={
            "refund_status": status,
            "refund": refund.idempotency_key,
            "amount": str(refund.amount),
            "currency": refund.currency,
            "method": refund.method,
            "error": refund.error,
        },
    )
    if status == Refund.Status.FAILED:
        logger.error("Refund %s failed: %s", refund.idempotency_key, refund.error)
    return refund


@transaction.atomic
def refund_mark_refunded(*, refund: Refund, by: User) -> Refund:
    """Staff sent the money back by bank transfer: a refund owed for money received by
    transfer, or a card refund the gateway refused."""
    invoice = invoice_lock(invoice_id=refund.invoice_id)
    locked = Refund.objects.select_for_update().select_related("invoice").get(pk=refund.pk)
    locked.invoice = invoice
    if locked.status == Refund.Status.SUCCEEDED:
        raise ValidationError(_("This refund was made already."), code="refunded")
    if locked.status == Refund.Status.PENDING and locked.method == Refund.Method.CARD:
        raise ValidationError(
            _("This refund is on its way to the card: wait for the gateway's answer."),
            code="in_progress",
        )
    # `method` stays what the credit note said; recorded_by tells it was staff who sent it.
    return refund_record(refund=locked, status=Refund.Status.SUCCEEDED, by=by)


def invoice_pdf_request(*, invoice: Invoice) -> None:
    """Render the document's PDF again, after the caller's transaction commits: written back
    only if the stored file is missing or altered (billing.rendering_tasks)."""
    _after_commit(invoice_pdf_regenerate, invoice)
