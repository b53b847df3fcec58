"""Labeling: the next task, annotations, and the majority-vote decision with its credits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import IntegrityError, transaction

from accounts.models import User
from labeling.models import Annotation, Decision, Item, Project, Skip
from labeling.services import item_create_text, item_decide
from rewards.models import LedgerEntry
from rewards.services import decision_credit
from tests.conftest import Contributor, give_grant, serve

pytestmark = pytest.mark.django_db


def post_label(contributor: Contributor, item: Item, value: str) -> object:
    """Answer an item as a contributor it was served to."""
    serve(item, contributor)
    return contributor.api.post(
        f"/api/v1/items/{item.pk}/annotations/", {"label": value}, format="json"
    )


@pytest.fixture
def label(
    django_capture_on_commit_callbacks: Callable,
) -> Callable[[Contributor, Item, str], object]:
    """Post a label and run what its transaction enqueued on commit, as eager Celery would."""

    def post(contributor: Contributor, item: Item, value: str) -> object:
        with django_capture_on_commit_callbacks(execute=True):
            return post_label(contributor, item, value)

    return post


def next_task(contributor: Contributor, project: Project) -> object:
    return contributor.api.get(f"/api/v1/projects/{project.pk}/next-task/")


def test_next_task_skips_own_items_labeled_items_and_decided_items(
    contributor: Contributor,
    second_contributor: Contributor,
    text_project: Project,
    label: Callable,
) -> None:
    own = item_create_text(project=text_project, contributor=contributor.user, text="mine")
    other = item_create_text(
        project=text_project, contributor=second_contributor.user, text="theirs"
    )
    decided = item_create_text(project=text_project, contributor=None, text="done")
    Item.objects.filter(pk=decided.pk).update(
        status=Item.Status.ACCEPTED, decided_label="positive", decided_at="2026-01-01T00:00Z"
    )

    response = next_task(contributor, text_project)
    assert response.status_code == 200
    assert response.json()["id"] == other.pk
    assert response.json()["classes"] == ["positive", "negative"]
    assert label(contributor, other, "positive").status_code == 201
    assert next_task(contributor, text_project).status_code == 204
    assert next_task(second_contributor, text_project).json()["id"] == own.pk


def test_a_second_annotation_by_the_same_contributor_gets_409(
    contributor: Contributor, text_project: Project, label: Callable
) -> None:
    item = item_create_text(project=text_project, contributor=None, text="x")
    assert label(contributor, item, "positive").status_code == 201
    again = label(contributor, item, "negative")
    assert again.status_code == 409
    assert "already labeled" in again.json()["detail"]
    assert Annotation.objects.filter(item=item).count() == 1
    item.refresh_from_db()
    assert item.label_count == 1


@pytest.mark.parametrize("name", ["neutral", "positive\x00", "\x00"], ids=repr)
def test_an_unknown_class_gets_400(
    contributor: Contributor, text_project: Project, label: Callable, name: str
) -> None:
    # A NUL, which PostgreSQL text cannot hold, is refused like any other unknown class.
    item = item_create_text(project=text_project, contributor=None, text="x")
    response = label(contributor, item, name)
    assert response.status_code == 400
    assert f"unknown class {name!r}" in response.json()["detail"]
    assert not Annotation.objects.exists()


@pytest.mark.parametrize(
    "body", [["positive"], "positive", None, {"label": ["positive"]}], ids=repr
)
def test_a_body_that_is_not_a_label_object_gets_400(
    contributor: Contributor, text_project: Project, body: object
) -> None:
    item = item_create_text(project=text_project, contributor=None, text="x")
    response = contributor.api.post(f"/api/v1/items/{item.pk}/annotations/", body, format="json")
    assert response.status_code == 400
    assert response.json()["detail"]
    assert not Annotation.objects.exists()


def test_a_skipped_item_is_not_served_again_to_that_contributor_only(
    contributor: Contributor, second_contributor: Contributor, text_project: Project
) -> None:
    unclear = item_create_text(project=text_project, contributor=None, text="It is a phone.")
    clear = item_create_text(project=text_project, contributor=None, text="Love it.")
    assert next_task(contributor, text_project).json()["id"] == unclear.pk
    for _ in range(2):  # skipping twice is skipping once
        skipped = contributor.api.post(f"/api/v1/items/{unclear.pk}/skip")
        assert skipped.status_code == 204
    assert Skip.objects.filter(item=unclear, user=contributor.user).count() == 1
    assert next_task(contributor, text_project).json()["id"] == clear.pk
    assert next_task(second_contributor, text_project).json()["id"] == unclear.pk
    assert not Annotation.objects.exists()  # a skip is not a label


def test_moderators_see_how_often_each_item_was_skipped(
    contributor: Contributor,
    second_contributor: Contributor,
    text_project: Project,
    moderator: Any,
    django_assert_max_num_queries: Callable,
) -> None:
    from django.test import Client

    unclear = item_create_text(project=text_project, contributor=None, text="It is a phone.")
    item_create_text(project=text_project, contributor=None, text="Love it.")
    for who in (contributor, second_contributor):
        serve(unclear, who)
        assert who.api.post(f"/api/v1/items/{unclear.pk}/skip").status_code == 204
    # Only an item someone was served can be skipped: skips are a moderator's "unclear" signal.
    never = item_create_text(project=text_project, contributor=None, text="Never served.")
    refused = contributor.api.post(f"/api/v1/items/{never.pk}/skip")
    assert refused.status_code == 409 and "never served to you" in refused.json()["detail"]
    browser = Client()
    browser.force_login(moderator)
    with django_assert_max_num_queries(12):
        page = browser.get("/admin/labeling/item/?o=-7")  # the skips column, most first
    assert page.status_code == 200
    rows = [(item.pk, item.skip_total) for item in page.context["cl"].result_list]
    assert rows[0] == (unclear.pk, 2) and rows[1][1] == 0


def test_skipping_an_item_one_has_labeled_gets_409_and_a_missing_item_404(
    contributor: Contributor, text_project: Project, label: Callable
) -> None:
    item = item_create_text(project=text_project, contributor=None, text="x")
    assert label(contributor, item, "positive").status_code == 201
    refused = contributor.api.post(f"/api/v1/items/{item.pk}/skip")
    assert refused.status_code == 409
    assert "already labeled" in refused.json()["detail"]
    assert not Skip.objects.exists()
    assert contributor.api.post("/api/v1/items/999999/skip").status_code == 404


def test_labeling_ones_own_item_gets_409(
    contributor: Contributor, text_project: Project, label: Callable
) -> None:
    item = item_create_text(project=text_project, contributor=contributor.user, text="x")
    assert label(contributor, item, "positive").status_code == 409


def test_the_database_refuses_two_annotations_for_one_contributor_and_item(
    contributor: Contributor, text_project: Project
) -> None:
    item = item_create_text(project=text_project, contributor=None, text="x")
    Annotation.objects.create(item=item, annotator=contributor.user, label="positive")
    with pytest.raises(IntegrityError), transaction.atomic():
        Annotation.objects.create(item=item, annotator=contributor.user, label="negative")


def deciding(callbacks: list[Callable[[], object]]) -> list[Callable[[], object]]:
    """Of a request's on-commit callbacks, those that decide: every answer also enqueues the
    fraud checks on its contributor's answers."""
    return [f for f in callbacks if "answer_check" not in f.__qualname__]


def test_the_decision_is_enqueued_on_commit_and_credits_the_agreeing_crowd(
    make_contributor: Callable[[], Contributor],
    text_project: Project,
    django_capture_on_commit_callbacks: Callable,
    label: Callable,
) -> None:
    uploader, a, b, c = (make_contributor() for _ in range(4))
    item = item_create_text(project=text_project, contributor=uploader.user, text="lovely")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        post_label(a, item, "positive")
        post_label(b, item, "positive")
    assert deciding(callbacks) == []  # two labels of three: nothing to decide yet
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        post_label(c, item, "negative")
    callbacks = deciding(callbacks)
    assert len(callbacks) == 1
    item.refresh_from_db()
    assert item.status == Item.Status.OPEN  # not decided inside the request's transaction
    with django_capture_on_commit_callbacks(execute=True) as credits_enqueued:
        callbacks[0]()
    # The decision's credit (and its latency metric), enqueued on the decision's commit.
    assert len(credits_enqueued) == 2

    item.refresh_from_db()
    assert item.status == Item.Status.ACCEPTED
    assert item.decided_label == "positive"
    assert item.agreement == pytest.approx(2 / 3)
    assert item.decided_at is not None
    credits = {(e.user_id, e.reason, int(e.amount)) for e in LedgerEntry.objects.all()}
    assert credits == {
        (uploader.user.pk, "contribution", 25),
        (a.user.pk, "label", 10),
        (b.user.pk, "label", 10),
    }


def test_deciding_twice_credits_once(
    make_contributor: Callable[[], Contributor], text_project: Project, label: Callable
) -> None:
    a, b, c = (make_contributor() for _ in range(3))
    item = item_create_text(project=text_project, contributor=None, text="x")
    for who in (a, b, c):
        label(who, item, "negative")
    assert LedgerEntry.objects.count() == 3
    item_decide(item_id=item.pk)  # a retried task: the item is decided already
    [decision] = Decision.objects.filter(item=item)
    assert decision_credit(decision_id=decision.pk) == 0  # credited once already
    assert LedgerEntry.objects.count() == 3


def test_a_tie_asks_for_one_more_label_then_review_at_max_labels(
    make_contributor: Callable[[], Contributor], text_project: Project, label: Callable
) -> None:
    text_project.classes = ["a", "b", "c"]
    text_project.save(update_fields=["classes"])
    crowd = [make_contributor() for _ in range(5)]
    item = item_create_text(project=text_project, contributor=None, text="x")
    for who, value in zip(crowd[:3], ["a", "b", "c"], strict=True):
        label(who, item, value)
    item.refresh_from_db()
    assert (item.status, item.required_labels) == (Item.Status.OPEN, 4)
    assert next_task(crowd[3], text_project).json()["id"] == item.pk
    label(crowd[3], item, "a")
    item.refresh_from_db()
    assert item.status == Item.Status.ACCEPTED and item.decided_label == "a"


def test_an_item_still_tied_at_max_labels_goes_to_review(
    make_contributor: Callable[[], Contributor], text_project: Project, label: Callable
) -> None:
    text_project.classes, text_project.overlap, text_project.max_labels = ["a", "b", "c"], 2, 3
    text_project.save(update_fields=["classes", "overlap", "max_labels"])
    crowd = [make_contributor() for _ in range(3)]
    item = item_create_text(project=text_project, contributor=None, text="x")
    for who, value in zip(crowd, ["a", "b", "c"], strict=True):
        label(who, item, value)
    item.refresh_from_db()
    assert item.status == Item.Status.REVIEW
    assert not LedgerEntry.objects.exists()
    assert label(make_contributor(), item, "a").status_code == 409


def test_buyers_read_accepted_records_with_cursor_pagination_in_constant_queries(
    make_contributor: Callable[[], Contributor],
    text_project: Project,
    buyer_api: object,
    buyer: User,
    django_assert_max_num_queries: Callable,
) -> None:
    give_grant(text_project, buyer)
    uploader = make_contributor()
    for n in range(7):
        item = item_create_text(project=text_project, contributor=uploader.user, text=f"text {n}")
        Item.objects.filter(pk=item.pk).update(
            status=Item.Status.ACCEPTED,
            decided_label="positive",
            agreement=1.0,
            decided_at="2026-01-01T00:00Z",
            label_count=3,
        )
    item_create_text(project=text_project, contributor=uploader.user, text="still open")

    datasets = buyer_api.get("/api/v1/datasets/").json()  # type: ignore[attr-defined]
    assert datasets[0]["accepted_count"] == 7 and datasets[0]["item_count"] == 8

    seen: list[dict] = []
    url = f"/api/v1/datasets/{text_project.pk}/records/?page_size=3"
    while url:
        with django_assert_max_num_queries(4):
            page = buyer_api.get(url).json()  # type: ignore[attr-defined]
        seen.extend(page["results"])
        url = page["next"]
    assert [r["text"] for r in seen] == [f"text {n}" for n in range(7)]
    assert seen[0]["label"] == "positive"
    assert seen[0]["provenance"]["contributor"] == uploader.address
    assert seen[0]["provenance"]["labels"] == 3
    assert buyer_api.get("/api/v1/datasets/999/records/").status_code == 404  # type: ignore[attr-defined]


def test_buyers_export_accepted_records_as_jsonl_and_csv(
    make_contributor: Callable[[], Contributor], text_project: Project, buyer_api: Any, buyer: User
) -> None:
    import csv
    import io
    import json

    give_grant(text_project, buyer)
    uploader = make_contributor()
    for n in range(3):
        item = item_create_text(
            project=text_project, contributor=uploader.user, text=f'say "{n}", ok'
        )
        Item.objects.filter(pk=item.pk).update(
            status=Item.Status.ACCEPTED,
            decided_label="negative",
            agreement=1.0,
            confidence=0.99,
            decided_at="2026-01-01T00:00Z",
        )
    item_create_text(project=text_project, contributor=uploader.user, text="not accepted")

    response = buyer_api.get(f"/api/v1/datasets/{text_project.pk}/export", {"format": "jsonl"})
    assert response.status_code == 200 and response["Content-Type"] == "application/x-ndjson"
    assert 'filename="crowdmint-' in response["Content-Disposition"]
    rows = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    assert [r["text"] for r in rows] == ['say "0", ok', 'say "1", ok', 'say "2", ok']
    assert rows[0]["label"] == "negative" and rows[0]["contributor"] == uploader.address

    response = buyer_api.get(f"/api/v1/datasets/{text_project.pk}/export", {"format": "csv"})
    table = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r["text"] for r in table] == ['say "0", ok', 'say "1", ok', 'say "2", ok']
    assert table[0]["confidence"] == "0.99" and table[0]["image_url"] == ""

    bad = buyer_api.get(f"/api/v1/datasets/{text_project.pk}/export", {"format": "xlsx"})
    assert bad.status_code == 400 and "unknown format" in bad.json()["detail"]
    assert (
        make_contributor().api.get(f"/api/v1/datasets/{text_project.pk}/export").status_code == 403
    )
