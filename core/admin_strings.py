"""Django's own strings that its catalogues leave untranslated in some of the portal's
languages (Django 6.1: "- Select an option -" has no German or Dutch entry and an empty Spanish
one; the admin's "Run" button has an empty Spanish entry and none in German).

Marked here so `make translations` copies them into the project's catalogues, where a
translation wins over Django's (LOCALE_PATHS are searched before the installed apps'). Never
called: gettext_noop only marks.
"""

from django.utils.translation import gettext_noop

DJANGO_STRINGS = (
    # django.db.models.fields.BLANK_CHOICE_LABEL, the empty choice of every select.
    gettext_noop("- Select an option -"),
    # The admin change list's button that applies the chosen action.
    gettext_noop("Run"),
)
