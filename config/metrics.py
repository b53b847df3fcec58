"""Prometheus metrics: ``GET /metrics`` (django-prometheus's request, response and database
metrics, plus Crowdmint's own), restricted to a bearer token or to allowed networks.

Crowdmint's metrics:

- ``crowdmint_labels_total``: labels accepted by the API (labels per second is its rate);
- ``crowdmint_decision_latency_seconds``: from an item's last label to its decision (observed by
  the Celery worker that decides it);
- ``crowdmint_queue_depth{queue}``: tasks waiting in each Celery queue (read from Redis at scrape);
- ``crowdmint_decisions_waiting``: items in the decisions' queue (``labeling.DecisionDue``: they
  have their labels and wait for their decision; read from the database at scrape);
- ``crowdmint_payout_batches{state}``: payout batches by state (read from the database at scrape);
- ``crowdmint_chain_rpc_errors_total{kind}``: failed calls to the chain node;
- ``crowdmint_tasks_not_queued_total{task}``: tasks a request couldn't queue (the broker was
  down; ``config.broker.task_send``);
- ``crowdmint_fraud_flags``: open fraud flags (``moderation.Flag``), and
  ``crowdmint_fraud_flags_by_kind{kind}`` the same by kind (read at scrape).

Several processes (gunicorn's workers, Celery's) serve one deployment: with
``PROMETHEUS_MULTIPROC_DIR`` set, each writes its samples to files there (prometheus_client's
multi-process mode) and a scrape adds them up; ``deploy/gunicorn.conf.py`` empties the directory
at start and drops the files of a worker that exits. Without it (tests, the demo), the process's
own registry is served. Gauges read at scrape time come from a collector that runs in the
scraped process only.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
from collections.abc import Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

LABELS = Counter("crowdmint_labels", "Labels (annotations) accepted by the API.")
DECISION_LATENCY = Histogram(
    "crowdmint_decision_latency_seconds",
    "Time from an item's last label to its decision.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
)
CHAIN_RPC_ERRORS = Counter(
    "crowdmint_chain_rpc_errors",
    "Calls to the chain node that failed, by kind (unavailable: not reached; error: refused).",
    ["kind"],
)
TASKS_NOT_QUEUED = Counter(
    "crowdmint_tasks_not_queued",
    "Tasks that could not be queued because the broker was unreachable, by task.",
    ["task"],
)

QUEUES = ("celery", "decisions", "consensus", "consensus-gpu", "moderation", "payouts")


class StateCollector(Collector):
    """Gauges read from Redis and the database when scraped (one query each, no per-event cost)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from self._queues()
        yield from self._decisions_waiting()
        yield from self._payout_batches()
        yield from self._fraud_flags()

    def _queues(self) -> Iterator[GaugeMetricFamily]:
        from django.conf import settings

        family = GaugeMetricFamily(
            "crowdmint_queue_depth", "Tasks waiting in each Celery queue.", labels=["queue"]
        )
        if settings.REDIS_URL:
            import redis

            try:
                with redis.Redis.from_url(
                    settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2
                ) as client:
                    pipe = client.pipeline()
                    for queue in QUEUES:
                        pipe.llen(queue)
                    for queue, depth in zip(QUEUES, pipe.execute(), strict=True):
                        family.add_metric([queue], float(depth))
            except redis.RedisError:
                logger.warning("metrics: queue depths unavailable", exc_info=True)
        yield family

    def _decisions_waiting(self) -> Iterator[GaugeMetricFamily]:
        from labeling.models import DecisionDue

        yield GaugeMetricFamily(
            "crowdmint_decisions_waiting",
            "Items that have their labels and wait in the decisions' queue.",
            value=float(DecisionDue.objects.count()),
        )

    def _payout_batches(self) -> Iterator[GaugeMetricFamily]:
        from django.db.models import Count

        from rewards.models import PayoutBatch

        family = GaugeMetricFamily(
            "crowdmint_payout_batches", "Payout batches by state.", labels=["state"]
        )
        counts = dict(
            PayoutBatch.objects.values_list("status")
            .annotate(n=Count("id"))
            .values_list("status", "n")
        )
        for state in PayoutBatch.Status.values:
            family.add_metric([state], float(counts.get(state, 0)))
        yield family

    def _fraud_flags(self) -> Iterator[GaugeMetricFamily]:
        by_kind = fraud_flags_open()
        yield GaugeMetricFamily(
            "crowdmint_fraud_flags", "Open fraud flags.", value=float(sum(by_kind.values()))
        )
        family = GaugeMetricFamily(
            "crowdmint_fraud_flags_by_kind", "Open fraud flags by kind.", labels=["kind"]
        )
        for kind, count in sorted(by_kind.items()):
            family.add_metric([kind], float(count))
        yield family


def fraud_flags_open() -> dict[str, int]:
    """Open fraud flags (``moderation.Flag``) by kind, every kind present."""
    from django.db.models import Count

    from moderation.models import Flag

    counts = dict(
        Flag.objects.filter(state=Flag.State.OPEN)
        .values_list("kind")
        .annotate(n=Count("id"))
        .values_list("kind", "n")
    )
    return {kind: int(counts.get(kind, 0)) for kind in Flag.Kind.values}


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def metrics_exposition() -> bytes:
    """Every metric of this deployment's processes on this host, in Prometheus' text format."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = REGISTRY
    state = CollectorRegistry()
    state.register(StateCollector())
    return generate_latest(registry) + generate_latest(state)


# --- access -------------------------------------------------------------------------------------


def _networks(text: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(n.strip(), strict=False) for n in text.split(",") if n.strip()]


def client_address(meta: dict[str, str], num_proxies: int) -> str:
    """The client's address as the rate limits see it: ``REMOTE_ADDR``, or with ``NUM_PROXIES``
    the address the outermost trusted proxy put in ``X-Forwarded-For``."""
    forwarded = meta.get("HTTP_X_FORWARDED_FOR", "")
    if num_proxies and forwarded:
        hops = [h.strip() for h in forwarded.split(",")]
        return hops[-min(num_proxies, len(hops))]
    return meta.get("REMOTE_ADDR", "")


def metrics_allowed(*, authorization: str, address: str, token: str, networks: str) -> bool:
    """A bearer token equal to ``METRICS_TOKEN`` (compared in constant time), or a client address
    in ``METRICS_ALLOWED_NETWORKS``. Nothing configured: nobody."""
    presented = authorization[len("Bearer ") :] if authorization.startswith("Bearer ") else ""
    if token and presented and hmac.compare_digest(presented.encode(), token.encode()):
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in _networks(networks))


__all__ = [
    "CHAIN_RPC_ERRORS",
    "CONTENT_TYPE_LATEST",
    "DECISION_LATENCY",
    "LABELS",
    "client_address",
    "metrics_allowed",
    "metrics_exposition",
]
