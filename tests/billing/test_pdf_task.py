"""The Celery task that renders and stores an invoice's PDF: stored through Django's storage with
its SHA-256, idempotent, retried only on transient errors, run after an invoice is issued or
asked for again (never because it was paid: the issued PDF never changes)."""

import hashlib
from datetime import timedelta
from typing import Any

import pytest
from celery.exceptions import Retry
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import OperationalError, transaction

from billing import pdf, rendering_tasks, services
from billing.models import Invoice
from billing.payments import services as payment_services
from billing.rendering_tasks import invoice_render_pdf
from tests.support.pdf import ISSUED_AT, issue

NAME = "invoices/2026/INV-2026-000001.pdf"


def _stored(name: str) -> bytes:
    with default_storage.open(name, "rb") as stored:
        return stored.read()


def _pdf_files() -> list[str]:
    _dirs, files = default_storage.listdir("invoices/2026")
    return sorted(files)


@pytest.fixture
def clean_storage():
    """The in-memory storage lives as long as the process: start and end each test empty."""

    def empty() -> None:
        if default_storage.exists("invoices/2026"):
            for name in _pdf_files():
                default_storage.delete(f"invoices/2026/{name}")

    empty()
    yield
    empty()


@pytest.mark.django_db
def test_the_task_stores_the_pdf_through_the_storage_with_its_hash(tenant, clean_storage):
    invoice = issue(tenant.customer)

    assert invoice_render_pdf.delay(invoice.pk).get() == "stored"

    invoice.refresh_from_db()
    assert invoice.pdf.name == NAME
    content = _stored(NAME)
    assert content.startswith(b"%PDF-")
    assert invoice.pdf_sha256 == hashlib.sha256(content).hexdigest()
    assert content == pdf.invoice_pdf_render(invoice)


@pytest.mark.django_db
def test_running_the_task_twice_changes_nothing(tenant, clean_storage, monkeypatch):
    invoice = issue(tenant.customer)
    invoice_render_pdf.delay(invoice.pk).get()
    invoice.refresh_from_db()
    first = (invoice.pdf.name, invoice.pdf_sha256, _stored(NAME))

    renders = []

    def render(document: Invoice) -> bytes:
        renders.append(document)
        return b"never used"

    monkeypatch.setattr(pdf, "invoice_pdf_render", render)
    assert invoice_render_pdf.delay(invoice.pk).get() == "skipped"

    assert renders == []  # not even rendered
    invoice.refresh_from_db()
    assert (invoice.pdf.name, invoice.pdf_sha256, _stored(NAME)) == first
    assert _pdf_files() == ["INV-2026-000001.pdf"]


@pytest.mark.django_db
def test_regenerating_an_unchanged_invoice_writes_nothing(tenant, clean_storage, monkeypatch):
    invoice = issue(tenant.customer)
    invoice_render_pdf.delay(invoice.pk).get()
    invoice.refresh_from_db()
    digest = invoice.pdf_sha256

    saves = []
    real_save = default_storage.save

    def save(*args: Any, **kwargs: Any) -> str:
        saves.append(args)
        return real_save(*args)

    monkeypatch.setattr(default_storage, "save", save)
    # Same document, same state, rendered again: byte for byte the same, so nothing written.
    assert invoice_render_pdf.delay(invoice.pk, regenerate=True).get() == "unchanged"

    assert saves == []
    invoice.refresh_from_db()
    assert invoice.pdf_sha256 == digest


@pytest.mark.django_db
def test_a_lost_or_altered_file_is_rendered_again(tenant, clean_storage):
    invoice = issue(tenant.customer)
    invoice_render_pdf.delay(invoice.pk).get()
    invoice.refresh_from_db()
    digest = invoice.pdf_sha256

    default_storage.delete(NAME)
    assert invoice_render_pdf.delay(invoice.pk).get() == "restored"
    assert hashlib.sha256(_stored(NAME)).hexdigest() == digest

    default_storage.delete(NAME)
    default_storage.save(NAME, ContentFile(b"%PDF- tampered"))
    assert invoice_render_pdf.delay(invoice.pk).get() == "restored"
    assert hashlib.sha256(_stored(NAME)).hexdigest() == digest
    assert _pdf_files() == ["INV-2026-000001.pdf"]


@pytest.mark.django_db
def test_paying_an_invoice_leaves_its_pdf_in_place(tenant, clean_storage):
    invoice = issue(tenant.customer)
    invoice_render_pdf.delay(invoice.pk).get()
    invoice.refresh_from_db()
    open_digest = invoice.pdf_sha256

    invoice.status = Invoice.Status.PAID
    invoice.paid_at = ISSUED_AT + timedelta(days=2)
    invoice.save(update_fields=["status", "paid_at"])
    # Asked again after the payment: the same document, so nothing is written.
    assert invoice_render_pdf.delay(invoice.pk, regenerate=True).get() == "unchanged"

    invoice.refresh_from_db()
    assert invoice.pdf.name == NAME
    assert invoice.pdf_sha256 == open_digest
    assert hashlib.sha256(_stored(NAME)).hexdigest() == open_digest
    assert _pdf_files() == ["INV-2026-000001.pdf"]


@pytest.mark.django_db
def test_a_transient_error_is_retried(tenant, clean_storage, monkeypatch):
    invoice = issue(tenant.customer)

    def database_gone(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(pdf, "invoice_pdf_store", database_gone)
    with pytest.raises(Retry):
        invoice_render_pdf.apply(args=(invoice.pk,), throw=True)
    # The last allowed attempt gives up.
    with pytest.raises(OperationalError):
        invoice_render_pdf.apply(
            args=(invoice.pk,), retries=invoice_render_pdf.max_retries, throw=True
        )


@pytest.mark.django_db
def test_a_missing_invoice_fails_without_retrying():
    with pytest.raises(Invoice.DoesNotExist):
        invoice_render_pdf.apply(args=(987654321,), throw=True)


def test_retries_stay_below_the_visibility_timeout(settings):
    # Celery sets the task's options as attributes its types do not declare.
    task: Any = invoice_render_pdf
    assert task.acks_late and task.reject_on_worker_lost
    assert task.retry_backoff_max < settings.CELERY_VISIBILITY_TIMEOUT
    assert task.time_limit < settings.CELERY_VISIBILITY_TIMEOUT
    assert OperationalError in task.autoretry_for
    assert Invoice.DoesNotExist not in task.autoretry_for


@pytest.mark.django_db
def test_each_document_is_rendered_when_issued_and_when_staff_ask(
    tenant, monkeypatch, django_capture_on_commit_callbacks
):
    queued: list[tuple[int, bool]] = []

    def enqueue(task: object, invoice_id: int, regenerate: bool = False) -> None:
        assert task is invoice_render_pdf
        queued.append((invoice_id, regenerate))

    monkeypatch.setattr(rendering_tasks, "task_enqueue_on_commit", enqueue)
    monkeypatch.setattr(payment_services, "invoice_charge_enqueue", lambda invoice: None)
    invoice = issue(tenant.customer)
    with django_capture_on_commit_callbacks(execute=True):
        note = services.credit_note_issue(invoice=invoice, reason="Refund", by=None)
    assert queued == [(note.pk, False)]  # a credit note's PDF, at issue
    with django_capture_on_commit_callbacks(execute=True):
        services.invoice_pdf_request(invoice=invoice)
    assert queued[1:] == [(invoice.pk, True)]  # staff ask again: written back if identical


@pytest.mark.django_db(transaction=True)
def test_the_pdf_is_rendered_after_the_issuing_transaction_commits(tenant, clean_storage):
    with transaction.atomic():
        invoice = issue(tenant.customer)
        rendering_tasks.invoice_pdf_enqueue(invoice)
        assert not Invoice.objects.get(pk=invoice.pk).pdf  # not before the commit

    invoice.refresh_from_db()
    assert invoice.pdf.name == NAME
    assert invoice.pdf_sha256 == hashlib.sha256(_stored(NAME)).hexdigest()


@pytest.mark.django_db(transaction=True)
def test_nothing_is_rendered_for_a_rolled_back_issue(tenant, clean_storage):
    with pytest.raises(RuntimeError), transaction.atomic():
        invoice = issue(tenant.customer)
        rendering_tasks.invoice_pdf_enqueue(invoice)
        raise RuntimeError("the billing run failed after issuing")

    assert not Invoice.objects.filter(number="INV-2026-000001").exists()
    assert not default_storage.exists(NAME)


@pytest.mark.django_db(transaction=True)
def test_asking_for_the_pdf_again_renders_it(tenant, clean_storage):
    invoice = issue(tenant.customer)

    services.invoice_pdf_request(invoice=invoice)

    invoice.refresh_from_db()
    assert invoice.pdf.name == NAME
    assert invoice.pdf_sha256
