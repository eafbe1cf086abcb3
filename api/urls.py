"""Settings → API keys (mounted at `settings/api-keys/`). The API itself is api.v1."""

from django.urls import path

from api import views

app_name = "api_keys"

urlpatterns = [
    path("", views.key_list, name="list"),
    path("<pid:api_key_id>/revoke/", views.key_revoke, name="revoke"),
]
