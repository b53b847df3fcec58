"""Rate limits: every endpoint, per token or key when signed in, per client address otherwise;
a forged ``X-Forwarded-For`` resets nothing; an unreachable cache doesn't take the API down."""

from __future__ import annotations

import random
from typing import Any

import pytest
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from accounts.models import User
from accounts.services import api_key_issue
from config.throttling import ApiRateThrottle, SignInThrottle
from labeling.models import Project
from labeling.services import item_create_text
from tests.config.test_health import closed_port
from tests.conftest import Contributor, serve

pytestmark = pytest.mark.django_db


@pytest.fixture
def rates(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    low = {
        "sign_in": "3/minute",
        "user": "5/minute",
        "anon": "4/minute",
        "dataset": "100/minute",
        "export": "100/hour",
    }
    for throttle in (SimpleRateThrottle, ApiRateThrottle, SignInThrottle):
        monkeypatch.setattr(throttle, "THROTTLE_RATES", low)
    return low


def random_address() -> str:
    return ".".join(str(random.randint(1, 254)) for _ in range(4))


def test_a_forged_forwarded_for_header_does_not_reset_the_sign_in_limit(
    rates: dict[str, str],
) -> None:
    client = APIClient()
    codes = [client.get("/api/v1/auth/nonce").status_code for _ in range(3)]
    assert codes == [200, 200, 200]
    spoofed = [
        client.get("/api/v1/auth/nonce", HTTP_X_FORWARDED_FOR=random_address()).status_code
        for _ in range(20)
    ]
    assert spoofed == [429] * 20
    posts = [
        client.post(
            "/api/v1/auth/siwe", {}, format="json", HTTP_X_FORWARDED_FOR=random_address()
        ).status_code
        for _ in range(20)
    ]
    assert posts == [429] * 20


def test_behind_a_trusted_proxy_the_address_it_saw_is_the_client(
    rates: dict[str, str], settings: Any
) -> None:
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    client = APIClient()
    # The client forges a first entry; the proxy appends the address it really saw.
    first = [
        client.get(
            "/api/v1/auth/nonce", HTTP_X_FORWARDED_FOR=f"{random_address()}, 203.0.113.7"
        ).status_code
        for _ in range(4)
    ]
    assert first == [200, 200, 200, 429]
    other = client.get("/api/v1/auth/nonce", HTTP_X_FORWARDED_FOR="198.51.100.9")
    assert other.status_code == 200


def test_signed_in_endpoints_are_limited_per_token_with_retry_after(
    contributor: Contributor, second_contributor: Contributor, rates: dict[str, str]
) -> None:
    codes = [contributor.api.get("/api/v1/me/").status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]
    refused = contributor.api.get("/api/v1/projects/")
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    assert "throttled" in refused.json()["detail"].lower()
    # Another contributor, from the same address, has a budget of its own.
    assert second_contributor.api.get("/api/v1/me/").status_code == 200


def test_each_api_key_has_its_own_budget(rates: dict[str, str]) -> None:
    buyer = User.objects.create_user("buyer", role=User.Role.BUYER)
    keys = [api_key_issue(user=buyer, name=name) for name in ("a", "b")]
    first, second = APIClient(), APIClient()
    first.credentials(HTTP_AUTHORIZATION=f"Bearer {keys[0]}")
    second.credentials(HTTP_AUTHORIZATION=f"Bearer {keys[1]}")
    assert [first.get("/api/v1/datasets/").status_code for _ in range(6)][-1] == 429
    assert second.get("/api/v1/datasets/").status_code == 200


def test_dataset_reads_have_a_budget_of_their_own_per_key(
    rates: dict[str, str], contributor: Contributor
) -> None:
    rates["dataset"] = "2/minute"  # below API_RATE's 5: the buyers' scope is what refuses
    buyer = User.objects.create_user("buyer", role=User.Role.BUYER)
    keys = [api_key_issue(user=buyer, name=name) for name in ("a", "b")]
    first, second = APIClient(), APIClient()
    first.credentials(HTTP_AUTHORIZATION=f"Bearer {keys[0]}")
    second.credentials(HTTP_AUTHORIZATION=f"Bearer {keys[1]}")
    codes = [first.get("/api/v1/datasets/").status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    assert int(first.get("/api/v1/datasets/")["Retry-After"]) > 0
    assert second.get("/api/v1/datasets/").status_code == 200
    # Other endpoints still count only against API_RATE.
    assert contributor.api.get("/api/v1/me/").status_code == 200


def test_anonymous_endpoints_and_the_health_probe_are_limited_per_address(
    rates: dict[str, str],
) -> None:
    client = APIClient()
    codes = [client.get("/api/v1/health").status_code for _ in range(3)]
    codes += [client.get("/api/v1/projects/").status_code for _ in range(2)]
    assert codes == [200, 200, 200, 200, 429]


def test_the_health_probe_checks_its_backends_at_most_once_per_period(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from config import health

    calls: list[str] = []
    monkeypatch.setitem(health.CHECKS, "chain", lambda: calls.append("chain") or "embedded")
    settings.HEALTH_CACHE_SECONDS = 60
    for _ in range(10):
        assert APIClient().get("/api/v1/health").status_code == 200
    assert calls == ["chain"]


def test_an_unreachable_rate_limit_cache_lets_requests_through(
    rates: dict[str, str], settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Django's test signals rebuild the cache handlers when CACHES changes.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
        }
    }
    codes = [APIClient().get("/api/v1/projects/").status_code for _ in range(6)]
    assert codes == [200] * 6
    assert "rate-limit cache unreachable" in caplog.text


def test_an_answer_counts_in_both_of_its_limits_at_once_and_the_longer_wait_wins(
    contributor: Contributor, text_project: Project, rates: dict[str, str], monkeypatch: Any
) -> None:
    monkeypatch.setitem(rates, "labels", "2/hour")
    items = [
        item_create_text(project=text_project, contributor=None, text=f"answer {n}")
        for n in range(6)
    ]
    codes = []
    for item in items:
        serve(item, contributor)
        codes.append(
            contributor.api.post(
                f"/api/v1/items/{item.pk}/annotations/", {"label": "positive"}, format="json"
            )
        )
    assert [reply.status_code for reply in codes] == [201, 201, 429, 429, 429, 429]
    # The label limit (an hour) refuses the third; the API limit (a minute) counted it too.
    assert int(codes[2]["Retry-After"]) > 60
    assert [contributor.api.get("/api/v1/me/").status_code for _ in range(2)] == [429, 429]


def test_without_redis_retry_after_is_the_time_the_window_has_left(
    rates: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """It was always the whole period: a client told to wait 60 s could call again after 30."""
    import config.throttling as throttling

    clock = [1_000_000.0]
    monkeypatch.setattr(throttling, "_clock", lambda: clock[0])
    client = APIClient()
    assert client.get("/api/v1/auth/nonce").status_code == 200
    clock[0] += 40
    assert [client.get("/api/v1/auth/nonce").status_code for _ in range(3)] == [200, 200, 429]
    assert int(client.get("/api/v1/auth/nonce")["Retry-After"]) == 20
