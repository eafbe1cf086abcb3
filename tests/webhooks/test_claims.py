"""Two workers never send the same delivery at once: the minute job and the on-commit task
claim with SELECT ... FOR UPDATE SKIP LOCKED and a lease (real PostgreSQL, several
connections)."""

from typing import Any

import pytest

from tests.factories import make_tenant, owner_of
from tests.support.concurrency import in_parallel
from tests.support.webhook_receiver import webhook_receiver
from webhooks import services, tasks
from webhooks.models import EventType, WebhookDelivery

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _local_receivers_allowed(settings: Any) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True


def test_parallel_jobs_send_each_delivery_once(monkeypatch):
    tenant = make_tenant("Reseller A")
    make_tenant("Reseller B")
    # The on-commit tasks are lost (as with Redis down): only the jobs send.
    monkeypatch.setattr("celery.app.task.Task.apply_async", lambda *a, **k: None)
    with webhook_receiver([("sleep", 0.05, 200)]) as receiver:
        endpoint, _secret = services.endpoint_create(
            membership=owner_of(tenant), url=receiver.url, event_types=[EventType.INVOICE_PAID]
        )
        for _n in range(12):
            services.event_record(
                reseller=tenant.reseller, type=EventType.INVOICE_PAID, data={"n": _n}
            )
        assert receiver.received == []
        sent, errors = in_parallel(4, lambda _n: tasks.webhook_deliveries_send_due.run())
    assert errors == []
    assert sum(sent) == 12
    ids = [request.headers["webhook-id"] for request in receiver.received]
    assert len(ids) == len(set(ids)) == 12
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"delivered"}
    assert WebhookDelivery.objects.filter(endpoint=endpoint, attempts=1).count() == 12
