"""The URLs with the development sign-in's code request page. allauth routes that page only when
the development sign-in is on at start-up (config.settings.local); tests that turn it on serve
these URLs (settings.ROOT_URLCONF = "tests.support.dev_sign_in_urls")."""

from allauth.account.views import request_login_code
from django.urls import path

import config.urls

urlpatterns = [
    path("accounts/login/code/", request_login_code, name="account_request_login_code"),
    *config.urls.urlpatterns,
]
