import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Expression, F, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Lower
from django.http import Http404
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.models import User
from core.pagination import KeysetPage, keyset_page
from core.tokens import token_digest
from core.versions import cache_usable
from customers import extensions
from customers.list_version import customer_list_version
from customers.models import Customer, CustomerInvitation, TransferToken
from resellers.models import AuditEvent, Reseller

# Statuses of the customers a reseller manages: its list by default, and customer_get.
VISIBLE_STATUSES = [Customer.Status.INVITED, Customer.Status.ACTIVE, Customer.Status.CANCELLED]
# Statuses of customers that left the reseller: listed when asked for, never managed.
FORMER_STATUSES = [Customer.Status.ACCESS_REVOKED, Customer.Status.TRANSFERRED_OUT]
CUSTOMER_PAGE_SIZE = 25

# The sorts of the Customers page, by the key its URLs carry; "-key" is the same keys descending.
# Keys run in one direction and end with the primary key, so that keyset pagination
# (core.pagination) seeks in the index of Customer.Meta.indexes that has them after the
# reseller, forwards or backwards.
CUSTOMER_SORTS: dict[str, Callable[[], list[Expression | F]]] = {
    "organisation": lambda: [Lower("organisation"), F("id")],
    "domain": lambda: [F("domain"), F("id")],
    "status": lambda: [F("status"), F("created_at"), F("id")],
    "created": lambda: [F("created_at"), F("id")],
}
DEFAULT_CUSTOMER_SORT = "-created"
# Longer search terms are cut: nobody types more, and each character costs trigram lookups.
SEARCH_MAX_LENGTH = 100


def customer_sort_valid(sort: str) -> str:
    """The sort asked for if it is one of CUSTOMER_SORTS (optionally reversed), else the default."""
    return sort if sort.removeprefix("-") in CUSTOMER_SORTS else DEFAULT_CUSTOMER_SORT


def customer_search_normalise(query: str) -> str:
    return " ".join(query.split())[:SEARCH_MAX_LENGTH]


def customer_former_list(*, reseller: Reseller) -> QuerySet[Customer]:
    """Customers that revoked the reseller's access or moved to another reseller: shown as a
    record, without a link (customer_get answers 404 for them)."""
    return reseller.customers.filter(status__in=FORMER_STATUSES)


def _customer_filtered(*, reseller: Reseller, query: str, status: str) -> QuerySet[Customer]:
    # Customer.objects with the reseller's id rather than `reseller.customers`: the related
    # manager costs the Customers page measurably more to build its query and rows.
    customers = Customer.objects.filter(reseller_id=reseller.pk)
    if status in FORMER_STATUSES:
        customers = customers.filter(status=status)
    else:
        customers = customers.filter(status__in=VISIBLE_STATUSES)
        if status:
            customers = customers.filter(status=status)
    query = customer_search_normalise(query)
    if query:
        customers = customers.filter(customer_search_q(query))
    return customers


def customer_search_q(query: str) -> Q:
    """Organisation, domain or contact email contains `query`, whatever the case: the stored
    `search_text` (the three in capitals) LIKE UPPER('%query%') (core.lookups); the trigram
    index of migration 0005 serves it on PostgreSQL."""
    return Q(search_text__contains_upper=query)


def customer_list(
    *, reseller: Reseller, query: str = "", status: str = "", sort: str = ""
) -> QuerySet[Customer]:
    """The reseller's current customers, or those of one status (a former one included);
    `query` is a case-insensitive substring of organisation, domain or contact email (a trigram
    index serves it on PostgreSQL, migration 0003)."""
    sort = customer_sort_valid(sort)
    keys = CUSTOMER_SORTS[sort.removeprefix("-")]()
    descending = sort.startswith("-")
    return _customer_filtered(reseller=reseller, query=query, status=status).order_by(
        *(key.desc() if descending else key.asc() for key in keys)
    )


def customer_page(
    *, reseller: Reseller, query: str = "", status: str = "", sort: str = "", cursor: str = ""
) -> KeysetPage:
    """One page of customer_list and where it is: one query, on any page. The rows are
    dictionaries of CUSTOMER_ROW_FIELDS (a table needs no model instances, which cost more).

    The total ("26-50 of 9,183") is counted at most once a minute per reseller, filter and
    search (counting 10,000 rows is most of the page's database time), and again as soon as a
    customer of the reseller changes: it is kept in Django's cache under the version of the
    reseller's list (customers.list_version), which every saved or deleted customer moves on.
    """
    sort = customer_sort_valid(sort)
    query = customer_search_normalise(query)
    counts_key = ":".join(
        [
            "customers:count",
            reseller.public_id,
            str(customer_list_version(reseller=reseller)),
            status,
            # Any text the reseller typed: hashed, a cache key takes only some characters.
            hashlib.sha256(query.encode()).hexdigest()[:32],
        ]
    )
    count: int | None = cache.get(counts_key)
    page = keyset_page(
        _customer_filtered(reseller=reseller, query=query, status=status).values(
            *CUSTOMER_ROW_FIELDS
        ),
        keys=CUSTOMER_SORTS[sort.removeprefix("-")](),
        descending=sort.startswith("-"),
        cursor=cursor,
        size=CUSTOMER_PAGE_SIZE,
        sort=sort,
        count=count,
        # A term many customers match is found fastest by reading the covering index in list
        # order (customer_reseller_created_idx holds status and search_text) and then only the
        # rows shown; a rare one through the trigram index, for which the plain query is best.
        rows_by_key=Customer.objects.values(*CUSTOMER_ROW_FIELDS)
        if query and count is not None and count > 2 * CUSTOMER_PAGE_SIZE
        else None,
    )
    if count is None:
        cache.set(counts_key, page.count, timeout=CUSTOMER_COUNTS_SECONDS)
    return page


# The columns the Customers page shows (and what links and sorts need).
CUSTOMER_ROW_FIELDS = [
    "id",
    "public_id",
    "reseller_id",
    "organisation",
    "domain",
    "customer_type",
    "contact_name",
    "contact_email",
    "status",
    "created_at",
]
CUSTOMER_COUNTS_SECONDS = 60


def customer_get(*, reseller: Reseller, public_id: str) -> Customer:
    try:
        return customer_list(reseller=reseller).get(public_id=public_id)
    except Customer.DoesNotExist:
        raise Http404(_("No such customer.")) from None


@dataclass(frozen=True)
class CustomerSummary:
    """What the dashboard shows of a reseller's customers."""

    counts: dict[str, int]  # by status, the former ones included
    newest: list[dict[str, Any]]  # the newest current customers: public_id, organisation, status
    list_version: int  # what else is kept under the list's version can use it (one cache read)


# The newest customers a summary lists.
CUSTOMER_SUMMARY_NEWEST = 5


def customer_summary(*, reseller: Reseller) -> CustomerSummary:
    """The reseller's customers by status and its newest ones, kept as customer_page's totals
    are: counted at most once a minute (a GROUP BY over all of a reseller's customers was most
    of the dashboard's database time at 10,000), and again as soon as a customer of the
    reseller changes: in Django's cache under the version of the reseller's list
    (customers.list_version), which every saved or deleted customer moves on. Two cache reads
    and no query, while nothing changes."""
    version = customer_list_version(reseller=reseller)
    key = f"customers:summary:{reseller.public_id}:{version}"
    # Plain dictionaries in the cache, not the dataclass: a pickled class outlives its code.
    cached: tuple[dict[str, int], list[dict[str, Any]]] | None = (
        cache.get(key) if cache_usable() else None
    )
    if cached is None:
        rows = (
            Customer.objects.filter(reseller_id=reseller.pk)
            .values("status")
            .annotate(n=Count("id"))
            .order_by()
        )
        newest = customer_list(reseller=reseller).values("public_id", "organisation", "status")
        cached = (
            {row["status"]: row["n"] for row in rows},
            [dict(row) for row in newest[:CUSTOMER_SUMMARY_NEWEST]],
        )
        if cache_usable():
            cache.set(key, cached, timeout=CUSTOMER_COUNTS_SECONDS)
    return CustomerSummary(counts=cached[0], newest=cached[1], list_version=version)


def customer_invitation_by_token(*, raw_token: str) -> CustomerInvitation | None:
    return (
        CustomerInvitation.objects.select_related("customer__reseller", "invited_by")
        .filter(token_hash=token_digest(raw_token))
        .first()
    )


def customer_invitation_replaced(invitation: CustomerInvitation) -> bool:
    """Whether a later invitation to the same customer superseded this one (resend)."""
    return invitation.customer.invitations.filter(created_at__gt=invitation.created_at).exists()


def customer_invitation_latest(*, customer: Customer) -> CustomerInvitation | None:
    return customer.invitations.order_by("-created_at").first()


def customers_of_user(*, user) -> QuerySet[Customer]:
    """The organisations a person administers on the customer side."""
    return Customer.objects.filter(members__user=user).select_related("reseller")


def customer_lineage_ids(*, customer: Customer) -> list[str]:
    """Public ids of this customer record and the records it was imported from, newest first."""
    ids = [customer.public_id]
    previous_id = customer.previous_id
    while previous_id is not None:
        public_id, previous_id = Customer.objects.values_list("public_id", "previous_id").get(
            pk=previous_id
        )
        ids.append(public_id)
    return ids


def customer_activity(*, customer: Customer, limit: int = 50) -> QuerySet[AuditEvent]:
    """What was done to or for the customer, including under a previous reseller (imports
    carry the history along)."""
    return AuditEvent.objects.filter(
        customer_public_id__in=customer_lineage_ids(customer=customer)
    ).select_related("actor", "reseller")[:limit]


# The customer side: what a customer's own administrators see. A customer the person does not
# administer is a 404 with the same text as a missing one.


def customer_for_member(*, user, public_id: str) -> Customer:
    try:
        return customers_of_user(user=user).get(public_id=public_id)
    except Customer.DoesNotExist:
        raise Http404(_("No such customer.")) from None


def customer_admin_check(*, customer: Customer, user: User) -> None:
    """PermissionDenied unless `user` administers `customer` on the customer side: the one
    check, for every service that does what a customer's administrators do (customers,
    billing.payments). The page found the customer through the person's memberships
    (customer_for_member, a 404 otherwise); the service checks again, because the rule is
    the service's, not the page's."""
    if not customers_of_user(user=user).filter(pk=customer.pk).exists():
        raise PermissionDenied(_("You do not administer this organisation."))


def transfer_token_list_open(*, customer: Customer) -> QuerySet[TransferToken]:
    """Tokens not yet used or withdrawn, newest first (expired ones still show, as expired)."""
    return customer.transfer_tokens.filter(
        consumed_at__isnull=True, withdrawn_at__isnull=True
    ).select_related("to_reseller")


def transfer_token_get(*, customer: Customer, public_id: str) -> TransferToken:
    try:
        return customer.transfer_tokens.get(public_id=public_id)
    except TransferToken.DoesNotExist:
        raise Http404(_("No such transfer token.")) from None


# The Customers CSV (customers.views.customer_export): the rows of customer_list, all of them,
# with what a reseller keeps in a spreadsheet, in the user's language (labels, not codes).
# Dates and times are ISO 8601 in UTC; the country is its ISO 3166-1 code, the language its code.
CUSTOMER_CSV_COLUMNS = (
    gettext_lazy("Customer ID"),
    gettext_lazy("Organisation"),
    gettext_lazy("Domain"),
    gettext_lazy("Customer type"),
    gettext_lazy("Status"),
    gettext_lazy("Contact name"),
    gettext_lazy("Contact email"),
    gettext_lazy("CRM id"),
    gettext_lazy("Country"),
    gettext_lazy("Language"),
    gettext_lazy("Time zone"),
    gettext_lazy("VAT id"),
    # Translators: column of the customers CSV: when the first invitation was sent.
    gettext_lazy("Invitation sent"),
    gettext_lazy("Accepted"),
    gettext_lazy("Live subscriptions"),
    gettext_lazy("Licences"),
)
# Customers read per round trip from the server-side cursor, and asked about at once of the apps
# above customers (customers.extensions.row_summaries: one query per chunk).
CUSTOMER_CSV_CHUNK_SIZE = 2000


def customer_export_rows(
    *, reseller: Reseller, query: str = "", status: str = "", sort: str = ""
) -> Iterator[list[str]]:
    """The CSV's data rows (CUSTOMER_CSV_COLUMNS) of customer_list with these filters, in its
    order, streamed: one query for the customers (the first invitation's date a subquery of
    it), and one per CUSTOMER_CSV_CHUNK_SIZE customers for their live subscriptions and
    licences."""
    # The labels in the request's language, read now: the rows are written after the view has
    # returned, and once rather than once per row.
    labels = {
        "status": {value: str(label) for value, label in Customer.Status.choices},
        "type": {value: str(label) for value, label in Customer.Type.choices},
    }
    first_invitation = (
        CustomerInvitation.objects.filter(customer_id=OuterRef("pk"))
        .order_by("created_at", "id")
        .values("created_at")[:1]
    )
    rows = (
        customer_list(reseller=reseller, query=query, status=status, sort=sort)
        .annotate(invited_at=Subquery(first_invitation))
        .values(
            "id",
            "public_id",
            "organisation",
            "domain",
            "customer_type",
            "status",
            "contact_name",
            "contact_email",
            "crm_id",
            "country",
            "language",
            "time_zone",
            "vat_id",
            "invited_at",
            "accepted_at",
        )
    )
    return _customer_csv_lines(rows, labels)


def _customer_csv_lines(
    rows: QuerySet[Any, Any], labels: dict[str, dict[str, str]]
) -> Iterator[list[str]]:
    chunk: list[dict[str, Any]] = []
    for row in rows.iterator(chunk_size=CUSTOMER_CSV_CHUNK_SIZE):
        chunk.append(row)
        if len(chunk) == CUSTOMER_CSV_CHUNK_SIZE:
            yield from _customer_csv_chunk(chunk, labels)
            chunk = []
    yield from _customer_csv_chunk(chunk, labels)


def _customer_csv_chunk(
    chunk: list[dict[str, Any]], labels: dict[str, dict[str, str]]
) -> Iterator[list[str]]:
    if not chunk:
        return
    summaries = extensions.row_summaries([row["id"] for row in chunk])
    for row in chunk:
        summary = summaries.get(row["id"], {})
        yield [
            row["public_id"],
            row["organisation"],
            row["domain"],
            labels["type"].get(row["customer_type"], row["customer_type"]),
            labels["status"].get(row["status"], row["status"]),
            row["contact_name"],
            row["contact_email"],
            row["crm_id"],
            str(row["country"] or ""),
            row["language"],
            row["time_zone"],
            row["vat_id"],
            _utc_iso(row["invited_at"]),
            _utc_iso(row["accepted_at"]),
            str(summary.get("subscriptions", 0)),
            str(summary.get("licences", 0)),
        ]


def _utc_iso(moment: datetime | None) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat() if moment else ""
