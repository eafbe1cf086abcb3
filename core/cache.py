"""Django's Redis cache, made to fail soft: Redis down or frozen degrades the site, it does not
take it down.

Django's RedisCache raises on a lost connection, and with redis-py's defaults (no socket
timeouts) a frozen Redis holds every request until the kernel gives up. This backend:

- gives every connection short connect and socket timeouts (`socket_connect_timeout`,
  `socket_timeout` in OPTIONS, which RedisCacheClient hands to redis-py's ConnectionPool;
  default `settings.REDIS_TIMEOUT`, 1 s), so a frozen Redis costs a second, not twenty;
- answers a connection or timeout error as a cache would with nothing in it: a read is a miss
  (the default), has_key is False, incr raises ValueError as for a missing key, delete and touch
  report nothing done, set_many reports every key as not stored. An add answers True, as if the
  value were stored and evicted at once (any cache may evict at any time): False would claim the
  key exists, and code that takes a lock with add (allauth's rate limits) would wait for a lock
  that cannot be had instead of going ahead unlimited;
- logs the outage once at WARNING when it starts and once when Redis answers again (with the
  number of writes dropped meanwhile: a dropped delete may leave a stale value), not per call;
- after a failure, skips Redis for `settings.REDIS_RETRY_AFTER` seconds (5 by default) and
  answers as above without a network call, then lets one call through to probe. A frozen Redis
  then costs one timeout every few seconds, not one per cache call.

The breaker is connection state, not cached data: it lives on the backend instance, next to the
connection pools that instance owns. Django makes one instance per thread (`caches` is
thread-local), so with gunicorn's sync workers and Celery's prefork pool that is one breaker per
process; a threaded server has one per thread.

Other errors (a Redis answering with an error, a value that does not unpickle) still raise: they
are bugs to see, not an outage to ride out.
"""

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: What redis-py raises when Redis is down, unreachable or frozen.
REDIS_UNREACHABLE = (RedisConnectionError, RedisTimeoutError)


class RedisUnavailable(Exception):
    """Redis did not answer, or was not asked because it failed a moment ago."""


class ReusedClientRedisCacheClient(RedisCacheClient):
    """Django's client makes a new redis.Redis object for every operation, and redis-py's
    constructor copies its table of some 170 response callbacks each time: about a tenth of a
    millisecond per cache call, most of what a cached page's cache reads cost. One redis.Redis
    per connection pool does the same work (it takes a connection from the pool for each
    command, and is safe to share between threads)."""

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        # Django's own private parts (not in django-stubs): the pool and the client class.
        pool = self._get_connection_pool(write)  # type: ignore[attr-defined]
        clients: dict[int, Any] = self.__dict__.setdefault("_clients", {})
        client = clients.get(id(pool))
        if client is None:
            client = clients[id(pool)] = self._client(connection_pool=pool)  # type: ignore[attr-defined]
        return client


class ResilientRedisCache(RedisCache):
    """RedisCache whose reads miss and whose writes are dropped while Redis is unreachable."""

    def __init__(self, server: str | list[str], params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = ReusedClientRedisCacheClient
        timeout = getattr(settings, "REDIS_TIMEOUT", 1.0)
        self._options: dict[str, Any] = {
            "socket_connect_timeout": timeout,
            "socket_timeout": timeout,
            **params.get("OPTIONS", {}),
        }
        self._retry_after = float(getattr(settings, "REDIS_RETRY_AFTER", 5.0))
        self._lock = threading.Lock()
        # monotonic time before which Redis is not asked; 0 while it answers.
        self._skip_until = 0.0
        self._down_since: float | None = None
        self._dropped_writes = 0

    # --- The breaker -----------------------------------------------------------------------

    def redis_call(self, operation: Callable[[], T], *, write: bool = False) -> T:
        """Run `operation` (which talks to Redis), or raise RedisUnavailable without running it
        while the breaker is open, or when it fails to reach Redis (which opens the breaker).

        Public for code that uses the Redis client itself (core.ratelimit's Lua script)."""
        if not self._breaker_allows():
            self._note_skipped(write)
            raise RedisUnavailable
        try:
            result = operation()
        except REDIS_UNREACHABLE as error:
            self._breaker_open(error, write)
            raise RedisUnavailable from error
        if self._down_since is not None:
            self._breaker_close()
        return result

    def _breaker_allows(self) -> bool:
        if not self._skip_until:
            return True
        with self._lock:
            now = time.monotonic()
            if now < self._skip_until:
                return False
            # This caller probes; the others keep skipping until it has an answer.
            self._skip_until = now + self._retry_after
            return True

    def _note_skipped(self, write: bool) -> None:
        if write:
            with self._lock:
                self._dropped_writes += 1

    def _breaker_open(self, error: Exception, write: bool) -> None:
        with self._lock:
            now = time.monotonic()
            self._skip_until = now + self._retry_after
            self._dropped_writes += int(write)
            starting = self._down_since is None
            if starting:
                self._down_since = now
        if starting:
            logger.warning(
                "Redis cache unreachable (%s: %s): reads miss and writes are dropped; "
                "trying again every %g s",
                type(error).__name__,
                error,
                self._retry_after,
            )

    def _breaker_close(self) -> None:
        with self._lock:
            if self._down_since is None:
                return
            seconds = time.monotonic() - self._down_since
            dropped = self._dropped_writes
            self._skip_until, self._down_since, self._dropped_writes = 0.0, None, 0
        logger.warning(
            "Redis cache answers again after %.0f s; writes dropped meanwhile: %d",
            seconds,
            dropped,
        )

    def _soft(self, fallback: T, method: Callable[..., T], *args: Any, write: bool = False) -> T:
        try:
            return self.redis_call(lambda: method(*args), write=write)
        except RedisUnavailable:
            return fallback

    # --- Django's cache API ----------------------------------------------------------------

    def get(self, key: str, default: Any = None, version: int | None = None) -> Any:
        return self._soft(default, super().get, key, default, version)

    def get_many(self, keys: Iterable[str], version: int | None = None) -> dict[str, Any]:
        return self._soft({}, super().get_many, keys, version)

    def has_key(self, key: str, version: int | None = None) -> bool:
        return self._soft(False, super().has_key, key, version)

    def add(
        self,
        key: str,
        value: Any,
        timeout: float | None = DEFAULT_TIMEOUT,
        version: int | None = None,
    ) -> bool:
        return self._soft(True, super().add, key, value, timeout, version, write=True)

    def set(
        self,
        key: str,
        value: Any,
        timeout: float | None = DEFAULT_TIMEOUT,
        version: int | None = None,
    ) -> None:
        self._soft(None, super().set, key, value, timeout, version, write=True)

    def touch(
        self, key: str, timeout: float | None = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        return self._soft(False, super().touch, key, timeout, version, write=True)

    def delete(self, key: str, version: int | None = None) -> bool:
        return self._soft(False, super().delete, key, version, write=True)

    def incr(self, key: str, delta: int = 1, version: int | None = None) -> int:
        increment = super().incr
        try:
            return self.redis_call(lambda: increment(key, delta, version), write=True)
        except RedisUnavailable:
            raise ValueError(f"Key '{key}' not found (Redis is unreachable).") from None

    def set_many(
        self,
        data: dict[str, Any],
        timeout: float | None = DEFAULT_TIMEOUT,
        version: int | None = None,
    ) -> list[str]:
        return self._soft(list(data), super().set_many, data, timeout, version, write=True)

    def delete_many(self, keys: Iterable[str], version: int | None = None) -> None:
        self._soft(None, super().delete_many, keys, version, write=True)

    def clear(self) -> None:
        self._soft(None, super().clear, write=True)
