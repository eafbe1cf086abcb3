from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.ids import PublicIdField
from core.languages import language_choices
from core.validators import validate_name


class PortalUserManager(BaseUserManager["User"]):
    """Users are known by email; there is no username."""

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> "User":
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        user = self.model(email=self.normalize_email(email), **extra)
        if password is None:
            user.set_unusable_password()
        else:
            user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> "User":
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)


class User(AbstractUser):
    """A person: reseller member, customer admin or vendor staff, known by email."""

    username = None  # type: ignore[assignment]
    # AbstractUser's names, with the check every name in the portal has.
    first_name = models.CharField(
        _("first name"), max_length=150, blank=True, validators=[validate_name]
    )
    last_name = models.CharField(
        _("last name"), max_length=150, blank=True, validators=[validate_name]
    )
    email = models.EmailField(_("email address"), unique=True)
    public_id = PublicIdField()
    language = models.CharField(
        _("language"), max_length=8, choices=language_choices, default=settings.LANGUAGE_CODE
    )

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    objects = PortalUserManager()  # type: ignore[misc, assignment]

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        constraints = [
            models.UniqueConstraint(Lower("email"), name="core_user_email_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.email

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.email


class OutboundEmail(models.Model):
    """An email rendered once, then sent by a task; the status makes sending safe to repeat."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    to = models.EmailField(_("to"))
    template = models.CharField(_("template"), max_length=100)
    language = models.CharField(_("language"), max_length=8)
    subject = models.CharField(_("subject"), max_length=255)
    body_text = models.TextField(_("text body"))
    body_html = models.TextField(_("HTML body"))
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    # Recorded before the first SMTP call and sent as the Message-ID header: a send repeated
    # after a lost answer carries the same one, so mail systems see one message.
    message_id = models.CharField(
        _("Message-ID"), max_length=255, unique=True, null=True, blank=True, editable=False
    )
    # The pending work this row is (core.sweeper): when it may be sent (later after a
    # temporary failure), when a task was last asked to send it, and when a worker claimed it.
    next_attempt_at = models.DateTimeField(_("next attempt"), default=timezone.now)
    queued_at = models.DateTimeField(_("queued"), null=True, blank=True)
    claimed_at = models.DateTimeField(_("claimed"), null=True, blank=True)
    # One-time links (core.emails `secrets`), encrypted with a key derived from SECRET_KEY,
    # kept only until the email is sent or given up, so a lost task can still send it.
    secrets_sealed = models.TextField(_("sealed links"), blank=True, editable=False)
    # Files sent along, read from the default storage when the email goes out (not copied into
    # the row): [{"path": storage name, "filename": shown name, "mimetype": type}].
    attachments = models.JSONField(_("attachments"), default=list, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)

    class Meta:
        verbose_name = _("outbound email")
        verbose_name_plural = _("outbound emails")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "created_at"]),
            models.Index(fields=["status", "next_attempt_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.template} → {self.to}"
