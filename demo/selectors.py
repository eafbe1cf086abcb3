"""Reads of the development outbox: the emails a signed-in person may see there."""

from django.db.models import QuerySet
from django.http import Http404

from core.models import OutboundEmail, User


def outbox_email_list(*, user: User) -> QuerySet[OutboundEmail]:
    """Staff see every email; anyone else the emails sent to their own address. Newest first."""
    emails = OutboundEmail.objects.order_by("-created_at", "-pk")
    if user.is_staff:
        return emails
    return emails.filter(to__iexact=user.email)


def outbox_email_get(*, user: User, pk: int) -> OutboundEmail:
    """One email of the outbox; another person's is the same 404 as a missing one."""
    email = outbox_email_list(user=user).filter(pk=pk).first()
    if email is None:
        raise Http404("No such email.")
    return email
