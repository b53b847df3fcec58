"""``GET /metrics``: restricted to a token or a network; our metrics next to django-prometheus's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone
from prometheus_client import REGISTRY
from rest_framework.test import APIClient

from labeling.models import DecisionDue, Item, Project
from labeling.services import item_create_text
from moderation.models import Flag
from moderation.services import flag_raise
from rewards.client import chain_client_reset
from tests.config.test_health import closed_port
from tests.conftest import Contributor, serve

pytestmark = pytest.mark.django_db


def scrape(**headers: str) -> Any:
    return APIClient().get("/metrics", **headers)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_nobody_gets_metrics_without_the_token_or_an_allowed_network(settings: Any) -> None:
    settings.METRICS_TOKEN = "s3cret-metrics-token"
    settings.METRICS_ALLOWED_NETWORKS = "10.0.0.0/8"
    assert scrape().status_code == 403  # the test client is 127.0.0.1
    assert scrape(HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert scrape(REMOTE_ADDR="192.168.1.9").status_code == 403
    # A client can't claim an allowed address through X-Forwarded-For without NUM_PROXIES.
    assert scrape(HTTP_X_FORWARDED_FOR="10.1.1.1").status_code == 403


def test_the_token_or_an_allowed_address_opens_them(settings: Any) -> None:
    settings.METRICS_TOKEN = "s3cret-metrics-token"
    settings.METRICS_ALLOWED_NETWORKS = "10.0.0.0/8,2001:db8::/32"
    assert scrape(HTTP_AUTHORIZATION="Bearer s3cret-metrics-token").status_code == 200
    assert scrape(REMOTE_ADDR="10.2.3.4").status_code == 200
    assert scrape(REMOTE_ADDR="2001:db8::1").status_code == 200


def test_nothing_configured_in_production_means_closed(settings: Any) -> None:
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = ""
    assert scrape().status_code == 403


def test_a_scrape_shows_ours_and_django_prometheus_metrics(settings: Any) -> None:
    settings.METRICS_ALLOWED_NETWORKS = "127.0.0.0/8"
    APIClient().get("/api/v1/projects/")
    body = scrape().content.decode()
    for line in (
        'crowdmint_payout_batches{state="prepared"} 0.0',
        'crowdmint_payout_batches{state="confirmed"} 0.0',
        "crowdmint_fraud_flags 0.0",
        'crowdmint_fraud_flags_by_kind{kind="speed"} 0.0',
        "crowdmint_decisions_waiting 0.0",
        "# TYPE crowdmint_queue_depth gauge",
        "# TYPE crowdmint_labels_total counter",
        "# TYPE crowdmint_decision_latency_seconds histogram",
        "# TYPE crowdmint_chain_rpc_errors_total counter",
        "django_http_requests_total_by_method_total",
    ):
        assert line in body, line


def test_labels_are_counted_and_a_decision_records_its_latency(
    make_contributor: Callable[[], Contributor],
    text_project: Project,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    item = item_create_text(project=text_project, contributor=None, text="count me")
    labels, decisions = (
        sample("crowdmint_labels_total"),
        sample("crowdmint_decision_latency_seconds_count"),
    )
    for _ in range(3):
        who = make_contributor()
        serve(item, who)
        with django_capture_on_commit_callbacks(execute=True):
            reply = who.api.post(
                f"/api/v1/items/{item.pk}/annotations/", {"label": "positive"}, format="json"
            )
        assert reply.status_code == 201
    item.refresh_from_db()
    assert item.status == Item.Status.ACCEPTED
    assert sample("crowdmint_labels_total") == labels + 3
    assert sample("crowdmint_decision_latency_seconds_count") == decisions + 1


def test_an_unreachable_chain_node_counts_as_an_rpc_error(settings: Any) -> None:
    settings.CHAIN_RPC_URL = f"http://127.0.0.1:{closed_port()}"
    settings.CHAIN_PRIVATE_KEY = "0x" + "11" * 32
    settings.CHAIN_TOKEN_ADDRESS = "0x" + "22" * 20
    chain_client_reset()
    try:
        before = sample("crowdmint_chain_rpc_errors_total", kind="unavailable")
        assert APIClient().get("/api/v1/health/ready").status_code == 503
        assert sample("crowdmint_chain_rpc_errors_total", kind="unavailable") > before
    finally:
        chain_client_reset()


def test_open_fraud_flags_and_waiting_decisions_are_read_at_scrape(
    settings: Any, make_contributor: Callable[[], Contributor], text_project: Project
) -> None:
    settings.METRICS_ALLOWED_NETWORKS = "127.0.0.0/8"
    spammer = make_contributor()
    flag, _ = flag_raise(
        user=spammer.user, kind=Flag.Kind.SPAMMER, evidence={}, project=text_project
    )
    flag_raise(user=spammer.user, kind=Flag.Kind.SPEED, evidence={}, project=text_project)
    item = item_create_text(project=text_project, contributor=None, text="waits")
    DecisionDue.objects.create(item=item, due_at=timezone.now())
    body = scrape().content.decode()
    assert "crowdmint_fraud_flags 2.0" in body
    assert 'crowdmint_fraud_flags_by_kind{kind="spammer"} 1.0' in body
    assert "crowdmint_decisions_waiting 1.0" in body
    Flag.objects.filter(pk=flag.pk).update(state=Flag.State.DISMISSED)
    assert "crowdmint_fraud_flags 1.0" in scrape().content.decode()
