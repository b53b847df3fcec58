"""Incremental syncs with deletions: a record that leaves the dataset after the buyer's cursor
(its item reopened by a recheck after a ban or a fraud flag) comes back as a tombstone with
``include_withdrawn=true``, in the records' pages and the streamed JSON Lines; an item accepted
again is a record again. Background exports stay snapshots."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.apps import apps
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from accounts.services import user_ban
from labeling.models import Decision, Item, Project
from labeling.services import item_create_text, item_gold_set
from market.records import RecordFilters
from moderation.models import Flag
from moderation.services import flag_raise
from tests.conftest import Contributor, give_grant, serve
from tests.market.test_records import accepted

pytestmark = pytest.mark.django_db

CURSOR = "2020-01-01T00:00:00Z"


@pytest.fixture
def eager(django_capture_on_commit_callbacks: Callable[..., Any]) -> Callable[..., Any]:
    """Run what a block enqueued on commit (decisions, credits, rechecks)."""

    def run() -> Any:
        return django_capture_on_commit_callbacks(execute=True)

    return run


@pytest.fixture
def api(buyer_api: APIClient, buyer: User, text_project: Project) -> APIClient:
    give_grant(text_project, buyer)
    return buyer_api


def answer(
    eager: Callable[..., Any], who: Contributor, item: Item, label: str = "positive"
) -> None:
    serve(item, who)
    with eager():
        response = who.api.post(
            f"/api/v1/items/{item.pk}/annotations/", {"label": label}, format="json"
        )
    assert response.status_code == 201, response.content


def labeled_by(
    eager: Callable[..., Any], project: Project, labelers: list[Contributor], text: str
) -> Item:
    """An item the crowd accepted with the labelers' agreeing answers."""
    item = item_create_text(project=project, contributor=None, text=text)
    for who in labelers:
        answer(eager, who, item)
    item.refresh_from_db()
    assert item.status == Item.Status.ACCEPTED
    return item


def sync(api: APIClient, project: Project, **params: Any) -> dict[str, Any]:
    response = api.get(
        f"/api/v1/datasets/{project.pk}/records/",
        {"decided_after": CURSOR, "include_withdrawn": "true", **params},
    )
    assert response.status_code == 200, response.content
    body: dict[str, Any] = response.json()
    return body


def stream(api: APIClient, project: Project, **params: Any) -> list[dict[str, Any]]:
    response = api.get(
        f"/api/v1/datasets/{project.pk}/export",
        {"decided_after": CURSOR, "include_withdrawn": "true", **params},
    )
    assert response.status_code == 200, response.content
    content = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    return [json.loads(line) for line in content.splitlines()]


def test_a_ban_that_reopens_a_record_sends_a_tombstone_to_syncs_after_the_cursor(
    api: APIClient,
    text_project: Project,
    make_contributor: Callable[[], Contributor],
    eager: Callable[..., Any],
    moderator: User,
) -> None:
    a, b, c = (make_contributor() for _ in range(3))
    kept = accepted(text_project, "kept")
    item = labeled_by(eager, text_project, [a, b, c], "decided with c")
    assert sync(api, text_project)["withdrawn"] == []
    before_ban = timezone.now()

    with eager():
        user_ban(user=c.user, reason="sold their account", actor=moderator)

    item.refresh_from_db()
    assert item.status == Item.Status.OPEN
    assert item.withdrawn_at is not None and item.withdrawn_at >= before_ban
    assert item.withdrawn_reason == Item.WithdrawnReason.BANNED_LABELER
    page = sync(api, text_project)
    assert [r["id"] for r in page["results"]] == [kept.pk]
    [tombstone] = page["withdrawn"]
    assert tombstone["id"] == item.pk and tombstone["reason"] == "banned_labeler"
    assert tombstone["withdrawn_at"].endswith("Z")
    assert set(tombstone) == {"id", "withdrawn_at", "reason"}
    # The stream says the same, a line among the records in id order.
    record, line = stream(api, text_project)
    assert record["id"] == kept.pk and "withdrawn" not in record
    assert line == {
        "id": item.pk,
        "withdrawn": True,
        "withdrawn_at": tombstone["withdrawn_at"],
        "reason": "banned_labeler",
    }
    # A cursor after the withdrawal: nothing new to delete.
    later = (item.withdrawn_at + timedelta(seconds=1)).isoformat()
    assert sync(api, text_project, decided_after=later)["withdrawn"] == []
    # Without include_withdrawn the page is what it was: no withdrawn list.
    plain = api.get(f"/api/v1/datasets/{text_project.pk}/records/", {"decided_after": CURSOR})
    assert "withdrawn" not in plain.json()
    assert [r["id"] for r in plain.json()["results"]] == [kept.pk]


def test_a_fraud_flag_that_reopens_a_record_sends_a_tombstone_saying_so(
    api: APIClient,
    text_project: Project,
    make_contributor: Callable[[], Contributor],
    eager: Callable[..., Any],
) -> None:
    a, b, c = (make_contributor() for _ in range(3))
    item = labeled_by(eager, text_project, [a, b, c], "decided with c")

    with eager():
        flag_raise(user=c.user, kind=Flag.Kind.SPEED, evidence={}, project=text_project)

    item.refresh_from_db()
    assert item.status == Item.Status.OPEN
    [tombstone] = sync(api, text_project)["withdrawn"]
    assert (tombstone["id"], tombstone["reason"]) == (item.pk, "fraud_flag")


def test_an_item_accepted_again_is_a_record_again_not_a_tombstone(
    api: APIClient,
    text_project: Project,
    make_contributor: Callable[[], Contributor],
    eager: Callable[..., Any],
    moderator: User,
) -> None:
    a, b, c = (make_contributor() for _ in range(3))
    item = labeled_by(eager, text_project, [a, b, c], "decided with c")
    with eager():
        user_ban(user=c.user, reason="ring", actor=moderator)
    assert [t["id"] for t in sync(api, text_project)["withdrawn"]] == [item.pk]

    answer(eager, make_contributor(), item)  # one more honest label decides it again

    item.refresh_from_db()
    assert item.status == Item.Status.ACCEPTED
    assert (item.withdrawn_at, item.withdrawn_reason) == (None, "")
    page = sync(api, text_project)
    assert [r["id"] for r in page["results"]] == [item.pk] and page["withdrawn"] == []
    assert [line.get("withdrawn", False) for line in stream(api, text_project)] == [False]


def test_pages_hold_records_and_tombstones_together_in_id_order(
    api: APIClient, text_project: Project
) -> None:
    items = [accepted(text_project, f"item {n}") for n in range(5)]
    gone = [items[1], items[3]]
    now = timezone.now()
    for item in gone:
        Item.objects.filter(pk=item.pk).update(
            status=Item.Status.OPEN,
            decided_label="",
            decided_at=None,
            withdrawn_at=now,
            withdrawn_reason=Item.WithdrawnReason.REOPENED,
        )
    records: list[int] = []
    tombstones: list[int] = []
    page = sync(api, text_project, page_size="2")
    while True:
        assert len(page["results"]) + len(page["withdrawn"]) <= 2
        records += [r["id"] for r in page["results"]]
        tombstones += [t["id"] for t in page["withdrawn"]]
        if not page["next"]:
            break
        response = api.get(page["next"])
        assert response.status_code == 200
        page = response.json()
    assert records == [items[0].pk, items[2].pk, items[4].pk]
    assert tombstones == [item.pk for item in gone]
    # The other filters select records; every withdrawal after the cursor is sent.
    filtered = sync(api, text_project, label="negative")
    assert filtered["results"] == [] and len(filtered["withdrawn"]) == 2


def test_the_page_reads_a_constant_number_of_queries_whatever_its_tombstones(
    api: APIClient, text_project: Project, django_assert_max_num_queries: Any
) -> None:
    now = timezone.now()

    def withdraw(count: int) -> None:
        for n in range(count):
            item = accepted(text_project, f"withdrawn {Item.objects.count()} {n}")
            Item.objects.filter(pk=item.pk).update(
                status=Item.Status.OPEN, decided_label="", decided_at=None, withdrawn_at=now
            )
        accepted(text_project, f"kept {Item.objects.count()}")

    withdraw(1)
    with django_assert_max_num_queries(5) as few:
        sync(api, text_project)
    withdraw(30)
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = sync(api, text_project)
    assert len(page["withdrawn"]) == 31 and len(page["results"]) == 2


@pytest.mark.parametrize(
    "params",
    [
        {"decided_after": CURSOR, "include_withdrawn": "yes"},
        {"decided_after": CURSOR, "include_withdrawn": ""},
        {"decided_after": CURSOR, "include_withdrawn": ["true", "false"]},
        {"include_withdrawn": "true"},  # no cursor: a full read has nothing to delete
    ],
)
def test_include_withdrawn_that_is_not_a_boolean_or_has_no_cursor_is_a_400(
    api: APIClient, text_project: Project, params: dict[str, Any]
) -> None:
    for path in ("records/", "export"):
        response = api.get(f"/api/v1/datasets/{text_project.pk}/{path}", params)
        assert response.status_code == 400, (path, params, response.content)
        assert "include_withdrawn" in response.json()["detail"]


def test_include_withdrawn_false_is_a_plain_read(api: APIClient, text_project: Project) -> None:
    accepted(text_project, "fine")
    for value in ("false", "False"):
        response = api.get(
            f"/api/v1/datasets/{text_project.pk}/records/", {"include_withdrawn": value}
        )
        assert response.status_code == 200 and "withdrawn" not in response.json()
        assert len(response.json()["results"]) == 1


def test_tombstones_are_json_lines_only_and_never_in_a_background_export(
    api: APIClient, text_project: Project
) -> None:
    csv = api.get(
        f"/api/v1/datasets/{text_project.pk}/export",
        {"format": "csv", "decided_after": CURSOR, "include_withdrawn": "true"},
    )
    assert csv.status_code == 400 and "jsonl" in csv.json()["detail"]
    export = api.post(
        f"/api/v1/datasets/{text_project.pk}/exports/",
        {"format": "jsonl", "decided_after": CURSOR, "include_withdrawn": True},
        format="json",
    )
    assert export.status_code == 400 and "snapshot" in export.json()["detail"]
    assert "include_withdrawn" not in RecordFilters(include_withdrawn=True).as_json()


def test_a_buyer_without_a_grant_gets_a_403_for_tombstones_too(
    buyer_api: APIClient, text_project: Project
) -> None:
    for path in ("records/", "export"):
        response = buyer_api.get(
            f"/api/v1/datasets/{text_project.pk}/{path}",
            {"decided_after": CURSOR, "include_withdrawn": "true"},
        )
        assert response.status_code == 403, response.content


def test_the_backfill_stamps_items_accepted_once_and_not_now_from_their_last_decision(
    text_project: Project,
) -> None:
    reopened = accepted(text_project, "reopened")
    Item.objects.filter(pk=reopened.pk).update(
        status=Item.Status.OPEN, decided_label="", decided_at=None, decision_version=2
    )
    withdrawal = Decision.objects.create(
        item=reopened,
        version=2,
        label="",
        posterior=0.0,
        method="majority_vote",
        decided_by="recheck",
        n_classes=2,
    )
    when = datetime(2026, 4, 1, tzinfo=UTC)
    Decision.objects.filter(pk=withdrawal.pk).update(created_at=when)
    still = accepted(text_project, "still accepted")
    never = item_create_text(project=text_project, contributor=None, text="never accepted")

    migration = importlib.import_module("labeling.migrations.0020_item_withdrawn_backfill")
    migration.backfill(apps, None)

    reopened.refresh_from_db()
    assert (reopened.withdrawn_at, reopened.withdrawn_reason) == (when, "reopened")
    for item in (still, never):
        item.refresh_from_db()
        assert (item.withdrawn_at, item.withdrawn_reason) == (None, "")


def test_the_schema_documents_include_withdrawn_and_the_tombstones() -> None:
    schema = (
        APIClient().get("/api/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    )
    for path in ("/api/v1/datasets/{dataset_id}/records/", "/api/v1/datasets/{dataset_id}/export"):
        parameters = {p["name"]: p for p in schema["paths"][path]["get"]["parameters"]}
        assert parameters["include_withdrawn"]["schema"]["type"] == "boolean"
    page = schema["components"]["schemas"]["RecordPage"]
    assert "withdrawn" in page["properties"] and "withdrawn" not in page.get("required", [])
    tombstone = schema["components"]["schemas"]["TombstoneOutput"]
    assert set(tombstone["properties"]) == {"id", "withdrawn_at", "reason"}
    assert (
        "include_withdrawn"
        not in schema["components"]["schemas"]["ExportInputRequest"]["properties"]
    )


def test_a_withdrawn_record_made_gold_afterwards_still_sends_its_tombstone(
    api: APIClient,
    text_project: Project,
    make_contributor: Callable[[], Contributor],
    eager: Callable[..., Any],
    moderator: User,
) -> None:
    # A reopened item is open, and an open item may be made gold: the buyer still holds its old
    # record and must be told to delete it (the tombstone says nothing of gold).
    a, b, c = (make_contributor() for _ in range(3))
    item = labeled_by(eager, text_project, [a, b, c], "decided with c")
    with eager():
        user_ban(user=c.user, reason="ring", actor=moderator)
    with eager():
        item_gold_set(item=item, label="positive", moderator=moderator, reason="known answer")

    page = sync(api, text_project)
    assert page["results"] == []
    assert [(t["id"], t["reason"]) for t in page["withdrawn"]] == [(item.pk, "banned_labeler")]
    assert [line["id"] for line in stream(api, text_project) if line.get("withdrawn")] == [item.pk]
    # Still never a record: a gold item isn't sold.
    plain = api.get(f"/api/v1/datasets/{text_project.pk}/records/", {"decided_after": CURSOR})
    assert plain.json()["results"] == []


def test_the_backfill_stamps_a_reopened_item_made_gold_since(text_project: Project) -> None:
    reopened = accepted(text_project, "reopened, then gold")
    Item.objects.filter(pk=reopened.pk).update(
        status=Item.Status.OPEN,
        decided_label="",
        decided_at=None,
        decision_version=2,
        gold_label="positive",
    )
    Decision.objects.create(
        item=reopened,
        version=2,
        label="",
        posterior=0.0,
        method="majority_vote",
        decided_by="recheck",
        n_classes=2,
    )

    migration = importlib.import_module("labeling.migrations.0020_item_withdrawn_backfill")
    migration.backfill(apps, None)

    reopened.refresh_from_db()
    assert reopened.withdrawn_at is not None and reopened.withdrawn_reason == "reopened"
