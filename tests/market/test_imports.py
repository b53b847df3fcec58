"""Bulk import of items by moderators: Label Studio JSON, CSV and JSON Lines; every row
validated, rejected rows reported, duplicates skipped, answers kept as pre-labels or gold; from
``manage.py import_items`` (with a progress bar) and from admin (with progress)."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from accounts.models import User
from labeling.models import Item, Project
from labeling.services import item_create_text
from market.models import ItemImport
from market.services import ItemImportError, import_request, import_run, imports, items_import
from market.tasks import fail_abandoned_imports
from tests.conftest import image_bytes

pytestmark = pytest.mark.django_db


def run(path: Path, project: Project, *args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "import_items", str(path), "--project", str(project.pk), *args, stdout=out, stderr=err
    )
    return out.getvalue(), err.getvalue()


def test_a_jsonl_import_creates_items_skips_duplicates_and_reports_rejected_rows(
    text_project: Project, tmp_path: Path
) -> None:
    item_create_text(project=text_project, contributor=None, text="Already here")
    lines = [
        {"text": "first"},
        {"text": "second"},
        {"text": "first"},  # the same as row 1
        {"text": "FIRST!"},  # differs only in case and punctuation: a near copy
        {"text": "already here"},  # a near copy of a stored item
        {"text": ""},
        {"text": "nul \u0000 inside"},
        {"text": "x" * 20001},
        {"image": "cat.png"},
        {"title": "no text"},
        ["not", "an", "object"],
    ]
    path = tmp_path / "items.jsonl"
    path.write_text(
        "\n".join(json.dumps(line) for line in lines) + "\n{broken json\n", encoding="utf-8"
    )
    out, err = run(path, text_project)
    assert "12 rows" in out and "2 items created, 3 duplicates skipped, 7 rejected" in out
    assert "row 6: text is empty" in out and "row 7: text contains a NUL" in out
    assert "row 9: this project collects text" in out
    assert 'row 10: a row needs "text" or "image" (found title)' in out
    assert "row 12: not a JSON object" in out
    assert "rows/s" in err and "100%" in err  # the progress bar
    created = Item.objects.filter(project=text_project).order_by("id")
    assert [i.text for i in created] == ["Already here", "first", "second"]
    new = created[1]
    assert (new.status, new.required_labels, new.licence) == ("open", 3, text_project.licence)
    assert new.near_hash.startswith("t") and len(new.content_sha256) == 64
    assert new.contributor is None and new.created_at is not None
    # Importing the same file again creates nothing.
    again, _ = run(path, text_project, "--quiet")
    assert "0 items created, 5 duplicates skipped" in again


def test_a_pairwise_import_skips_a_pair_that_is_a_near_copy_in_either_order(
    tmp_path: Path,
) -> None:
    project = Project.objects.create(
        name="Which is better?", data_kind="text", task="pairwise", classes=["a", "b"]
    )
    lines = [
        {"text": "The cat sat.", "text_b": "A dog barked."},
        {"text": "A dog barked!", "text_b": "the cat sat"},  # swapped, re-cased
        {"text": "The cat sat.", "text_b": "A bird sang."},
    ]
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines), encoding="utf-8")
    out, _ = run(path, project)
    assert "2 items created, 1 duplicates skipped" in out
    assert Item.objects.filter(project=project).count() == 2


def test_a_csv_import_makes_the_answers_gold_or_prelabels(
    text_project: Project, tmp_path: Path
) -> None:
    path = tmp_path / "items.csv"
    path.write_text(
        'text,label\n"=cmd, quoted",positive\nplain,negative\nunknown class,neutral\nno answer,\n',
        encoding="utf-8",
    )
    out, _ = run(path, text_project, "--answers", "gold", "--quiet")
    assert "3 items created" in out and "row 3: answer: label: unknown class 'neutral'" in out
    gold = dict(Item.objects.filter(project=text_project).values_list("text", "gold_label"))
    assert gold == {"=cmd, quoted": "positive", "plain": "negative", "no answer": ""}

    other = Project.objects.create(name="Other", data_kind="text", classes=["positive", "negative"])
    run(path, other, "--answers", "prelabel", "--quiet")
    prelabels = dict(Item.objects.filter(project=other).values_list("text", "prelabel"))
    assert prelabels["plain"] == {"label": "negative"} and prelabels["no answer"] == {}
    assert not Item.objects.filter(project=other).exclude(gold_label="").exists()


def test_a_label_studio_export_imports_with_its_annotations(tmp_path: Path) -> None:
    spans = Project.objects.create(
        name="Entities", data_kind="text", task="spans", classes=["PER", "ORG"]
    )
    tasks = [
        {
            "id": 7,
            "data": {"text": "Ada Lovelace met Babbage"},
            "annotations": [
                {
                    "was_cancelled": False,
                    "result": [
                        {
                            "type": "labels",
                            "from_name": "label",
                            "to_name": "text",
                            "value": {
                                "start": 0,
                                "end": 12,
                                "text": "Ada Lovelace",
                                "labels": ["PER"],
                            },
                        }
                    ],
                }
            ],
        },
        {"data": {"review": "a config naming its text otherwise"}, "annotations": []},
        {
            "data": {"text": "out of range"},
            "annotations": [
                {
                    "result": [
                        {"type": "labels", "value": {"start": 0, "end": 99, "labels": ["PER"]}}
                    ]
                }
            ],
        },
        {"data": {"number": 3}},
        "not a task",
    ]
    path = tmp_path / "export.json"
    path.write_text(json.dumps(tasks, indent=1), encoding="utf-8")
    out, _ = run(path, spans, "--answers", "prelabel", "--quiet")
    assert "5 rows" in out and "2 items created" in out and "3 rejected" in out
    assert "row 3: answer: spans[0]: is outside the text" in out
    assert 'row 4: "data" needs a "text" or "image" field' in out
    assert "row 5: each task must be an object" in out
    first = Item.objects.get(project=spans, text="Ada Lovelace met Babbage")
    assert first.prelabel == {"spans": [{"start": 0, "end": 12, "label": "PER"}]}


def test_an_export_from_crowdmint_in_label_studio_format_imports_back(
    text_project: Project, tmp_path: Path
) -> None:
    from django.utils import timezone

    from market.formats import label_studio
    from market.records import RecordFilters, record_rows, record_tuples, records_queryset

    for text, label in (("good", "positive"), ("bad", "negative")):
        item = item_create_text(project=text_project, contributor=None, text=text)
        Item.objects.filter(pk=item.pk).update(
            status="accepted", decided_label=label, decided_at=timezone.now()
        )
    rows = record_rows(
        record_tuples(records_queryset(text_project, RecordFilters())),
        text_project,
        lambda pk, side: "",
    )
    built = label_studio.write(tmp_path, text_project, rows, lambda name: io.BytesIO())
    copy = Project.objects.create(name="Copy", data_kind="text", classes=["positive", "negative"])
    run(built.path, copy, "--answers", "gold", "--quiet")
    assert dict(Item.objects.filter(project=copy).values_list("text", "gold_label")) == {
        "good": "positive",
        "bad": "negative",
    }


def test_images_are_imported_from_a_folder_and_never_from_outside_it(
    image_project: Project, tmp_path: Path
) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "red.png").write_bytes(image_bytes("PNG", size=(30, 20)))
    (tmp_path / "secret.png").write_bytes(image_bytes("PNG", size=(31, 20), colour=(0, 0, 255)))
    (folder / "broken.png").write_bytes(b"not an image")
    path = folder / "items.csv"
    path.write_text(
        "image,label\nred.png,red\n../secret.png,blue\nbroken.png,red\nhttp://x/y.png,red\nmissing.png,red\n",
        encoding="utf-8",
    )
    out, _ = run(path, image_project, "--images", str(folder), "--answers", "prelabel", "--quiet")
    assert "1 items created" in out and "4 rejected" in out
    assert "row 2: image: '../secret.png' is outside the images folder" in out
    assert "row 4: image: 'http://x/y.png' is a URL" in out
    assert "row 5: image: no file 'missing.png'" in out
    item = Item.objects.get(project=image_project)
    assert (item.width, item.height, item.image_format, item.prelabel) == (
        30,
        20,
        "PNG",
        {"label": "red"},
    )
    with item.image.open("rb") as stored:
        assert stored.read(8) == b"\x89PNG\r\n\x1a\n"


def test_refused_imports_say_why_before_reading(text_project: Project, tmp_path: Path) -> None:
    path = tmp_path / "items.txt"
    path.write_text("text\n")
    with pytest.raises(CommandError, match="pass --format"):
        run(path, text_project)
    with pytest.raises(CommandError, match="no project"):
        call_command("import_items", str(path), "--project", "999", "--format", "csv")
    multilabel = Project.objects.create(
        name="Tags", data_kind="text", task="multilabel", classes=["a", "b"]
    )
    with pytest.raises(ItemImportError, match="gold answers are single classes"):
        items_import(project=multilabel, source=io.BytesIO(b""), fmt="jsonl", answers="gold")


def test_a_moderator_imports_a_file_in_admin_and_sees_its_progress_and_report(
    text_project: Project, moderator: User, django_capture_on_commit_callbacks: Any
) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    browser = Client()
    browser.force_login(moderator)
    upload_bytes = b'{"text": "one"}\n{"text": ""}\n{"text": "two"}\n'
    upload = SimpleUploadedFile("items.jsonl", upload_bytes)
    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(
            "/admin/market/itemimport/add/",
            {"project": text_project.pk, "file": upload, "format": "jsonl", "answers": "ignore"},
        )
    assert response.status_code == 302
    job = ItemImport.objects.get()
    assert (job.status, job.progress, job.rows, job.created, job.rejected) == ("done", 100, 3, 2, 1)
    assert job.report == [{"row": 2, "error": "text is empty"}] and job.moderator == moderator
    listing = browser.get("/admin/market/itemimport/").content.decode()
    assert '<progress max="100" value="100">' in listing
    page = browser.get(f"/admin/market/itemimport/{job.pk}/change/").content.decode()
    assert "row 2: text is empty" in page
    # The file is linked through a staff-only view (MEDIA_ROOT is not served).
    link = f"/admin/market/itemimport/{job.pk}/file/"
    assert f'href="{link}"' in page and 'href="/media/' not in page
    download = browser.get(link)
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == upload_bytes  # type: ignore[attr-defined]
    assert download["Content-Disposition"] == 'attachment; filename="items.jsonl"'
    assert browser.get("/admin/market/itemimport/999999/file/").status_code == 404
    stranger = Client()
    stranger.force_login(User.objects.create_user(username="someone"))
    assert stranger.get(link).status_code == 302  # to the admin's sign-in page
    refused = browser.post(
        "/admin/market/itemimport/add/",
        {
            "project": Project.objects.create(
                name="T", data_kind="text", task="spans", classes=["a", "b"]
            ).pk,
            "file": SimpleUploadedFile("x.jsonl", b"{}"),
            "format": "jsonl",
            "answers": "gold",
            "audit_reason": "the vendor's gold set",
        },
    )
    assert refused.status_code == 302 and ItemImport.objects.count() == 1


def test_importing_gold_answers_in_admin_needs_a_reason_recorded_in_the_audit_trail(
    text_project: Project, moderator: User, django_capture_on_commit_callbacks: Any
) -> None:
    """Like one item's gold answer: gold judges every contributor who meets the items."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from accounts.models import AuditEvent

    browser = Client()
    browser.force_login(moderator)

    def post(**extra: str) -> Any:
        upload = SimpleUploadedFile("g.csv", b"text,label\nalpha,positive\nbeta,negative\n")
        data = {"project": text_project.pk, "file": upload, "format": "csv", "answers": "gold"}
        with django_capture_on_commit_callbacks(execute=True):
            return browser.post("/admin/market/itemimport/add/", {**data, **extra})

    unexplained = post()
    assert unexplained.status_code == 200
    assert "Give a reason for importing gold answers" in str(
        unexplained.context["adminform"].form.errors
    )
    assert not ItemImport.objects.exists() and not Item.objects.exclude(gold_label="").exists()

    assert post(audit_reason="the vendor's checked set").status_code == 302
    assert Item.objects.exclude(gold_label="").count() == 2
    event = AuditEvent.objects.get(action="admin.add", target_type="market.itemimport")
    assert event.actor == moderator
    assert event.details["reason"] == "the vendor's checked set"
    assert event.details["answers"] == "gold"


def test_rows_nested_too_deeply_or_of_the_wrong_shape_are_reported_not_fatal(
    text_project: Project,
) -> None:
    """Python's JSON parser recurses per level: a row past the recursion limit is a rejected row
    (it raised ``RecursionError`` out of the import), and a Label Studio region whose classes are
    not a list is refused (a string used to read as its characters)."""
    deep = "[" * 100_000 + "]" * 100_000

    def report(fmt: str, body: str) -> list[dict[str, Any]]:
        data = body.encode()
        result = items_import(
            project=text_project, source=io.BytesIO(data), fmt=fmt, answers="gold", size=len(data)
        )
        return result.report

    jsonl = '{"text": "a"}\n' + deep + '\n{"text": "b", "labels": ' + deep + '}\n{"text": "c"}\n'
    assert report("jsonl", jsonl) == [
        {"row": 2, "error": "nested too deeply to read"},
        {"row": 3, "error": "nested too deeply to read"},
    ]
    assert report("csv", 'text,labels\nd,"' + "[" * 5000 + '"\ne,\n') == [
        {"row": 1, "error": "nested too deeply to read"}
    ]
    studio = '[{"data": {"text": "f"}}, ' + deep + ', {"data": {"text": "g"}}]'
    assert report("label_studio", studio) == [
        {"row": 2, "error": "the file can't be read from here on: nested too deeply to read"}
    ]
    shapes = [
        {"data": {"text": "h"}, "annotations": 5},
        {
            "data": {"text": "i"},
            "annotations": [{"result": [{"type": "choices", "value": {"choices": "positive"}}]}],
        },
    ]
    assert report("label_studio", json.dumps(shapes)) == [
        {"row": 1, "error": '"annotations" must be a list'},
        {"row": 2, "error": '"choices" in a result region must be a list'},
    ]
    texts = Item.objects.filter(project=text_project).order_by("id").values_list("text", flat=True)
    assert list(texts) == ["a", "c", "e", "f"]


# --- Imports whose worker died ----------------------------------------------------------------


def queued_import(project: Project, moderator: User, data: bytes) -> ItemImport:
    return import_request(
        project=project,
        moderator=moderator,
        name="items.jsonl",
        data=data,
        fmt="jsonl",
        answers="ignore",
    )


def test_an_import_whose_worker_died_is_taken_over_once_past_the_time_limit(
    text_project: Project, moderator: User, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    """A worker killed mid-import (out of memory: Celery delivers the task again) left it
    ``running``: the next delivery saw it was not queued and returned, for ever."""
    job = queued_import(text_project, moderator, b'{"text": "one a"}\n{"text": "two b"}\n')

    def killed(**kwargs: Any) -> Any:
        item_create_text(project=text_project, contributor=None, text="one a")  # a first batch
        raise SystemExit("killed")  # a BaseException: nothing records the failure

    monkeypatch.setattr(imports, "items_import", killed)
    with pytest.raises(SystemExit):
        import_run(import_id=job.pk)
    monkeypatch.undo()
    # Delivered again at once: the run may still be alive, it is left alone.
    assert import_run(import_id=job.pk).status == "running"
    # Past the time limit no worker is left: the next delivery takes it over.
    started = timezone.now() - timedelta(seconds=settings.DATASET_EXPORT_TIME_LIMIT_SECONDS + 1)
    ItemImport.objects.filter(pk=job.pk).update(started_at=started)
    job = import_run(import_id=job.pk)
    assert (job.status, job.rows, job.created, job.duplicates) == ("done", 2, 1, 1)
    assert job.started_at is not None and job.started_at > started
    assert sorted(Item.objects.filter(project=text_project).values_list("text", flat=True)) == [
        "one a",
        "two b",
    ]


def test_beat_marks_an_import_abandoned_past_the_time_limit_failed_saying_why(
    text_project: Project, moderator: User, settings: Any
) -> None:
    """A task killed at its hard time limit is acked as failed, never delivered again: only a
    periodic check can tell the moderator."""
    limit = settings.DATASET_EXPORT_TIME_LIMIT_SECONDS
    abandoned, alive, queued = (
        queued_import(text_project, moderator, b'{"text": "x y"}\n') for _ in range(3)
    )
    now = timezone.now()
    ItemImport.objects.filter(pk=abandoned.pk).update(
        status="running", started_at=now - timedelta(seconds=limit + 1), rows=5_000, created=5_000
    )
    ItemImport.objects.filter(pk=alive.pk).update(
        status="running", started_at=now - timedelta(seconds=limit - 60)
    )
    assert "market.tasks.fail_abandoned_imports" in {
        entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()
    }
    assert fail_abandoned_imports() == 1
    abandoned.refresh_from_db()
    assert (abandoned.status, abandoned.created) == ("failed", 5_000)
    assert abandoned.finished_at is not None
    assert abandoned.error.startswith(
        f"its worker stopped without finishing (killed at the {limit} s time limit, or out of "
        "memory); the batches before it were imported"
    )
    statuses = ItemImport.objects.filter(pk__in=[alive.pk, queued.pk]).order_by("pk")
    assert list(statuses.values_list("status", flat=True)) == ["running", "queued"]
    assert import_run(import_id=abandoned.pk).status == "failed"  # a late delivery changes nothing


def test_a_csv_saved_by_excel_with_its_separator_line_imports(
    text_project: Project, tmp_path: Path
) -> None:
    """Excel writes a BOM, CRLF line ends and, when asked to, a ``sep=,`` line before the
    header: that line was read as the header, and every row was refused for lacking "text"."""
    path = tmp_path / "excel.csv"
    path.write_bytes(
        '\ufeffsep=,\r\ntext,label\r\nGreat toaster,positive\r\n"two\r\nlines",negative\r\n'.encode()
    )
    out, _ = run(path, text_project, "--answers", "gold", "--quiet")
    assert "2 items created" in out and "0 rejected" in out
    gold = dict(Item.objects.filter(project=text_project).values_list("text", "gold_label"))
    assert gold == {"Great toaster": "positive", "two\r\nlines": "negative"}

    path.write_bytes(b"sep=;\r\ntext;label\r\nGreat kettle;positive\r\n")
    with pytest.raises(CommandError, match="separated by semicolons"):
        run(path, text_project, "--quiet")
    assert Item.objects.filter(project=text_project).count() == 2


def test_label_studio_relations_old_completions_and_rotated_boxes(tmp_path: Path) -> None:
    """A relation region links two spans (no value) and was refusing the whole task; Label Studio
    before 1.0 named annotations "completions", whose answers were dropped unsaid; a rotated
    box was imported upright at its corner, another box than the one drawn."""
    spans = Project.objects.create(
        name="Entities", data_kind="text", task="spans", classes=["PER", "LOC"]
    )
    entity = {"start": 0, "end": 3, "text": "Ann", "labels": ["PER"]}
    tasks = [
        {
            "data": {"text": "Ann lives in Paris"},
            "annotations": [
                {
                    "result": [
                        {"id": "a", "type": "labels", "value": entity},
                        {
                            "id": "b",
                            "type": "labels",
                            "value": {
                                **entity,
                                "start": 13,
                                "end": 18,
                                "text": "Paris",
                                "labels": ["LOC"],
                            },
                        },
                        {"from_id": "a", "to_id": "b", "type": "relation", "direction": "right"},
                    ]
                }
            ],
        },
        {
            "data": {"text": "Ann again"},
            "completions": [{"result": [{"type": "labels", "value": entity}]}],
        },
    ]
    path = tmp_path / "spans.json"
    path.write_text(json.dumps(tasks), encoding="utf-8")
    out, _ = run(path, spans, "--answers", "prelabel", "--quiet")
    assert "2 items created" in out and "0 rejected" in out, out
    prelabels = dict(Item.objects.filter(project=spans).values_list("text", "prelabel"))
    assert prelabels["Ann lives in Paris"]["spans"][1] == {"start": 13, "end": 18, "label": "LOC"}
    assert prelabels["Ann again"] == {"spans": [{"start": 0, "end": 3, "label": "PER"}]}

    boxes = Project.objects.create(name="Cars", data_kind="image", task="boxes", classes=["car"])
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "a.png").write_bytes(image_bytes("PNG", size=(100, 100)))
    box = {"x": 10, "y": 10, "width": 20, "height": 20, "rectanglelabels": ["car"]}
    rotated = [
        {
            "data": {"image": "a.png"},
            "annotations": [
                {"result": [{"type": "rectanglelabels", "value": {**box, "rotation": 45}}]}
            ],
        }
    ]
    path.write_text(json.dumps(rotated), encoding="utf-8")
    out, _ = run(path, boxes, "--images", str(folder), "--answers", "prelabel", "--quiet")
    assert "row 1: a rotated box (rotation 45) can't be imported" in out
    assert not Item.objects.filter(project=boxes).exists()
