import re
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy, ngettext
from django.views.decorators.http import require_POST

from core import selectors, sweeper
from core.emails import secret_placeholder
from core.models import OutboundEmail, User
from core.queue import task_enqueue_on_commit
from core.tasks import send_email


@admin.register(User)
class PortalUserAdmin(UserAdmin):
    ordering = ["email"]
    list_display = ["email", "first_name", "last_name", "is_staff", "is_active", "last_login"]
    search_fields = ["email", "first_name", "last_name"]
    readonly_fields = ["public_id", "last_login", "date_joined"]
    fieldsets = (
        (None, {"fields": ("email", "password", "public_id")}),
        ("Personal", {"fields": ("first_name", "last_name", "language")}),
        (
            "Permissions",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("email", "is_staff", "password1", "password2")}),
    )

    # Passwords are for staff only: resellers and customers sign in with Google (or the
    # development sign-in). A user saved here without staff status keeps no usable password,
    # and staff cannot set one for such a user (core.adapters refuses it at sign-in too).
    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        if not obj.is_staff:
            obj.set_unusable_password()
        super().save_model(request, obj, form, change)

    def user_change_password(
        self, request: HttpRequest, id: str, form_url: str = ""
    ) -> HttpResponse:
        user = self.get_object(request, unquote(id))
        if user is not None and not user.is_staff:
            raise PermissionDenied
        return super().user_change_password(request, id, form_url)


class DeliveryFilter(admin.SimpleListFilter):
    """The rows behind the "Background work" box's email lines (core.selectors)."""

    title = gettext_lazy("delivery")
    parameter_name = "delivery"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [
            ("pending", gettext_lazy("Pending: on their way")),
            ("overdue", gettext_lazy("Overdue: their task was lost")),
            ("failed", gettext_lazy("Failed")),
        ]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[OutboundEmail]
    ) -> QuerySet[OutboundEmail]:
        now = timezone.now()
        if self.value() == "pending":
            return queryset.filter(selectors.emails_pending_q(now=now))
        if self.value() == "overdue":
            return queryset.filter(selectors.emails_overdue_q(now=now))
        if self.value() == "failed":
            return queryset.filter(selectors.emails_failed_q())
        return queryset


# Any one-time link's placeholder (core.emails.secret_placeholder), whatever its name.
_BEFORE_NAME, _AFTER_NAME = secret_placeholder("\0").split("\0")
_PLACEHOLDER = re.compile(re.escape(_BEFORE_NAME) + r"\w+" + re.escape(_AFTER_NAME))


def email_link_erased(email: OutboundEmail) -> bool:
    """The email carried a one-time link that is gone (erased when it was given up for good):
    sent again, it would show the placeholder instead of the link."""
    if email.secrets_sealed:
        return False
    return any(
        _PLACEHOLDER.search(text) for text in (email.subject, email.body_text, email.body_html)
    )


@admin.register(OutboundEmail)
class OutboundEmailAdmin(admin.ModelAdmin):
    list_display = ["created_at", "to", "template", "language", "status", "attempts"]
    list_filter = [DeliveryFilter, "status", "template", "language"]
    search_fields = ["to"]
    # The sealed one-time links are never shown, not even encrypted. Everything else is read
    # only: the Message-ID, the due time, the queue stamp and the claim are the task's.
    exclude = ["secrets_sealed"]
    readonly_fields = [f.name for f in OutboundEmail._meta.fields if f.name != "secrets_sealed"]
    actions = ["send_again"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_requeue_permission(self, request: HttpRequest) -> bool:
        """Sending failed emails again and queuing all pending work at once: superusers, and
        staff given "Can change outbound email" (the admin edits no email otherwise)."""
        return request.user.has_perm("core.change_outboundemail")

    @admin.action(description=gettext_lazy("Send again"), permissions=["requeue"])
    def send_again(self, request: HttpRequest, queryset: QuerySet[OutboundEmail]) -> None:
        """Failed emails back to pending, due now, and queued; their attempts and last error
        stay for the record. Not an email whose one-time link was erased: it would arrive
        without its link."""
        now = timezone.now()
        sent_again = 0
        skipped = queryset.exclude(status=OutboundEmail.Status.FAILED).count()
        with transaction.atomic():
            for email in queryset.filter(status=OutboundEmail.Status.FAILED).order_by("pk"):
                if email_link_erased(email):
                    messages.error(
                        request,
                        gettext(
                            "Not sent again: the one-time link of the email to %(to)s was "
                            "erased. Send a new invitation from the portal instead."
                        )
                        % {"to": email.to},
                    )
                    continue
                back = OutboundEmail.objects.filter(
                    pk=email.pk, status=OutboundEmail.Status.FAILED
                ).update(status=OutboundEmail.Status.PENDING, next_attempt_at=now, queued_at=now)
                if back:
                    task_enqueue_on_commit(send_email, email.pk)
                    self.log_change(request, email, gettext("Sent again"))
                    sent_again += back
        if sent_again:
            messages.success(
                request,
                ngettext(
                    "%(count)d email queued to be sent again.",
                    "%(count)d emails queued to be sent again.",
                    sent_again,
                )
                % {"count": sent_again},
            )
        if skipped:
            messages.warning(
                request,
                ngettext(
                    "%(count)d email left as it was: only failed emails are sent again.",
                    "%(count)d emails left as they were: only failed emails are sent again.",
                    skipped,
                )
                % {"count": skipped},
            )

    def get_urls(self) -> list[URLPattern]:
        queue_again = self.admin_site.admin_view(require_POST(self.work_queue_again_view))
        return [
            path("queue-again/", queue_again, name="core_outboundemail_queue_again"),
            *super().get_urls(),
        ]

    def work_queue_again_view(self, request: HttpRequest) -> HttpResponse:
        """The "Background work" box's button: every sweep at once, overdue or not (it queues
        again what is pending; every task is safe to run twice), then back to the index."""
        if not self.has_requeue_permission(request):
            raise PermissionDenied
        queued = sweeper.work_sweep(force=True)
        messages.add_message(request, *work_queued_message(queued))
        return redirect("admin:index")


def work_queued_message(queued: dict[str, int]) -> tuple[int, str]:
    """The admin message (level, text) saying what a forced sweep queued, per kind of work."""
    if not queued:
        return messages.WARNING, gettext(
            "Another sweep is running: nothing was queued. Try again in a minute."
        )
    registered = sweeper.backlog_registered()
    parts = []
    for name, count in queued.items():
        if name in registered:
            parts.append(registered[name][1](count))
        else:
            parts.append(
                ngettext("%(count)d task (%(name)s)", "%(count)d tasks (%(name)s)", count)
                % {"count": count, "name": name}
            )
    failed = [name for name in registered if name not in queued]
    if failed:
        return messages.ERROR, gettext(
            "Queued again: %(queued)s. Not swept (see the log): %(failed)s."
        ) % {"queued": ", ".join(parts), "failed": ", ".join(failed)}
    if not any(queued.values()):
        return messages.INFO, gettext("Nothing was waiting: nothing queued again.")
    return messages.SUCCESS, gettext("Queued again: %(queued)s.") % {"queued": ", ".join(parts)}
