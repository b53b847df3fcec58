"""Rate limits for every endpoint: per token or API key when authenticated, per client otherwise.

The client address is what DRF's ``NUM_PROXIES`` says it is: ``REMOTE_ADDR`` by default, so a
spoofed ``X-Forwarded-For`` header changes nothing. Counters live in Redis when ``REDIS_URL`` is
set (so every process and host shares them), in the process's cache otherwise. If Redis can't be
reached the request is let through and the failure logged: an outage of Redis must not take the
API down with it (the health probe reports the broker as failing).

The limit is a fixed window that opens at a client's first request: one counter per client that
expires ``duration`` seconds after it was created, and one pipelined round trip per request
(create the counter if missing, increment it, read its time to live), for all of a view's limits
together (``OneRoundTripThrottles``). DRF's own throttle keeps
the time of every request in the window and reads and rewrites that whole list on each request:
two round trips, and a list that grows with the rate; this one costs the same at any rate. The
price: a client that waits for its window to end can spend a second budget right after the
first.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import redis
from django.conf import settings
from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from accounts.models import AccessToken

logger = logging.getLogger(__name__)

_redis_lock = threading.Lock()
_redis_clients: dict[str, redis.Redis] = {}


def _redis() -> redis.Redis | None:
    url = settings.REDIS_URL
    if not url:
        return None
    client = _redis_clients.get(url)
    if client is None:
        with _redis_lock:
            client = _redis_clients.setdefault(
                url, redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
            )
    return client


def window_count(key: str, duration: int) -> tuple[int, float]:
    """Count one more request in ``key``'s window, which opens at its first request and lasts
    ``duration`` seconds; returns the count and the seconds left in the window."""
    [counted] = window_counts([(key, duration)])
    return counted


def window_counts(windows: list[tuple[str, int]]) -> list[tuple[int, float]]:
    """``window_count`` for several windows, in one round trip to Redis."""
    client = _redis()
    if client is None:
        return [_local_window_count(key, duration) for key, duration in windows]
    pipe = client.pipeline(transaction=False)
    for key, duration in windows:
        pipe.set(key, 0, ex=duration, nx=True)
        pipe.incr(key)
        pipe.ttl(key)
    replies = pipe.execute()  # type: ignore[no-untyped-call]
    return [
        (int(replies[3 * i + 1]), float(ttl if (ttl := replies[3 * i + 2]) > 0 else duration))
        for i, (_, duration) in enumerate(windows)
    ]


_clock = time.time  # the local windows' clock (tests move it)


def _local_window_count(key: str, duration: int) -> tuple[int, float]:
    """The count in this process's cache, and the seconds its window has left (the cache has no
    TTL to read: the window's start is kept beside the count)."""
    now = _clock()
    cache.add(f"{key}:start", now, duration)
    cache.add(key, 0, duration)
    try:
        count = int(cache.incr(key))
    except ValueError:  # expired between add and incr
        cache.add(key, 1, duration)
        return 1, float(duration)
    started = cache.get(f"{key}:start")
    left = duration - (now - started) if isinstance(started, float) else duration
    return count, float(min(duration, max(1.0, left)))


class FixedWindowThrottle(SimpleRateThrottle):
    """``num_requests`` per ``duration``-second window, counted in Redis; fails open."""

    cache_format = "crowdmint:throttle:%(scope)s:%(ident)s"
    retry_after = 0.0
    num_requests: int | None
    duration: int | None

    def window(self, request: Request, view: Any) -> str | None:
        """The key of the window this request counts in; ``None`` when no limit applies."""
        if self.rate is None:
            return None
        key = self.get_cache_key(request, view)
        if key is None or self.num_requests is None or self.duration is None:
            return None
        return key

    def counted(self, count: int, seconds_left: float) -> bool:
        """Whether a request that made its window's count ``count`` is allowed."""
        self.retry_after = seconds_left
        return self.num_requests is None or count <= self.num_requests

    def allow_request(self, request: Request, view: Any) -> bool:
        key = self.window(request, view)
        if key is None or self.duration is None:
            return True
        try:
            count, seconds_left = window_count(key, self.duration)
        except Exception:  # redis-py's errors, whatever the client version raises
            logger.warning("rate-limit cache unreachable: request let through", exc_info=True)
            return True
        return self.counted(count, seconds_left)

    def wait(self) -> float | None:
        return max(1.0, self.retry_after)


class OneRoundTripThrottles:
    """For an ``APIView`` with several ``FixedWindowThrottle``s (e.g. ``API_RATE`` and
    ``LABEL_RATE`` on every answer): all of them counted in one round trip to Redis instead of
    one each. Refuses as DRF does: every throttle counts the request, the longest wait wins."""

    def check_throttles(self, request: Request) -> None:
        waits: list[float | None] = []
        windows: list[tuple[FixedWindowThrottle, str, int]] = []
        for throttle in self.get_throttles():  # type: ignore[attr-defined]
            if not isinstance(throttle, FixedWindowThrottle):
                if not throttle.allow_request(request, self):
                    waits.append(throttle.wait())
                continue
            key = throttle.window(request, self)
            if key is not None and throttle.duration is not None:
                windows.append((throttle, key, throttle.duration))
        try:
            counts = window_counts([(key, duration) for _, key, duration in windows])
        except Exception:  # redis-py's errors, whatever the client version raises
            logger.warning("rate-limit cache unreachable: request let through", exc_info=True)
            counts = []
        for (throttle, _, _), (count, seconds_left) in zip(windows, counts, strict=False):
            if not throttle.counted(count, seconds_left):
                waits.append(throttle.wait())
        if waits:
            known = [wait for wait in waits if wait is not None]
            self.throttled(request, max(known, default=None))  # type: ignore[attr-defined]


class ApiRateThrottle(FixedWindowThrottle):
    """``API_RATE`` per token, API key or signed-in session; ``ANON_RATE`` per client address."""

    scope = "user"

    def window(self, request: Request, view: Any) -> str | None:
        self.scope = "user" if request.user and request.user.is_authenticated else "anon"
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().window(request, view)

    def get_cache_key(self, request: Request, view: Any) -> str:
        if isinstance(request.auth, AccessToken):
            ident = f"token-{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            ident = f"addr-{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class SignInThrottle(FixedWindowThrottle):
    """Sign-in endpoints are open to anyone: ``SIGN_IN_RATE`` per client address."""

    scope = "sign_in"

    def get_cache_key(self, request: Request, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class PerKeyScopedThrottle(FixedWindowThrottle):
    """A rate of its own ``scope`` per token or API key (per user for a session), on top of
    ``API_RATE``: buyers' dataset reads (``DATASET_RATE``) and export requests (``EXPORT_RATE``)."""

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if isinstance(request.auth, AccessToken):
            ident = f"token-{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            return None  # anonymous requests are refused before; ANON_RATE counts them
        return self.cache_format % {"scope": self.scope, "ident": ident}


class DatasetReadThrottle(PerKeyScopedThrottle):
    scope = "dataset"


class ExportRequestThrottle(PerKeyScopedThrottle):
    scope = "export"


class PerUserScopedThrottle(FixedWindowThrottle):
    """A rate of its own ``scope`` per account, however many sign-ins it holds: contributors'
    answers (``LABEL_RATE``) and uploads (``UPLOAD_RATE``)."""

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if not (request.user and request.user.is_authenticated):
            return None  # anonymous requests are refused before; ANON_RATE counts them
        return self.cache_format % {"scope": self.scope, "ident": f"user-{request.user.pk}"}


class LabelThrottle(PerUserScopedThrottle):
    """``LABEL_RATE`` answers per contributor, on top of ``API_RATE``."""

    scope = "labels"


class UploadThrottle(PerUserScopedThrottle):
    """``UPLOAD_RATE`` uploads per contributor, on top of ``API_RATE``."""

    scope = "uploads"
