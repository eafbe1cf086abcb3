"""Fail when a translation catalogue is missing or has an untranslated or fuzzy entry.

CI runs it right after `makemessages` (`make translations-check`), so a string added to the code
and not yet translated fails the build instead of showing up in English on a translated page.
Compilation (`msgfmt --check-format`, run by `compilemessages`) already checks placeholders;
this command checks completeness, which msgfmt does not.

The PO parser follows GNU gettext's format: strings split over several lines, `msgctxt`,
`msgid_plural` with `msgstr[N]`, `#,` flags. The header (empty msgid, no context) and obsolete
`#~` entries are not checked.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import to_locale

_KEYWORD = re.compile(r"^(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?)(?:\s+(.*))?$")
_QUOTED = re.compile(r'^"((?:[^"\\]|\\.)*)"$')
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.)")
_SIMPLE_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
    '"': '"',
    "'": "'",
    "?": "?",
    "\\": "\\",
}
_NPLURALS = re.compile(r"nplurals\s*=\s*(\d+)")


class PoSyntaxError(ValueError):
    def __init__(self, lineno: int, message: str) -> None:
        super().__init__(f"line {lineno}: {message}")
        self.lineno = lineno
        self.message = message


@dataclass
class PoEntry:
    lineno: int = 0
    msgctxt: str | None = None
    msgid: str | None = None
    msgid_plural: str | None = None
    msgstr: str | None = None
    msgstr_plural: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    obsolete: bool = False

    @property
    def has_msgstr(self) -> bool:
        return self.msgstr is not None or bool(self.msgstr_plural)

    @property
    def is_header(self) -> bool:
        return self.msgid == "" and self.msgctxt is None

    @property
    def is_fuzzy(self) -> bool:
        return "fuzzy" in self.flags


def _unescape(body: str) -> str:
    def replace(match: re.Match[str]) -> str:
        code = match.group(1)
        if code[0] == "x" and len(code) > 1:
            return chr(int(code[1:], 16))
        if code[0] in "01234567":
            return chr(int(code, 8))
        return _SIMPLE_ESCAPES.get(code, code)

    return _ESCAPE.sub(replace, body)


def _unquote(text: str, lineno: int) -> str:
    match = _QUOTED.match(text)
    if match is None:
        raise PoSyntaxError(lineno, f"expected a quoted string, found {text!r}")
    return _unescape(match.group(1))


def parse_po(text: str) -> list[PoEntry]:
    """Every entry of a PO file, obsolete ones included (marked), in file order."""
    entries: list[PoEntry] = []
    entry = PoEntry()
    # The field continuation lines ("...") extend: a keyword, and the plural index for msgstr[N].
    target: tuple[str, int] | None = None

    def finish() -> None:
        nonlocal entry, target
        if entry.msgid is not None or entry.msgctxt is not None:
            if not entry.obsolete and not entry.has_msgstr:
                raise PoSyntaxError(entry.lineno, "entry without msgstr")
            entries.append(entry)
        entry, target = PoEntry(), None

    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            finish()
            continue
        if line.startswith("#~"):
            if entry.has_msgstr:
                finish()
            elif entry.msgid is not None or entry.msgctxt is not None:
                raise PoSyntaxError(lineno, "obsolete line inside an entry")
            entry.obsolete, target = True, None
            continue
        if line.startswith("#"):
            # A comment after a msgstr belongs to the next entry (no blank line between them).
            if entry.has_msgstr or entry.obsolete:
                finish()
            if line.startswith("#,"):
                entry.flags.update(flag.strip() for flag in line[2:].split(",") if flag.strip())
            target = None
            continue
        if line.startswith('"'):
            if target is None:
                raise PoSyntaxError(lineno, "string continuation without a keyword before it")
            _append(entry, target, _unquote(line, lineno))
            continue
        match = _KEYWORD.match(line)
        if match is None:
            raise PoSyntaxError(lineno, f"unexpected line {line[:60]!r}")
        keyword, index, rest = match.group(1), match.group(2), match.group(3) or ""
        if entry.obsolete:
            finish()
        value = _unquote(rest, lineno)
        if keyword == "msgctxt":
            if entry.msgctxt is not None or entry.msgid is not None:
                finish()
            entry.msgctxt, entry.lineno, target = value, entry.lineno or lineno, ("msgctxt", 0)
        elif keyword == "msgid":
            if entry.msgid is not None:
                finish()
            entry.msgid, entry.lineno, target = value, entry.lineno or lineno, ("msgid", 0)
        elif keyword == "msgid_plural":
            if entry.msgid is None or entry.msgid_plural is not None or entry.has_msgstr:
                raise PoSyntaxError(lineno, "msgid_plural out of place")
            entry.msgid_plural, target = value, ("msgid_plural", 0)
        elif index is None:
            if entry.msgid is None or entry.msgid_plural is not None or entry.has_msgstr:
                raise PoSyntaxError(lineno, "msgstr out of place (a plural entry needs msgstr[N])")
            entry.msgstr, target = value, ("msgstr", 0)
        else:
            number = int(index)
            if entry.msgid_plural is None or number in entry.msgstr_plural:
                raise PoSyntaxError(lineno, f"msgstr[{number}] out of place")
            entry.msgstr_plural[number], target = value, ("msgstr_plural", number)
    finish()
    return entries


def _append(entry: PoEntry, target: tuple[str, int], value: str) -> None:
    name, number = target
    if name == "msgstr_plural":
        entry.msgstr_plural[number] += value
    else:
        setattr(entry, name, (getattr(entry, name) or "") + value)


def _nplurals(entries: list[PoEntry]) -> int | None:
    for entry in entries:
        if entry.is_header and not entry.obsolete:
            match = _NPLURALS.search(entry.msgstr or "")
            return int(match.group(1)) if match else None
    return None


def catalogue_problems(entries: list[PoEntry]) -> list[tuple[int, str, PoEntry]]:
    """(line, what is wrong, entry) for each entry a translator still has to look at."""
    nplurals = _nplurals(entries)
    problems: list[tuple[int, str, PoEntry]] = []
    for entry in entries:
        if entry.obsolete or entry.is_header:
            continue
        if entry.is_fuzzy:
            problems.append((entry.lineno, "fuzzy", entry))
        if entry.msgid_plural is None:
            if not entry.msgstr:
                problems.append((entry.lineno, "untranslated", entry))
            continue
        expected = range(max(nplurals or 0, max(entry.msgstr_plural, default=-1) + 1))
        empty = [str(n) for n in expected if not entry.msgstr_plural.get(n)]
        if empty:
            problems.append((entry.lineno, f"untranslated (plural form {', '.join(empty)})", entry))
    return problems


def _describe(entry: PoEntry) -> str:
    def short(text: str) -> str:
        text = text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
        return f'"{text[:77]}..."' if len(text) > 80 else f'"{text}"'

    context = f"msgctxt {short(entry.msgctxt)} " if entry.msgctxt is not None else ""
    return f"{context}msgid {short(entry.msgid or '')}"


def _reads_the_source(language: str) -> bool:
    """The source language and its regional variants ("en-gb": English with British dates)
    show the msgids themselves: they have no catalogue to check."""
    return language.split("-")[0] == settings.LANGUAGE_CODE.split("-")[0]


class Command(BaseCommand):
    help = (
        "Fail if a translation catalogue (locale/<lang>/LC_MESSAGES/django.po) is missing or has "
        "an untranslated or fuzzy entry. Run `makemessages` first."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "-l",
            "--locale",
            action="append",
            dest="languages",
            help="Language to check (repeatable). Default: every language in settings.LANGUAGES "
            "except LANGUAGE_CODE, the source language, and its regional variants.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.LOCALE_PATHS:
            raise CommandError("settings.LOCALE_PATHS is empty: no catalogues to check.")
        locale_dir = Path(settings.LOCALE_PATHS[0])
        languages: list[str] = options["languages"] or [
            code for code, _name in settings.LANGUAGES if not _reads_the_source(code)
        ]

        errors: list[str] = []
        counts: list[str] = []
        for language in languages:
            path = locale_dir / to_locale(language) / "LC_MESSAGES" / "django.po"
            shown = self._shown(path)
            if not path.is_file():
                errors.append(f"{shown}: missing catalogue for {language!r} (run makemessages)")
                continue
            try:
                entries = parse_po(path.read_text(encoding="utf-8-sig"))
            except UnicodeDecodeError as exc:
                errors.append(f"{shown}: not UTF-8 ({exc})")
                continue
            except PoSyntaxError as exc:
                errors.append(f"{shown}:{exc.lineno}: syntax error: {exc.message}")
                continue
            for lineno, what, entry in catalogue_problems(entries):
                errors.append(f"{shown}:{lineno}: {what}: {_describe(entry)}")
            checked = sum(1 for e in entries if not e.obsolete and not e.is_header)
            counts.append(f"{language} ({checked} entries)")

        if errors:
            raise CommandError(
                f"{len(errors)} problem(s) in the translation catalogues:\n" + "\n".join(errors)
            )
        self.stdout.write(self.style.SUCCESS("Catalogues complete: " + ", ".join(counts)))

    @staticmethod
    def _shown(path: Path) -> str:
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            return str(path)
