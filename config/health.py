"""Health probes for load balancers, orchestrators and monitors.

``GET /api/v1/health/live``: the process answers (liveness). It touches nothing else, not even
the rate limiter's cache: a failing database must not get every web process restarted.

``GET /api/v1/health/ready`` (and ``GET /api/v1/health``, its older name): can this process reach
what it needs (readiness)?

Each check is ``ok``, ``failing``, or, for a backend the embedded defaults replace, ``eager``
(Celery runs tasks in the web process) or ``embedded`` (an in-process EVM, nothing to reach). Any
``failing`` makes the answer 503. The public answer names no hosts or errors; those are logged.

The endpoint is anonymous, so each process probes its backends at most once per
``HEALTH_CACHE_SECONDS`` and answers from that report in between (a flood of probes can't load
the database or the chain node); it is also rate-limited per client like every endpoint.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import redis
from django.conf import settings
from django.db import connection
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from rewards.asset import payout_asset
from rewards.client import chain_client, chain_is_embedded

logger = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 3.0


def _database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def _broker() -> str:
    if not settings.REDIS_URL:
        return "eager"
    with redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=PROBE_TIMEOUT_S, socket_timeout=PROBE_TIMEOUT_S
    ) as client:
        client.ping()
    return "ok"


def _chain() -> str:
    if chain_is_embedded():
        return "embedded"
    client = chain_client()
    client.block_number()
    if not client.payout_address:
        raise RuntimeError("no payout contract (CHAIN_TOKEN_ADDRESS / CHAIN_DISTRIBUTOR_ADDRESS)")
    asset = payout_asset()
    info = client.token_info()
    if (info.symbol, info.decimals) != (asset.symbol, asset.decimals):
        raise RuntimeError(
            f"the chain pays {info.symbol} with {info.decimals} decimals; settings say "
            f"{asset.symbol} with {asset.decimals} (PAYOUT_ASSET_SYMBOL, PAYOUT_ASSET_DECIMALS)"
        )
    return "ok"


CHECKS: dict[str, Callable[[], str]] = {"database": _database, "broker": _broker, "chain": _chain}


def health_report() -> dict[str, str]:
    """Run every check; a check that raises is ``failing`` (and logged with its reason)."""
    report: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            report[name] = check()
        except Exception:
            logger.warning("health check %s failing", name, exc_info=True)
            report[name] = "failing"
    return report


_cache_lock = threading.Lock()
_cached: tuple[float, dict[str, str]] | None = None


def health_report_cached() -> dict[str, str]:
    """``health_report()``, run at most once per ``HEALTH_CACHE_SECONDS`` in this process."""
    global _cached
    with _cache_lock:  # concurrent probes wait for one run instead of each running the checks
        now = time.monotonic()
        if _cached is None or now - _cached[0] >= settings.HEALTH_CACHE_SECONDS:
            _cached = (now, health_report())
        return dict(_cached[1])


def health_cache_clear() -> None:
    global _cached
    with _cache_lock:
        _cached = None


HEALTH = inline_serializer(
    "Health",
    {
        "status": serializers.ChoiceField(["ok", "failing"]),
        "checks": serializers.DictField(
            child=serializers.ChoiceField(["ok", "failing", "eager", "embedded"])
        ),
    },
)


LIVE = inline_serializer("Liveness", {"status": serializers.ChoiceField(["ok"])})


class LiveApi(APIView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    # Liveness must not depend on Redis (the rate limiter's store): it does no work to limit.
    throttle_classes: list[type] = []

    @extend_schema(
        summary="Whether this process answers (no backend is touched)",
        responses={(200, "application/json"): LIVE},
    )
    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})


class ReadyApi(APIView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    @extend_schema(
        summary="Whether this process reaches its database, broker and chain node",
        responses={(200, "application/json"): HEALTH, (503, "application/json"): HEALTH},
    )
    def get(self, request: Request) -> Response:
        checks = health_report_cached()
        healthy = "failing" not in checks.values()
        return Response(
            {"status": "ok" if healthy else "failing", "checks": checks},
            status=200 if healthy else 503,
        )


class HealthApi(ReadyApi):
    """``/api/v1/health``: the readiness probe under the name it had first."""
