"""Payment tags: `{% demo_cards_notice %}` says, on every page that takes or shows cards, that the
demo's cards are Stripe's test cards and no money moves (billing.payments.demo_gateway);
`|translate_message` shows a gateway's recorded answer in the reader's language."""

from django import template
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext

from billing.payments.gateways import demo_cards

register = template.Library()


@register.simple_tag
def demo_cards_notice() -> SafeString:
    if not demo_cards():
        return mark_safe("")
    return mark_safe(render_to_string("payments/_demo_notice.html"))  # noqa: S308 - escaped by the engine


@register.filter
def translate_message(message: str) -> str:
    """A gateway's answer, recorded in English, in the reader's language where the catalogue
    has it (the demo gateway's are Stripe's own messages, marked); else as recorded."""
    return gettext(message) if message else ""
