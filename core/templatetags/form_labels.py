"""Form labels start with a capital in every language. A ModelForm capitalises the labels it
takes from verbose names, but a label given in the form (or a translation written in lower
case, as verbose names are) is shown as it is; the templates pass labels through here."""

from django import template
from django.forms import BoundField
from django.utils.safestring import SafeString
from django.utils.text import capfirst

register = template.Library()


@register.filter
def label_tag_capfirst(field: BoundField) -> SafeString:
    """`field.label_tag` with the label's first letter capitalised (the label is escaped)."""
    return field.label_tag(str(capfirst(field.label)))
