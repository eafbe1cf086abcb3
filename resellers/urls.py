from django.urls import path

from resellers import views

app_name = "resellers"

urlpatterns = [
    path("partner/apply/", views.apply, name="apply"),
    path("partner/status/", views.status, name="status"),
    path("switch/", views.switch, name="switch"),
    path("team/", views.team, name="team"),
    path("team/members/<pid:membership_id>/role/", views.member_role, name="member_role"),
    path("team/members/<pid:membership_id>/remove/", views.member_remove, name="member_remove"),
    path(
        "team/invitations/<pid:team_invitation_id>/resend/",
        views.invitation_resend,
        name="invitation_resend",
    ),
    path(
        "team/invitations/<pid:team_invitation_id>/withdraw/",
        views.invitation_withdraw,
        name="invitation_withdraw",
    ),
    path("join/<str:token>/", views.join, name="join"),
    path("settings/", views.settings_view, name="settings"),
]
