"""The project's URLs with Settings → Webhooks mounted where config/urls.py is to mount them
(`settings/webhooks/`), for the page tests until it does."""

from django.urls import include, path

from config.urls import urlpatterns as project_urlpatterns

urlpatterns = [
    *project_urlpatterns,
    path("settings/webhooks/", include("webhooks.urls")),
]
