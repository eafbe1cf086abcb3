"""Reads for the pages that draw on several apps (config/views.py)."""

from django.core.cache import cache
from django.utils.translation import get_language

from core.audit_format import audit_object_labels
from customers.selectors import CUSTOMER_COUNTS_SECONDS, customer_list_cache_usable
from resellers.models import AuditEvent, Reseller
from resellers.selectors import audit_list

# Lines of activity on the dashboard.
DASHBOARD_ACTIVITY_LINES = 8


def dashboard_activity(*, reseller: Reseller, list_version: int) -> list[tuple[AuditEvent, str]]:
    """The reseller's latest audit events, each with its object's name as it reads now in the
    reader's language (core.audit_format.audit_object_labels).

    Naming the objects takes a query per kind of object (subscriptions with their customers,
    plans and products; customers), which was most of the dashboard's time: the names are kept
    in Django's cache under the events shown, the language and the version of the reseller's
    customer list (`list_version`, as customers.selectors.customer_summary read it: one cache
    read fewer). So a new event, or any saved customer (its name, and the name of each of its
    subscriptions), names them afresh at once; whatever else changes a name is audited for the
    reseller (a plan or role changed, a profile edited), except a product renamed by staff in
    the admin or a person's new email address, which show within CUSTOMER_COUNTS_SECONDS.
    """
    events = list(audit_list(reseller=reseller)[:DASHBOARD_ACTIVITY_LINES])
    if not events:
        return []
    key = ":".join(
        [
            "dashboard:activity-names",
            reseller.public_id,
            str(list_version),
            get_language(),
            ",".join(str(event.pk) for event in events),
        ]
    )
    usable = customer_list_cache_usable()
    labels: list[str] | None = cache.get(key) if usable else None
    if labels is None or len(labels) != len(events):
        labels = audit_object_labels(events)
        if usable:
            cache.set(key, labels, timeout=CUSTOMER_COUNTS_SECONDS)
    return list(zip(events, labels, strict=True))
