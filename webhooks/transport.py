"""The one way out to a reseller's endpoint: the secret, the Standard Webhooks signature, the
address check (SSRF) and the POST itself.

SSRF: the host is resolved when the delivery is made (not only when the endpoint is saved), every
address it resolves to is checked, and the connection goes to the address that was checked, so
a name that resolves to a public address at the check and to 127.0.0.1 a moment later (DNS
rebinding) cannot turn a delivery inward. For https the request still names the host: the Host
header, the TLS SNI and the certificate check use the name, not the address. Redirects are not
followed (a 3xx is a failed attempt): a public endpoint cannot bounce a delivery inward either.

Private, loopback, link-local, multicast, reserved and unspecified addresses are refused unless
settings.DEBUG or settings.WEBHOOK_ALLOW_PRIVATE_TARGETS (default False; for a development
receiver or the tests' local one).
"""

import base64
import hashlib
import ipaddress
import secrets
import socket
import time
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import urllib3
from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings
from django.utils.translation import gettext as _
from standardwebhooks.webhooks import Webhook

# Connect and each read of the answer; the whole attempt stays far inside the claim's lease.
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 10.0
RESPONSE_KEEP = 1024  # bytes of the answer kept for the delivery log
USER_AGENT = "PartnerPortal-Webhooks/1"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(Exception):
    """The endpoint's address may not be called (SSRF), or cannot be resolved."""


class TargetUnresolvable(TargetRefused):
    """The endpoint's host has no address (today)."""


@dataclass(frozen=True)
class Answer:
    status: int | None
    body: str
    error: str
    duration_ms: int

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


# The secret


def secret_new() -> str:
    """A Standard Webhooks secret: "whsec_" + base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


SEAL_SALT = b"webhooks.transport.secret_seal:"


def _cipher() -> MultiFernet:
    """Keys derived from SECRET_KEY and its fallbacks: a database backup alone does not hold
    the endpoints' signing secrets in clear."""
    keys = [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
    return MultiFernet(
        [
            Fernet(base64.urlsafe_b64encode(hashlib.sha256(SEAL_SALT + str(key).encode()).digest()))
            for key in keys
        ]
    )


def secret_seal(secret: str) -> str:
    return _cipher().encrypt(secret.encode()).decode()


def secret_open(sealed: str) -> str:
    return _cipher().decrypt(sealed.encode()).decode()


def signed_headers(*, secret: str, event_id: str, timestamp: datetime, body: str) -> dict[str, str]:
    """The three Standard Webhooks headers for `body` sent as `event_id` at `timestamp`."""
    signature = Webhook(secret).sign(msg_id=event_id, timestamp=timestamp, data=body)
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature,
    }


# SSRF


def private_targets_allowed() -> bool:
    return bool(settings.DEBUG or settings.WEBHOOK_ALLOW_PRIVATE_TARGETS)


def address_is_public(address: IPAddress) -> bool:
    """Only globally routable unicast addresses (an IPv4 address inside IPv6 is judged as
    IPv4): no private, loopback, link-local, multicast, reserved or unspecified one."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not (
        address.is_multicast
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_unspecified
    )


def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise TargetUnresolvable(_("%(host)s could not be resolved.") % {"host": host}) from error
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise TargetUnresolvable(_("%(host)s could not be resolved.") % {"host": host})
    return addresses


def target_resolve(url: str) -> IPAddress:
    """The address to connect to for `url`, checked: TargetRefused if any address the host
    resolves to is not public (unless private targets are allowed)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = _resolve(host, port)
    if not private_targets_allowed():
        refused = [address for address in addresses if not address_is_public(address)]
        if refused:
            raise TargetRefused(
                _("%(host)s resolves to %(address)s, a private or reserved address.")
                % {"host": host, "address": refused[0]}
            )
    return addresses[0]


def host_is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# The POST


def post(*, url: str, body: str, headers: dict[str, str]) -> Answer:
    """POST `body` to `url` at its checked address; never raises for the endpoint's faults
    (refused address, no connection, timeout, any answer): they are the Answer."""
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    parts = urlsplit(url)
    host = parts.hostname or ""
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    try:
        address = target_resolve(url)
    except TargetRefused as refused:
        return Answer(status=None, body="", error=str(refused), duration_ms=elapsed())
    timeout = urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT)
    pool: urllib3.HTTPConnectionPool
    if https:
        # Connect to the checked address; SNI and the certificate check use the host's name.
        pool = urllib3.HTTPSConnectionPool(
            str(address),
            port,
            timeout=timeout,
            retries=False,
            cert_reqs="CERT_REQUIRED",
            server_hostname=host,
            assert_hostname=host,
            maxsize=1,
        )
    else:
        pool = urllib3.HTTPConnectionPool(str(address), port, timeout=timeout, retries=False)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    default_port = port == (443 if https else 80)
    request_headers = {
        "Host": host if default_port else f"{parts.netloc.rsplit('@', 1)[-1]}",
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **headers,
    }
    try:
        response = pool.urlopen(
            "POST",
            path,
            body=body.encode(),
            headers=request_headers,
            redirect=False,
            retries=False,
            preload_content=False,
            assert_same_host=False,
        )
        try:
            kept = response.read(RESPONSE_KEEP, decode_content=False)
        finally:
            response.close()
    except urllib3.exceptions.HTTPError as error:
        message = _("Timed out.") if _is_timeout(error) else str(error)
        return Answer(status=None, body="", error=message[:500], duration_ms=elapsed())
    finally:
        pool.close()
    return Answer(
        status=response.status,
        body=kept.decode("utf-8", errors="replace"),
        error="",
        duration_ms=elapsed(),
    )


def _is_timeout(error: Exception) -> bool:
    while error is not None:
        if isinstance(error, TimeoutError | urllib3.exceptions.TimeoutError | socket.timeout):
            return True
        reason = getattr(error, "reason", None)
        error = reason if isinstance(reason, Exception) else None  # type: ignore[assignment]
    return False
