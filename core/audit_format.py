"""How an audit entry's changes read: one formatter per kind of value, the same on every page
that lists changes (the reseller's Manage page, the customer's own page, the admin).

An audit row keeps its before/after as JSON: codes ("reseller_card"), plain amounts ("8.00"),
ISO dates. Each key is read through the audited model's field where it has one (its
verbose_name as the label, its choices for codes, its type for the kind of value), and through
OTHER_KEYS where the service recorded something that is not a field of that model.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models
from django.utils import timezone
from django.utils.formats import date_format, number_format
from django.utils.functional import Promise
from django.utils.text import capfirst
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.money import money_format


class Kind(StrEnum):
    TEXT = "text"
    MONEY = "money"
    DATE = "date"
    DATETIME = "datetime"
    NUMBER = "number"
    BOOLEAN = "boolean"
    CHOICE = "choice"
    RELATED = "related"
    # A message recorded in English (a payment gateway's answer): shown in the reader's language
    # where the catalogue has it (the demo gateway's are Stripe's messages, marked).
    MESSAGE = "message"


@dataclass(frozen=True)
class Change:
    label: str
    before: str
    after: str


# Keys the services record that are not fields of the audited model: label and kind, and for
# codes the model field ("app.model.field") whose choices name them.
OTHER_KEYS: dict[str, tuple[Promise, Kind, str]] = {
    "amount": (_("amount"), Kind.MONEY, ""),
    "balance": (_("balance"), Kind.MONEY, ""),
    "order": (_("order"), Kind.TEXT, ""),
    "payment": (_("payment"), Kind.TEXT, ""),
    "refund": (_("refund"), Kind.TEXT, ""),
    "refund_status": (_("refund status"), Kind.CHOICE, "billing.refund.status"),
    "credit_note": (_("credit note"), Kind.TEXT, ""),
    "corrects": (_("corrects"), Kind.TEXT, ""),
    "reason": (_("reason"), Kind.TEXT, ""),
    "gateway": (_("paid through"), Kind.TEXT, ""),
    "error": (_("error"), Kind.MESSAGE, ""),
    "card": (_("card"), Kind.TEXT, ""),
    "expires": (_("expires"), Kind.TEXT, ""),
    "attempt": (_("attempt"), Kind.NUMBER, ""),
    "next_payment_attempt": (_("next payment attempt"), Kind.DATE, ""),
    "subscriptions_suspended": (_("subscriptions suspended"), Kind.NUMBER, ""),
    "method": (_("method"), Kind.CHOICE, "billing.refund.method"),
    "payer": (_("paid with"), Kind.CHOICE, "billing.invoice.payer"),
    "user": (_("user"), Kind.TEXT, ""),
    "role": (_("role"), Kind.CHOICE, "resellers.membership.role"),
    "joined": (_("joined"), Kind.BOOLEAN, ""),
    "email": (_("sent to"), Kind.TEXT, ""),
    "to_reseller": (_("for reseller"), Kind.TEXT, ""),
    "via": (_("through"), Kind.CHOICE, ""),
    "transfer_tokens_withdrawn": (_("transfer tokens withdrawn"), Kind.NUMBER, ""),
}
VIA = {"token": _("a transfer token"), "staff": _("vendor staff")}
# Kept for the record, not worth a line on the page ("refund": the key the refund was sent to
# the gateway with, which the refund's own page in the admin shows).
HIDDEN = {"to_reseller_id", "previous", "currency", "refund"}
# A creation lists what it set only when that is short (the full record is on its page).
CREATION_MAX_FIELDS = 3


def _model(object_type: str) -> type[models.Model] | None:
    # object_type is a model's label_lower ("customers.customer"); a bare model name is matched
    # across apps.
    if "." not in object_type:
        return next((m for m in apps.get_models() if m._meta.model_name == object_type), None)
    try:
        return apps.get_model(object_type)
    except (LookupError, ValueError):
        return None


def _model_field(object_type: str, name: str) -> models.Field | None:
    model = _model(object_type)
    if model is None:
        return None
    for field in model._meta.concrete_fields:
        if name in (field.name, field.attname):
            return field
    return None


def _field_at(path: str) -> models.Field | None:
    app_label, model_name, name = path.split(".")
    try:
        return apps.get_model(app_label, model_name)._meta.get_field(name)
    except (LookupError, FieldDoesNotExist):
        return None


def _kind_of(field: models.Field, name: str) -> Kind:
    # A relation recorded by its id ("plan_id") is shown as the object; one recorded by its
    # name ("user": an email) was written to be read as it is.
    if field.is_relation:
        return Kind.RELATED if name == field.attname != field.name else Kind.TEXT
    if field.choices:
        return Kind.CHOICE
    if isinstance(field, models.DecimalField):
        return Kind.MONEY
    if isinstance(field, models.DateTimeField):
        return Kind.DATETIME
    if isinstance(field, models.DateField):
        return Kind.DATE
    if isinstance(field, models.BooleanField):
        return Kind.BOOLEAN
    if isinstance(field, models.IntegerField):
        return Kind.NUMBER
    return Kind.TEXT


def field_describe(object_type: str, name: str) -> tuple[str, Kind, models.Field | None]:
    """The label (capitalised, in the active language), the kind of value and the field that
    names its codes, for one audit key of an object of `object_type` ("app.model")."""
    field = _model_field(object_type, name)
    if field is not None:
        return capfirst(str(field.verbose_name)), _kind_of(field, name), field
    if name in OTHER_KEYS:
        label, kind, path = OTHER_KEYS[name]
        return capfirst(str(label)), kind, _field_at(path) if path else None
    return capfirst(name.replace("_", " ")), Kind.TEXT, None


# The name of each related object an entry records by its id, by (model, str(pk)): read for all
# the entries of a page at once (audit_changes_list).
RelatedNames = Mapping[tuple[type[models.Model], str], str]


def value_format(
    value: Any,
    kind: Kind,
    *,
    currency: str,
    field: models.Field | None = None,
    names: RelatedNames | None = None,
) -> str:
    """One recorded value as the reader reads it: money with its currency, dates in the active
    language and (for times) the active time zone, codes by their label, a related object by its
    name (from `names` when given, else read). "" for no value."""
    if value is None or value == "":
        return ""
    try:
        if kind is Kind.MONEY:
            return money_format(Decimal(str(value)), currency) if currency else str(value)
        if kind is Kind.DATETIME:
            moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
            if timezone.is_aware(moment):
                moment = timezone.localtime(moment)
            return date_format(moment, "SHORT_DATETIME_FORMAT")
        if kind is Kind.DATE:
            day = value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
            return date_format(day, "SHORT_DATE_FORMAT")
        if kind is Kind.NUMBER:
            return number_format(value, force_grouping=True)
    except (InvalidOperation, ValueError, TypeError):
        return str(value)
    if kind is Kind.BOOLEAN:
        return "✓" if value else "✗"
    if kind is Kind.MESSAGE:
        return gettext(str(value))
    if kind is Kind.CHOICE:
        choices = dict(getattr(field, "flatchoices", None) or VIA)
        return str(choices.get(value, value))
    if kind is Kind.RELATED and field is not None:
        if names is None:
            names = _related_names({_related_model(field): {str(value)}})
        return names.get((_related_model(field), str(value)), str(value))
    return str(value)


def _related_model(field: models.Field) -> type[models.Model]:
    model = field.related_model
    assert isinstance(model, type) and issubclass(model, models.Model), field
    return model


def _related_names(wanted: dict[type[models.Model], set[str]]) -> dict[tuple[type, str], str]:
    """The names of the related objects wanted, one query per model (what their names read of
    other rows, once for all of them); an id no longer found is left out."""
    names: dict[tuple[type, str], str] = {}
    for model, ids in wanted.items():
        valid = [i for i in ids if _pk_valid(model._meta.pk, i)]
        if not valid:
            continue
        objects = model._default_manager.filter(pk__in=valid).fetch_mode(models.FETCH_PEERS)
        for obj in objects:
            names[(model, str(obj.pk))] = str(obj)
    return names


def _currency(event: Any) -> str:
    # Services record the currency beside the amounts of invoices and payments; a change to a
    # subscription is in its reseller's currency.
    for values in (event.after or {}, event.before or {}):
        if values.get("currency"):
            return str(values["currency"])
    reseller = getattr(event, "reseller", None)
    return str(reseller.currency) if reseller is not None else ""


def audit_changes(event: Any) -> list[Change]:
    """Label, before and after of each field an AuditEvent changed, formatted for the reader."""
    return audit_changes_list([event])[0]


def audit_changes_list(events: Sequence[Any]) -> list[list[Change]]:
    """audit_changes of each event, with one query per kind of related object they record by
    its id (a subscription's plan) rather than one per value: a page of the audit log costs the
    same whatever its lines changed."""
    described: list[tuple[Any, str, list[tuple[str, str, Kind, models.Field | None]]]] = []
    wanted: dict[type[models.Model], set[str]] = {}
    for event in events:
        before = event.before or {}
        after = event.after or {}
        keys: list[tuple[str, str, Kind, models.Field | None]] = []
        if before or len(after) <= CREATION_MAX_FIELDS:
            for name in [*before, *(key for key in after if key not in before)]:
                if name in HIDDEN:
                    continue
                label, kind, field = field_describe(event.object_type, name)
                keys.append((name, label, kind, field))
                if kind is Kind.RELATED and field is not None:
                    for value in (before.get(name), after.get(name)):
                        if value is not None and value != "":
                            wanted.setdefault(_related_model(field), set()).add(str(value))
        described.append((event, _currency(event) if keys else "", keys))
    names = _related_names(wanted)
    result = []
    for event, currency, keys in described:
        rows = []
        before = event.before or {}
        after = event.after or {}
        for name, label, kind, field in keys:
            old = value_format(before.get(name), kind, currency=currency, field=field, names=names)
            new = value_format(after.get(name), kind, currency=currency, field=field, names=names)
            if old != new:
                rows.append(Change(label, old, new))
        result.append(rows)
    return result


def audit_object_label(event: Any) -> str:
    """The audited object as it reads now, in the reader's language ("… — Flexible" in German
    too); the name recorded at the time (in the writer's language) when it no longer exists."""
    return audit_object_labels([event])[0]


# The relations an audited object's name (its __str__) reads, by object type: loaded with the
# objects (a subscription's name is its customer's, its plan's and its product's).
NAME_RELATIONS: dict[str, tuple[str, ...]] = {
    "subscriptions.subscription": ("customer", "plan__product"),
    "resellers.membership": ("user", "reseller"),
}


def audit_object_labels(events: Sequence[Any]) -> list[str]:
    """audit_object_label of each event, with one query per kind of object among them rather
    than one per event and per relation its name reads (a subscription's name reads its
    customer, plan and product: four queries a line made most of the dashboard's time)."""
    ids: dict[str, set[str]] = {}
    for event in events:
        ids.setdefault(event.object_type, set()).add(str(event.object_id))
    found: dict[tuple[str, str], models.Model] = {}
    for object_type, object_ids in ids.items():
        model = _model(object_type)
        if model is None:
            continue
        key = model._meta.pk if "public_id" not in _field_names(model) else None
        lookup = key.name if key is not None else "public_id"
        valid = [i for i in object_ids if key is None or _pk_valid(key, i)]
        objects = model._default_manager.filter(**{f"{lookup}__in": valid})
        # What the name reads of other rows: the relations named below in the same query, any
        # other once for all the objects of the kind (peers), never once per line.
        if relations := NAME_RELATIONS.get(object_type):
            objects = objects.select_related(*relations)
        objects = objects.fetch_mode(models.FETCH_PEERS)
        for obj in objects:
            found[(object_type, str(getattr(obj, lookup)))] = obj
    return [
        str(found.get((event.object_type, str(event.object_id)), event.object_repr))
        for event in events
    ]


def _field_names(model: type[models.Model]) -> set[str]:
    return {field.name for field in model._meta.concrete_fields}


def _pk_valid(field: models.Field, value: str) -> bool:
    try:
        field.to_python(value)
    except ValidationError:
        return False
    return True
