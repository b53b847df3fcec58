"""Background exports: requested (202), built by the task into the media storage, polled,
downloaded with Range, expired; every format read back by its own ecosystem's reader
(pycocotools, Hugging Face datasets, csv/json, YAML), and a Croissant description beside each."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import mlcroissant
import pyarrow.parquet as pq
import pytest
import supervision as sv
import yaml
from django.core.files.storage import default_storage
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from accounts.services import api_key_issue
from labeling.models import Decision, Item, Project
from labeling.services import item_create_image, item_create_text
from market.formats.parquet import card
from market.formats.yolo import data_yaml
from market.models import DatasetExport
from market.services import exports_expire
from tests.conftest import give_grant, gradient_bytes

pytestmark = pytest.mark.django_db


def accept(item: Item, label: str, value: dict[str, Any] | None = None, **extra: Any) -> Item:
    Item.objects.filter(pk=item.pk).update(
        status=Item.Status.ACCEPTED,
        decided_label=label,
        decided_value=value or {},
        decided_at=timezone.now(),
        confidence=extra.get("confidence", 0.98),
        agreement=1.0,
        label_count=3,
        decision_version=1,
    )
    Decision.objects.create(
        item=item,
        version=1,
        label=label,
        posterior=0.98,
        method="dawid_skene",
        decided_by=extra.get("decided_by", "crowd"),
        n_classes=2,
    )
    return item


@pytest.fixture
def texts(text_project: Project, buyer: User) -> Project:
    give_grant(text_project, buyer)
    accept(item_create_text(project=text_project, contributor=None, text="=1+1 great"), "positive")
    accept(
        item_create_text(project=text_project, contributor=None, text="awful, sadly"), "negative"
    )
    item_create_text(project=text_project, contributor=None, text="not decided")
    return text_project


@pytest.fixture
def boxes(buyer: User) -> Project:
    project = Project.objects.create(
        name="Pets",
        data_kind=Project.DataKind.IMAGE,
        task=Project.Task.BOXES,
        classes=["cat", "dog"],
        licence="CC0-1.0",
    )
    give_grant(project, buyer)
    first = item_create_image(project=project, contributor=None, data=gradient_bytes(64, 48, "PNG"))
    accept(
        first,
        "2 boxes",
        {
            "boxes": [
                {"x": 4.0, "y": 6.0, "w": 20.0, "h": 10.0, "label": "cat"},
                {"x": 30.0, "y": 20.0, "w": 34.0, "h": 28.0, "label": "dog"},
            ]
        },
    )
    second = item_create_image(
        project=project, contributor=None, data=gradient_bytes(40, 40, "JPEG")
    )
    accept(second, "0 boxes", {"boxes": []})
    return project


def request_export(
    api: APIClient, project: Project, capture: Any, fmt: str, **filters: Any
) -> dict[str, Any]:
    with capture(execute=True):
        response = api.post(
            f"/api/v1/datasets/{project.pk}/exports/", {"format": fmt, **filters}, format="json"
        )
    assert response.status_code == 202, response.json()
    assert response["Location"].endswith(f"/api/v1/exports/{response.json()['id']}/")
    detail = api.get(f"/api/v1/exports/{response.json()['id']}/").json()
    assert detail["status"] == "done", detail
    return detail


def download(api: APIClient, url: str, **headers: Any) -> Any:
    return api.get(url, **headers)


def body(response: Any) -> bytes:
    return b"".join(response.streaming_content)


# --- The lifecycle ----------------------------------------------------------------------------


def test_an_export_is_queued_then_built_and_downloadable_with_range(
    texts: Project, buyer_api: APIClient, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = buyer_api.post(
            f"/api/v1/datasets/{texts.pk}/exports/", {"format": "jsonl"}, format="json"
        )
    assert response.status_code == 202
    queued = response.json()
    assert (queued["status"], queued["progress"], queued["download_url"]) == ("queued", 0, None)
    assert buyer_api.get(f"/api/v1/exports/{queued['id']}/download").status_code == 409
    assert len(callbacks) == 1
    callbacks[0]()  # the worker builds it
    done = buyer_api.get(f"/api/v1/exports/{queued['id']}/").json()
    assert (done["status"], done["progress"], done["records"]) == ("done", 100, 2)
    whole = buyer_api.get(done["download_url"])
    data = body(whole)
    assert whole["Accept-Ranges"] == "bytes" and len(data) == done["size_bytes"]
    assert [json.loads(line)["text"] for line in data.splitlines()] == [
        "=1+1 great",
        "awful, sadly",
    ]
    import hashlib

    assert hashlib.sha256(data).hexdigest() == done["sha256"]
    assert whole["ETag"] == f'"{done["sha256"]}"'

    part = download(buyer_api, done["download_url"], HTTP_RANGE="bytes=2-11")
    assert part.status_code == 206 and body(part) == data[2:12]
    assert part["Content-Range"] == f"bytes 2-11/{len(data)}"
    tail = download(buyer_api, done["download_url"], HTTP_RANGE="bytes=-5")
    assert body(tail) == data[-5:]
    rest = download(buyer_api, done["download_url"], HTTP_RANGE=f"bytes={len(data) - 3}-")
    assert body(rest) == data[-3:]
    beyond = download(buyer_api, done["download_url"], HTTP_RANGE=f"bytes={len(data)}-")
    assert beyond.status_code == 416 and beyond["Content-Range"] == f"bytes */{len(data)}"
    several = download(buyer_api, done["download_url"], HTTP_RANGE="bytes=0-1,4-5")
    assert several.status_code == 200 and body(several) == data  # the whole file instead
    stale = download(buyer_api, done["download_url"], HTTP_RANGE="bytes=0-1", HTTP_IF_RANGE='"x"')
    assert stale.status_code == 200  # the file changed since: all of it
    mine = buyer_api.get("/api/v1/exports/").json()
    assert [e["id"] for e in mine] == [queued["id"]]


def test_a_dataset_lists_its_own_exports_newest_first(
    texts: Project, boxes: Project, buyer_api: APIClient, django_capture_on_commit_callbacks: Any
) -> None:
    first = request_export(buyer_api, texts, django_capture_on_commit_callbacks, "jsonl")
    other = request_export(buyer_api, boxes, django_capture_on_commit_callbacks, "coco")
    second = request_export(buyer_api, texts, django_capture_on_commit_callbacks, "csv")
    listed = buyer_api.get(f"/api/v1/datasets/{texts.pk}/exports/")
    assert listed.status_code == 200, listed.json()
    assert [e["id"] for e in listed.json()] == [second["id"], first["id"]]
    assert [e["id"] for e in buyer_api.get(f"/api/v1/datasets/{boxes.pk}/exports/").json()] == [
        other["id"]
    ]
    mine = buyer_api.get("/api/v1/exports/").json()
    assert [e["id"] for e in mine] == [second["id"], other["id"], first["id"]]


def test_exports_are_private_to_their_buyer_and_need_the_grant(
    texts: Project, buyer_api: APIClient, buyer: User, django_capture_on_commit_callbacks: Any
) -> None:
    done = request_export(buyer_api, texts, django_capture_on_commit_callbacks, "csv")
    other = User.objects.create_user("other", role=User.Role.BUYER)
    other_api = APIClient()
    other_api.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_issue(user=other, name='k')}")
    assert other_api.get(f"/api/v1/exports/{done['id']}/").status_code == 404
    assert other_api.get(done["download_url"]).status_code == 404
    assert APIClient().get(done["download_url"]).status_code == 401
    assert (
        other_api.post(
            f"/api/v1/datasets/{texts.pk}/exports/", {"format": "csv"}, format="json"
        ).status_code
        == 403
    )
    from market.models import DatasetGrant

    DatasetGrant.objects.filter(buyer=buyer).update(revoked_at=timezone.now())
    assert buyer_api.get(done["download_url"]).status_code == 403


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"format": "xlsx"}, "format"),
        ({}, "format"),
        ({"format": "coco"}, "bounding boxes"),
        ({"format": "yolo"}, "bounding boxes"),
        ({"format": "jsonl", "min_confidence": "lots"}, "min_confidence"),
        ({"format": "jsonl", "label": "neutral"}, "label"),
        ({"format": "jsonl", "min_labels": {"$gt": 1}}, "single values"),
        ({"format": "jsonl", "colour": "red"}, "colour"),
    ],
)
def test_a_bad_export_request_is_a_400_and_queues_nothing(
    texts: Project, buyer_api: APIClient, payload: dict[str, Any], message: str
) -> None:
    response = buyer_api.post(f"/api/v1/datasets/{texts.pk}/exports/", payload, format="json")
    assert response.status_code == 400 and message in response.json()["detail"]
    assert not DatasetExport.objects.exists()
    assert (
        buyer_api.post(
            f"/api/v1/datasets/{texts.pk}/exports/", ["jsonl"], format="json"
        ).status_code
        == 400
    )


def test_an_export_applies_the_record_filters(
    texts: Project, buyer_api: APIClient, django_capture_on_commit_callbacks: Any
) -> None:
    done = request_export(
        buyer_api, texts, django_capture_on_commit_callbacks, "jsonl", label="negative"
    )
    assert done["filters"] == {"label": "negative"} and done["records"] == 1


def test_a_failed_build_says_why_and_leaves_no_file(
    texts: Project,
    buyer_api: APIClient,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
    media_root: Path,
) -> None:
    from market.formats import text

    def broken(*args: Any) -> Any:
        raise OSError("disk full")

    monkeypatch.setattr(text, "write_jsonl", broken)
    with django_capture_on_commit_callbacks(execute=True):
        export_id = buyer_api.post(
            f"/api/v1/datasets/{texts.pk}/exports/", {"format": "jsonl"}, format="json"
        ).json()["id"]
    failed = buyer_api.get(f"/api/v1/exports/{export_id}/").json()
    assert failed["status"] == "failed" and "disk full" in failed["error"]
    assert failed["download_url"] is None
    assert (
        not list((media_root / "exports").rglob("*.*"))
        if (media_root / "exports").exists()
        else True
    )


def test_expired_exports_lose_their_files_and_answer_410(
    texts: Project, buyer_api: APIClient, django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    done = request_export(buyer_api, texts, django_capture_on_commit_callbacks, "parquet")
    export = DatasetExport.objects.get(pk=done["id"])
    expected = export.finished_at + timedelta(hours=settings.DATASET_EXPORT_TTL_HOURS)  # type: ignore[operator]
    assert export.expires_at == expected
    names = [export.file.name, export.croissant.name, export.card.name]
    assert all(default_storage.exists(n) for n in names)
    assert exports_expire() == 0
    DatasetExport.objects.filter(pk=export.pk).update(expires_at=timezone.now())
    assert exports_expire() == 1
    assert not any(default_storage.exists(n) for n in names)
    assert buyer_api.get(done["download_url"]).status_code == 410
    assert buyer_api.get(f"/api/v1/exports/{done['id']}/").json()["status"] == "expired"


def test_a_build_whose_worker_died_past_the_time_limit_is_failed_saying_why(
    texts: Project, buyer_api: APIClient, django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    """Killed at its hard time limit, the task is acked, never delivered again: the export said
    "running" for ever."""
    done = request_export(buyer_api, texts, django_capture_on_commit_callbacks, "jsonl")
    started = timezone.now() - timedelta(seconds=settings.DATASET_EXPORT_TIME_LIMIT_SECONDS + 1)
    DatasetExport.objects.filter(pk=done["id"]).update(status="running", started_at=started)
    fresh = request_export(buyer_api, texts, django_capture_on_commit_callbacks, "csv")
    DatasetExport.objects.filter(pk=fresh["id"]).update(status="running", started_at=timezone.now())
    exports_expire()
    dead = buyer_api.get(f"/api/v1/exports/{done['id']}/").json()
    assert dead["status"] == "failed" and "time limit" in dead["error"]
    assert buyer_api.get(f"/api/v1/exports/{fresh['id']}/").json()["status"] == "running"


def test_export_requests_have_their_own_rate_per_key(
    texts: Project, buyer_api: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from config.throttling import ExportRequestThrottle

    monkeypatch.setattr(
        ExportRequestThrottle,
        "THROTTLE_RATES",
        {**ExportRequestThrottle.THROTTLE_RATES, "export": "2/hour"},
    )
    codes = [
        buyer_api.post(
            f"/api/v1/datasets/{texts.pk}/exports/", {"format": "csv"}, format="json"
        ).status_code
        for _ in range(3)
    ]
    assert codes == [202, 202, 429]
    assert buyer_api.get(f"/api/v1/datasets/{texts.pk}/records/").status_code == 200


@pytest.mark.parametrize(
    ("fmt", "content_type"),
    [("csv", "text/csv; charset=utf-8"), ("jsonl", "application/x-ndjson")],
)
def test_streamed_and_built_exports_are_sent_with_the_same_content_type(
    texts: Project,
    buyer_api: APIClient,
    django_capture_on_commit_callbacks: Any,
    fmt: str,
    content_type: str,
) -> None:
    """The streamed CSV said ``text/csv``, the built one ``text/csv; charset=utf-8``."""
    streamed = buyer_api.get(f"/api/v1/datasets/{texts.pk}/export", {"format": fmt})
    done = request_export(buyer_api, texts, django_capture_on_commit_callbacks, fmt)
    built = buyer_api.get(done["download_url"])
    assert streamed["Content-Type"] == built["Content-Type"] == content_type
    assert body(streamed) == body(built)


def test_a_refused_export_request_costs_nothing_of_the_export_rate(
    texts: Project, buyer_api: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 400 (a format the dataset doesn't offer, a bad filter) counted against EXPORT_RATE: a
    buyer's few exports an hour went on requests that queued nothing."""
    from config.throttling import ExportRequestThrottle

    monkeypatch.setattr(
        ExportRequestThrottle,
        "THROTTLE_RATES",
        {**ExportRequestThrottle.THROTTLE_RATES, "export": "2/hour"},
    )
    url = f"/api/v1/datasets/{texts.pk}/exports/"
    refused = [{"format": "coco"}, {"format": "yolo"}, {"format": "csv", "label": "neutral"}]
    codes = [buyer_api.post(url, payload, format="json").status_code for payload in refused]
    answers = [buyer_api.post(url, {"format": "csv"}, format="json") for _ in range(3)]
    assert codes + [answer.status_code for answer in answers] == [400, 400, 400, 202, 202, 429]
    assert int(answers[-1]["Retry-After"]) > 0


# --- Each format, read back -------------------------------------------------------------------


def test_csv_exports_are_flat_and_formula_safe(
    texts: Project, buyer_api: APIClient, django_capture_on_commit_callbacks: Any
) -> None:
    done = request_export(buyer_api, texts, django_capture_on_commit_callbacks, "csv")
    rows = list(csv.DictReader(io.StringIO(body(buyer_api.get(done["download_url"])).decode())))
    assert [r["text"] for r in rows] == ["'=1+1 great", "awful, sadly"]
    assert rows[0]["value"] == '{"label":"positive"}' and rows[0]["decided_by"] == "crowd"
    assert rows[0]["decided_at"].endswith("Z")


def test_parquet_exports_load_with_hugging_face_datasets_and_carry_a_card(
    texts: Project,
    buyer_api: APIClient,
    django_capture_on_commit_callbacks: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    done = request_export(buyer_api, texts, django_capture_on_commit_callbacks, "parquet")
    path = tmp_path / "data.parquet"
    path.write_bytes(body(buyer_api.get(done["download_url"])))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    import datasets

    loaded = datasets.load_dataset(
        "parquet", data_files=str(path), split="train", cache_dir=str(tmp_path / "cache")
    )
    assert loaded.num_rows == 2
    assert loaded["text"] == ["=1+1 great", "awful, sadly"]  # Parquet needs no CSV escaping
    assert loaded["label"] == ["positive", "negative"]
    assert loaded.features["decided_at"].dtype == "timestamp[us, tz=UTC]"
    assert json.loads(loaded["value"][1]) == {"label": "negative"}
    assert pq.ParquetFile(path).metadata.num_rows == 2

    card = body(buyer_api.get(done["card_url"])).decode()
    front = yaml.safe_load(card.split("---")[1])
    assert front["license"] == "cc-by-4.0" and front["task_categories"] == ["text-classification"]
    assert front["configs"][0]["data_files"][0]["split"] == "train"
    assert "# Sentiment" in card and "decided_by" in card
    # A folder holding the card and the file loads as a dataset, as on the Hub.
    folder = tmp_path / "repo"
    folder.mkdir()
    (folder / "README.md").write_text(card)
    (folder / front["configs"][0]["data_files"][0]["path"]).write_bytes(path.read_bytes())
    from_card = datasets.load_dataset(str(folder), split="train", cache_dir=str(tmp_path / "c2"))
    assert from_card.num_rows == 2


def test_label_studio_exports_are_its_json_tasks_with_annotations(
    texts: Project, buyer_api: APIClient, django_capture_on_commit_callbacks: Any
) -> None:
    done = request_export(buyer_api, texts, django_capture_on_commit_callbacks, "label_studio")
    tasks = json.loads(body(buyer_api.get(done["download_url"])))
    assert [t["data"]["text"] for t in tasks] == ["=1+1 great", "awful, sadly"]
    [annotation] = tasks[1]["annotations"]
    assert annotation["result"] == [
        {
            "from_name": "label",
            "to_name": "text",
            "type": "choices",
            "value": {"choices": ["negative"]},
        }
    ]
    assert annotation["was_cancelled"] is False and annotation["created_at"].endswith("Z")
    assert tasks[0]["meta"]["crowdmint"]["decided_by"] == "crowd"
    config = body(buyer_api.get(done["card_url"])).decode()
    assert '<Choices name="label" toName="text" choice="single">' in config
    assert '<Choice value="negative"/>' in config
    # Every from_name/to_name in the results is a tag of the config (what Label Studio checks).
    names = {tag.get("name") for tag in ET.fromstring(config).iter()}
    assert {annotation["result"][0]["from_name"], annotation["result"][0]["to_name"]} <= names


def test_coco_exports_load_with_pycocotools_with_their_images(
    boxes: Project,
    buyer_api: APIClient,
    django_capture_on_commit_callbacks: Any,
    tmp_path: Path,
) -> None:
    from pycocotools.coco import COCO

    done = request_export(buyer_api, boxes, django_capture_on_commit_callbacks, "coco")
    archive = zipfile.ZipFile(io.BytesIO(body(buyer_api.get(done["download_url"]))))
    archive.extractall(tmp_path)
    coco = COCO(str(tmp_path / "annotations" / "instances.json"))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["cat", "dog"]
    [with_boxes, empty] = coco.loadImgs(sorted(coco.getImgIds()))
    assert (with_boxes["width"], with_boxes["height"]) == (64, 48)
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[with_boxes["id"]]))
    assert [(a["bbox"], a["category_id"], a["area"]) for a in anns] == [
        ([4.0, 6.0, 20.0, 10.0], 1, 200.0),
        ([30.0, 20.0, 34.0, 28.0], 2, 952.0),
    ]
    assert coco.getAnnIds(imgIds=[empty["id"]]) == []
    from PIL import Image

    with Image.open(tmp_path / "images" / with_boxes["file_name"]) as image:
        assert image.size == (64, 48)  # the image itself is inside the archive


def test_coco_boxes_are_polygons_pycocotools_masks_and_evaluates(
    boxes: Project,
    buyer_api: APIClient,
    django_capture_on_commit_callbacks: Any,
    tmp_path: Path,
) -> None:
    """``"segmentation": []`` made ``annToMask`` and COCOeval's segm raise (IndexError)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    done = request_export(buyer_api, boxes, django_capture_on_commit_callbacks, "coco")
    zipfile.ZipFile(io.BytesIO(body(buyer_api.get(done["download_url"])))).extractall(tmp_path)
    coco = COCO(str(tmp_path / "annotations" / "instances.json"))
    anns = coco.loadAnns(sorted(coco.getAnnIds()))
    assert anns[0]["segmentation"] == [[4.0, 6.0, 24.0, 6.0, 24.0, 16.0, 4.0, 16.0]]
    masks = [coco.annToMask(ann) for ann in anns]
    assert [mask.shape for mask in masks] == [(48, 64), (48, 64)]
    assert [int(mask.sum()) for mask in masks] == [200, 952]  # the boxes' areas, in pixels
    results = coco.loadRes([{**ann, "score": 1.0} for ann in anns])
    evaluation = COCOeval(coco, results, iouType="segm")
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    assert evaluation.stats[0] == pytest.approx(1.0)  # the ground truth scores itself perfect


def test_yolo_data_yaml_reads_back_every_class_name_and_nothing_else() -> None:
    """PyYAML (Ultralytics' reader) read JSON's surrogate pair for a character outside the BMP
    as two broken characters, and a line break in the project's name added keys."""
    names = ["\U0001f600 cat", "\u732b", 'say "hi"', "back\\slash", "x: y", "# no", "a\u2028b"]
    project = Project(
        name="Birds\nnc: 99", licence="CC0-1.0\nnames: []", task="boxes", classes=names
    )
    data = yaml.safe_load(data_yaml(project))
    assert data["nc"] == len(names) and data["names"] == dict(enumerate(names))
    assert set(data) == {"path", "train", "val", "nc", "names"}


def test_the_dataset_cards_metadata_reads_back_whatever_the_names() -> None:
    project = Project(
        name="\U0001f426 Birds\nlicense: mit",
        licence="CC0-1.0\nx: y",
        task="classify",
        classes=["finch", "crow"],
    )
    text = card(project, 3, "crowdmint-1-birds.parquet")
    metadata = yaml.safe_load(text.split("---\n")[1])
    assert metadata["pretty_name"] == project.name
    assert metadata["license"] == "other"  # no SPDX id: the Hub's "other", not a second key
    assert "x" not in metadata


def test_yolo_exports_are_images_labels_and_data_yaml(
    boxes: Project,
    buyer_api: APIClient,
    django_capture_on_commit_callbacks: Any,
) -> None:
    done = request_export(buyer_api, boxes, django_capture_on_commit_callbacks, "yolo")
    archive = zipfile.ZipFile(io.BytesIO(body(buyer_api.get(done["download_url"]))))
    data = yaml.safe_load(archive.read("data.yaml"))
    assert data["names"] == {0: "cat", 1: "dog"} and data["nc"] == 2 and data["train"] == "images"
    images = sorted(n for n in archive.namelist() if n.startswith("images/"))
    labels = sorted(n for n in archive.namelist() if n.startswith("labels/"))
    assert [n.split("/")[1].rsplit(".", 1)[0] for n in images] == [
        n.split("/")[1].removesuffix(".txt") for n in labels
    ]
    first = min(labels, key=lambda n: int(n.split("/")[1].split(".")[0]))
    lines = [line.split() for line in archive.read(first).decode().splitlines()]
    # cat: x 4..24 of 64, y 6..16 of 48 -> centre (14/64, 11/48), size (20/64, 10/48)
    assert lines[0] == ["0", "0.218750", "0.229167", "0.312500", "0.208333"]
    assert lines[1][0] == "1" and all(0 <= float(v) <= 1 for v in lines[1][1:])


@pytest.mark.parametrize("fmt", ["yolo", "coco"])
def test_an_archive_built_twice_is_the_same_bytes(
    boxes: Project,
    buyer_api: APIClient,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
    fmt: str,
) -> None:
    """YOLO's labels/*.txt and data.yaml were stamped with the time of the build: the same
    records built a day later gave another file and another SHA-256."""
    import time
    import types

    capture = django_capture_on_commit_callbacks
    first = request_export(buyer_api, boxes, capture, fmt)
    a_day_later = types.SimpleNamespace(time=lambda: time.time() + 86_400, localtime=time.localtime)
    monkeypatch.setattr(zipfile, "time", a_day_later)
    second = request_export(buyer_api, boxes, capture, fmt)
    assert first["id"] != second["id"]
    assert first["sha256"] == second["sha256"]
    assert body(buyer_api.get(first["download_url"])) == body(buyer_api.get(second["download_url"]))


def test_yolo_exports_load_with_supervision_in_pixels(
    boxes: Project,
    buyer_api: APIClient,
    django_capture_on_commit_callbacks: Any,
    tmp_path: Path,
) -> None:
    done = request_export(buyer_api, boxes, django_capture_on_commit_callbacks, "yolo")
    zipfile.ZipFile(io.BytesIO(body(buyer_api.get(done["download_url"])))).extractall(tmp_path)
    dataset = sv.DetectionDataset.from_yolo(
        images_directory_path=str(tmp_path / "images"),
        annotations_directory_path=str(tmp_path / "labels"),
        data_yaml_path=str(tmp_path / "data.yaml"),
    )
    assert dataset.classes == ["cat", "dog"] and len(dataset) == 2
    found = {}
    for _, image, detections in dataset:
        found[image.shape[:2]] = (detections.xyxy.round(3).tolist(), detections.class_id.tolist())
    # Back in the image's pixels: the boxes as they were decided.
    assert found[(48, 64)] == ([[4.0, 6.0, 24.0, 16.0], [30.0, 20.0, 64.0, 48.0]], [0, 1])
    assert found[(40, 40)] == ([], [])


def test_a_box_whose_class_the_project_no_longer_has_gets_a_code_after_its_classes(
    boxes: Project,
    buyer_api: APIClient,
    django_capture_on_commit_callbacks: Any,
    tmp_path: Path,
) -> None:
    """Classes renamed behind the admin form's back (it refuses that once a project is labeled):
    the accepted "cat" box failed the COCO and YOLO exports with KeyError: 'cat'. It keeps its
    box, under a class after the project's: the project's own codes don't move."""
    from pycocotools.coco import COCO

    Project.objects.filter(pk=boxes.pk).update(classes=["kitten", "dog"])
    capture = django_capture_on_commit_callbacks
    done = request_export(buyer_api, boxes, capture, "coco")
    zipfile.ZipFile(io.BytesIO(body(buyer_api.get(done["download_url"])))).extractall(tmp_path)
    coco = COCO(str(tmp_path / "annotations" / "instances.json"))
    categories = coco.loadCats(coco.getCatIds())
    assert [(c["id"], c["name"]) for c in categories] == [(1, "kitten"), (2, "dog"), (3, "cat")]
    assert [a["category_id"] for a in coco.loadAnns(coco.getAnnIds())] == [3, 2]

    done = request_export(buyer_api, boxes, capture, "yolo")
    archive = zipfile.ZipFile(io.BytesIO(body(buyer_api.get(done["download_url"]))))
    data = yaml.safe_load(archive.read("data.yaml"))
    assert data["names"] == {0: "kitten", 1: "dog", 2: "cat"} and data["nc"] == 3
    first = min(
        (n for n in archive.namelist() if n.startswith("labels/")),
        key=lambda n: int(n.split("/")[1].split(".")[0]),
    )
    assert [line.split()[0] for line in archive.read(first).decode().splitlines()] == ["2", "1"]

    done = request_export(buyer_api, boxes, capture, "label_studio")
    config = body(buyer_api.get(done["card_url"])).decode()
    labels = [c.get("value") for c in ET.fromstring(config).iter("Label")]
    assert labels == ["kitten", "dog", "cat"]  # every label the results use is in the config


def test_images_in_exports_need_the_buyers_key(
    boxes: Project, buyer_api: APIClient, django_capture_on_commit_callbacks: Any
) -> None:
    done = request_export(buyer_api, boxes, django_capture_on_commit_callbacks, "jsonl")
    rows = [json.loads(line) for line in body(buyer_api.get(done["download_url"])).splitlines()]
    url = rows[0]["image_url"]
    assert url.startswith("http://testserver/api/v1/items/") and url.endswith("/content")
    assert APIClient().get(url).status_code == 401
    assert buyer_api.get(url).status_code == 200
    assert rows[0]["value"]["boxes"][0]["label"] == "cat"


def test_boxes_records_filter_by_a_class_among_their_boxes(
    boxes: Project, buyer_api: APIClient
) -> None:
    records = buyer_api.get(f"/api/v1/datasets/{boxes.pk}/records/", {"label": "dog"}).json()
    assert [r["label"] for r in records["results"]] == ["2 boxes"]


def test_a_class_outside_ascii_filters_boxes_records_on_either_backend(
    boxes: Project, buyer_api: APIClient
) -> None:
    """SQLite keeps the decision's JSON escaped to ASCII, PostgreSQL's jsonb text does not: the
    filter matched only the escaped form, so on PostgreSQL it found nothing."""
    Project.objects.filter(pk=boxes.pk).update(classes=["\u732b", "dog"])
    item = boxes.items.get(decided_label="2 boxes")
    cat = {"x": 4.0, "y": 6.0, "w": 20.0, "h": 10.0, "label": "\u732b"}
    Item.objects.filter(pk=item.pk).update(decided_value={"boxes": [cat]}, decided_label="1 box")
    records = buyer_api.get(f"/api/v1/datasets/{boxes.pk}/records/", {"label": "\u732b"})
    assert [r["value"] for r in records.json()["results"]] == [{"boxes": [cat]}]


# --- Croissant --------------------------------------------------------------------------------

CROISSANT_TYPES = {"sc:Integer", "sc:Float", "sc:Text", "sc:Date", "sc:URL", "sc:Boolean"}


def check_croissant(doc: dict[str, Any], data: bytes) -> None:
    """The Croissant 1.0 specification's requirements, by hand and by ``mlcroissant``."""
    import hashlib

    assert doc["@context"]["@vocab"] == "https://schema.org/"
    assert doc["@context"]["cr"] == "http://mlcommons.org/croissant/"
    assert doc["conformsTo"] == "http://mlcommons.org/croissant/1.0"
    assert doc["@type"] == "sc:Dataset"
    for required in ("name", "description", "license", "url", "creator", "datePublished"):
        assert doc[required], required
    licences = doc["license"] if isinstance(doc["license"], list) else [doc["license"]]
    assert all(isinstance(licence, str) and licence for licence in licences), licences
    files = {f["@id"]: f for f in doc["distribution"]}
    main = files["export-file"]
    assert main["@type"] == "cr:FileObject" and main["contentUrl"].endswith("/download")
    assert main["sha256"] == hashlib.sha256(data).hexdigest()
    assert main["contentSize"] == f"{len(data)} B"
    for entry in files.values():
        assert entry["@type"] in ("cr:FileObject", "cr:FileSet") and entry["encodingFormat"]
        if "containedIn" in entry:
            assert entry["containedIn"]["@id"] in files
    for record_set in doc["recordSet"]:
        assert record_set["@type"] == "cr:RecordSet"
        fields = list(record_set["field"])
        while fields:
            field = fields.pop()
            assert field["@type"] == "cr:Field"
            assert field["@id"].startswith(record_set["@id"] + "/")
            if "subField" in field:  # a JSON object's keys (JSON Lines' value)
                fields.extend(field["subField"])
                continue
            assert field["dataType"] in CROISSANT_TYPES
            assert field["source"]["fileObject"]["@id"] in files
            assert set(field["source"]["extract"]) <= {"column", "jsonPath"}
    assert "rai:dataAnnotationProtocol" in doc
    # And by MLCommons' own validator: no error, no warning.
    issues = mlcroissant.Dataset(jsonld=doc).metadata.issues
    assert (issues.errors, issues.warnings) == (set(), set()), issues.report()


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet", "label_studio"])
def test_every_text_export_has_a_croissant_description(
    texts: Project, buyer_api: APIClient, django_capture_on_commit_callbacks: Any, fmt: str
) -> None:
    done = request_export(buyer_api, texts, django_capture_on_commit_callbacks, fmt)
    response = buyer_api.get(done["croissant_url"])
    assert response["Content-Type"] == "application/ld+json"
    doc = json.loads(body(response))
    check_croissant(doc, body(buyer_api.get(done["download_url"])))
    if fmt in ("jsonl", "csv", "parquet"):
        [records] = doc["recordSet"]
        columns = [
            f["source"]["extract"]["column"] if "source" in f else f["name"]
            for f in records["field"]
        ]
        assert columns[:3] == ["id", "text", "text_b"] and "decided_by" in columns


def croissant_records(doc: dict[str, Any], data: bytes, folder: Path) -> list[dict[str, Any]]:
    """The records ``mlcroissant`` reads with ``doc``, its file ``data`` stored locally."""
    (folder / "export.data").write_bytes(data)
    for entry in doc["distribution"]:
        if entry["@id"] == "export-file":
            entry["contentUrl"] = "export.data"
    (folder / "croissant.json").write_text(json.dumps(doc))
    dataset = mlcroissant.Dataset(jsonld=str(folder / "croissant.json"))
    return list(dataset.records(record_set="records"))


def test_a_croissant_reader_reads_every_json_lines_record_with_its_value(
    texts: Project,
    boxes: Project,
    buyer_api: APIClient,
    django_capture_on_commit_callbacks: Any,
    tmp_path: Path,
) -> None:
    """JSON Lines' value is a JSON object, which the description called text read from a
    column: mlcroissant failed on the first record. Its keys are now sub-fields."""
    first = texts.items.filter(status=Item.Status.ACCEPTED).order_by("id")[0]
    capture = django_capture_on_commit_callbacks
    done = request_export(buyer_api, texts, capture, "jsonl")
    doc = json.loads(body(buyer_api.get(done["croissant_url"])))
    check_croissant(doc, data := body(buyer_api.get(done["download_url"])))
    (tmp_path / "texts").mkdir()
    read = croissant_records(doc, data, tmp_path / "texts")
    assert [(r["records/id"], r["records/value"]) for r in read] == [
        (first.pk, {"records/value/label": b"positive"}),
        (first.pk + 1, {"records/value/label": b"negative"}),
    ]

    done = request_export(buyer_api, boxes, capture, "jsonl")
    doc = json.loads(body(buyer_api.get(done["croissant_url"])))
    check_croissant(doc, data := body(buyer_api.get(done["download_url"])))
    (tmp_path / "boxes").mkdir()
    read = croissant_records(doc, data, tmp_path / "boxes")
    boxes_read = [
        [
            {key.rsplit("/", 1)[1]: value for key, value in box.items()}
            for box in r["records/value/boxes"]
        ]
        for r in read
    ]
    assert boxes_read == [
        [
            {"x": 4.0, "y": 6.0, "w": 20.0, "h": 10.0, "label": b"cat"},
            {"x": 30.0, "y": 20.0, "w": 34.0, "h": 28.0, "label": b"dog"},
        ],
        [],
    ]


@pytest.mark.parametrize("fmt", ["coco", "yolo"])
def test_archives_have_a_croissant_description_of_what_they_contain(
    boxes: Project, buyer_api: APIClient, django_capture_on_commit_callbacks: Any, fmt: str
) -> None:
    done = request_export(buyer_api, boxes, django_capture_on_commit_callbacks, fmt)
    doc = json.loads(body(buyer_api.get(done["croissant_url"])))
    check_croissant(doc, body(buyer_api.get(done["download_url"])))
    assert any(f.get("containedIn") for f in doc["distribution"])
    assert doc["license"] == "https://spdx.org/licenses/CC0-1.0.html"


def test_the_croissant_file_and_the_card_state_the_licence_the_records_carry(
    texts: Project, buyer_api: APIClient, django_capture_on_commit_callbacks: Any
) -> None:
    """Contributed under CC-BY-4.0, then the project's licence changed to CC0-1.0: the
    Croissant file and the card said CC0-1.0 while every record's licence said CC-BY-4.0."""
    Project.objects.filter(pk=texts.pk).update(licence="CC0-1.0")
    done = request_export(buyer_api, texts, django_capture_on_commit_callbacks, "parquet")
    doc = json.loads(body(buyer_api.get(done["croissant_url"])))
    check_croissant(doc, body(buyer_api.get(done["download_url"])))
    assert doc["license"] == "https://spdx.org/licenses/CC-BY-4.0.html"
    assert "CC0" not in json.dumps(doc)
    card = body(buyer_api.get(done["card_url"])).decode()
    assert yaml.safe_load(card.split("---")[1])["license"] == "cc-by-4.0"
    assert "**Licence:** CC-BY-4.0, accepted by each contributor at upload." in card
    assert "CC0" not in card


@pytest.mark.parametrize(
    ("licence", "url"),
    [
        ("CC-BY-4.0", "https://spdx.org/licenses/CC-BY-4.0.html"),
        ("GPL-2.0+", "https://spdx.org/licenses/GPL-2.0+.html"),
        ("LicenseRef-acme", ""),
        ("Proprietary, ask us", ""),
        ("MIT OR Apache-2.0", ""),
        ("../../evil", ""),
        ("", ""),
    ],
)
def test_only_an_spdx_id_links_to_spdx(licence: str, url: str) -> None:
    from market.formats.croissant import licence_url

    assert licence_url(licence) == url


def test_a_licence_that_is_no_spdx_id_is_stated_as_text_not_as_a_made_up_spdx_link(
    texts: Project, buyer_api: APIClient, django_capture_on_commit_callbacks: Any
) -> None:
    licence = "Proprietary, ask us"
    Project.objects.filter(pk=texts.pk).update(licence=licence)
    texts.items.update(licence=licence)
    done = request_export(buyer_api, texts, django_capture_on_commit_callbacks, "parquet")
    doc = json.loads(body(buyer_api.get(done["croissant_url"])))
    check_croissant(doc, body(buyer_api.get(done["download_url"])))
    assert doc["license"] == licence
    card = body(buyer_api.get(done["card_url"])).decode()
    assert yaml.safe_load(card.split("---")[1])["license"] == "other"
    assert f"**Licence:** {licence}, accepted by each contributor at upload." in card
    assert "spdx.org" not in json.dumps(doc) + card


def test_records_under_different_licences_name_every_one_and_the_card_says_per_record(
    texts: Project,
    buyer_api: APIClient,
    django_capture_on_commit_callbacks: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = texts.items.filter(status=Item.Status.ACCEPTED).order_by("id")[0]
    Item.objects.filter(pk=first.pk).update(licence="CC0-1.0")
    done = request_export(buyer_api, texts, django_capture_on_commit_callbacks, "parquet")
    data = body(buyer_api.get(done["download_url"]))
    doc = json.loads(body(buyer_api.get(done["croissant_url"])))
    check_croissant(doc, data)  # mlcroissant reads a list of licences
    assert doc["license"] == [
        "https://spdx.org/licenses/CC-BY-4.0.html",
        "https://spdx.org/licenses/CC0-1.0.html",
    ]
    card = body(buyer_api.get(done["card_url"])).decode()
    front = yaml.safe_load(card.split("---")[1])
    assert front["license"] == ["cc-by-4.0", "cc0-1.0"]
    assert "**Licence:** per record (the `licence` field)" in card
    assert "CC-BY-4.0 (1 record), CC0-1.0 (1 record)" in card
    # The Hub's layout still loads: the card's metadata with a list of licences, the file.
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    import datasets

    folder = tmp_path / "repo"
    folder.mkdir()
    (folder / "README.md").write_text(card)
    (folder / front["configs"][0]["data_files"][0]["path"]).write_bytes(data)
    loaded = datasets.load_dataset(str(folder), split="train", cache_dir=str(tmp_path / "c"))
    assert sorted(loaded["licence"]) == ["CC-BY-4.0", "CC0-1.0"]


def test_coco_names_each_images_licence_and_yolo_every_licence(
    boxes: Project, buyer_api: APIClient, django_capture_on_commit_callbacks: Any
) -> None:
    """COCO's licenses listed the project's licence, and every image pointed at it."""
    cc_by = boxes.items.order_by("id")[1]
    Item.objects.filter(pk=cc_by.pk).update(licence="CC-BY-4.0")
    capture = django_capture_on_commit_callbacks
    done = request_export(buyer_api, boxes, capture, "coco")
    archive = zipfile.ZipFile(io.BytesIO(body(buyer_api.get(done["download_url"]))))
    instances = json.loads(archive.read("annotations/instances.json"))
    licences = {entry["id"]: entry for entry in instances["licenses"]}
    assert sorted(entry["name"] for entry in licences.values()) == ["CC-BY-4.0", "CC0-1.0"]
    by_image = {image["id"]: licences[image["license"]]["name"] for image in instances["images"]}
    assert by_image == {boxes.items.order_by("id")[0].pk: "CC0-1.0", cc_by.pk: "CC-BY-4.0"}
    assert licences[1]["url"] == "https://spdx.org/licenses/CC0-1.0.html"

    done = request_export(buyer_api, boxes, capture, "yolo")
    archive = zipfile.ZipFile(io.BytesIO(body(buyer_api.get(done["download_url"]))))
    header = archive.read("data.yaml").decode().splitlines()[0]
    assert "CC-BY-4.0" in header and "CC0-1.0" in header
    doc = json.loads(body(buyer_api.get(done["croissant_url"])))
    check_croissant(doc, body(buyer_api.get(done["download_url"])))
    assert len(doc["license"]) == 2


def test_the_export_admin_page_names_its_files_without_linking_an_unserved_url(
    texts: Project,
    buyer_api: APIClient,
    django_capture_on_commit_callbacks: Any,
    moderator: User,
) -> None:
    """The read-only page linked /media/exports/…, which nothing serves (a 404 for every one)."""
    from django.test import Client

    done = request_export(buyer_api, texts, django_capture_on_commit_callbacks, "parquet")
    browser = Client()
    browser.force_login(moderator)
    page = browser.get(f"/admin/market/datasetexport/{done['id']}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "/media/" not in html and ".parquet" in html
    assert f"/api/v1/exports/{done['id']}/download" in html
