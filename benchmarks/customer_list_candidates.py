"""Other ways to render the Customers page's rows, measured side by side with the page itself
by `python -m benchmarks.customer_list --candidates` (docs/benchmarks.md). None is used by the
portal: each is the page's own template (templates/customers/customer_list.html) with its rows
loop replaced, rendered by the page's own view from the view's own context.

- plain: the page's template as it is, compiled here like the others (the harness's yardstick);
- partialdef: the row a `{% partialdef %}`, the loop `{% partial %}` for each dictionary;
- cached: the loop inside `{% cache %}`, keyed by the reseller's list version
  (customers.list_version), the page asked for, the language and the time zone;
- jinja2: the rows rendered by Jinja2 (autoescaping, Django's date and number formatting as
  filters), the rest by Django's engine; only when Jinja2 can be imported (the portal does not
  depend on it: put it on PYTHONPATH for the run).
"""

import hashlib
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.humanize.templatetags.humanize import intcomma
from django.http import HttpResponse
from django.http.response import HttpResponseBase
from django.template import engines
from django.urls import path
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.safestring import mark_safe
from django.utils.translation import gettext

import customers.views
from benchmarks.urls import urlpatterns as benchmark_urlpatterns
from core.http import PortalRequest, ResellerRequest
from customers.list_version import customer_list_version

_LOOP_START = "{% for row in rows %}"
_LOOP_END = "{% endfor %}"

_JINJA_ROWS = """{% for row in rows %}
    <tr>
      <td>{{ row.organisation }}</td>
      <td>{{ row.domain or "—" }}</td>
      <td>{{ row.contact_name }}<br><small>{{ row.contact_email }}</small></td>
      <td>{{ row.type_label }}</td>
      <td><span class="badge status-{{ row.status }}">{{ row.status_label }}</span></td>
      <td>{% if row.licences is none %}—{% else %}{{ row.licences|intcomma }}{% endif %}</td>
      <td>{{ row.plan or "—" }}</td>
      <td>{{ row.created_at|short_date }}</td>
      <td>{% if row.url %}<a class="button small secondary" href="{{ row.url }}">{{ manage }}</a>
      {%- endif %}</td>
    </tr>
{% endfor %}"""


def _page_source() -> tuple[str, str, str]:
    """The page's template: what comes before its rows loop, the loop's body, what follows."""
    source = (Path(settings.BASE_DIR) / "templates/customers/customer_list.html").read_text()
    before, _, rest = source.partition(_LOOP_START)
    body, _, after = rest.partition(_LOOP_END)
    assert body and after, "the rows loop of customer_list.html moved: update this module"
    return before, body, after


def _sources() -> dict[str, str]:
    before, body, after = _page_source()
    loop = _LOOP_START + body + _LOOP_END
    sources = {
        "plain": before + loop + after,
        "partialdef": before
        + "{% partialdef customer_row %}"
        + body
        + "{% endpartialdef %}"
        + _LOOP_START
        + "{% partial customer_row %}"
        + _LOOP_END
        + after,
        "cached": before.replace("{% load ", "{% load cache ", 1)
        + "{% cache 60 customer_rows rows_key %}"
        + loop
        + "{% endcache %}"
        + after,
    }
    if _jinja_environment() is not None:
        sources["jinja2"] = before + "{{ rows_html }}" + after
    return sources


_jinja: Any = None


def _jinja_environment() -> Any:
    global _jinja  # built once, on first use
    if _jinja is None:
        try:
            import jinja2
        except ImportError:
            return None
        _jinja = jinja2.Environment(autoescape=True)
        _jinja.filters["short_date"] = lambda value: date_format(
            timezone.localtime(value), "SHORT_DATE_FORMAT"
        )
        _jinja.filters["intcomma"] = intcomma
        _jinja.rows = _jinja.from_string(_JINJA_ROWS)
    return _jinja


_variant: ContextVar[str] = ContextVar("customer_list_variant", default="")
_templates: dict[str, Any] = {}
_page_render = customers.views.render


def _render(
    request: ResellerRequest,
    template_name: str,
    context: dict[str, Any] | None = None,
    **kwargs: Any,
) -> HttpResponse:
    """customers.views.render while a candidate runs: its template, the view's context."""
    variant = _variant.get()
    if not variant:
        return _page_render(request, template_name, context, **kwargs)
    if not _templates:
        django = engines["django"]
        _templates.update({name: django.from_string(s) for name, s in _sources().items()})
    context = dict(context or {})
    if variant == "cached":
        version = customer_list_version(reseller=request.reseller)
        key = ":".join(
            [
                request.reseller.public_id,
                str(version),
                request.get_full_path(),
                translation.get_language() or "",
                timezone.get_current_timezone_name(),
            ]
        )
        context["rows_key"] = hashlib.sha256(key.encode()).hexdigest()
    elif variant == "jinja2":
        rows = _jinja_environment().rows.render(rows=context["rows"], manage=gettext("Manage"))
        context["rows_html"] = mark_safe(rows)  # noqa: S308 - rendered with autoescape on
    return HttpResponse(_templates[variant].render(context, request), **kwargs)


customers.views.render = _render  # type: ignore[assignment]


def candidate(name: str) -> Any:
    def view(request: PortalRequest) -> HttpResponseBase:
        token = _variant.set(name)
        try:
            return customers.views.customer_list(request)
        finally:
            _variant.reset(token)

    return view


CANDIDATES = ["plain", "partialdef", "cached", "jinja2"]

urlpatterns = [
    *(
        path(f"benchmark/candidate/{name}/customers/", candidate(name))
        for name in CANDIDATES
        if name != "jinja2" or _jinja_environment() is not None
    ),
    *benchmark_urlpatterns,
]
