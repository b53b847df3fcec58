"""Rate limits for every endpoint: per token or API key when authenticated, per client otherwise.

The client address is what DRF's ``NUM_PROXIES`` says it is: ``REMOTE_ADDR`` by default, so a
spoofed ``X-Forwarded-For`` header changes nothing. Counters live in the default cache (Redis when
``REDIS_URL`` is set, so every process and host shares them). If the cache can't be reached the
request is let through and the failure logged: an outage of Redis must not take the API down with
it (the health probe reports the broker as failing).
"""

from __future__ import annotations

import logging
from typing import Any

from rest_framework.request import Request
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle

from accounts.models import AccessToken

logger = logging.getLogger(__name__)


class FailOpenMixin:
    """Let a request through when the throttle's cache is unreachable."""

    def allow_request(self, request: Request, view: Any) -> bool:
        try:
            return bool(super().allow_request(request, view))  # type: ignore[misc]
        except Exception:  # redis-py's errors, whatever the client version raises
            logger.warning("rate-limit cache unreachable: request let through", exc_info=True)
            return True


class ApiRateThrottle(FailOpenMixin, SimpleRateThrottle):
    """``API_RATE`` per token, API key or signed-in session; ``ANON_RATE`` per client address."""

    scope = "user"

    def allow_request(self, request: Request, view: Any) -> bool:
        self.scope = "user" if request.user and request.user.is_authenticated else "anon"
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request: Request, view: Any) -> str:
        if isinstance(request.auth, AccessToken):
            ident = f"token-{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            ident = f"addr-{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class SignInThrottle(FailOpenMixin, AnonRateThrottle):
    """Sign-in endpoints are open to anyone: ``SIGN_IN_RATE`` per client address."""

    scope = "sign_in"


class PerKeyScopedThrottle(FailOpenMixin, SimpleRateThrottle):
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
