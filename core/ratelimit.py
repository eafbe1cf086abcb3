"""One sliding-window limiter for everything the portal sends or issues on a user's behalf
(team and customer invitations and their resends, card-consent links, transfer tokens).

Each limit is a sorted set in Redis holding the times of the sends in the last window; a send
is allowed when every limit it counts against has room, and is then recorded in all of them at
once, by one Lua script, so two web processes cannot both take the last place and a send
refused by the user's limit does not use up the reseller's. The answer says how long to wait
until the oldest send leaves the window, which becomes the 429's Retry-After.

Why not a library: django-ratelimit (used here before) had its last release in 2023, counts in
fixed windows (twice the limit fits across a window's edge) and is built around a request,
while these limits are taken in services, after the input was validated, so bad input never
uses up the quota. The maintained alternatives (the `limits` package) would add a dependency
for what is the thirty lines below.

Other cache backends (the embedded SQLite demo, tests without Redis) keep the same window in
the cache as a list of times, under a process lock: right for one process, which is all they
serve.

When Redis cannot be reached (down, frozen, or skipped for a few seconds after a failure by
core.cache.ResilientRedisCache's breaker), each limit says what happens, where it is made:

- fail open (`fail_open=True`): the send goes ahead, counted in a window of this process's own
  (a local-memory cache), so it is still bounded per web process. Team and customer
  invitations and their resends: a signed-in, audited team member sends them, and the emails
  wait in the database until a worker can send them anyway.
- fail closed (the default): the send is refused with a 429, a Retry-After of a minute and a
  message saying the limit could not be checked. Card-consent links and transfer tokens: they
  hand out tokens that move money or customers.

A send counting against limits of both kinds is refused. django-allauth's own limits (sign-in
attempts, password resets) keep their counts in the default cache through get/set with an add
as a lock: on ResilientRedisCache a read misses and an add answers True, so they fail open,
without waiting for their lock.
"""

import math
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext

from core.cache import REDIS_UNREACHABLE, RedisUnavailable, ResilientRedisCache

WINDOW = 3600  # seconds: limits are per hour
# A limit that fails closed asks the user to try again after this many seconds.
UNCHECKED_RETRY_AFTER = 60

_SLIDING_WINDOW = """
local now = tonumber(ARGV[1])
local wait = 0
local refused = 0
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[1 + 2 * i])
  local window = tonumber(ARGV[2 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  local this_wait = 0
  if limit <= 0 then
    this_wait = window
  elseif count >= limit then
    local oldest = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
    this_wait = tonumber(oldest[2]) + window - now
  end
  if this_wait > wait then
    wait = this_wait
    refused = i
  end
end
if refused > 0 then
  return {refused, tostring(wait)}
end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[2])
  redis.call('EXPIRE', key, math.ceil(tonumber(ARGV[2 + 2 * i])))
end
return false
"""

_local_lock = threading.Lock()


@dataclass(frozen=True)
class Limit:
    """At most `limit` sends per `window` seconds for one `key` (a reseller's or a user's public
    id) in one `scope` (what is sent); `message` tells the user which limit it reached;
    `fail_open` is what happens when Redis cannot be reached (the module's docstring)."""

    scope: str
    key: str
    limit: int
    window: int = WINDOW
    message: str = ""
    # Redis unreachable: True lets the send go ahead (counted per process), False refuses it.
    fail_open: bool = False


class RateLimited(Exception):
    """A limit is reached: nothing was sent or saved. `message` says which, for the 429 page."""

    def __init__(self, retry_after: int, message: str) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.message = message


def limits_take(*limits: Limit) -> int | None:
    """Count one send against every limit, or against none if one of them is reached.

    Returns None when the send may go ahead, else the seconds to wait before it would fit."""
    refused = _take(limits)
    return None if refused is None else refused[0]


def _take(limits: tuple[Limit, ...]) -> tuple[int, str] | None:
    """None, or the seconds to wait and the message of the limit that needs the longest wait."""
    now = time.time()
    cache = caches["default"]
    keys = [cache.make_and_validate_key(f"ratelimit:{item.scope}:{item.key}") for item in limits]
    if isinstance(cache, RedisCache):
        try:
            return _take_in_redis(cache, limits, keys, now)
        except (RedisUnavailable, *REDIS_UNREACHABLE):
            return _take_unchecked(limits, keys, now)
    return _take_in_cache(cache, limits, keys, now)


def _take_in_redis(
    cache: RedisCache, limits: tuple[Limit, ...], keys: list[str], now: float
) -> tuple[int, str] | None:
    arguments: list[Any] = [repr(now), f"{now!r}-{secrets.token_hex(8)}"]
    for item in limits:
        arguments += [item.limit, item.window]

    def run() -> Any:
        client = cache._cache.get_client(keys[0], write=True)
        return client.eval(_SLIDING_WINDOW, len(keys), *keys, *arguments)

    answer = cache.redis_call(run, write=True) if isinstance(cache, ResilientRedisCache) else run()
    if answer is None:
        return None
    index, wait = answer
    return max(1, math.ceil(float(wait))), limits[int(index) - 1].message


def _take_unchecked(
    limits: tuple[Limit, ...], keys: list[str], now: float
) -> tuple[int, str] | None:
    """Redis is unreachable: refuse unless every limit fails open, then count in this process."""
    if all(item.fail_open for item in limits):
        return _take_in_cache(_process_cache(), limits, keys, now)
    return UNCHECKED_RETRY_AFTER, gettext(
        "The limit on how often this can be done could not be checked just now."
    )


def _process_cache() -> BaseCache:
    """This process's own window for limits that fail open: local memory, which Django keys by
    name, so every call reaches the same store."""
    return LocMemCache(
        "core.ratelimit.unchecked", {"TIMEOUT": WINDOW, "OPTIONS": {"MAX_ENTRIES": 10_000}}
    )


def _take_in_cache(
    cache: BaseCache, limits: tuple[Limit, ...], keys: list[str], now: float
) -> tuple[int, str] | None:
    with _local_lock:
        windows = {}
        wait, refused = 0.0, None
        for item, key in zip(limits, keys, strict=True):
            times = [t for t in cache.get(key, []) if t > now - item.window]
            windows[key] = times
            this_wait = 0.0
            if item.limit <= 0:
                this_wait = item.window
            elif len(times) >= item.limit:
                this_wait = sorted(times)[len(times) - item.limit] + item.window - now
            if this_wait > wait:
                wait, refused = this_wait, item
        if refused is not None:
            return max(1, math.ceil(wait)), refused.message
        for item, key in zip(limits, keys, strict=True):
            cache.set(key, [*windows[key], now], item.window)
        return None


def limit_check(*, scope: str, key: str, limit: int, window: int = WINDOW) -> int | None:
    """One limit: None if the send may go ahead (and is counted), else the seconds to wait."""
    return limits_take(Limit(scope=scope, key=key, limit=limit, window=window))


def limits_enforce(*limits: Limit) -> None:
    """Count one send, or raise RateLimited with the reached limit's message."""
    refused = _take(limits)
    if refused is not None:
        raise RateLimited(*refused)


def rate_limited_response(
    request: HttpRequest, error: RateLimited, *, back_url: str, back_label: str
) -> HttpResponse:
    """429 with Retry-After: which limit was reached and how long to wait."""
    response = render(
        request,
        "429.html",
        {
            "message": error.message,
            "minutes": max(1, math.ceil(error.retry_after / 60)),
            "back_url": back_url,
            "back_label": back_label,
        },
        status=429,
    )
    response["Retry-After"] = str(error.retry_after)
    return response


# One request counted against one limit, answering how many are left (the API's RateLimit-*
# headers): the same sliding window as above, for a single key, which also returns the count.
_SLIDING_WINDOW_COUNTED = """
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[3])
local window = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local reset = window
if oldest[2] then reset = tonumber(oldest[2]) + window - now end
if count >= limit then
  local first = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
  return {0, 0, tostring(tonumber(first[2]) + window - now)}
end
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('EXPIRE', KEYS[1], math.ceil(window))
return {1, limit - count - 1, tostring(reset)}
"""


@dataclass(frozen=True)
class LimitState:
    """What a counted request left of its limit: `remaining` requests in the window, the
    window's oldest request leaves it in `reset` seconds; `retry_after` is None when the
    request was allowed, else the seconds to wait."""

    limit: int
    remaining: int
    reset: int
    retry_after: int | None
    window: int


def limit_take_counted(item: Limit) -> LimitState:
    """Count one request against `item` and say what is left of it. Redis unreachable: a
    fail-open limit counts in this process's window, a fail-closed one refuses."""
    now = time.time()
    cache = caches["default"]
    key = cache.make_and_validate_key(f"ratelimit:{item.scope}:{item.key}")
    if isinstance(cache, RedisCache):
        try:
            return _counted_in_redis(cache, item, key, now)
        except (RedisUnavailable, *REDIS_UNREACHABLE):
            if not item.fail_open:
                return LimitState(
                    item.limit, 0, UNCHECKED_RETRY_AFTER, UNCHECKED_RETRY_AFTER, item.window
                )
            cache = _process_cache()
    return _counted_in_cache(cache, item, key, now)


def _counted_in_redis(cache: RedisCache, item: Limit, key: str, now: float) -> LimitState:
    def run() -> Any:
        client = cache._cache.get_client(key, write=True)
        return client.eval(
            _SLIDING_WINDOW_COUNTED,
            1,
            key,
            repr(now),
            f"{now!r}-{secrets.token_hex(8)}",
            item.limit,
            item.window,
        )

    answer = cache.redis_call(run, write=True) if isinstance(cache, ResilientRedisCache) else run()
    allowed, remaining, seconds = int(answer[0]), int(answer[1]), float(answer[2])
    wait = max(1, math.ceil(seconds))
    return LimitState(item.limit, remaining, wait, None if allowed else wait, item.window)


def _counted_in_cache(cache: BaseCache, item: Limit, key: str, now: float) -> LimitState:
    with _local_lock:
        times = sorted(t for t in cache.get(key, []) if t > now - item.window)
        if len(times) >= item.limit:
            wait = max(1, math.ceil(times[len(times) - item.limit] + item.window - now))
            return LimitState(item.limit, 0, wait, wait, item.window)
        reset = max(1, math.ceil(times[0] + item.window - now)) if times else item.window
        cache.set(key, [*times, now], item.window)
        return LimitState(item.limit, item.limit - len(times) - 1, reset, None, item.window)
