"""Writes for the commission statements: the monthly issue, corrections, payouts.

Once a month (commissions.tasks, Celery beat) the vendor issues, on each reseller's behalf, a
self-billing statement (EU VAT directive art. 224; the reseller agreed to it when it accepted
the reseller terms) per currency for the commission its customers' paid invoices earned in the
past month (commissions.margins.paid_invoice_margins): one line per paid invoice or credit note,
numbered in the gapless series SB-YYYY-NNNNNN.

- Idempotent: at most one statement per reseller, currency and month (a unique constraint). A
  second run skips what is issued; two runs at once both try, and the one that comes second
  rolls back, its number with it (the counter row stays locked until a transaction ends), so
  the numbers stay gapless.
- VAT on the commission by the reseller's situation (`statement_vat_decide`): the reseller in
  the vendor's country charges the domestic rate; one in another member state with a valid VAT
  id, to a vendor that has one, is reverse charged (the vendor accounts for the VAT); one outside
  the EU is outside the scope of EU VAT. (A reseller in another member state without a valid VAT
  id is treated as domestic: charging VAT is the safe side, as for invoices.)
- The PDF (PDF/A-3 with a Factur-X XML, type code 389) is rendered after commit
  (commissions.tasks.statement_render_pdf), in the reseller's language.
- The reseller's billing address is emailed, in its language, that the statement (or a
  correction) was issued (`statement_issued_email_queue`), queued in the issuing transaction.
- An issued statement never changes; a correction is a negative statement in the same series
  (`statement_correct`). Whether it was paid is told by its payouts (`payout_record`).
"""

import logging
from calendar import monthrange
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Protocol

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from billing import facturx
from billing.models import Invoice
from billing.services import _number_take
from billing.vat import vat_amount, vat_decide, vat_id_valid, vat_rate
from commissions import margins
from commissions.models import Payout, Statement, StatementLine
from core.emails import email_queue
from core.models import OutboundEmail, User
from core.queue import task_enqueue_on_commit
from resellers.models import Reseller
from resellers.services import audit_record
from resellers.validators import EU_COUNTRIES
from subscriptions.periods import CENT

logger = logging.getLogger(__name__)

STATEMENT_SERIES = "SB"
Treatment = Statement.VatTreatment
ZERO = Decimal("0.00")


def statement_number_take(year: int) -> str:
    """The next number of the statements' series in `year` (SB-YYYY-NNNNNN).

    billing.services._number_take is billing's private counter (DocumentCounter, a row per series
    and year, locked until the caller's transaction ends): reused here through this one public
    name rather than copied, so both series are gapless the same way."""
    return _number_take(STATEMENT_SERIES, year)


class MarginLine(Protocol):
    """What a statement line is made of (commissions.margins.InvoiceMargin): one paid invoice
    or credit note (negative) and the margin it earned."""

    @property
    def invoice_id(self) -> int | None: ...
    @property
    def number(self) -> str: ...
    @property
    def customer_name(self) -> str: ...
    @property
    def issued_on(self) -> date: ...
    @property
    def net(self) -> Decimal: ...
    @property
    def margin(self) -> Decimal: ...


@dataclass(frozen=True)
class StatementVat:
    treatment: str  # a Statement.VatTreatment: domestic, reverse_charge or outside_eu
    rate: Decimal
    seller_vat_id: str  # the reseller's VAT id as printed ("" if none)


def month_bounds(month: date) -> tuple[date, date]:
    """The first day of `month`'s month and the first day of the next (exclusive)."""
    start = month.replace(day=1)
    return start, start + timedelta(days=monthrange(start.year, start.month)[1])


def statement_vat_decide(*, reseller: Reseller, day: date) -> StatementVat:
    """The VAT on a statement issued on `day` for `reseller`'s commission (billing.vat decides
    the place and the rate the way it does for invoices, with the reseller as the other party).
    Reverse charge needs both VAT ids: the reseller's valid one and the vendor's."""
    country = str(reseller.country or "").upper()
    decision = vat_decide(buyer_country=country, buyer_vat_id=reseller.vat_id, day=day)
    vendor_vat_id = settings.VENDOR_VAT_ID.strip()
    if decision.treatment == Treatment.REVERSE_CHARGE and vendor_vat_id:
        return StatementVat(Treatment.REVERSE_CHARGE, ZERO, decision.buyer_vat_id)
    if decision.treatment == Treatment.OUTSIDE_EU:
        return StatementVat(Treatment.OUTSIDE_EU, ZERO, decision.buyer_vat_id)
    if decision.treatment == Treatment.DOMESTIC:
        return StatementVat(Treatment.DOMESTIC, decision.rate, decision.buyer_vat_id)
    # An EU reseller that cannot be reverse charged: the vendor's country's rate.
    valid = vat_id_valid(country=country, vat_id=reseller.vat_id) if country in EU_COUNTRIES else ""
    return StatementVat(
        Treatment.DOMESTIC,
        vat_rate(country=settings.VENDOR_COUNTRY, day=day),
        valid or reseller.vat_id.strip(),
    )


def _seller(reseller: Reseller, *, vat_id: str) -> dict[str, str]:
    """The reseller as it is on the issue date: the seller of the commission."""
    return {
        "name": reseller.name,
        # The supplier's full address (EU VAT directive art. 226), lines as the reseller typed
        # them; billing.facturx.party reads them as an invoice party's.
        "address": reseller.address,
        "country": str(reseller.country or ""),
        "vat_id": vat_id,
        "email": reseller.billing_email,
    }


def _buyer() -> dict[str, str]:
    """The vendor, who buys the reseller's services and issues the statement."""
    return {
        "name": settings.VENDOR_NAME,
        "address": settings.VENDOR_ADDRESS,
        "country": settings.VENDOR_COUNTRY,
        "vat_id": settings.VENDOR_VAT_ID,
        "email": settings.VENDOR_EMAIL,
    }


def _cents(value: Decimal | None) -> Decimal:
    return Decimal(value or 0).quantize(CENT)


def statement_facturx_document(
    statement: Statement, lines: Sequence[StatementLine] | None = None
) -> facturx.SelfBilledDocument:
    """The statement as billing.facturx builds its XML (type code 389)."""
    lines = list(statement.lines.all()) if lines is None else list(lines)
    corrects = statement.corrects
    return facturx.SelfBilledDocument(
        number=statement.number,
        issue_date=statement.issue_date,
        currency=statement.currency,
        language=statement.language,
        seller=statement.seller,
        buyer=statement.buyer,
        vat_treatment=statement.vat_treatment,
        vat_rate=statement.vat_rate,
        subtotal=statement.subtotal,
        vat_amount=statement.vat_amount,
        total=statement.total,
        period=(statement.period_start, statement.period_end - timedelta(days=1)),
        lines=tuple(
            facturx.SelfBilledLine(
                description=f"{line.invoice_number} \u2013 {line.customer_name}",
                amount=line.margin,
            )
            for line in lines
        ),
        corrects=(corrects.number, corrects.issue_date) if corrects is not None else None,
    )


def _month_issued(*, reseller: Reseller, currency: str, start: date) -> bool:
    return Statement.objects.filter(
        kind=Statement.Kind.STATEMENT, reseller=reseller, currency=currency, period_start=start
    ).exists()


class StatementAlreadyIssued(Exception):
    """Another run issued this reseller's statement for the month first."""


def _statement_write(
    *,
    reseller: Reseller,
    currency: str,
    period: tuple[date, date],
    lines: Sequence[MarginLine],
    day: date,
    corrects: Statement | None = None,
    replaces: Statement | None = None,
) -> Statement:
    """Issue one statement (or, with `corrects`, a correction; with `replaces`, the month's
    statement again) from its lines, in the caller's transaction: the VAT, the snapshots, the
    Factur-X check, then the number, taken last to hold the series' lock briefly. Raises
    StatementAlreadyIssued if the month's statement exists (the unique constraint; the caller's
    transaction must then roll back, number and all)."""
    vat = statement_vat_decide(reseller=reseller, day=day)
    subtotal = _cents(sum((line.margin for line in lines), Decimal(0)))
    tax = vat_amount(subtotal=subtotal, rate=vat.rate)
    statement = Statement(
        kind=Statement.Kind.CORRECTION if corrects else Statement.Kind.STATEMENT,
        corrects=corrects,
        replaces=replaces,
        reseller=reseller,
        currency=currency,
        language=reseller.language,
        period_start=period[0],
        period_end=period[1],
        issue_date=day,
        seller=_seller(reseller, vat_id=vat.seller_vat_id),
        buyer=_buyer(),
        vat_treatment=vat.treatment,
        vat_rate=vat.rate,
        subtotal=subtotal,
        vat_amount=tax,
        total=subtotal + tax,
        line_count=len(lines),
    )
    rows = [
        StatementLine(
            position=position,
            invoice_id=line.invoice_id,
            invoice_number=line.number,
            customer_name=line.customer_name[:255],
            invoice_date=line.issued_on,
            net=_cents(line.net),
            margin=_cents(line.margin),
        )
        for position, line in enumerate(lines, start=1)
    ]
    # The XML the PDF will carry, checked before a number is taken: a statement whose PDF could
    # not be made is never issued.
    statement.number = f"{STATEMENT_SERIES}-{day.year}-000000"
    facturx.self_billed_facturx_xml(statement_facturx_document(statement, rows))
    statement.full_clean(
        exclude=["reseller", "corrects"], validate_unique=False, validate_constraints=False
    )
    statement.number = statement_number_take(day.year)
    try:
        with transaction.atomic():
            statement.save()
    except IntegrityError:
        # The month's statement committed by another run first (the unique constraint; the
        # number waited for that run's commit, so its row is visible now): say so, and let the
        # caller roll back, number and all. Any other integrity error is a defect: raised.
        if (
            corrects is None
            and replaces is None
            and _month_issued(reseller=reseller, currency=currency, start=period[0])
        ):
            raise StatementAlreadyIssued(statement.number) from None
        raise
    for row in rows:
        row.statement = statement
    StatementLine.objects.bulk_create(rows)
    audit_record(
        actor=None,
        reseller=reseller,
        action="statement.issued" if corrects is None else "statement.corrected",
        obj=statement,
        after={"number": statement.number, "total": str(statement.total), "currency": currency},
    )
    statement_issued_email_queue(statement=statement)
    from commissions.tasks import statement_render_pdf

    task_enqueue_on_commit(statement_render_pdf, statement.pk)
    return statement


STATEMENT_ISSUED_TEMPLATE = "statement_issued"


def statement_issued_email_queue(*, statement: Statement) -> OutboundEmail:
    """Tell the reseller's billing address, in the statement's language (the reseller's), that
    `statement` (or a correction) was issued: its number, month and figures, and a link to its
    page, where its PDF is. Called in the issuing transaction, so the email is sent once, after
    commit, and never for a statement that rolled back; the PDF is not attached, as it is only
    rendered after commit."""
    url = reverse("statements:detail", kwargs={"statement_id": statement.public_id})
    context = {
        "number": statement.number,
        "is_correction": statement.kind == Statement.Kind.CORRECTION,
        "corrects": statement.corrects.number if statement.corrects else "",
        "reseller_name": statement.reseller.name,
        "month": statement.period_start,
        "issue_date": statement.issue_date,
        "currency": statement.currency,
        "commission": statement.subtotal,
        "vat_rate": statement.vat_rate,
        "vat_amount": statement.vat_amount,
        "total": statement.total,
        "statement_url": settings.PORTAL_URL + url,
    }
    return email_queue(
        to=statement.reseller.billing_email,
        template=STATEMENT_ISSUED_TEMPLATE,
        context=context,
        language=statement.language,
    )


def statement_issue_for_reseller(
    *,
    reseller: Reseller,
    currency: str,
    month: date,
    lines: Sequence[MarginLine],
    day: date | None = None,
) -> Statement | None:
    """Issue `reseller`'s statement in `currency` for `month` from these lines, atomically;
    None if there are no lines or the month's statement is already issued (by an earlier run,
    or by one running at the same time)."""
    if not lines:
        return None
    day = day or timezone.localdate()
    period = month_bounds(month)
    try:
        with transaction.atomic():
            return _statement_write(
                reseller=reseller, currency=currency, period=period, lines=lines, day=day
            )
    except StatementAlreadyIssued:
        return None


def statements_issue(*, month: date) -> list[Statement]:
    """Issue every reseller's statements for `month` (a day in it), one per currency that has
    at least one paid line; returns those issued by this call. Safe to run again or twice at
    once: what is already issued is skipped. The month must be over."""
    start, end = month_bounds(month)
    today = timezone.localdate()
    if end > today:
        raise ValidationError(
            _("The statements of %(month)s can be issued once the month is over.")
            % {"month": start.strftime("%Y-%m")},
            code="month_not_over",
        )
    issued_pairs = set(
        Statement.objects.filter(kind=Statement.Kind.STATEMENT, period_start=start).values_list(
            "reseller_id", "currency"
        )
    )
    # Who may have earned something: resellers with a document issued before the month's end.
    candidates = (
        Invoice.objects.filter(issue_date__lt=end)
        .values_list("reseller_id", "currency")
        .distinct()
        .order_by("reseller_id", "currency")
    )
    resellers: dict[int, Reseller] = {}
    issued = []
    for reseller_id, currency in candidates:
        if (reseller_id, currency) in issued_pairs:
            continue
        lines = margins.paid_invoice_margins(
            reseller_id=reseller_id, currency=currency, start=start, end=end
        )
        if not lines:
            continue
        if reseller_id not in resellers:
            resellers[reseller_id] = Reseller.objects.get(pk=reseller_id)
        statement = statement_issue_for_reseller(
            reseller=resellers[reseller_id],
            currency=currency,
            month=start,
            lines=lines,
            day=today,
        )
        if statement is not None:
            issued.append(statement)
    logger.info("Statements for %s: %d issued", start.strftime("%Y-%m"), len(issued))
    return issued


@dataclass(frozen=True)
class _Reversal:
    """A line of a statement, taken back."""

    invoice_id: int | None
    number: str
    customer_name: str
    issued_on: date
    net: Decimal
    margin: Decimal


@transaction.atomic
def statement_correct(*, statement: Statement, actor: User | None) -> Statement:
    """Take an issued statement back in full: a correction, a negative statement in the same
    series with each of its lines negated, referring to it (staff, in the admin, when a
    statement was issued wrongly). What was paid out for it stays recorded on it."""
    # Locked: two staff correcting it at once would otherwise both find it uncorrected.
    statement = (
        Statement.objects.select_for_update().select_related("reseller").get(pk=statement.pk)
    )
    if statement.kind != Statement.Kind.STATEMENT:
        raise ValidationError(_("Only a statement can be corrected."), code="not_a_statement")
    if statement.corrections.exists():
        raise ValidationError(
            _("%(number)s has already been corrected.") % {"number": statement.number},
            code="already_corrected",
        )
    lines = [
        _Reversal(
            invoice_id=line.invoice_id,
            number=line.invoice_number,
            customer_name=line.customer_name,
            issued_on=line.invoice_date,
            net=-line.net,
            margin=-line.margin,
        )
        for line in statement.lines.all()
    ]
    correction = _statement_write(
        reseller=statement.reseller,
        currency=statement.currency,
        period=(statement.period_start, statement.period_end),
        lines=lines,
        day=timezone.localdate(),
        corrects=statement,
    )
    audit_record(
        actor=actor,
        reseller=statement.reseller,
        action="statement.correction_requested",
        obj=statement,
        after={"correction": correction.number},
    )
    return correction


@transaction.atomic
def statement_reissue(*, statement: Statement, actor: User | None) -> Statement:
    """Issue again the month of a statement that was taken back (statement_correct), once the
    reason is put right (e.g. the reseller's VAT details): a new statement from the margins
    earned in that month, as the monthly run would issue it today, replacing it. Without it a
    correction would lose the month's commission for good."""
    statement = (
        Statement.objects.select_for_update().select_related("reseller").get(pk=statement.pk)
    )
    number = {"number": statement.number}
    if statement.kind != Statement.Kind.STATEMENT:
        raise ValidationError(_("Only a statement can be issued again."), code="not_a_statement")
    if not statement.corrections.exists():
        raise ValidationError(
            _("%(number)s stands: take it back with a correction first.") % number,
            code="not_corrected",
        )
    if Statement.objects.filter(replaces=statement).exists():
        raise ValidationError(
            _("%(number)s has already been issued again.") % number, code="already_reissued"
        )
    start, end = month_bounds(statement.period_start)
    lines = margins.paid_invoice_margins(
        reseller_id=statement.reseller_id, currency=statement.currency, start=start, end=end
    )
    if not lines:
        raise ValidationError(
            _("Nothing was earned in %(month)s: there is no statement to issue.")
            % {"month": start.strftime("%Y-%m")},
            code="nothing_earned",
        )
    replacement = _statement_write(
        reseller=statement.reseller,
        currency=statement.currency,
        period=(start, end),
        lines=lines,
        day=timezone.localdate(),
        replaces=statement,
    )
    audit_record(
        actor=actor,
        reseller=statement.reseller,
        action="statement.reissued",
        obj=statement,
        after={"statement": replacement.number},
    )
    return replacement


# Payouts


def statement_paid_amount(statement: Statement) -> Decimal:
    """What the vendor has paid out for the statement (its payouts' sum)."""
    return _cents(statement.payouts.aggregate(paid=Sum("amount"))["paid"])


def statement_is_paid(*, total: Decimal, paid: Decimal) -> bool:
    """Paid once the payouts cover the total; nothing to pay (a correction, a zero
    statement) counts as paid."""
    return paid >= total


def payout_check(*, statement: Statement, amount: Decimal) -> None:
    """Raise ValidationError unless `amount` may be paid out for `statement`: a statement (not
    a correction), and no more than what is left to pay on it."""
    if statement.kind != Statement.Kind.STATEMENT:
        raise ValidationError(
            _("A correction is not paid out: record the payout on a statement."),
            code="correction",
        )
    outstanding = statement.total - statement_paid_amount(statement)
    if amount > outstanding:
        raise ValidationError(
            _("%(number)s has only %(outstanding)s %(currency)s left to pay.")
            % {
                "number": statement.number,
                "outstanding": outstanding,
                "currency": statement.currency,
            },
            code="overpaid",
        )


@transaction.atomic
def payout_record(
    *,
    statement: Statement,
    amount: Decimal,
    paid_on: date,
    method: str,
    reference: str = "",
    actor: User | None,
) -> Payout:
    """Record money paid out to the reseller for `statement` (staff, in the admin). The
    statement is locked so two payouts recorded at once cannot both overpay it."""
    statement = Statement.objects.select_for_update().get(pk=statement.pk)
    payout_check(statement=statement, amount=amount)
    payout = Payout(
        statement=statement,
        amount=amount,
        paid_on=paid_on,
        method=method,
        reference=reference,
        recorded_by=actor,
    )
    payout.full_clean(exclude=["statement", "recorded_by"])
    payout.save()
    audit_record(
        actor=actor,
        reseller=statement.reseller,
        action="statement.payout_recorded",
        obj=statement,
        after={
            "amount": str(amount),
            "paid_on": paid_on.isoformat(),
            "method": method,
            "reference": reference,
        },
    )
    return payout
