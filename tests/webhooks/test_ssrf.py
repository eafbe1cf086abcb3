"""SSRF: with private targets not allowed (production: DEBUG off and WEBHOOK_ALLOW_PRIVATE_TARGETS
off), private, loopback, link-local, multicast, reserved and unspecified addresses are refused
when an endpoint is saved and again at each delivery, after resolving the host then; the
connection goes to the address that was checked, naming the host."""

import ipaddress
import socket
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from tests.factories import owner_of
from tests.support.webhook_receiver import webhook_receiver
from webhooks import services, tasks, transport
from webhooks.models import EventType, WebhookDelivery

PUBLIC = "93.184.215.14"
real_getaddrinfo = socket.getaddrinfo


@pytest.fixture
def production_rules(settings: Any) -> None:
    settings.DEBUG = False
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False


class FakeDNS:
    """socket.getaddrinfo with some names pointed where a test says; records the lookups."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.names: dict[str, str] = {}
        self.lookups: list[str] = []
        monkeypatch.setattr(socket, "getaddrinfo", self)

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        self.lookups.append(str(host))
        if host in self.names:
            address = self.names[host]
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            sockaddr = (address, port, 0, 0) if family == socket.AF_INET6 else (address, port)
            return [(family, socket.SOCK_STREAM, 6, "", sockaddr)]
        return real_getaddrinfo(host, port, *args, **kwargs)


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDNS:
    return FakeDNS(monkeypatch)


@pytest.mark.parametrize(
    "url",
    [
        "https://10.1.2.3/hooks",
        "https://192.168.0.10/hooks",
        "https://127.0.0.1/hooks",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/hooks",
        "https://[::ffff:127.0.0.1]/hooks",
        "https://0.0.0.0/hooks",
        "https://224.0.0.1/hooks",
        "https://100.64.0.1/hooks",
        "https://localhost/hooks",
        "https://loopback.example.test/hooks",
    ],
)
def test_private_targets_are_refused_when_saved(url, tenant, other_tenant, production_rules, dns):
    dns.names["loopback.example.test"] = "127.0.0.1"
    with pytest.raises(ValidationError) as refused:
        services.endpoint_create(
            membership=owner_of(tenant), url=url, event_types=[EventType.INVOICE_PAID]
        )
    assert "private or reserved address" in str(refused.value)


def test_http_is_refused_and_https_to_a_public_address_accepted(
    tenant, other_tenant, production_rules, dns
):
    dns.names["hooks.example.test"] = PUBLIC
    membership = owner_of(tenant)
    for url in ("http://hooks.example.test/", "http://127.0.0.1:8000/"):
        with pytest.raises(ValidationError, match="https://"):
            services.endpoint_create(
                membership=membership, url=url, event_types=[EventType.INVOICE_PAID]
            )
    endpoint, _secret = services.endpoint_create(
        membership=membership, url="https://hooks.example.test/in", event_types=["invoice.paid"]
    )
    assert endpoint.url == "https://hooks.example.test/in"


def test_http_to_loopback_is_accepted_in_development(tenant, other_tenant, settings):
    settings.DEBUG = True
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    endpoint, _secret = services.endpoint_create(
        membership=owner_of(tenant), url="http://127.0.0.1:8000/", event_types=["invoice.paid"]
    )
    assert endpoint.pk
    with pytest.raises(ValidationError, match="https://"):
        services.endpoint_create(
            membership=owner_of(tenant), url="http://10.0.0.8/", event_types=["invoice.paid"]
        )


def test_a_name_that_turns_private_after_saving_is_refused_at_delivery(
    tenant, other_tenant, production_rules, dns, django_capture_on_commit_callbacks
):
    """DNS rebinding: public when saved, the receiver's loopback address at delivery."""
    with webhook_receiver([200]) as receiver:
        dns.names["rebind.example.test"] = PUBLIC
        endpoint, _secret = services.endpoint_create(
            membership=owner_of(tenant),
            url=f"https://rebind.example.test:{receiver.port}/hooks",
            event_types=[EventType.INVOICE_PAID],
        )
        dns.names["rebind.example.test"] = "127.0.0.1"
        with django_capture_on_commit_callbacks(execute=True):
            services.event_record(reseller=tenant.reseller, type="invoice.paid", data={})
    assert receiver.received == []
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert delivery.status == WebhookDelivery.Status.PENDING  # retried later, refused again
    assert "127.0.0.1, a private or reserved address" in delivery.error
    assert delivery.attempt_log.get().response_status is None


@pytest.mark.parametrize("address", ["10.0.0.5", "127.0.0.1", "169.254.169.254", "::1"])
def test_an_endpoint_saved_while_allowed_is_refused_once_not(
    address, tenant, other_tenant, settings, dns, django_capture_on_commit_callbacks
):
    settings.DEBUG = False
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    dns.names["inside.example.test"] = address
    endpoint, _secret = services.endpoint_create(
        membership=owner_of(tenant),
        url="https://inside.example.test/hooks",
        event_types=[EventType.INVOICE_PAID],
    )
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    # Nothing listens there: were it not refused, the error would be a connection error.
    with django_capture_on_commit_callbacks(execute=True):
        services.event_record(reseller=tenant.reseller, type="invoice.paid", data={})
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert "a private or reserved address" in delivery.error
    assert dns.lookups.count("inside.example.test") == 1
    assert address not in dns.lookups  # no connection was tried


def test_the_connection_goes_to_the_checked_address_naming_the_host(
    tenant, other_tenant, settings, dns, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    with webhook_receiver([200]) as receiver:
        dns.names["localhost"] = "127.0.0.1"
        endpoint, _secret = services.endpoint_create(
            membership=owner_of(tenant),
            url=f"http://localhost:{receiver.port}/hooks?source=portal",
            event_types=[EventType.INVOICE_PAID],
        )
        dns.lookups.clear()
        with django_capture_on_commit_callbacks(execute=True):
            services.event_record(reseller=tenant.reseller, type="invoice.paid", data={})
    (request,) = receiver.received
    assert request.headers["Host"] == f"localhost:{receiver.port}"
    assert request.path == "/hooks?source=portal"
    # Resolved once, by the check; the connection used the checked address, not the name.
    assert dns.lookups.count("localhost") == 1
    assert WebhookDelivery.objects.get(endpoint=endpoint).status == "delivered"


def test_https_names_the_host_for_sni_and_the_certificate(monkeypatch, settings, dns):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    dns.names["hooks.example.test"] = PUBLIC
    opened: dict[str, Any] = {}

    class Pool:
        def __init__(self, host: str, port: int, **kwargs: Any) -> None:
            opened.update(host=host, port=port, **kwargs)

        def urlopen(self, method: str, path: str, **kwargs: Any) -> Any:
            opened.update(path=path, headers=kwargs["headers"], redirect=kwargs["redirect"])
            raise transport.urllib3.exceptions.NewConnectionError(None, "offline")  # type: ignore[arg-type]

        def close(self) -> None:
            pass

    monkeypatch.setattr(transport.urllib3, "HTTPSConnectionPool", Pool)
    answer = transport.post(url="https://hooks.example.test/in", body="{}", headers={})
    assert not answer.delivered
    assert opened["host"] == PUBLIC
    assert opened["server_hostname"] == opened["assert_hostname"] == "hooks.example.test"
    assert opened["cert_reqs"] == "CERT_REQUIRED"
    assert opened["headers"]["Host"] == "hooks.example.test"
    assert opened["redirect"] is False


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("127.0.0.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.251", False),
        ("240.0.0.1", False),
        ("::1", False),
        ("::", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("ff02::1", False),
        ("::ffff:10.0.0.1", False),
    ],
)
def test_which_addresses_are_public(address, public):
    assert transport.address_is_public(ipaddress.ip_address(address)) is public


def test_the_minute_job_is_registered_with_the_work_sweep():
    from core import sweeper

    assert sweeper._Sweeps.registered["webhooks"] is tasks.webhooks_sweep
