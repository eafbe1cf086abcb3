from typing import Any

from allauth.account.adapter import DefaultAccountAdapter, get_adapter
from allauth.account.forms import RequestLoginCodeForm, UserTokenForm
from allauth.account.models import EmailAddress
from allauth.core import context
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.models import SocialLogin
from django.apps import apps
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest
from django.shortcuts import render
from django.utils import translation

from core.languages import language_from_locale
from core.models import User
from core.tokens import OneTimeToken, TokenState
from core.validators import name_clean

# The invitation (team or customer) whose link this browser opened while signed out.
INVITATION_SESSION_KEY = "sign_up_invitation"


def invitation_sign_up_allow(request: HttpRequest, invitation: OneTimeToken) -> None:
    """Open sign-up, in this browser only, for the address of the invitation it opened.

    The accept views call this for a signed-out visitor of a valid link: the link (its token
    went to the invited address only) is what proves the invitation. The session keeps the
    invitation's model and id, not its address, so that sign-up closes again as soon as the
    invitation is used, withdrawn or expired.
    """
    request.session[INVITATION_SESSION_KEY] = [invitation._meta.label, invitation.pk]


def invitation_sign_up_email(request: HttpRequest) -> str | None:
    """The address sign-up is open for in this browser: that of the open invitation whose link
    it opened (invitation_sign_up_allow), or None."""
    reference = request.session.get(INVITATION_SESSION_KEY)
    if not reference:
        return None
    label, pk = reference
    try:
        model = apps.get_model(label)
    except (LookupError, ValueError):
        return None
    if not issubclass(model, OneTimeToken):
        return None
    invitation = model._default_manager.filter(pk=pk).first()
    if invitation is None or invitation.state != TokenState.VALID:
        return None
    return getattr(invitation, "email", None)


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        # Nobody signs up with an email and a password: resellers and customers come in
        # through Google, staff accounts are made by staff.
        return False

    def is_open_for_invitee_signup(self, request: HttpRequest, email: str) -> bool:
        """Whether `email` may become a new account by the development sign-in code: only the
        invited address of the invitation link this browser opened (case-insensitive)."""
        invited = invitation_sign_up_email(request)
        return invited is not None and invited.casefold() == email.strip().casefold()

    # Passwords are for vendor staff only. Resellers and customers sign in with Google (or the
    # development sign-in code); a password one of them got somehow is never a way in, and the
    # answers are those for an address nobody has, so the pages tell no one who is a customer.

    def authenticate(self, request: HttpRequest, **credentials: Any) -> AbstractBaseUser | None:
        user = super().authenticate(request, **credentials)
        if user is not None and not getattr(user, "is_staff", False):
            # The password was checked (and hashed) as for anyone: same time, same error.
            self.authentication_failed(request, **credentials)
            return None
        return user

    def send_password_reset_mail(
        self, user: AbstractBaseUser, email: str, context: dict[str, Any]
    ) -> None:
        # Nothing goes to a reseller or a customer, as nothing goes to an unknown address
        # (ACCOUNT_EMAIL_UNKNOWN_ACCOUNTS); the page after the request is the same for all.
        if getattr(user, "is_staff", False):
            super().send_password_reset_mail(user, email, context)

    def set_password(self, user: AbstractBaseUser, password: str) -> None:
        # Reset, set and change all write through here: refuse them for anyone but staff.
        if not getattr(user, "is_staff", False):
            raise PermissionDenied
        super().set_password(user, password)


class StaffPasswordResetTokenForm(UserTokenForm):
    """A password reset link is valid only for staff (ACCOUNT_FORMS["user_token"]).

    A link a reseller or a customer may hold from before passwords were staff-only gives the
    same "invalid link" page as a forged one.
    """

    def _get_user(self, uidb36: str) -> AbstractBaseUser | None:
        user = super()._get_user(uidb36)
        return user if user is not None and getattr(user, "is_staff", False) else None


class InviteeRequestLoginCodeForm(RequestLoginCodeForm):
    """The development sign-in's code request (ACCOUNT_FORMS["request_login_code"]); it also
    signs up a never-seen invitee.

    allauth sends codes to existing users only (an unknown address gets the same "code sent"
    page and nothing else), and its code process needs a saved user: the pending sign-in is
    stashed in the session by user id, and the code is checked against that user. So for
    the one address sign-up is open for (AccountAdapter.is_open_for_invitee_signup: the
    invited address of the link this browser opened) the user is created here, just before
    allauth sends the code: no password, the address unverified. Entering the code verifies
    the address (allauth's verify_email_indirectly), which accepting an invitation requires;
    an account whose code is never entered can accept nothing. Every other address is
    answered as before, so the page tells no one who is invited.
    """

    def clean(self) -> dict[str, Any]:
        cleaned_data = super().clean()
        email = cleaned_data.get("email")
        if self.errors or not email or getattr(self, "_user", None) is not None:
            return cleaned_data
        request = context.request
        if get_adapter(request).is_open_for_invitee_signup(request, email):
            self._user = invitee_user_create(email=email)
        return cleaned_data


@transaction.atomic
def invitee_user_create(*, email: str) -> User:
    """A new account for an invited address: no password (Google or a code signs it in), the
    address not yet verified, the language the person browses in."""
    user = User(email=email)
    user.set_unusable_password()
    language = language_from_locale(translation.get_language() or "")
    if language:
        user.language = language
    user.full_clean()
    user.save()
    EmailAddress.objects.create(user=user, email=email, primary=True, verified=False)
    return user


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest, sociallogin: SocialLogin) -> bool:
        return True

    def pre_social_login(self, request: HttpRequest, sociallogin: SocialLogin) -> None:
        """Refuse a Google account whose email Google has not verified.

        Invitations are bound to an email address; an unverified one proves nothing.
        """
        if not any(address.verified for address in sociallogin.email_addresses):
            raise ImmediateHttpResponse(
                render(request, "account/google_unverified.html", status=403)
            )

    def populate_user(self, request: HttpRequest, sociallogin: SocialLogin, data: dict[str, Any]):
        user = super().populate_user(request, sociallogin, data)
        # The name is what its owner typed at Google, shown to teammates and in emails.
        user.first_name = name_clean(user.first_name)
        user.last_name = name_clean(user.last_name)
        language = language_from_locale(sociallogin.account.extra_data.get("locale") or "")
        if language:
            user.language = language
        return user
