"""Rate limits on real Redis: one counter per client and window, shared by every process."""

from __future__ import annotations

import pytest
import redis
from django.conf import settings
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from accounts.models import AccessToken, User
from accounts.services import access_token_issue
from config.throttling import ApiRateThrottle

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def signed_in(name: str) -> APIClient:
    user = User.objects.create(
        username=name, wallet_address="0x" + name.encode().hex().ljust(40, "0")
    )
    secret, _ = access_token_issue(user=user, kind=AccessToken.Kind.SESSION)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return api


def test_the_limit_is_counted_in_redis_with_its_window(monkeypatch: pytest.MonkeyPatch) -> None:
    low = {"sign_in": "3/minute", "user": "5/minute", "anon": "4/minute"}
    for throttle in (SimpleRateThrottle, ApiRateThrottle):
        monkeypatch.setattr(throttle, "THROTTLE_RATES", low)
    store = redis.Redis.from_url(settings.REDIS_URL)
    store.flushdb()
    first, second = signed_in("first"), signed_in("second")
    codes = [first.get("/api/v1/me/").status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]
    refused = first.get("/api/v1/me/")
    assert 0 < int(refused["Retry-After"]) <= 60
    assert second.get("/api/v1/me/").status_code == 200
    [key] = [k for k in store.keys("crowdmint:throttle:user:*") if store.get(k) == b"7"]
    assert 0 < store.ttl(key) <= 60
