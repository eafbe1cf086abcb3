"""Settings → Webhooks (mounted at `settings/webhooks/`)."""

from django.urls import path

from webhooks import views

app_name = "webhooks"

urlpatterns = [
    path("", views.endpoint_list, name="list"),
    path("<pid:endpoint_id>/", views.endpoint_detail, name="detail"),
    path("<pid:endpoint_id>/disable/", views.endpoint_disable, name="disable"),
    path("<pid:endpoint_id>/enable/", views.endpoint_enable, name="enable"),
    path("<pid:endpoint_id>/delete/", views.endpoint_delete, name="delete"),
    path("<pid:endpoint_id>/replay/", views.events_replay_range, name="replay_range"),
    path(
        "<pid:endpoint_id>/events/<str:event_id>/replay/", views.event_replay, name="replay_event"
    ),
]
