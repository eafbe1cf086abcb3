"""What the two URL sweeps share (tests/core/test_tenant_isolation.py across resellers,
tests/customers/test_customer_side.py across customers): every named URL of the project, the
object ids a URL takes, and "the same page" up to the per-request tokens."""

import re
from collections.abc import Iterator

from django.urls import URLPattern, URLResolver


def walk(resolvers: list, prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for entry in resolvers:
        if isinstance(entry, URLResolver):
            namespace = f"{prefix}{entry.namespace}:" if entry.namespace else prefix
            yield from walk(entry.url_patterns, namespace)
        elif isinstance(entry, URLPattern) and entry.name:
            yield f"{prefix}{entry.name}", entry


def keywords(pattern: URLPattern) -> set[str]:
    return set(pattern.pattern.regex.groupindex)


def same_page(a: bytes, b: bytes) -> bool:
    """Equal but for the per-request CSP nonce and CSRF token."""
    volatile = re.compile(rb'(nonce="|"X-CSRFToken": "|name="csrfmiddlewaretoken" value=")[^"]+')
    return volatile.sub(rb"\1", a) == volatile.sub(rb"\1", b)
