"""Errors as RFC 9457 problem details (application/problem+json), in the request's language.

A service's ValidationError names its fields, as on the pages; `errors` lists them so a script
can show each message beside its own input. Another reseller's object answers exactly as a
missing one: the same 404 and the same body.
"""

from typing import Any

from django.core.exceptions import ValidationError
from django.forms import BaseForm
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _

PROBLEM_TYPE = "application/problem+json"


def problem(
    status: int,
    title: str,
    detail: str = "",
    *,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if errors is not None:
        body["errors"] = errors
    response = JsonResponse(body, status=status, content_type=PROBLEM_TYPE)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def field_errors(error: ValidationError) -> list[dict[str, str]]:
    """[{"field": name or "", "message": text}, …] from a service's or a form's error."""
    if hasattr(error, "error_dict"):
        return [
            {"field": "" if field == "__all__" else field, "message": message}
            for field, messages in error.message_dict.items()
            for message in messages
        ]
    return [{"field": "", "message": message} for message in error.messages]


def invalid(errors: list[dict[str, str]]) -> HttpResponse:
    return problem(
        422,
        _("The request is not valid."),
        _("Correct the fields listed and send it again."),
        errors=errors,
    )


def form_invalid(form: BaseForm, names: dict[str, str] | None = None) -> HttpResponse:
    """The 422 for a page's form that refused the input: its messages under the API's field
    names (`names`: the form's field → the API's, where they differ)."""
    names = names or {}
    return invalid(
        [
            {"field": "" if field == "__all__" else names.get(field, field), "message": str(text)}
            for field, messages in form.errors.items()
            for text in messages
        ]
    )


def not_found(request: HttpRequest | None = None) -> HttpResponse:
    return problem(404, _("Not found."), _("There is nothing at this address for your key."))
