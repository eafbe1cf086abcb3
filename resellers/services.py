"""Writes for resellers, their teams and the audit log. Every write is audited."""

from typing import Any, Protocol

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from core.emails import email_queue
from core.languages import language_for_country
from core.middleware import audit_via, client_ip
from core.models import User
from core.ratelimit import Limit, limits_enforce
from core.tokens import OneTimeToken, TokenState, token_consume
from resellers.models import ADDRESS_REQUIRED, AuditEvent, Membership, Reseller, TeamInvitation
from resellers.roles import Action, Role, require
from resellers.validators import normalise_vat_id


def audit_record(
    *,
    actor: User | None,
    reseller: Reseller | None,
    action: str,
    obj: models.Model,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    customer_public_id: str = "",
) -> AuditEvent:
    """Append one row to the audit log; the client's IP comes from the request being served."""
    return AuditEvent.objects.create(
        actor=actor,
        actor_email=actor.email if actor else "",
        reseller=reseller,
        customer_public_id=customer_public_id,
        action=action,
        object_type=obj._meta.label_lower,
        object_id=str(getattr(obj, "public_id", obj.pk)),
        object_repr=str(obj)[:255],
        before=before,
        after=after,
        ip=client_ip.get(),
        via=audit_via.get(),
    )


def snapshot(obj: models.Model, fields: list[str]) -> dict[str, Any]:
    return {name: _jsonable(getattr(obj, name)) for name in fields}


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


PROFILE_FIELDS = [
    "name",
    "address",
    "country",
    "vat_id",
    "billing_email",
    "currency",
    "language",
    "time_zone",
]


@transaction.atomic
def reseller_apply(
    *,
    user: User,
    name: str,
    country: str,
    vat_id: str,
    billing_email: str,
    currency: str,
    address: str = "",
    language: str | None = None,
) -> Reseller:
    """A signed-in user applies to become a partner; the reseller waits for staff approval.
    The application form requires the postal address (ResellerProfileForm)."""
    if Membership.objects.filter(user=user).exists():
        raise ValidationError(_("You are already a member of a reseller."))
    reseller = Reseller(
        name=name.strip(),
        address=address.strip(),
        country=country,
        vat_id=vat_id,
        billing_email=billing_email,
        currency=currency,
        # English in the United Kingdom is British English (dates 06/12/2026).
        language=language_for_country(language or user.language, country),
        status=Reseller.Status.PENDING,
    )
    try:
        reseller.vat_id = normalise_vat_id(country=country, vat_id=vat_id)
    except ValidationError as error:
        raise ValidationError({"vat_id": error.messages}) from None
    reseller.full_clean()
    reseller.save()
    membership = Membership.objects.create(reseller=reseller, user=user, role=Role.OWNER)
    audit_record(
        actor=user,
        reseller=reseller,
        action="reseller.applied",
        obj=reseller,
        after=snapshot(reseller, [*PROFILE_FIELDS, "status"]),
    )
    audit_record(
        actor=user,
        reseller=reseller,
        action="membership.created",
        obj=membership,
        after={"user": user.email, "role": membership.role},
    )
    email_queue(
        to=reseller.billing_email,
        template="reseller_applied",
        context={"reseller_name": reseller.name},
        language=reseller.language,
    )
    return reseller


def _reseller_set_status(
    *, reseller: Reseller, by: User | None, status: str, action: str, template: str
) -> Reseller:
    with transaction.atomic():
        locked = Reseller.objects.select_for_update().get(pk=reseller.pk)
        if locked.status == status:
            return locked
        before = locked.status
        locked.status = status
        locked.status_changed_at = timezone.now()
        locked.save(update_fields=["status", "status_changed_at"])
        audit_record(
            actor=by,
            reseller=locked,
            action=action,
            obj=locked,
            before={"status": before},
            after={"status": status},
        )
        recipients = {locked.billing_email} | set(
            locked.memberships.filter(role=Role.OWNER).values_list("user__email", flat=True)
        )
        for to in sorted(recipients):
            email_queue(
                to=to,
                template=template,
                context={"reseller_name": locked.name, "portal_url": settings.PORTAL_URL},
                language=locked.language,
            )
    return locked


def reseller_approve(*, reseller: Reseller, by: User | None) -> Reseller:
    """Staff approve an application (or reactivate a suspended reseller); owners are emailed."""
    return _reseller_set_status(
        reseller=reseller,
        by=by,
        status=Reseller.Status.ACTIVE,
        action="reseller.approved",
        template="reseller_approved",
    )


def reseller_suspend(*, reseller: Reseller, by: User | None) -> Reseller:
    return _reseller_set_status(
        reseller=reseller,
        by=by,
        status=Reseller.Status.SUSPENDED,
        action="reseller.suspended",
        template="reseller_suspended",
    )


@transaction.atomic
def reseller_update_profile(*, membership: Membership, **fields: Any) -> Reseller:
    require(membership.role, Action.PROFILE_EDIT)
    return _reseller_update_profile(membership.reseller_id, actor=membership.user, fields=fields)


@transaction.atomic
def reseller_update_profile_by_staff(*, reseller: Reseller, by: User, **fields: Any) -> Reseller:
    """Vendor staff correct a reseller's profile (the admin): the same checks and audit entry
    as the owner's edit, with the staff user as actor."""
    return _reseller_update_profile(reseller.pk, actor=by, fields=fields)


def _reseller_update_profile(reseller_id: int, *, actor: User, fields: dict[str, Any]) -> Reseller:
    reseller = Reseller.objects.select_for_update().get(pk=reseller_id)
    before = snapshot(reseller, PROFILE_FIELDS)
    for name, value in fields.items():
        if name not in PROFILE_FIELDS:
            raise TypeError(name)
        setattr(reseller, name, value)
    reseller.address = reseller.address.strip()
    if before["address"] and not reseller.address:
        # The next commission statement must still name the supplier with its address.
        raise ValidationError({"address": ADDRESS_REQUIRED})
    try:
        reseller.vat_id = normalise_vat_id(country=str(reseller.country), vat_id=reseller.vat_id)
    except ValidationError as error:
        raise ValidationError({"vat_id": error.messages}) from None
    reseller.full_clean()
    reseller.save()
    after = snapshot(reseller, PROFILE_FIELDS)
    if after != before:
        audit_record(
            actor=actor,
            reseller=reseller,
            action="reseller.profile_updated",
            obj=reseller,
            before=before,
            after=after,
        )
    return reseller


def invitation_limits_enforce(*, reseller: Reseller, user: User, resend: bool = False) -> None:
    """Count one invitation email (team or customer) against the reseller's and the person's
    hourly limits, resends against their own lower limits too; raise RateLimited when one is
    reached. Called after the input was checked, inside the sending transaction, so bad input
    uses up nothing and a refused send saves nothing."""

    def company(limit: int) -> str:
        return ngettext(
            "Your company can send at most %(limit)d invitation an hour, and that limit has "
            "been reached.",
            "Your company can send at most %(limit)d invitations an hour, and that limit has "
            "been reached.",
            limit,
        ) % {"limit": limit}

    def person(limit: int) -> str:
        return ngettext(
            "You can send at most %(limit)d invitation an hour, and that limit has been reached.",
            "You can send at most %(limit)d invitations an hour, and that limit has been reached.",
            limit,
        ) % {"limit": limit}

    limits = [
        Limit(
            scope="invitations",
            key=reseller.public_id,
            limit=settings.INVITATIONS_PER_HOUR,
            message=company(settings.INVITATIONS_PER_HOUR),
            # Redis unreachable: sent, counted per process; a signed-in, audited team member
            # sends it, and the email waits in the database until a worker can send it anyway.
            fail_open=True,
        ),
        Limit(
            scope="invitations-user",
            key=user.public_id,
            limit=settings.INVITATIONS_PER_HOUR_PER_USER,
            message=person(settings.INVITATIONS_PER_HOUR_PER_USER),
            fail_open=True,  # as above
        ),
    ]
    if resend:
        per_reseller = settings.INVITATION_RESENDS_PER_HOUR
        per_user = settings.INVITATION_RESENDS_PER_HOUR_PER_USER
        limits += [
            Limit(
                scope="invitation-resends",
                key=reseller.public_id,
                limit=per_reseller,
                message=ngettext(
                    "Your company can resend at most %(limit)d invitation an hour, and that "
                    "limit has been reached.",
                    "Your company can resend at most %(limit)d invitations an hour, and that "
                    "limit has been reached.",
                    per_reseller,
                )
                % {"limit": per_reseller},
                fail_open=True,  # as above: a resend is an invitation sent again
            ),
            Limit(
                scope="invitation-resends-user",
                key=user.public_id,
                limit=per_user,
                message=ngettext(
                    "You can resend at most %(limit)d invitation an hour, and that limit has "
                    "been reached.",
                    "You can resend at most %(limit)d invitations an hour, and that limit has "
                    "been reached.",
                    per_user,
                )
                % {"limit": per_user},
                fail_open=True,  # as above
            ),
        ]
    limits_enforce(*limits)


def _invitation_email(invitation: TeamInvitation, raw_token: str, inviter: User) -> None:
    email_queue(
        to=invitation.email,
        template="team_invitation",
        context={
            "reseller_name": invitation.reseller.name,
            "inviter": inviter.display_name,
            # Lazy: translated in the email's language, not the inviting page's.
            "role": Role(invitation.role).label,
            "role_code": invitation.role,
            "expires_at": invitation.expires_at,
        },
        language=invitation.language,
        secrets={
            "accept_url": settings.PORTAL_URL
            + reverse("resellers:join", kwargs={"token": raw_token})
        },
    )


@transaction.atomic
def team_invite(*, membership: Membership, email: str, role: str) -> TeamInvitation:
    """Invite someone to the team; an open invitation to the same email gets a fresh link."""
    require(membership.role, Action.TEAM_MANAGE)
    email = email.strip()
    reseller = membership.reseller
    if reseller.memberships.filter(user__email__iexact=email).exists():
        raise ValidationError({"email": _("This person is already in your team.")})
    if role not in Role.values:
        raise ValidationError({"role": _("Choose a role.")})
    invitation = team_invitation_open_for(reseller=reseller, email=email) or TeamInvitation(
        reseller=reseller, email=email
    )
    invitation.role = role
    invitation.invited_by = membership.user
    invitation.language = reseller.language
    raw = invitation.renew_token()
    invitation.full_clean()
    invitation_limits_enforce(reseller=reseller, user=membership.user)
    invitation.save()
    audit_record(
        actor=membership.user,
        reseller=reseller,
        action="team_invitation.sent",
        obj=invitation,
        after={"email": invitation.email, "role": role},
    )
    _invitation_email(invitation, raw, membership.user)
    return invitation


def team_invitation_open_for(*, reseller: Reseller, email: str) -> TeamInvitation | None:
    return (
        reseller.invitations.select_for_update()
        .filter(email__iexact=email, consumed_at__isnull=True, withdrawn_at__isnull=True)
        .first()
    )


@transaction.atomic
def team_invitation_resend(*, membership: Membership, invitation: TeamInvitation) -> TeamInvitation:
    """Send a new link; the old one stops working."""
    require(membership.role, Action.TEAM_MANAGE)
    invitation = TeamInvitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.state in (TokenState.USED, TokenState.WITHDRAWN):
        raise ValidationError(_("This invitation was already used or withdrawn."))
    invitation_limits_enforce(reseller=invitation.reseller, user=membership.user, resend=True)
    raw = invitation.renew_token()
    invitation.save(update_fields=["token_hash", "expires_at"])
    audit_record(
        actor=membership.user,
        reseller=invitation.reseller,
        action="team_invitation.resent",
        obj=invitation,
    )
    _invitation_email(invitation, raw, membership.user)
    return invitation


@transaction.atomic
def team_invitation_withdraw(*, membership: Membership, invitation: TeamInvitation) -> None:
    require(membership.role, Action.TEAM_MANAGE)
    updated = TeamInvitation.objects.filter(
        pk=invitation.pk, consumed_at__isnull=True, withdrawn_at__isnull=True
    ).update(withdrawn_at=timezone.now())
    if updated:
        audit_record(
            actor=membership.user,
            reseller=invitation.reseller,
            action="team_invitation.withdrawn",
            obj=invitation,
        )


class InvitationError(Exception):
    """Why an invitation link cannot be accepted; the page explains it and nothing changes."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def user_has_verified_email(user: User, email: str) -> bool:
    from allauth.account.models import EmailAddress

    return EmailAddress.objects.filter(user=user, email__iexact=email, verified=True).exists()


class EmailBoundInvitation(Protocol):
    """A one-time link meant for one email address (team and customer invitations)."""

    email: str

    @property
    def state(self) -> TokenState: ...


def invitation_check(invitation: EmailBoundInvitation, *, user: User) -> None:
    """Raise InvitationError unless the link is still valid and `user` owns the invited email,
    verified (by Google). A refusal changes nothing: the right person can still accept."""
    if invitation.state != TokenState.VALID:
        raise InvitationError(invitation.state)
    if not user_has_verified_email(user, invitation.email):
        raise InvitationError("wrong_account")


def invitation_claim(invitation: OneTimeToken, *, user: User) -> None:
    """Use up the link for `user`; of concurrent claims exactly one gets through."""
    invitations = type(invitation)._default_manager.all()
    if not token_consume(invitations, pk=invitation.pk, accepted_by=user):
        raise InvitationError(TokenState.USED)


@transaction.atomic
def team_invitation_accept(*, invitation: TeamInvitation, user: User) -> Membership:
    """Join the team. The signed-in user must own the invited email, verified (by Google)."""
    invitation_check(invitation, user=user)
    invitation_claim(invitation, user=user)
    membership, created = Membership.objects.get_or_create(
        reseller=invitation.reseller, user=user, defaults={"role": invitation.role}
    )
    audit_record(
        actor=user,
        reseller=invitation.reseller,
        action="team_invitation.accepted",
        obj=invitation,
        after={"user": user.email, "role": membership.role, "joined": created},
    )
    return membership


def _lock_team(reseller_id: int) -> Reseller:
    # Owner counts are read and then changed: lock the reseller row so two owners demoting
    # each other at the same moment cannot leave the team with none.
    return Reseller.objects.select_for_update().get(pk=reseller_id)


def _ensure_not_last_owner(reseller: Reseller, target: Membership, field: str) -> None:
    if target.role == Role.OWNER and reseller.memberships.filter(role=Role.OWNER).count() <= 1:
        raise ValidationError(
            {field: _("A team needs at least one owner: make someone else owner first.")}
        )


def membership_mark_used(*, membership: Membership) -> None:
    """Remember that the user works in this reseller now, so the next sign-in lands there.

    A preference of the user's, not a change to the team: not audited."""
    membership.last_used_at = timezone.now()
    Membership.objects.filter(pk=membership.pk).update(last_used_at=membership.last_used_at)


@transaction.atomic
def membership_change_role(*, membership: Membership, target: Membership, role: str) -> Membership:
    require(membership.role, Action.TEAM_MANAGE)
    if role not in Role.values:
        raise ValidationError({"role": _("Choose a role.")})
    reseller = _lock_team(membership.reseller_id)
    target = Membership.objects.select_for_update().get(pk=target.pk, reseller=reseller)
    if target.role == role:
        return target
    if role != Role.OWNER:
        _ensure_not_last_owner(reseller, target, "role")
    before = target.role
    target.role = role
    target.save(update_fields=["role"])
    audit_record(
        actor=membership.user,
        reseller=reseller,
        action="membership.role_changed",
        obj=target,
        before={"role": before},
        after={"role": role},
    )
    return target


@transaction.atomic
def membership_remove(*, membership: Membership, target: Membership) -> None:
    """Owners remove members; anyone may leave. The last owner can do neither."""
    if target.pk != membership.pk:
        require(membership.role, Action.TEAM_MANAGE)
    reseller = _lock_team(membership.reseller_id)
    target = Membership.objects.select_for_update().get(pk=target.pk, reseller=reseller)
    _ensure_not_last_owner(reseller, target, "__all__")
    audit_record(
        actor=membership.user,
        reseller=reseller,
        action="membership.removed",
        obj=target,
        before={"user": target.user.email, "role": target.role},
    )
    target.delete()
