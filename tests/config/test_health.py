"""``GET /api/v1/health``: every backend reached, or 503 naming the one that is not."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient

from rewards.client import chain_client_reset

pytestmark = pytest.mark.django_db


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def fresh_chain_client() -> Iterator[None]:
    chain_client_reset()
    yield
    chain_client_reset()


def test_the_embedded_defaults_are_healthy_without_any_service() -> None:
    response = APIClient().get("/api/v1/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "broker": "eager", "chain": "embedded"},
    }


def test_an_unreachable_broker_makes_it_503(settings: Any) -> None:
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    response = APIClient().get("/api/v1/health")
    assert response.status_code == 503
    assert response.json()["status"] == "failing"
    assert response.json()["checks"] == {
        "database": "ok",
        "broker": "failing",
        "chain": "embedded",
    }


def test_an_unreachable_chain_node_makes_it_503_without_naming_the_host(
    settings: Any, fresh_chain_client: None
) -> None:
    settings.CHAIN_RPC_URL = f"http://127.0.0.1:{closed_port()}"
    settings.CHAIN_PRIVATE_KEY = "0x" + "11" * 32
    settings.CHAIN_TOKEN_ADDRESS = "0x" + "22" * 20
    response = APIClient().get("/api/v1/health")
    assert response.status_code == 503
    assert response.json()["checks"]["chain"] == "failing"
    assert "127.0.0.1" not in response.content.decode()


def test_liveness_answers_without_touching_any_backend(
    settings: Any, django_assert_num_queries: Any
) -> None:
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": settings.REDIS_URL,
        }
    }
    with django_assert_num_queries(0):
        response = APIClient().get("/api/v1/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readiness_is_what_the_health_probe_always_answered(settings: Any) -> None:
    assert APIClient().get("/api/v1/health/ready").json() == {
        "status": "ok",
        "checks": {"database": "ok", "broker": "eager", "chain": "embedded"},
    }
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    from config.health import health_cache_clear

    health_cache_clear()
    ready = APIClient().get("/api/v1/health/ready")
    alias = APIClient().get("/api/v1/health")
    assert ready.status_code == alias.status_code == 503
    assert ready.json() == alias.json()
