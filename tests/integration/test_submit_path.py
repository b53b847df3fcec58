"""The label submit path on PostgreSQL: one statement that locks the item, checks every rule,
counts and inserts; each refusal still gets its own answer, and the decision is enqueued on the
real broker once the label that completes the item is committed."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from django.conf import settings
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.models import AccessToken, User
from accounts.services import access_token_issue
from labeling.models import Annotation, DecisionDue, Item, Project
from labeling.services import AnnotationError, annotation_submit, item_create_text
from tests.conftest import serve

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def labeler(name: str) -> tuple[User, APIClient]:
    user = User.objects.create(
        username=name, wallet_address="0x" + name.encode().hex().ljust(40, "0")
    )
    secret, _ = access_token_issue(user=user, kind=AccessToken.Kind.SESSION)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return user, api


@pytest.fixture
def project() -> Project:
    return Project.objects.create(
        name="P", data_kind="text", classes=["a", "b"], consensus_method="majority_vote", overlap=3
    )


@pytest.fixture
def broker() -> redis.Redis:
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    return client


def post(api: APIClient, item_id: int, label: str = "a") -> Any:
    return api.post(f"/api/v1/items/{item_id}/annotations/", {"label": label}, format="json")


def test_a_label_is_one_statement_and_the_third_enqueues_the_decision(
    project: Project, broker: redis.Redis
) -> None:
    item = item_create_text(project=project, contributor=None, text="x")
    warm_up = item_create_text(project=project, contributor=None, text="warm-up")
    cast = [labeler(f"l{i}") for i in range(3)]
    apis = [api for _, api in cast]
    for user, _ in cast:  # served both items, as next-task would have
        serve(item, user)
        serve(warm_up, user)
    assert post(apis[2], warm_up.pk).status_code == 201  # its token lookup is cached from here
    for api in apis[:2]:
        post(api, item.pk)
    assert broker.llen("decisions") == 0
    with CaptureQueriesContext(connection) as queries:
        reply = post(apis[2], item.pk)
    assert reply.status_code == 201, reply.content
    assert len(queries.captured_queries) == 1, queries.captured_queries
    item.refresh_from_db()
    assert item.label_count == 3 and Annotation.objects.filter(item=item).count() == 3
    # The same statement queued the item's decision, and the commit woke the task that decides.
    assert DecisionDue.objects.filter(item=item).exists()
    assert broker.llen("decisions") == 1  # decide_due, published after the commit


def test_each_refusal_gets_its_reason_and_changes_nothing(project: Project) -> None:
    uploader, uploader_api = labeler("uploader")
    user, api = labeler("labeler")
    item = item_create_text(project=project, contributor=uploader, text="y")
    not_served = post(api, item.pk)
    assert not_served.status_code == 409 and "not assigned to you" in not_served.json()["detail"]
    serve(item, user, uploader)
    assert post(api, item.pk, "zzz").status_code == 400
    assert post(uploader_api, item.pk).status_code == 409  # own item
    assert post(api, item.pk).status_code == 201
    again = post(api, item.pk)
    assert again.status_code == 409 and "already labeled" in again.json()["detail"]
    assert post(api, 10**9).status_code == 404
    Item.objects.filter(pk=item.pk).update(status=Item.Status.REVIEW)
    late_user, late = labeler("late")
    serve(item, late_user)
    assert post(late, item.pk).status_code == 409
    Project.objects.filter(pk=project.pk).update(is_open=False)
    assert post(late, item.pk).status_code == 404
    item.refresh_from_db()
    assert item.label_count == 1 == Annotation.objects.filter(item=item).count()


def test_a_refused_label_inside_a_transaction_leaves_the_transaction_usable(
    project: Project,
) -> None:
    user, _ = labeler("inside")
    item = item_create_text(project=project, contributor=None, text="z")
    serve(item, user)
    with transaction.atomic():
        annotation_submit(item_id=item.pk, annotator=user, body={"label": "a"})
        with pytest.raises(AnnotationError):
            annotation_submit(item_id=item.pk, annotator=user, body={"label": "b"})
        assert Item.objects.get(pk=item.pk).label_count == 1


def prepared_here() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_prepared_statements")
        return {name for (name,) in cursor.fetchall()}


def test_the_submit_is_prepared_once_per_connection_and_prepared_again_when_lost(
    project: Project,
) -> None:
    cast = [labeler(f"p{i}") for i in range(4)]
    items = [item_create_text(project=project, contributor=None, text=f"p{i}") for i in range(4)]
    for item in items:
        for user, _ in cast:
            serve(item, user)
    user, api = cast[0]
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    with CaptureQueriesContext(connection) as first:
        assert post(api, items[0].pk).status_code == 201
    assert "crowdmint_submit" in prepared_here()
    assert [q["sql"].split()[0] for q in first.captured_queries][-2:] == ["PREPARE", "EXECUTE"]
    with CaptureQueriesContext(connection) as then:
        assert post(api, items[1].pk).status_code == 201
    assert [q["sql"].split()[0] for q in then.captured_queries] == ["EXECUTE"]
    # Deallocated under it (a pooler's DISCARD ALL, a hand at psql): prepared again, once.
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    assert post(api, items[2].pk).status_code == 201
    assert "crowdmint_submit" in prepared_here()
    # A refused answer through the prepared statement is refused as before.
    again = post(api, items[2].pk)
    assert again.status_code == 409 and "already labeled" in again.json()["detail"]
    assert Annotation.objects.filter(annotator=user).count() == 3


def test_without_prepared_statements_the_submit_sends_its_text(
    project: Project, settings: Any
) -> None:
    settings.DATABASE_PREPARED_STATEMENTS = False
    user, api = labeler("plain")
    item = item_create_text(project=project, contributor=None, text="plain")
    serve(item, user)
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    with CaptureQueriesContext(connection) as queries:
        assert post(api, item.pk).status_code == 201
    assert queries.captured_queries[-1]["sql"].lstrip().startswith("WITH counted AS")
    assert prepared_here() == set()
