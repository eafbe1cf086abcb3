"""Resellers and customers sign in with Google: a password one of them got (through the password
reset, before it was for staff only) is made unusable. Accounts that never had one keep their
value, and so their sessions (Django ties a session to the password hash)."""

from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX, make_password
from django.db import migrations


def non_staff_passwords_unusable(apps, schema_editor) -> None:
    User = apps.get_model("core", "User")
    with_password = User.objects.filter(is_staff=False).exclude(
        password__startswith=UNUSABLE_PASSWORD_PREFIX
    )
    for pk in with_password.values_list("pk", flat=True).iterator():
        # One random unusable value each, as set_unusable_password() writes.
        User.objects.filter(pk=pk).update(password=make_password(None))


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0003_language_choices"),
    ]

    operations = [
        migrations.RunPython(non_staff_passwords_unusable, migrations.RunPython.noop),
    ]
