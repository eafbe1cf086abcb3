from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.forms import UserTokenForm
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.models import SocialLogin
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.shortcuts import render

from core.languages import language_from_locale
from core.validators import name_clean


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        # Nobody signs up with an email and a password: resellers and customers come in
        # through Google, staff accounts are made by staff.
        return False

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
