from typing import cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from core.adapters import invitation_sign_up_allow
from core.forms import add_service_errors
from core.http import PortalRequest, ResellerRequest
from core.models import User
from core.ratelimit import RateLimited, rate_limited_response
from core.tokens import TokenState
from resellers import selectors, services
from resellers.access import reseller_required
from resellers.forms import (
    MembershipRoleForm,
    ResellerProfileForm,
    ResellerSettingsForm,
    TeamInviteForm,
)
from resellers.middleware import SESSION_KEY
from resellers.roles import Role


@login_required
def apply(request: PortalRequest) -> HttpResponse:
    """Become a partner: a signed-in user with no reseller applies for one."""
    if request.memberships:
        return redirect("home")
    user = cast(User, request.user)
    form = ResellerProfileForm(request.POST or None, initial={"billing_email": user.email})
    if request.method == "POST" and form.is_valid():
        try:
            reseller = services.reseller_apply(user=user, **form.cleaned_data)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            request.session[SESSION_KEY] = reseller.public_id
            services.membership_mark_used(membership=reseller.memberships.get(user=user))
            return redirect("resellers:status")
    invitations = selectors.team_invitations_open_for_user(user=user)
    return render(request, "resellers/apply.html", {"form": form, "invitations": invitations})


@login_required
def status(request: PortalRequest) -> HttpResponse:
    """What a member of a pending or suspended reseller sees, and nothing else."""
    membership = request.membership
    if membership is None:
        return redirect("resellers:apply")
    if membership.reseller.is_active:
        return redirect("dashboard")
    return render(request, "resellers/status.html", {"status_reseller": membership.reseller})


@login_required
@require_POST
def switch(request: PortalRequest) -> HttpResponse:
    public_id = request.POST.get("reseller", "")
    # Only a reseller among the user's own memberships can become active.
    for membership in request.memberships:
        if membership.reseller.public_id == public_id:
            request.session[SESSION_KEY] = public_id
            services.membership_mark_used(membership=membership)
            messages.success(
                request, _("You are now working as %(name)s.") % {"name": membership.reseller.name}
            )
            break
    else:
        messages.error(request, _("You are not a member of that reseller."))
    return redirect("dashboard")


def _rate_limited(request: HttpRequest, error: RateLimited) -> HttpResponse:
    return rate_limited_response(
        request, error, back_url=reverse("resellers:team"), back_label=_("Back to the team")
    )


@reseller_required()
def team(request: ResellerRequest) -> HttpResponse:
    membership = request.membership
    invite_form = TeamInviteForm(request.POST or None)
    if request.method == "POST" and invite_form.is_valid():
        try:
            invitation = services.team_invite(membership=membership, **invite_form.cleaned_data)
        except ValidationError as error:
            add_service_errors(invite_form, error)
        except RateLimited as error:
            return _rate_limited(request, error)
        else:
            messages.success(
                request, _("Invitation sent to %(email)s.") % {"email": invitation.email}
            )
            return redirect("resellers:team")
    context = {
        "members": selectors.membership_list(reseller=membership.reseller),
        "invitations": selectors.team_invitation_list_open(reseller=membership.reseller),
        "invite_form": invite_form,
        "roles": Role.choices,
        "owner_count": selectors.owner_count(reseller=membership.reseller),
    }
    status_code = 400 if invite_form.errors else 200
    return render(request, "resellers/team.html", context, status=status_code)


@reseller_required()
@require_POST
def member_role(request: ResellerRequest, membership_id: str) -> HttpResponse:
    membership = request.membership
    target = selectors.membership_get(reseller=membership.reseller, public_id=membership_id)
    form = MembershipRoleForm(request.POST)
    if form.is_valid():
        try:
            services.membership_change_role(
                membership=membership, target=target, role=form.cleaned_data["role"]
            )
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(
                request, _("Role of %(email)s changed.") % {"email": target.user.email}
            )
    else:
        messages.error(request, _("Choose a role."))
    return redirect("resellers:team")


@reseller_required()
@require_POST
def member_remove(request: ResellerRequest, membership_id: str) -> HttpResponse:
    membership = request.membership
    target = selectors.membership_get(reseller=membership.reseller, public_id=membership_id)
    try:
        services.membership_remove(membership=membership, target=target)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("resellers:team")
    if target.pk == membership.pk:
        messages.success(request, _("You left %(name)s.") % {"name": membership.reseller.name})
        request.session.pop(SESSION_KEY, None)
        return redirect("home")
    messages.success(
        request, _("%(email)s was removed from the team.") % {"email": target.user.email}
    )
    return redirect("resellers:team")


@reseller_required()
@require_POST
def invitation_resend(request: ResellerRequest, team_invitation_id: str) -> HttpResponse:
    membership = request.membership
    invitation = selectors.team_invitation_get(
        reseller=membership.reseller, public_id=team_invitation_id
    )
    try:
        services.team_invitation_resend(membership=membership, invitation=invitation)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    except RateLimited as error:
        return _rate_limited(request, error)
    else:
        messages.success(
            request,
            _("A new invitation was sent to %(email)s; the previous link no longer works.")
            % {"email": invitation.email},
        )
    return redirect("resellers:team")


@reseller_required()
@require_POST
def invitation_withdraw(request: ResellerRequest, team_invitation_id: str) -> HttpResponse:
    membership = request.membership
    invitation = selectors.team_invitation_get(
        reseller=membership.reseller, public_id=team_invitation_id
    )
    services.team_invitation_withdraw(membership=membership, invitation=invitation)
    messages.success(
        request, _("The invitation to %(email)s was withdrawn.") % {"email": invitation.email}
    )
    return redirect("resellers:team")


def join(request: HttpRequest, token: str) -> HttpResponse:
    """A team invitation link: who invites, then sign in with Google and accept."""
    invitation = selectors.team_invitation_by_token(raw_token=token)
    if invitation is None:
        return render(request, "invitations/invalid.html", {"reason": "unknown"}, status=404)
    state = invitation.state
    if state != TokenState.VALID:
        return render(
            request,
            "invitations/invalid.html",
            {"reason": state, "inviter_name": invitation.reseller.name},
            status=410,
        )
    context = {"invitation": invitation, "token": token}
    if not request.user.is_authenticated:
        invitation_sign_up_allow(request, invitation)
        return render(request, "resellers/join.html", context)
    if request.method == "POST":
        try:
            membership = services.team_invitation_accept(invitation=invitation, user=request.user)
        except services.InvitationError as error:
            if error.reason == "wrong_account":
                return render(request, "invitations/wrong_account.html", context, status=403)
            return render(
                request,
                "invitations/invalid.html",
                {"reason": error.reason, "inviter_name": invitation.reseller.name},
                status=410,
            )
        request.session[SESSION_KEY] = membership.reseller.public_id
        services.membership_mark_used(membership=membership)
        messages.success(request, _("Welcome to %(name)s.") % {"name": membership.reseller.name})
        return redirect("home")
    if not services.user_has_verified_email(request.user, invitation.email):
        return render(request, "invitations/wrong_account.html", context, status=403)
    return render(request, "resellers/join.html", context)


@reseller_required()
def settings_view(request: ResellerRequest) -> HttpResponse:
    """The reseller's profile: owners edit it, everyone else reads it."""
    membership = request.membership
    reseller = membership.reseller
    editable = membership.role == Role.OWNER
    form = ResellerSettingsForm(request.POST or None, instance=reseller)
    if request.method == "POST":
        if form.is_valid():
            fields = {name: form.cleaned_data[name] for name in form.Meta.fields}
            try:
                services.reseller_update_profile(membership=membership, **fields)
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                messages.success(request, _("Settings saved."))
                return redirect("resellers:settings")
        reseller.refresh_from_db()
    if not editable:
        for field in form.fields.values():
            field.disabled = True
    return render(
        request,
        "resellers/settings.html",
        {"form": form, "editable": editable},
        status=400 if form.errors else 200,
    )
