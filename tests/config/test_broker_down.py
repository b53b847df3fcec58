"""With Redis down (broker and cache), a request whose work is done answers as it would, and what
its tasks would have done is done another way: rechecks run in the request's process, the
decisions' and fraud checks' sweeps do the rest. The broker here is a real Redis URL on a port
nobody listens on."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client
from eth_account import Account
from rest_framework.test import APIClient

from accounts.models import AuditEvent, User
from config.broker import task_send
from config.celery import app
from config.metrics import TASKS_NOT_QUEUED
from labeling.models import DecisionDue, Item, Project
from labeling.services import item_create_text
from labeling.tasks import decide_due
from tests.conftest import Contributor, distinct_network, serve, sign_in

pytestmark = pytest.mark.django_db


def dead_redis_url() -> str:
    with socket.socket() as probe:  # a port just freed: nothing listens on it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


def _reset_connections() -> None:
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def broker_down(settings: Any) -> Iterator[None]:
    """Celery publishes to a Redis that refuses connections (not eager)."""
    # The app reads Django's settings under the CELERY_ namespace: its keys are named so.
    saved = {name: app.conf[name] for name in ("CELERY_BROKER_URL", "CELERY_TASK_ALWAYS_EAGER")}
    settings.CELERY_TASK_ALWAYS_EAGER = False
    app.conf.update(CELERY_BROKER_URL=dead_redis_url(), CELERY_TASK_ALWAYS_EAGER=False)
    _reset_connections()
    try:
        yield
    finally:
        app.conf.update(saved)
        _reset_connections()


@pytest.fixture
def cache_down(settings: Any) -> None:
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": dead_redis_url(),
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }


def not_queued(task: str) -> float:
    return TASKS_NOT_QUEUED.labels(task=task)._value.get()


def test_a_task_that_cant_be_queued_is_reported_not_raised(broker_down: None) -> None:
    before = not_queued("labeling.tasks.decide_due")
    assert task_send("labeling.tasks.decide_due") is False
    assert not_queued("labeling.tasks.decide_due") == before + 1


def test_a_first_sign_in_with_the_broker_down_signs_in(broker_down: None) -> None:
    """Its Sybil check was a 500 after the account and its token were committed; the periodic
    fraud scan runs that check."""
    account = Account.create()
    body = sign_in(APIClient(REMOTE_ADDR=distinct_network()), account)
    assert User.objects.filter(wallet_address=account.address).exists()
    assert body["token"]


def test_a_label_with_the_broker_down_is_recorded_and_the_sweep_decides_its_item(
    broker_down: None,
    text_project: Project,
    make_contributor: Callable[[], Contributor],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    crowd = [make_contributor() for _ in range(text_project.overlap)]
    item = item_create_text(project=text_project, contributor=None, text="Works well.")
    serve(item, *crowd)
    for who in crowd:
        with django_capture_on_commit_callbacks(execute=True):
            response = who.api.post(
                f"/api/v1/items/{item.pk}/annotations/", {"label": "positive"}, format="json"
            )
        assert response.status_code == 201, response.content
    assert DecisionDue.objects.filter(item=item).exists()
    decide_due.apply()  # the decide-due-items sweep (Celery beat)
    item.refresh_from_db()
    assert (item.status, item.decided_label) == (Item.Status.ACCEPTED, "positive")


def test_banning_two_users_with_the_broker_down_bans_both_and_rechecks_them_here(
    broker_down: None,
    moderator: User,
    make_contributor: Callable[[], Contributor],
    django_capture_on_commit_callbacks: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The first ban's recheck failed to queue after its commit: a 500, and the second user
    was never banned."""
    first, second = make_contributor().user, make_contributor().user
    browser = Client()
    browser.force_login(moderator)
    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(
            "/admin/accounts/user/",
            {
                "action": "ban_users",
                "_selected_action": [first.pk, second.pk],
                "apply": "1",
                "reason": "spam ring",
            },
        )
    assert response.status_code == 302
    assert User.objects.filter(pk__in=[first.pk, second.pk], banned_at__isnull=False).count() == 2
    assert AuditEvent.objects.filter(action="user.ban").count() == 2
    here = [r for r in caplog.records if "recheck_user runs in this process" in r.getMessage()]
    assert len(here) == 2


def test_a_wallet_sessions_pages_work_with_the_cache_down(
    cache_down: None, make_contributor: Callable[[], Contributor]
) -> None:
    """Whether the session's sign-in token is live was read from the cache alone: a 500 on
    every request of a wallet sign-in's session."""
    account = Account.create()
    browser = APIClient(REMOTE_ADDR=distinct_network())
    sign_in(browser, account)  # the session cookie stays with the client
    response = browser.get("/api/v1/me/")
    assert response.status_code == 200, response.content


@pytest.mark.django_db(transaction=True)  # the build is queued on the request's own commit
def test_an_export_requested_with_the_broker_down_is_a_503_and_fails_saying_why(
    broker_down: None, text_project: Project, buyer: User, buyer_api: APIClient
) -> None:
    """It was a 500, and the export sat ``queued`` with nothing to build it."""
    from market.models import DatasetExport
    from tests.conftest import give_grant

    give_grant(text_project, buyer)
    response = buyer_api.post(
        f"/api/v1/datasets/{text_project.pk}/exports/", {"format": "jsonl"}, format="json"
    )
    assert response.status_code == 503, response.content
    assert response["Retry-After"] == "60"
    assert "could not be reached" in response.json()["detail"]
    export = DatasetExport.objects.get()
    assert (export.status, response.json()["status"]) == (DatasetExport.Status.FAILED, "failed")
    assert export.finished_at is not None


def test_an_import_with_the_broker_down_fails_saying_why(
    broker_down: None,
    text_project: Project,
    moderator: User,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    from market.models import ItemImport
    from market.services import import_request

    with django_capture_on_commit_callbacks(execute=True):
        job = import_request(
            project=text_project,
            moderator=moderator,
            name="reviews.csv",
            fmt="csv",
            answers="ignore",
            data=b"text\nA review.\n",
        )
    job.refresh_from_db()
    assert job.status == ItemImport.Status.FAILED
    assert "could not be reached" in job.error
    assert not Item.objects.filter(project=text_project).exists()
