"""Every annotation type end to end: validation naming the field, decisions, who is paid, and the
record's natural shape."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import TestCase
from PIL import Image

from accounts.models import User
from labeling.models import Annotation, Item, Project
from labeling.services import item_create_image, item_create_text
from rewards.models import LedgerEntry
from tests.conftest import Contributor, flat_rates, give_grant, serve

pytestmark = pytest.mark.django_db


def make_project(task: str, kind: str, classes: list[str], **extra: Any) -> Project:
    return flat_rates(
        Project.objects.create(
            name=task,
            data_kind=kind,
            task=task,
            classes=classes,
            overlap=3,
            max_labels=5,
            reward_per_label=10,
            reward_per_item=25,
            **extra,
        )
    )


def png(size: tuple[int, int] = (200, 100)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (90, 120, 200)).save(out, "PNG")
    return out.getvalue()


def answer(who: Contributor, item: Item, body: Any) -> Any:
    serve(item, who)
    with TestCase.captureOnCommitCallbacks(execute=True):
        return who.api.post(f"/api/v1/items/{item.pk}/annotations/", body, format="json")


def refused(who: Contributor, item: Item, body: Any) -> str:
    response = answer(who, item, body)
    assert response.status_code == 400, response.content
    return str(response.json()["detail"])


@pytest.fixture
def crowd(make_contributor: Callable[[], Contributor]) -> list[Contributor]:
    return [make_contributor() for _ in range(5)]


# --- classify --------------------------------------------------------------------------------


def test_classify_refuses_an_unknown_class_and_other_tasks_bodies(
    crowd: list[Contributor], text_project: Project
) -> None:
    item = item_create_text(project=text_project, contributor=None, text="ok")
    assert "unknown class 'maybe'" in refused(crowd[0], item, {"label": "maybe"})
    assert refused(crowd[0], item, {"labels": ["positive"]}).startswith(
        "label: is required (this is a classify project; 'labels' is for another task)"
    )
    assert refused(crowd[0], item, {"label": "positive", "note": "x"}).startswith("note:")
    assert refused(crowd[0], item, ["positive"]).startswith("send a JSON object")


def test_a_label_with_a_lone_surrogate_is_an_unknown_class(
    crowd: list[Contributor], text_project: Project
) -> None:
    """JSON can spell a lone surrogate, UTF-8 can't: on PostgreSQL the one-statement submit
    handed it to psycopg2, which raised (a 500)."""
    item = item_create_text(project=text_project, contributor=None, text="ok")
    serve(item, crowd[0])
    response = crowd[0].api.post(
        f"/api/v1/items/{item.pk}/annotations/",
        data='{"label": "\\ud800"}',
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "unknown class" in response.json()["detail"]


# --- multilabel ------------------------------------------------------------------------------


@pytest.fixture
def tags() -> Project:
    return make_project("multilabel", "text", ["outdoor", "people", "animal"])


def test_multilabel_validates_each_class(crowd: list[Contributor], tags: Project) -> None:
    item = item_create_text(project=tags, contributor=None, text="a dog in a park")
    assert refused(crowd[0], item, {"labels": "outdoor"}).startswith("labels: must be a list")
    assert refused(crowd[0], item, {"labels": ["outdoor", "cat"]}).startswith(
        "labels[1]: unknown class 'cat'"
    )
    assert "twice" in refused(crowd[0], item, {"labels": ["animal", "animal"]})
    assert answer(crowd[0], item, {"labels": []}).status_code == 201  # none apply: an answer


def test_multilabel_decides_every_class_and_pays_the_close_answers(
    crowd: list[Contributor], tags: Project, buyer_api: Any, buyer: User
) -> None:
    item = item_create_text(project=tags, contributor=None, text="a dog in a park")
    answers = [["outdoor", "animal"], ["animal", "outdoor"], ["outdoor", "animal", "people"]]
    for who, labels in zip(crowd[:3], answers, strict=True):
        assert answer(who, item, {"labels": labels}).status_code == 201
    item.refresh_from_db()
    # "people": one of three says yes, not sure either way: one more answer is asked for.
    assert (item.status, item.required_labels) == (Item.Status.OPEN, 4)
    assert answer(crowd[3], item, {"labels": ["outdoor", "animal"]}).status_code == 201
    item.refresh_from_db()
    assert item.status == Item.Status.OPEN  # 3 to 1 on "people" is 0.94 sure: one more
    assert answer(crowd[4], item, {"labels": ["animal", "outdoor"]}).status_code == 201
    item.refresh_from_db()
    assert item.status == Item.Status.ACCEPTED
    assert item.decided_value == {"labels": ["outdoor", "animal"]}
    paid = set(LedgerEntry.objects.filter(reason="label").values_list("user_id", flat=True))
    # Jaccard 2/3 for the one who added "people": above the 0.5 agreement threshold, paid too.
    assert paid == {who.user.pk for who in crowd}
    give_grant(tags, buyer)
    record = buyer_api.get(f"/api/v1/datasets/{tags.pk}/records/").json()["results"][0]
    assert record["task"] == "multilabel" and record["value"] == {"labels": ["outdoor", "animal"]}


def test_a_multilabel_answer_of_many_long_classes_fits_and_filters_by_any_of_them(
    crowd: list[Contributor], buyer_api: Any, buyer: User
) -> None:
    """Nine classes of 20-odd characters, all chosen: the summary label is cut to the column's
    100 characters with a digest (PostgreSQL refused the whole with a 500), and the records'
    label filter reads the decision's value, so a class cut from the summary, one with a comma
    and one outside ASCII still find the record."""
    classes = [f"class number {i} of nine" for i in range(7)] + ["indoor, lit", "\u732b cat"]
    project = make_project("multilabel", "text", classes)
    item = item_create_text(project=project, contributor=None, text="everything applies")
    other = item_create_text(project=project, contributor=None, text="only the first")
    for who in crowd[:3]:
        assert answer(who, item, {"labels": classes}).status_code == 201
        assert answer(who, other, {"labels": classes[:1]}).status_code == 201
    item.refresh_from_db()
    assert item.status == Item.Status.ACCEPTED and item.decided_value == {"labels": classes}
    assert len(item.decided_label) == 100 and item.decided_label.startswith("class number 0")
    labels = set(Annotation.objects.filter(item=item).values_list("label", flat=True))
    assert labels == {item.decided_label}  # the same answers, the same summary
    give_grant(project, buyer)
    url = f"/api/v1/datasets/{project.pk}/records/"
    for name, texts in [
        ("\u732b cat", ["everything applies"]),
        ("indoor, lit", ["everything applies"]),
        (classes[0], ["everything applies", "only the first"]),
        (classes[6], ["everything applies"]),
    ]:
        found = buyer_api.get(url, {"label": name}).json()["results"]
        assert sorted(r["text"] for r in found) == texts, name


# --- boxes -----------------------------------------------------------------------------------


@pytest.fixture
def cars() -> Project:
    return make_project("boxes", "image", ["car", "person"])


def box(x: float, y: float, w: float, h: float, label: str = "car") -> dict[str, Any]:
    return {"x": x, "y": y, "w": w, "h": h, "label": label}


def test_boxes_must_lie_inside_the_image_with_an_area_and_a_class(
    crowd: list[Contributor], cars: Project
) -> None:
    item = item_create_image(project=cars, contributor=None, data=png())
    assert refused(crowd[0], item, {"boxes": [box(150, 10, 60, 20)]}).startswith(
        "boxes[0]: is outside the 200 x 100 image"
    )
    assert refused(crowd[0], item, {"boxes": [box(10, 10, 0, 20)]}).startswith(
        "boxes[0].w: a box is at least 1 pixel wide and high"
    )
    # Smaller than a pixel is no box either: its area rounds to 0 (two never agree).
    assert refused(crowd[0], item, {"boxes": [box(10, 10, 5, 1e-320)]}).startswith(
        "boxes[0].h: a box is at least 1 pixel wide and high"
    )
    assert refused(crowd[0], item, {"boxes": [box(10, 10, 5, 5, "truck")]}).startswith(
        "boxes[0].label: unknown class 'truck'"
    )
    assert refused(crowd[0], item, {"boxes": [{"x": 1, "y": 1, "w": 2}]}).startswith(
        "boxes[0].h: is required"
    )
    assert refused(crowd[0], item, {"boxes": [box(1, 1, True, 2)]}).startswith(
        "boxes[0].w: must be a finite number"
    )
    # An integer past float's range was an OverflowError, a 500.
    assert refused(crowd[0], item, {"boxes": [box(10**400, 1, 2, 2)]}).startswith(
        "boxes[0].x: must be a finite number"
    )
    assert refused(crowd[0], item, {"label": "car"}).startswith("boxes: is required")
    assert answer(crowd[0], item, {"boxes": []}).status_code == 201  # nothing to box


def test_boxes_are_fused_and_the_close_drawers_paid_with_the_record_in_pixels(
    crowd: list[Contributor], cars: Project, buyer_api: Any, buyer: User
) -> None:
    item = item_create_image(project=cars, contributor=crowd[3].user, data=png())
    drawn = [
        [box(10, 10, 50, 40), box(120, 20, 30, 60, "person")],
        [box(12, 11, 49, 38), box(121, 22, 28, 57, "person")],
        [box(90, 60, 20, 20)],  # someone who saw something else
    ]
    for who, boxes in zip(crowd[:3], drawn, strict=True):
        assert answer(who, item, {"boxes": boxes}).status_code == 201
    item.refresh_from_db()
    assert item.status == Item.Status.ACCEPTED  # 2 of 3 agree with the fused boxes
    fused = item.decided_value["boxes"]
    assert [b["label"] for b in fused] == ["car", "person"]
    assert fused[0]["x"] == pytest.approx(11, abs=1) and fused[0]["w"] == pytest.approx(49.5, abs=1)
    paid = set(LedgerEntry.objects.filter(reason="label").values_list("user_id", flat=True))
    assert paid == {crowd[0].user.pk, crowd[1].user.pk}
    give_grant(cars, buyer)
    record = buyer_api.get(f"/api/v1/datasets/{cars.pk}/records/").json()["results"][0]
    assert (record["width"], record["height"]) == (200, 100)
    assert record["value"]["boxes"] == fused and record["label"] == "2 boxes"


# --- spans -----------------------------------------------------------------------------------


@pytest.fixture
def entities() -> Project:
    return make_project("spans", "text", ["PER", "LOC"])


TEXT = "Ada Lovelace was born in London."


def span(start: int, end: int, label: str) -> dict[str, Any]:
    return {"start": start, "end": end, "label": label}


def test_spans_are_character_offsets_inside_the_text_and_may_not_overlap(
    crowd: list[Contributor], entities: Project
) -> None:
    item = item_create_text(project=entities, contributor=None, text=TEXT)
    assert refused(crowd[0], item, {"spans": [span(25, 40, "LOC")]}).startswith(
        "spans[0]: is outside the text (0 to 32 characters)"
    )
    assert refused(crowd[0], item, {"spans": [span(5, 5, "PER")]}).startswith(
        "spans[0]: is empty or inverted"
    )
    assert refused(crowd[0], item, {"spans": [span(9, 3, "PER")]}).startswith(
        "spans[0]: is empty or inverted"
    )
    assert refused(crowd[0], item, {"spans": [span(0, 1.5, "PER")]}).startswith(  # type: ignore[arg-type]
        "spans[0].end: must be an integer"
    )
    overlap = refused(crowd[0], item, {"spans": [span(0, 12, "PER"), span(4, 12, "LOC")]})
    assert "overlap; this project doesn't allow overlapping spans" in overlap


def test_overlapping_spans_are_accepted_where_the_project_allows_them(
    crowd: list[Contributor],
) -> None:
    project = make_project("spans", "text", ["PER", "LOC"], spans_may_overlap=True)
    item = item_create_text(project=project, contributor=None, text=TEXT)
    body = {"spans": [span(0, 12, "PER"), span(4, 12, "LOC")]}
    assert answer(crowd[0], item, body).status_code == 201


def test_spans_are_voted_per_character_and_the_record_carries_their_text(
    crowd: list[Contributor], entities: Project, buyer_api: Any, buyer: User
) -> None:
    item = item_create_text(project=entities, contributor=crowd[3].user, text=TEXT)
    marked = [
        [span(0, 12, "PER"), span(25, 31, "LOC")],
        [span(0, 12, "PER"), span(25, 31, "LOC")],
        [span(0, 3, "PER")],
    ]
    for who, spans in zip(crowd[:3], marked, strict=True):
        assert answer(who, item, {"spans": spans}).status_code == 201
    item.refresh_from_db()
    assert item.status == Item.Status.ACCEPTED
    assert item.decided_value == {"spans": [span(0, 12, "PER"), span(25, 31, "LOC")]}
    give_grant(entities, buyer)
    record = buyer_api.get(f"/api/v1/datasets/{entities.pk}/records/").json()["results"][0]
    assert [(s["text"], s["label"]) for s in record["value"]["spans"]] == [
        ("Ada Lovelace", "PER"),
        ("London", "LOC"),
    ]


# --- pairwise --------------------------------------------------------------------------------


def test_pairwise_choices_decide_which_side_is_better(
    crowd: list[Contributor], buyer_api: Any, buyer: User
) -> None:
    project = make_project("pairwise", "text", ["a", "b"], consensus_method="majority_vote")
    item = item_create_text(
        project=project, contributor=None, text="Paris.", text_b="Paris, the capital of France."
    )
    assert refused(crowd[0], item, {"choice": "c"}) == 'choice: must be "a" or "b"'
    assert refused(crowd[0], item, {"label": "a"}).startswith("choice: is required")
    for who, choice in zip(crowd[:3], ["b", "b", "a"], strict=True):
        assert answer(who, item, {"choice": choice}).status_code == 201
    item.refresh_from_db()
    assert item.decided_value == {"choice": "b"}
    give_grant(project, buyer)
    record = buyer_api.get(f"/api/v1/datasets/{project.pk}/records/").json()["results"][0]
    assert (record["text"], record["text_b"], record["value"]) == (
        "Paris.",
        "Paris, the capital of France.",
        {"choice": "b"},
    )


def test_a_pairwise_image_item_serves_both_images(
    crowd: list[Contributor],
) -> None:
    project = make_project("pairwise", "image", ["a", "b"])
    other = io.BytesIO()
    Image.new("RGB", (50, 50), (10, 200, 10)).save(other, "PNG")
    item = item_create_image(project=project, contributor=None, data=png(), data_b=other.getvalue())
    task = crowd[0].api.get(f"/api/v1/projects/{project.pk}/next-task/").json()
    assert task["id"] == item.pk and task["task"] == "pairwise"
    assert task["image_b_url"].endswith(f"/api/v1/items/{item.pk}/content?side=b")
    second = crowd[0].api.get(f"/api/v1/items/{item.pk}/content", {"side": "b"})
    assert second.status_code == 200 and second["Content-Type"] == "image/png"
    _ = SimpleUploadedFile  # multipart uploads of pairs are covered in test_near_duplicates_and_quota
