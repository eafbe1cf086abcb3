"""Invoice PDF rendering in a warm worker process: time against a minimal document, and memory.

    .venv/bin/python -m benchmarks.invoice_pdf              # or: make bench-pdf
    .venv/bin/python -m benchmarks.invoice_pdf --smoke      # CI: correctness, not timing
    .venv/bin/python -m benchmarks.invoice_pdf --versus /tmp/before  # and another checkout
    .venv/bin/python -m benchmarks.invoice_pdf --profile 20          # where the time goes
    .venv/bin/python -m benchmarks.invoice_pdf --profile 5 --profile-invoice long  # 100 lines

Renders what the Celery task renders (billing.pdf.invoice_pdf_render: the template in the
invoice's language, the Factur-X XML and its XSD check, WeasyPrint layout, PDF/A-3b with the
XML attached) for invoices built in memory, so no database is needed; the task adds a few
queries, the SHA-256 and the storage write.

The yardstick is a minimal WeasyPrint document rendered with the same settings in the same
worker: one paragraph, PDF/A-3b, the worker's FontConfiguration and the invoices' URL fetcher
(nothing fetched). Each round renders the minimal document, the 10-line invoice and, every few
rounds, the 100-line one, one after the other, so a change of load on the machine hits them
alike. It reports

- the minimal document's median, and the 10-line invoice's median and p95 with its ratio to the
  minimal document ("x minimal document"; goal at most 2.5x, reported, not enforced);
- the 100-line invoice's median and its ratio to the 10-line one (target at most 4x: the run
  exits non-zero when missed);
- memory: the worker's resident set size before and after --memory-renders renders of the
  10-line invoice, and its growth over the second half (a leak keeps growing there; caches
  filled by the first renders do not).

Each checkout is rendered by a worker process of its own (this file, run with --worker, with
the checkout first on its path). --versus adds a second checkout (an earlier commit, e.g. from
`git worktree add /tmp/before <commit>`) whose worker takes its turn in every round, so before
and after are measured side by side.

--smoke renders small invoices a few times and checks what the task must produce: a PDF that
opens with the right number of pages, PDF/A-3b identification and the Factur-X XMP, the
Factur-X XML attached and valid against its XSD with the invoice's number, lines and totals,
and the total printed on the page. It exits non-zero when any of it is wrong; timings are
printed, not judged.
"""

import argparse
import cProfile
import functools
import gc
import io
import json
import os
import platform
import pstats
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from io import BytesIO
from pathlib import Path
from typing import Any

TARGET_LONG_RATIO = 4.0
GOAL_MINIMAL_RATIO = 2.5
PRODUCTS = ("Shared Contacts for Gmail", "Shared Labels", "Drive Backup", "Signature Manager")
ISSUED_AT = datetime(2026, 1, 31, 9, 30, tzinfo=UTC)
MINIMAL_DOCUMENT = (
    '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Minimal</title></head>'
    "<body><p>A minimal document.</p></body></html>"
)
REPOSITORY = Path(__file__).resolve().parent.parent
CII = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
}
XMP = {
    "pdfaid": "http://www.aiim.org/pdfa/ns/id/",
    "fx": "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#",
}
# What the XMP metadata must say: PDF/A-3b, and the Factur-X properties (filled in below).
PDFA_3B = {"pdfaid:part": "3", "pdfaid:conformance": "B"}


def build_invoice(lines: int, *, language: str) -> Any:
    """An issued invoice with `lines` lines, in memory (its lines as if prefetched)."""
    from billing.models import Invoice, InvoiceLine

    amounts = [Decimal(4 * (5 + n % 7)) for n in range(lines)]
    subtotal = sum(amounts, Decimal("0.00"))
    vat_amount = (subtotal * Decimal("0.23")).quantize(Decimal("0.01"))
    invoice = Invoice(
        pk=lines,
        number=f"INV-2026-{lines:06d}",
        payer="reseller_card",
        currency="EUR",
        language=language,
        issue_date=ISSUED_AT.date(),
        due_date=date(2026, 2, 14),
        seller={
            "name": "Example Software Ltd",
            "address": "1 Example Quay\nDublin D02 X285",
            "country": "IE",
            "vat_id": "IE6388047V",
            "email": "billing@example.com",
            "iban": "IE29AIBK93115212345678",
            "bic": "AIBKIE2D",
            "payment_means": "card",
        },
        buyer={
            "organisation": "Golden Harbour Dental Ltd",
            "address": "4 Harbour Road\nCork T12 AB34",
            "country": "IE",
            "vat_id": "IE8256796U",
            "email": "accounts@goldenharbour.example",
            "payer_name": "Benchmark Reseller",
        },
        vat_treatment=Invoice.VatTreatment.DOMESTIC,
        vat_rate=Decimal("23.00"),
        subtotal=subtotal,
        vat_amount=vat_amount,
        total=subtotal + vat_amount,
        issued_at=ISSUED_AT,
        line_count=lines,
    )
    invoice._prefetched_objects_cache = {  # type: ignore[attr-defined]
        "lines": [
            InvoiceLine(
                invoice=invoice,
                position=n + 1,
                # As subscriptions.services words a charge.
                description=(
                    f"{PRODUCTS[n % len(PRODUCTS)]} — Flexible: {5 + n % 7} licences, "
                    "01/01/2026 - 01/31/2026"
                ),
                period_start=date(2026, 1, 1),
                period_end=date(2026, 2, 1),
                licences=5 + n % 7,
                unit_price=Decimal("4.00"),
                amount=amount,
            )
            for n, amount in enumerate(amounts)
        ]
    }
    return invoice


def rss_mib() -> float:
    """The resident set size now (Linux /proc), else the peak so far (getrusage)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


# --- the worker: renders in its own process, told what to do one JSON line at a time ----------


def _minimal_render() -> Callable[[], bytes]:
    """The yardstick, with the invoices' settings: the worker's font configuration, nothing
    fetched, PDF/A-3b."""
    from weasyprint import HTML

    from billing import pdf

    def render() -> bytes:
        document = HTML(string=MINIMAL_DOCUMENT, url_fetcher=pdf._no_fetching())
        return document.write_pdf(pdf_variant=pdf.PDF_VARIANT, font_config=pdf._font_config())

    return render


def _timed(render: Callable[[], object]) -> dict[str, float]:
    """Wall-clock and CPU milliseconds of one render. The CPU time is what the ratios use: on a
    machine shared with other work, the wall-clock time also counts the waits for a core."""
    start, start_cpu = time.perf_counter(), time.process_time()
    render()
    return {
        "wall": (time.perf_counter() - start) * 1000,
        "cpu": (time.process_time() - start_cpu) * 1000,
    }


def _xmp_problems(reader: Any, expected: dict[str, str]) -> list[str]:
    """The properties of the PDF's XMP metadata that are missing or wrong. A property may be
    written as an attribute or as an element (both are valid XMP)."""
    from lxml import etree

    metadata = reader.root_object.get("/Metadata")
    if metadata is None:
        return ["no XMP metadata"]
    tree = etree.fromstring(metadata.get_object().get_data())
    problems = []
    for name, value in expected.items():
        found = [
            str(found).strip()
            for found in tree.xpath(f"//@{name} | //{name}/text()", namespaces=XMP)
        ]
        if found != [value]:
            problems.append(f"XMP {name} is {found}, not [{value!r}]")
    return problems


def _pdf_problems(content: bytes, invoice: Any) -> list[str]:
    """What is wrong with an invoice's PDF, in words; empty when it is right."""
    from facturx import xml_check_xsd
    from lxml import etree
    from pypdf import PdfReader

    from billing.facturx import FACTURX_FILENAME, FACTURX_XMP_LEVEL
    from core.money import money_format

    problems: list[str] = []
    number = invoice.number
    reader = PdfReader(BytesIO(content))
    text = "\n".join(page.extract_text() for page in reader.pages)
    facturx_xmp = {
        "fx:DocumentType": "INVOICE",
        "fx:DocumentFileName": FACTURX_FILENAME,
        "fx:ConformanceLevel": FACTURX_XMP_LEVEL,
    }
    problems += [f"{number}: {p}" for p in _xmp_problems(reader, PDFA_3B | facturx_xmp)]
    attachments = reader.attachments
    if list(attachments) != [FACTURX_FILENAME]:
        return [*problems, f"{number}: attachments {list(attachments)}, not [{FACTURX_FILENAME}]"]
    xml = attachments[FACTURX_FILENAME][0]
    try:
        xml_check_xsd(xml, flavor="factur-x", level="en16931")
    except Exception as error:  # the library raises a bare Exception
        problems.append(f"{number}: the Factur-X XML is not valid: {error}")
    tree = etree.fromstring(xml)

    def amount(path: str) -> Decimal:
        return Decimal(tree.xpath(f"string({path})", namespaces=CII) or "NaN")

    items = tree.xpath("//ram:IncludedSupplyChainTradeLineItem", namespaces=CII)
    lines_sum = sum(
        (Decimal(item.xpath("string(.//ram:LineTotalAmount)", namespaces=CII)) for item in items),
        Decimal(0),
    )
    if tree.xpath("string(//rsm:ExchangedDocument/ram:ID)", namespaces=CII) != number:
        problems.append(f"{number}: the XML names another document")
    if len(items) != invoice.line_count or lines_sum != invoice.subtotal:
        problems.append(
            f"{number}: {len(items)} lines adding up to {lines_sum} in the XML, "
            f"{invoice.line_count} adding up to {invoice.subtotal} issued"
        )
    for path, expected in (
        ("//ram:TaxBasisTotalAmount", invoice.subtotal),
        ("//ram:TaxTotalAmount", invoice.vat_amount),
        ("//ram:GrandTotalAmount", invoice.total),
        ("//ram:DuePayableAmount", invoice.total),
    ):
        if amount(path) != expected:
            problems.append(f"{number}: {path} is {amount(path)} in the XML, not {expected}")
    total = money_format(invoice.total, invoice.currency)
    if total not in text:
        problems.append(f"{number}: the total {total} is not printed")
    if number not in text:
        problems.append(f"{number}: its number is not printed")
    return problems


def _minimal_problems(content: bytes) -> list[str]:
    from pypdf import PdfReader

    reader = PdfReader(BytesIO(content))
    problems = [f"the minimal document: {p}" for p in _xmp_problems(reader, PDFA_3B)]
    if "A minimal document." not in reader.pages[0].extract_text():
        problems.append("the minimal document does not print its sentence")
    return problems


def serve(language: str, short_lines: int, long_lines: int) -> None:
    """Serve the driver: one JSON command a line on stdin, one JSON answer a line on stdout."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
    # Nothing is read from the database; the settings module only needs a URL.
    os.environ.setdefault("DATABASE_URL", "sqlite://:memory:")
    import django

    django.setup()
    from pypdf import PdfReader

    from billing.pdf import invoice_pdf_render

    minimal = _minimal_render()
    invoices = {
        "short": build_invoice(short_lines, language=language),
        "long": build_invoice(long_lines, language=language),
    }
    for line in sys.stdin:
        command = json.loads(line)
        answer: dict[str, Any]
        match command["do"]:
            case "minimal":
                answer = _timed(minimal)
            case "render":
                invoice = invoices[command["invoice"]]
                answer = _timed(functools.partial(invoice_pdf_render, invoice))
            case "memory":
                gc.collect()
                before = rss_mib()
                middle = before
                for n in range(command["renders"]):
                    invoice_pdf_render(invoices["short"])
                    if n + 1 == command["renders"] // 2:
                        gc.collect()
                        middle = rss_mib()
                gc.collect()
                answer = {"before": before, "middle": middle, "after": rss_mib()}
            case "profile":
                # Where a render's time goes: cProfile over a few renders of one invoice, the
                # functions with the largest cumulative time (WeasyPrint's phases first), then
                # those with the largest time of their own.
                invoice = invoices[command["invoice"]]
                invoice_pdf_render(invoice)  # imports and caches, not profiled
                profile = cProfile.Profile()
                for _ in range(command["renders"]):
                    profile.runcall(invoice_pdf_render, invoice)
                text = io.StringIO()
                stats = pstats.Stats(profile, stream=text)
                stats.sort_stats("cumulative").print_stats(40)
                stats.sort_stats("tottime").print_stats(30)
                answer = {"profile": text.getvalue()}
            case "check":
                problems = _minimal_problems(minimal())
                pages = {}
                for name, invoice in invoices.items():
                    content = invoice_pdf_render(invoice)
                    pages[name] = len(PdfReader(BytesIO(content)).pages)
                    problems += _pdf_problems(content, invoice)
                # Which checkout's code this worker renders with, for the report.
                answer = {
                    "problems": problems,
                    "pages": pages,
                    "module": sys.modules[invoice_pdf_render.__module__].__file__,
                }
            case _:
                raise ValueError(command)
        print(json.dumps(answer), flush=True)


# --- the driver ----------------------------------------------------------------------------------


@dataclass
class Worker:
    """A worker process rendering one checkout, and what it measured."""

    name: str
    checkout: Path
    process: subprocess.Popen[str]
    # (what, "wall" or "cpu") -> milliseconds of each render
    times: dict[tuple[str, str], list[float]] = field(default_factory=dict)

    @classmethod
    def start(cls, name: str, checkout: Path, args: argparse.Namespace) -> "Worker":
        environment = {**os.environ, "PYTHONPATH": str(checkout)}
        command = [sys.executable, str(Path(__file__).resolve()), "--worker"]
        command += ["--language", args.language]
        command += ["--short-lines", str(args.short_lines), "--long-lines", str(args.long_lines)]
        process = subprocess.Popen(  # noqa: S603 (this interpreter, this file)
            command,
            cwd=checkout,
            env=environment,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        return cls(name, checkout, process)

    def ask(self, **command: Any) -> dict[str, Any]:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            raise RuntimeError(f"the {self.name} worker stopped (exit {self.process.wait()})")
        result: dict[str, Any] = json.loads(answer)
        return result

    def round(self, *, long: bool, record: bool) -> None:
        for what in ("minimal", "short", "long") if long else ("minimal", "short"):
            if what == "minimal":
                timed = self.ask(do="minimal")
            else:
                timed = self.ask(do="render", invoice=what)
            if record:
                for clock, ms in timed.items():
                    self.times.setdefault((what, clock), []).append(ms)

    def stop(self) -> None:
        assert self.process.stdin
        self.process.stdin.close()
        self.process.wait(timeout=30)


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) > 1 else values[0]


def median(values: list[float]) -> float:
    return statistics.median(values)


def report(worker: Worker, args: argparse.Namespace, check: dict[str, Any]) -> float:
    """Print a worker's figures; return its long/short ratio (CPU medians)."""
    pages = check["pages"]

    def figures(what: str) -> str:
        wall, cpu = worker.times[what, "wall"], worker.times[what, "cpu"]
        return (
            f"{len(cpu)} renders: CPU median {median(cpu):.1f} ms, p95 {p95(cpu):.1f} ms; "
            f"wall-clock median {median(wall):.1f} ms"
        )

    def cpu(what: str) -> float:
        return median(worker.times[what, "cpu"])

    short_ratio = cpu("short") / cpu("minimal")
    long_ratio = cpu("long") / cpu("short")
    print(f"[{worker.name}] rendering with {check['module']}")
    print(f"  minimal document ({figures('minimal')})")
    print(f"  {args.short_lines}-line invoice ({pages['short']} page, {figures('short')})")
    print(f"  {args.long_lines}-line invoice ({pages['long']} pages, {figures('long')})")
    print(
        f"  {args.short_lines}-line invoice: {short_ratio:.2f}x minimal document "
        f"(goal <= {GOAL_MINIMAL_RATIO}x)"
    )
    print(
        f"  {args.long_lines}-line invoice: {long_ratio:.2f}x the {args.short_lines}-line one "
        f"(target <= {TARGET_LONG_RATIO:.0f}x)"
    )
    return long_ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=100, help="timed rounds")
    parser.add_argument("--long-every", type=int, default=5, help="a 100-line render every N")
    parser.add_argument("--warmup", type=int, default=5, help="untimed rounds first")
    parser.add_argument("--memory-renders", type=int, default=1000, help="renders for memory")
    parser.add_argument("--language", default="en", help="the invoices' language")
    parser.add_argument("--short-lines", type=int, default=10, help=argparse.SUPPRESS)
    parser.add_argument("--long-lines", type=int, default=100, help=argparse.SUPPRESS)
    parser.add_argument("--versus", type=Path, help="another checkout, measured side by side")
    parser.add_argument("--smoke", action="store_true", help="CI: a few small renders, checked")
    parser.add_argument(
        "--profile", type=int, metavar="N", help="print a profile of N short renders and stop"
    )
    parser.add_argument(
        "--profile-invoice",
        choices=("short", "long"),
        default="short",
        help="which invoice --profile renders (the 10-line one unless told)",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        serve(args.language, args.short_lines, args.long_lines)
        return 0
    if args.smoke:
        args.rounds, args.long_every, args.warmup, args.memory_renders = 4, 2, 1, 20
        args.short_lines, args.long_lines = 3, 30

    workers = [Worker.start("this checkout", REPOSITORY, args)]
    if args.versus:
        workers.insert(0, Worker.start("versus", args.versus.resolve(), args))
    if args.profile:
        for worker in workers:
            print(
                f"[{worker.name}]",
                worker.ask(do="profile", renders=args.profile, invoice=args.profile_invoice)[
                    "profile"
                ],
            )
            worker.stop()
        return 0
    load_before = os.getloadavg()
    try:
        checks = {worker.name: worker.ask(do="check") for worker in workers}
        for _ in range(args.warmup):
            for worker in workers:
                worker.round(long=True, record=False)
        for n in range(args.rounds):
            # Alternate which checkout goes first, so neither always follows the other.
            for worker in workers if n % 2 else workers[::-1]:
                worker.round(long=n % args.long_every == 0, record=True)
        memory = {
            worker.name: worker.ask(do="memory", renders=args.memory_renders) for worker in workers
        }
    finally:
        for worker in workers:
            worker.stop()
    load_after = os.getloadavg()

    print(
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs; load average "
        f"{load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f} before, "
        f"{load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f} after"
    )
    failed = False
    for worker in workers:
        long_ratio = report(worker, args, checks[worker.name])
        rss = memory[worker.name]
        print(
            f"  worker RSS over {args.memory_renders} renders of the {args.short_lines}-line "
            f"invoice: {rss['before']:.1f} -> {rss['after']:.1f} MiB "
            f"({rss['after'] - rss['before']:+.1f} MiB; second half "
            f"{rss['after'] - rss['middle']:+.1f} MiB)"
        )
        if worker.checkout != REPOSITORY:
            continue
        for problem in checks[worker.name]["problems"]:
            print(f"WRONG: {problem}", file=sys.stderr)
            failed = True
        if checks[worker.name]["pages"]["long"] < 2:
            print(f"WRONG: the {args.long_lines}-line invoice fits one page", file=sys.stderr)
            failed = True
        if not args.smoke and long_ratio > TARGET_LONG_RATIO:
            print(
                f"FAILED: the {args.long_lines}-line invoice takes more than "
                f"{TARGET_LONG_RATIO:.0f}x the {args.short_lines}-line one",
                file=sys.stderr,
            )
            failed = True
    if args.smoke and not failed:
        print("smoke: the PDFs are right (PDF/A-3b, Factur-X XML valid and matching, totals)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
