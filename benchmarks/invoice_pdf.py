"""Invoice PDF rendering in a warm worker process: time and memory.

    .venv/bin/python -m benchmarks.invoice_pdf              # or: make bench-pdf

Renders what the Celery task renders (billing.pdf.invoice_pdf_render: the template in the
invoice's language, the Factur-X XML and its XSD check, WeasyPrint layout, PDF/A-3b with the
XML attached) for invoices built in memory, so no database is needed; the task adds a few
queries, the SHA-256 and the storage write. The 10-line and 100-line renders alternate, so a
change of load on the machine hits both alike. After a warm-up it reports

- a 10-line invoice: median and 95th percentile over --rounds renders;
- a 100-line invoice: median over --long-rounds renders, and its ratio to the 10-line median
  (target: at most 4x);
- memory: the process's resident set size before and after --memory-renders renders of the
  10-line invoice, and its growth over the second half of them (a leak keeps growing there;
  caches filled by the first renders do not).

Exits non-zero when the ratio target is missed.
"""

import argparse
import gc
import os
import platform
import resource
import statistics
import sys
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from io import BytesIO
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
# Nothing is read from the database; the settings module only needs a URL.
os.environ.setdefault("DATABASE_URL", "sqlite://:memory:")

TARGET_RATIO = 4.0
PRODUCTS = ("Shared Contacts for Gmail", "Shared Labels", "Drive Backup", "Signature Manager")
ISSUED_AT = datetime(2026, 1, 31, 9, 30, tzinfo=UTC)


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


def timed_interleaved(
    render: Any, short: Any, long: Any, rounds: int, long_rounds: int
) -> tuple[list[float], list[float], list[float], list[float]]:
    """Wall and CPU milliseconds of `rounds` short and `long_rounds` long renders, the long ones
    spread among the short ones so that a change of load on the machine hits both alike."""
    every = max(1, rounds // max(1, long_rounds))
    short_wall: list[float] = []
    short_cpu: list[float] = []
    long_wall: list[float] = []
    long_cpu: list[float] = []
    for n in range(rounds):
        for invoice, wall, cpu in ((short, short_wall, short_cpu), (long, long_wall, long_cpu)):
            if invoice is long and (n % every or len(long_wall) >= long_rounds):
                continue
            start, start_cpu = time.perf_counter(), time.process_time()
            render(invoice)
            wall.append((time.perf_counter() - start) * 1000)
            cpu.append((time.process_time() - start_cpu) * 1000)
    return short_wall, short_cpu, long_wall, long_cpu


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=100, help="timed 10-line renders")
    parser.add_argument("--long-rounds", type=int, default=20, help="timed 100-line renders")
    parser.add_argument("--warmup", type=int, default=5, help="untimed renders of each")
    parser.add_argument("--memory-renders", type=int, default=500, help="renders for memory")
    parser.add_argument("--language", default="en", help="the invoices' language")
    args = parser.parse_args()

    import django

    django.setup()
    from pypdf import PdfReader

    from billing.pdf import invoice_pdf_render

    load = f"{os.getloadavg()[0]:.2f}"
    short = build_invoice(10, language=args.language)
    long = build_invoice(100, language=args.language)
    for invoice in (short, long):
        for _ in range(args.warmup):
            invoice_pdf_render(invoice)

    short_times, short_cpu, long_times, long_cpu = timed_interleaved(
        invoice_pdf_render, short, long, args.rounds, args.long_rounds
    )
    short_median = statistics.median(short_times)
    long_median = statistics.median(long_times)
    ratio = long_median / short_median

    gc.collect()
    before = rss_mib()
    half = args.memory_renders // 2
    for n in range(args.memory_renders):
        invoice_pdf_render(short)
        if n + 1 == half:
            gc.collect()
            middle = rss_mib()
    gc.collect()
    after = rss_mib()

    def pages(invoice: Any) -> int:
        return len(PdfReader(BytesIO(invoice_pdf_render(invoice))).pages)

    machine = f"Python {platform.python_version()}, {os.cpu_count()} CPUs"
    print(f"{machine}, load average {load} -> {os.getloadavg()[0]:.2f}")
    print(
        f"10-line invoice  ({pages(short)} page, {args.rounds} renders): "
        f"median {short_median:.0f} ms, "
        f"p95 {p95(short_times):.0f} ms (CPU median {statistics.median(short_cpu):.0f} ms)"
    )
    print(
        f"100-line invoice ({pages(long)} pages, {args.long_rounds} renders): "
        f"median {long_median:.0f} ms, "
        f"p95 {p95(long_times):.0f} ms (CPU median {statistics.median(long_cpu):.0f} ms)"
    )
    print(f"100-line / 10-line median: {ratio:.2f}x (target <= {TARGET_RATIO:.0f}x)")
    print(
        f"RSS over {args.memory_renders} renders of the 10-line invoice: "
        f"{before:.1f} -> {after:.1f} MiB "
        f"(+{after - before:.1f} MiB; second half +{after - middle:.1f} MiB)"
    )
    if ratio > TARGET_RATIO:
        print("FAILED: the 100-line invoice takes more than 4x the 10-line one", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
