"""The development outbox; config.urls includes these only where the demo app is installed (the
local and test settings, never production) and DEBUG is on."""

from django.urls import path

from demo import views

urlpatterns = [
    path("outbox/", views.outbox, name="dev_outbox"),
    path("outbox/<int:pk>/", views.outbox_email, name="dev_outbox_email"),
    path("outbox/<int:pk>/html/", views.outbox_email_html, name="dev_outbox_email_html"),
    path(
        "outbox/<int:pk>/attachments/<int:index>/",
        views.outbox_attachment,
        name="dev_outbox_attachment",
    ),
]
