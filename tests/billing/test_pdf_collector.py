"""billing.pdf pauses Python's cyclic garbage collector while a document renders (a render's
linked objects are walked again and again otherwise: see _collector_paused) and leaves it as it
found it, however many renders overlap and whether or not the render fails."""

import gc
import threading
from collections.abc import Iterator

import pytest

from billing import pdf
from billing.models import Invoice


@pytest.fixture
def collector_on() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.enable()
    yield
    if not was_enabled:
        gc.disable()


def test_off_while_rendering_and_on_again(collector_on, monkeypatch):
    seen = []

    def render(invoice: Invoice) -> bytes:
        seen.append(gc.isenabled())
        return b"%PDF"

    monkeypatch.setattr(pdf, "_pdf_render", render)

    assert pdf.invoice_pdf_render(Invoice()) == b"%PDF"

    assert seen == [False]
    assert gc.isenabled()


def test_on_again_when_the_render_fails(collector_on, monkeypatch):
    def failing(invoice: Invoice) -> bytes:
        raise ValueError("no template")

    monkeypatch.setattr(pdf, "_pdf_render", failing)

    with pytest.raises(ValueError, match="no template"):
        pdf.invoice_pdf_render(Invoice())

    assert gc.isenabled()


def test_left_off_when_it_was_off(collector_on, monkeypatch):
    monkeypatch.setattr(pdf, "_pdf_render", lambda invoice: b"%PDF")
    gc.disable()

    pdf.invoice_pdf_render(Invoice())

    assert not gc.isenabled()


def test_overlapping_renders_turn_it_on_when_the_last_ends(collector_on, monkeypatch):
    """Two threads: the first to end must not turn the collector on under the other."""
    first_started, first_may_end = threading.Event(), threading.Event()
    seen_by_second = []

    def render(invoice: Invoice) -> bytes:
        if invoice.number == "first":
            first_started.set()
            first_may_end.wait(5)
        else:
            first_may_end.set()
        return b"%PDF"

    monkeypatch.setattr(pdf, "_pdf_render", render)
    first = threading.Thread(target=pdf.invoice_pdf_render, args=(Invoice(number="first"),))
    first.start()
    assert first_started.wait(5)

    def second_render(invoice: Invoice) -> bytes:
        first_may_end.set()
        first.join(5)  # the first render has ended, this one has not
        seen_by_second.append(gc.isenabled())
        return b"%PDF"

    monkeypatch.setattr(pdf, "_pdf_render", second_render)
    pdf.invoice_pdf_render(Invoice(number="second"))

    assert seen_by_second == [False]
    assert gc.isenabled()
