"""Reads. Everything tenant-owned is looked up through the reseller it belongs to."""

from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from core.tokens import token_digest
from resellers.models import AuditEvent, Membership, Reseller, TeamInvitation
from resellers.roles import Role


def memberships_for_user(*, user) -> list[Membership]:
    return list(
        Membership.objects.filter(user=user).select_related("reseller").order_by("reseller__name")
    )


def membership_landing(*, memberships: list[Membership]) -> Membership | None:
    """Where a user without a chosen reseller (just signed in) lands: the reseller last used,
    else the one where the user's role is highest; one open for business before a pending one."""
    rank = {role: index for index, role in enumerate(Role.values)}  # owner first
    return min(
        memberships,
        key=lambda m: (
            not m.reseller.is_active,
            -(m.last_used_at.timestamp() if m.last_used_at else float("-inf")),
            rank.get(m.role, len(rank)),
            m.reseller.name,
        ),
        default=None,
    )


def membership_list(*, reseller: Reseller) -> QuerySet[Membership]:
    return reseller.memberships.select_related("user").order_by("user__email")


def membership_managers(*, reseller_id: int) -> QuerySet[Membership]:
    """The reseller's owners and admins, with their users, by email: those emailed about what
    needs the team's attention (a customer that left, a failing webhook endpoint, renewals)."""
    return (
        Membership.objects.filter(reseller_id=reseller_id, role__in=[Role.OWNER, Role.ADMIN])
        .select_related("user")
        .order_by("user__email")
    )


def membership_get(*, reseller: Reseller, public_id: str) -> Membership:
    try:
        return membership_list(reseller=reseller).get(public_id=public_id)
    except Membership.DoesNotExist:
        raise Http404(_("No such team member.")) from None


def team_invitation_list_open(*, reseller: Reseller) -> QuerySet[TeamInvitation]:
    return reseller.invitations.filter(
        consumed_at__isnull=True, withdrawn_at__isnull=True
    ).select_related("invited_by")


def team_invitation_get(*, reseller: Reseller, public_id: str) -> TeamInvitation:
    try:
        return reseller.invitations.get(public_id=public_id)
    except TeamInvitation.DoesNotExist:
        raise Http404(_("No such invitation.")) from None


def team_invitation_by_token(*, raw_token: str) -> TeamInvitation | None:
    """The invitation a link's token belongs to, whatever its state; None if it never existed."""
    return (
        TeamInvitation.objects.select_related("reseller", "invited_by")
        .filter(token_hash=token_digest(raw_token))
        .first()
    )


def team_invitations_open_for_user(*, user) -> QuerySet[TeamInvitation]:
    """Valid invitations to any of the user's verified addresses, for the Become a partner page."""
    from allauth.account.models import EmailAddress

    emails = EmailAddress.objects.filter(user=user, verified=True).values_list("email", flat=True)
    matches_an_email = Q(pk__in=[])
    for email in emails:
        matches_an_email |= Q(email__iexact=email)
    return (
        TeamInvitation.objects.filter(
            matches_an_email,
            consumed_at__isnull=True,
            withdrawn_at__isnull=True,
            expires_at__gt=timezone.now(),
        )
        .select_related("reseller", "invited_by")
        .order_by("-created_at")
    )


def owner_count(*, reseller: Reseller) -> int:
    return reseller.memberships.filter(role="owner").count()


def audit_list(*, reseller: Reseller) -> QuerySet[AuditEvent]:
    # Without the actor's row: each event keeps the actor's email, which is what pages show.
    return AuditEvent.objects.filter(reseller_id=reseller.pk)
