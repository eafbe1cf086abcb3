"""The one CSV writer of the product: every CSV the portal hands out is written here, so no
export can carry a formula into a spreadsheet (CSV injection, a.k.a. formula injection).

A cell is neutralised the OWASP way (owasp.org/www-community/attacks/CSV_Injection): when it
starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return, a single quote is put in
front of it, so Excel, LibreOffice and Google Sheets show it as text instead of evaluating it,
and the cell is written between double quotes (inner quotes doubled, RFC 4180), so a separator
inside it cannot start a new cell.

Decision: a plain number (an optional minus sign, digits, optionally a dot and digits, as
``-12.10``) is left as it is. A spreadsheet reads it as the number it is and evaluates nothing,
and a negative amount (a balance owed back) must stay a number in the file; anything else that
starts with ``-`` (``-2+3``, ``-1+1|cmd``) is neutralised. OWASP's guidance allows this
exception for cells that are plain numbers. The price: a reader that wants the text back strips
one leading quote from the cells that start with ``'=``, ``'+``, ``'-``, ``'@``, ``'\\t`` or
``'\\r``.

Use ``csv_response()`` for a download, or ``lines_stream()`` for the encoded lines. Nothing else
calls the standard library's ``csv.writer`` (tests/core/test_security_exports_and_headers.py checks
the source tree).
"""

import re
from collections.abc import Iterable, Iterator, Sequence

from django import forms
from django.http import HttpResponse, StreamingHttpResponse
from django.utils import timezone, translation

# What makes a spreadsheet read a cell as a formula (OWASP's list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# A plain, possibly negative, decimal number: read as a number, never as a formula.
_PLAIN_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
# A cell with one of these is quoted, as RFC 4180 (and Python's csv.QUOTE_MINIMAL) does.
_NEEDS_QUOTES = re.compile(r'[",\r\n]')
LINE_END = "\r\n"


def _is_formula(value: str) -> bool:
    return value.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(value)


def cell_neutralise(value: str) -> str:
    """`value` as text a spreadsheet will not evaluate: a leading quote before a formula start,
    unless the cell is a plain number."""
    return "'" + value if _is_formula(value) else value


def _cell(value: str) -> str:
    if _is_formula(value) or _NEEDS_QUOTES.search(value):
        return '"' + cell_neutralise(value).replace('"', '""') + '"'
    return value


def line(cells: Sequence[str]) -> str:
    """One CSV line (comma separated, CRLF ended) with every cell neutralised."""
    return ",".join(_cell(cell) for cell in cells) + LINE_END


def lines_stream(rows: Iterable[Sequence[str]]) -> Iterator[bytes]:
    """The rows as UTF-8 CSV lines, one at a time (for a streamed response)."""
    for row in rows:
        yield line(row).encode()


def csv_response(
    *, filename: str, header: Sequence[str], rows: Iterable[Sequence[str]]
) -> StreamingHttpResponse:
    """A streamed CSV download: the header line, then the rows, however many, without holding
    them in memory. The rows are made in the request's time zone and language: a streamed
    response is read after the middleware has put the defaults back."""
    zone, language = timezone.get_current_timezone(), translation.get_language()

    def stream() -> Iterator[bytes]:
        with timezone.override(zone), translation.override(language):
            yield from lines_stream([header])
            yield from lines_stream(rows)

    response = StreamingHttpResponse(stream(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def export_refused(form: forms.Form) -> HttpResponse:
    """An export's answer to filters its page refuses: 400, with each message, as plain text."""
    errors = "; ".join(str(message) for messages in form.errors.values() for message in messages)
    return HttpResponse(errors, status=400, content_type="text/plain; charset=utf-8")
