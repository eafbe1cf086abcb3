"""Reads for the Statements page: the reseller's commission statements, each with what its
payouts paid (paid or open), and one of them by its public id (another reseller's is the same
404 as a missing one)."""

from collections.abc import Iterator
from decimal import Decimal

from django.db.models import DecimalField, QuerySet, Sum, Value
from django.db.models.functions import Coalesce
from django.http import Http404
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from commissions.models import Statement
from resellers.models import Reseller

ZERO = Decimal("0.00")

# The statement CSV's columns (one row per line), in the user's language.
STATEMENT_CSV_COLUMNS = (
    gettext_lazy("Statement"),
    gettext_lazy("Position"),
    gettext_lazy("Invoice"),
    gettext_lazy("Invoice date"),
    gettext_lazy("Customer"),
    gettext_lazy("Currency"),
    gettext_lazy("Net paid"),
    gettext_lazy("Commission"),
)


def statements_with_paid(statements: QuerySet[Statement]) -> QuerySet[Statement]:
    """Each statement with `paid`: the sum of its payouts (0.00 without any)."""
    return statements.annotate(
        paid=Coalesce(
            Sum("payouts__amount"),
            Value(ZERO),
            output_field=DecimalField(max_digits=12, decimal_places=2),
        )
    )


def statement_list(*, reseller: Reseller) -> QuerySet[Statement]:
    """The reseller's statements and corrections, newest month first."""
    return statements_with_paid(
        Statement.objects.filter(reseller=reseller).order_by("-period_start", "-number")
    )


def statement_get(*, reseller: Reseller, public_id: str) -> Statement:
    """One of the reseller's statements, with what its payouts paid."""
    try:
        return (
            statements_with_paid(Statement.objects.filter(reseller=reseller))
            .select_related("corrects", "replaces")
            .get(public_id=public_id)
        )
    except Statement.DoesNotExist:
        raise Http404(_("No such statement.")) from None


def statement_csv_rows(statement: Statement) -> Iterator[list[str]]:
    """The statement's lines as CSV rows (STATEMENT_CSV_COLUMNS)."""
    for line in statement.lines.all():
        yield [
            statement.number,
            str(line.position),
            line.invoice_number,
            line.invoice_date.isoformat(),
            line.customer_name,
            statement.currency,
            str(line.net),
            str(line.margin),
        ]
