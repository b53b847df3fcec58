"""Imports and downloads against hostile or unusual input: a row is rejected with its reason and
never ends the import, a CSV splits only at its record separators, texts that look like COPY's
markers are stored as they are, and download names reach every client (an ASCII name, the real
one beside it)."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest
from django.core.files.base import File
from rest_framework.test import APIClient

from accounts.models import User
from labeling.models import Item, Project
from labeling.services import item_create_text
from market import importers
from market.models import DatasetExport
from market.services import (
    ImportReport,
    ItemImportError,
    import_request,
    import_run,
    items_import,
)
from tests.conftest import give_grant, image_bytes
from tests.market.test_exports import accept, body, request_export

pytestmark = pytest.mark.django_db


def import_rows(project: Project, fmt: str, data: bytes, **options: Any) -> ImportReport:
    return items_import(
        project=project, source=io.BytesIO(data), fmt=fmt, size=len(data), **options
    )


def jsonl(*rows: object) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


# --- Rows that used to end the import ---------------------------------------------------------


def test_a_box_coordinate_past_floats_range_is_a_rejected_row(tmp_path: Path) -> None:
    """``float()`` of an integer with 400 digits raises ``OverflowError``: it ended the import."""
    cars = Project.objects.create(
        name="Cars", data_kind="image", task="boxes", classes=["car", "person"]
    )
    (tmp_path / "a.png").write_bytes(image_bytes("PNG", size=(40, 30)))
    (tmp_path / "b.png").write_bytes(image_bytes("PNG", size=(41, 30)))
    (tmp_path / "c.png").write_bytes(image_bytes("PNG", size=(42, 30)))

    def task(image: str, **value: Any) -> dict[str, Any]:
        box = {"x": 10, "y": 10, "width": 50, "height": 50, "rectanglelabels": ["car"], **value}
        return {
            "data": {"image": image},
            "annotations": [{"result": [{"type": "rectanglelabels", "value": box}]}],
        }

    tasks = [task("a.png", x=10**400), task("b.png", height=1e308), task("c.png")]
    report = import_rows(
        cars, "label_studio", json.dumps(tasks).encode(), answers="prelabel", images_dir=tmp_path
    )
    assert (report.rows, report.created, report.rejected) == (3, 1, 2)
    assert report.report == [
        {"row": 1, "error": "answer: boxes[0].x: must be a finite number"},
        {"row": 2, "error": "answer: boxes[0].h: must be a finite number"},
    ]
    item = Item.objects.get(project=cars)
    assert item.prelabel == {"boxes": [{"x": 4.2, "y": 3.0, "w": 21.0, "h": 15.0, "label": "car"}]}


def test_an_image_path_that_is_not_a_plain_string_is_a_rejected_row(
    image_project: Project, tmp_path: Path
) -> None:
    (tmp_path / "a.png").write_bytes(image_bytes("PNG"))
    rows = [
        {"image": 5},
        {"image": ["x"]},
        {"image": {"path": "a.png"}},
        {"image": "a\u0000.png"},
        {"image": "a\ud800.png"},
        {"image": "a.png"},
    ]
    report = import_rows(image_project, "jsonl", jsonl(*rows), images_dir=tmp_path)
    assert (report.rows, report.created, report.rejected) == (6, 1, 5)
    assert report.report == [
        {"row": 1, "error": "image: the image path must be a string, not int"},
        {"row": 2, "error": "image: the image path must be a string, not list"},
        {"row": 3, "error": "image: the image path must be a string, not dict"},
        {"row": 4, "error": "image: 'a\\x00.png' contains a NUL character (U+0000)"},
        {"row": 5, "error": "image: no file 'a\\ud800.png' in the images folder"},
    ]


def test_the_second_image_of_a_pair_is_checked_the_same_way(tmp_path: Path) -> None:
    pairs = Project.objects.create(
        name="Which is sharper", data_kind="image", task="pairwise", classes=["a", "b"]
    )
    (tmp_path / "a.png").write_bytes(image_bytes("PNG"))
    (tmp_path / "b.png").write_bytes(image_bytes("PNG", colour=(0, 0, 200)))
    rows = [{"image": "a.png", "image_b": 7}, {"image": "a.png", "image_b": "b.png"}]
    report = import_rows(pairs, "jsonl", jsonl(*rows), images_dir=tmp_path)
    assert report.report == [
        {"row": 1, "error": "image_b: the image path must be a string, not int"}
    ]
    assert report.created == 1


def test_a_report_quoting_a_rows_nul_or_lone_surrogate_is_saved(
    text_project: Project, moderator: User
) -> None:
    """A rejected row's message quotes its keys: PostgreSQL's jsonb refuses a NUL or a lone
    surrogate, and the finished import could not be recorded."""
    data = b'{"tit\\u0000le": 1}\n{"na\\ud800me": 2}\n{"text": "kept"}\n'
    job = import_request(
        project=text_project,
        moderator=moderator,
        name="items.jsonl",
        data=data,
        fmt="jsonl",
        answers="ignore",
    )
    job = import_run(import_id=job.pk)
    assert (job.status, job.created, job.rejected) == ("done", 1, 2)
    assert job.report == [
        {"row": 1, "error": 'a row needs "text" or "image" (found tit\\x00le)'},
        {"row": 2, "error": 'a row needs "text" or "image" (found na\\ud800me)'},
    ]


# --- CSV rows split at record separators only -------------------------------------------------


def test_a_csv_splits_rows_at_its_record_separators_only(text_project: Project) -> None:
    """Unicode line breaks (U+2028, U+0085, a form feed) are characters of a cell: codecs'
    readers split lines at them, cutting one row into broken ones."""
    data = "text,label\nhello\u2028world,x\nnext row,y\nnel\x85here,x\nff\x0cthere,y\n"
    report = import_rows(text_project, "csv", data.encode())
    assert (report.rows, report.created, report.rejected) == (4, 4, 0)
    texts = Item.objects.filter(project=text_project).values_list("text", flat=True)
    assert list(texts) == ["hello\u2028world", "next row", "nel\x85here", "ff\x0cthere"]


def test_a_csv_written_by_our_export_reads_back_cell_for_cell() -> None:
    cells = [
        "line\u2028separator",
        "paragraph\u2029separator",
        "next\x85line",
        "form\x0cfeed",
        "vertical\x0btab",
        "file\x1cgroup\x1drecord\x1eseparators",
        "a\r\nquoted\nline\rbreak",
        'a "quote", and a comma',
    ]
    buffer = io.StringIO()
    writer = csv.writer(buffer)  # as market.streams writes the CSV export
    writer.writerow(["text", "label"])
    writer.writerows([cell, "x"] for cell in cells)
    source = io.BytesIO(b"\xef\xbb\xbf" + buffer.getvalue().encode())
    rows = list(importers.read_csv(source))
    assert [(number, row.text) for number, row in rows] == list(  # type: ignore[union-attr]
        enumerate(cells, start=1)
    )
    assert not source.closed  # the caller's file, left open for it to close


def test_a_csv_from_the_media_storage_is_read_the_same_way(text_project: Project) -> None:
    """Admin imports read the uploaded file through Django's ``File`` (no ``read1``)."""
    data = "text\nfirst\u2028row\nsecond\n".encode()
    report = items_import(
        project=text_project, source=File(io.BytesIO(data)), fmt="csv", size=len(data)
    )
    assert (report.rows, report.created) == (2, 2)


def test_a_csv_cell_past_the_csv_modules_default_limit_is_one_rejected_row(
    text_project: Project,
) -> None:
    """A cell over ``csv``'s default field limit (131,072 characters) raised ``csv.Error``: the
    file "can't be read from here on", and the rows after it were lost."""
    data = (
        "text,label\nfirst good,positive\n"
        + "x" * 200_000
        + ",positive\nafter long one,positive\nafter long two,negative\n"
    ).encode()
    report = import_rows(text_project, "csv", data)
    assert (report.rows, report.created, report.rejected) == (4, 3, 1)
    assert report.report == [
        {"row": 2, "error": "text is 200000 characters long; the limit is 20000"}
    ]
    texts = Item.objects.filter(project=text_project).values_list("text", flat=True)
    assert list(texts) == ["first good", "after long one", "after long two"]


def test_a_cell_past_the_raised_limit_ends_the_reading_at_its_own_row(
    text_project: Project,
) -> None:
    """Past the limit (the largest upload) the reader can't go on: the report names the row
    it was reading, numbered as every rejection is (it named the file's physical line)."""
    limit = csv.field_size_limit()
    csv.field_size_limit(100)
    try:
        data = 'text\n"two\nlines"\n' + "x" * 150 + "\nlost\n"
        report = import_rows(text_project, "csv", data.encode())
    finally:
        csv.field_size_limit(limit)
    assert (report.rows, report.created, report.rejected) == (2, 1, 1)
    assert report.report == [
        {
            "row": 2,
            "error": "the file can't be read from here on: field larger than field limit (100)",
        }
    ]


LATIN_1_LATE = (
    "text,label\n"
    + "".join(f"row number {n},positive\n" for n in range(3000))
    + "caf\u00e9,positive\nlast good row,positive\n"
).encode("latin-1")


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (LATIN_1_LATE, f"byte 0xe9 on line 3002 (byte {LATIN_1_LATE.index(0xE9) + 1} of the file)"),
        ("text,label\ncaf\u00e9 au lait,x\n".encode("latin-1"), "byte 0xe9 on line 2 "),
        ("t\u00e9xt\nfine\n".encode("latin-1"), "byte 0xe9 on line 1 "),
    ],
    ids=["row-3001", "row-1", "header"],
)
def test_a_csv_that_is_not_utf8_is_refused_whole_naming_the_line(
    text_project: Project, data: bytes, where: str
) -> None:
    """A Latin-1 byte on row 3001 lost the valid rows decoded in its block (2,993 imported of
    3,000) and named the physical line, or "row 0" when it was in the first row. The file is
    now checked first: imported whole, or refused with nothing written."""
    with pytest.raises(ItemImportError, match="the file is not UTF-8: ") as refused:
        import_rows(text_project, "csv", data)
    assert where in str(refused.value)
    assert str(refused.value).endswith(
        "save the file as UTF-8 and import it again (nothing was imported)"
    )
    assert not Item.objects.filter(project=text_project).exists()


def test_an_import_of_a_file_that_is_not_utf8_fails_saying_nothing_was_imported(
    text_project: Project, moderator: User
) -> None:
    for fmt, data in (
        ("csv", LATIN_1_LATE),
        ("label_studio", '[{"data": {"text": "caf\u00e9"}}]'.encode("latin-1")),
    ):
        job = import_request(
            project=text_project,
            moderator=moderator,
            name=f"items.{fmt}",
            data=data,
            fmt=fmt,
            answers="ignore",
        )
        job = import_run(import_id=job.pk)
        assert (job.status, job.rows, job.created, job.report) == ("failed", 0, 0, [])
        assert job.error.startswith("the file is not UTF-8: byte 0xe9 on line ")
        assert job.error.endswith("(nothing was imported)")
    assert not Item.objects.filter(project=text_project).exists()


def test_a_utf8_character_cut_by_the_checks_block_is_still_utf8() -> None:
    data = ("text\n" + "é" * 10 + "\n").encode()
    for size in range(1, 8):
        source = io.BytesIO(data)
        importers.check_utf8(source, block_size=size)
        assert source.tell() == 0
        assert [row.text for _, row in importers.read_csv(source)] == ["é" * 10]  # type: ignore[union-attr]


# --- Files of another shape than expected -----------------------------------------------------


def test_label_studio_files_of_bare_data_objects_or_one_task_import(
    text_project: Project,
) -> None:
    """Label Studio imports a list of data objects (each one is a task's data) and a single
    task object: both were rejected ('"data" must be an object', "expected a JSON array")."""
    report = import_rows(text_project, "label_studio", b'[{"text":"plain one"},{"text":"two b"}]')
    assert (report.rows, report.created, report.rejected) == (2, 2, 0)
    one_task = b'{"data": {"text": "single task"}, "annotations": []}\n'
    report = import_rows(text_project, "label_studio", one_task)
    assert (report.rows, report.created, report.rejected) == (1, 1, 0)
    texts = Item.objects.filter(project=text_project).values_list("text", flat=True)
    assert list(texts) == ["plain one", "two b", "single task"]


@pytest.mark.parametrize(
    ("data", "after"),
    [
        (b'[{"data":{"text":"ok1"}}] xx', "text after the closing ] of the tasks' array: 'xx'"),
        (b'[{"data":{"text":"ok1"}}]\n[{"data":{"text":"again"}}]', "text after the closing ]"),
        (b'{"data":{"text":"ok1"}} {"data":{"text":"again"}}', "text after the task: '{"),
    ],
    ids=["garbage", "second-array", "second-object"],
)
def test_text_after_the_label_studio_tasks_is_reported_not_ignored(
    text_project: Project, data: bytes, after: str
) -> None:
    report = import_rows(text_project, "label_studio", data)
    assert (report.rows, report.created, report.rejected) == (2, 1, 1)
    [entry] = report.report
    assert entry["row"] == 2 and entry["error"].startswith(after)
    assert entry["error"].endswith("; the tasks before it were read")


@pytest.mark.parametrize(
    ("fmt", "data"),
    [
        ("csv", b""),
        ("csv", b"text,label\n"),
        ("jsonl", b""),
        ("jsonl", b"\n\n"),
        ("label_studio", b""),
        ("label_studio", b" [ ] "),
    ],
    ids=[
        "csv-empty",
        "csv-header-only",
        "jsonl-empty",
        "jsonl-blank",
        "ls-empty",
        "ls-empty-array",
    ],
)
def test_a_file_without_rows_says_so_in_the_report(
    text_project: Project, fmt: str, data: bytes
) -> None:
    """An empty file, or a CSV with only its header, finished with 0 rows and nothing said."""
    report = import_rows(text_project, fmt, data)
    assert (report.rows, report.created, report.rejected) == (0, 0, 0)
    assert report.report == [{"row": None, "error": "the file has no rows"}]


def test_the_admin_and_the_command_show_what_the_report_says_of_the_whole_file(
    text_project: Project, moderator: User, tmp_path: Path
) -> None:
    from django.core.management import call_command
    from django.test import Client

    job = import_request(
        project=text_project,
        moderator=moderator,
        name="items.csv",
        data=b"text\n",
        fmt="csv",
        answers="ignore",
    )
    job = import_run(import_id=job.pk)
    assert (job.status, job.report) == ("done", [{"row": None, "error": "the file has no rows"}])
    browser = Client()
    browser.force_login(moderator)
    page = browser.get(f"/admin/market/itemimport/{job.pk}/change/").content.decode()
    assert "the file: the file has no rows" in page
    (tmp_path / "items.csv").write_bytes(b"text\n")
    out = io.StringIO()
    call_command(
        "import_items",
        str(tmp_path / "items.csv"),
        "--project",
        str(text_project.pk),
        "--quiet",
        stdout=out,
    )
    assert "  the file: the file has no rows" in out.getvalue()


@pytest.mark.parametrize(
    ("data", "header", "separated"),
    [
        (b"text;label\nalpha one;positive\nbeta;negative\n", "'text;label'", "semicolons"),
        (b"text\tlabel\nalpha\tx\n", "'text\\tlabel'", "tabs"),
    ],
    ids=["semicolons", "tabs"],
)
def test_a_csv_separated_by_semicolons_or_tabs_is_refused_with_one_message(
    text_project: Project, data: bytes, header: str, separated: str
) -> None:
    """Every row was rejected, each 'a row needs "text" or "image" (found text;label)'."""
    with pytest.raises(ItemImportError) as refused:
        import_rows(text_project, "csv", data)
    assert str(refused.value) == (
        f"the header {header} is one column: the file looks separated by {separated}, and a CSV "
        "is read separated by commas; save it with commas and import it again (nothing was "
        "imported)"
    )
    assert not Item.objects.filter(project=text_project).exists()
    # A comma-separated file whose texts hold semicolons is a CSV like any.
    report = import_rows(text_project, "csv", b'text,label\n"a; b",x\n')
    assert report.created == 1


# --- Texts that look like COPY's markers -----------------------------------------------------


def test_texts_that_read_as_copys_null_marker_are_stored_as_they_are() -> None:
    """On PostgreSQL the rows go in with ``COPY ... CSV NULL '\\N'``: an unquoted ``\\N`` cell
    was NULL, and the import failed on the NOT NULL text column. Every text column is checked:
    the texts, the gold class, the project's licence."""
    marks = Project.objects.create(
        name="Marks", data_kind="text", classes=["\\N", "\\."], licence="\\N"
    )
    texts = ["a fine first row", "\\N", "\\.", "line one\n\\.\nline three", "\\N\\N", "last row"]
    rows = [{"text": text, "label": "\\N"} for text in texts]
    report = import_rows(marks, "jsonl", jsonl(*rows), answers="gold")
    assert (report.rows, report.created, report.rejected) == (6, 6, 0)
    stored = Item.objects.filter(project=marks).values_list("text", "gold_label", "licence")
    assert list(stored) == [(text, "\\N", "\\N") for text in texts]

    pairs = Project.objects.create(
        name="Pairs", data_kind="text", task="pairwise", classes=["a", "b"]
    )
    rows = [{"text": "left side", "text_b": "\\N"}, {"text": "\\N", "text_b": "\\."}]
    report = import_rows(pairs, "jsonl", jsonl(*rows))
    assert report.created == 2
    stored = Item.objects.filter(project=pairs).values_list("text", "text_b", "width", "prelabel")
    assert list(stored) == [("left side", "\\N", None, {}), ("\\N", "\\.", None, {})]


# --- Label Studio tasks decoded in linear time ------------------------------------------------


def test_a_task_over_many_chunks_is_parsed_a_few_times_not_once_per_chunk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each chunk re-parsed the task from its start: quadratic in the task's size."""
    attempts = 0

    class Counting(importers.json.JSONDecoder):
        def raw_decode(self, s: str, idx: int = 0) -> tuple[Any, int]:
            nonlocal attempts
            attempts += 1
            return super().raw_decode(s, idx)

    monkeypatch.setattr(importers.json, "JSONDecoder", Counting)
    big = {"data": {"text": "é" * 500_000}, "annotations": []}
    data = json.dumps([{"data": {"text": "small"}}, big, {"data": {"text": "tail"}}]).encode()
    items = list(importers._json_array_items(io.BytesIO(data), chunk_size=1024))
    assert items == [{"data": {"text": "small"}}, big, {"data": {"text": "tail"}}]
    assert attempts < 40  # ~1,000 chunks of 1 KB: one parse each before


def test_a_number_cut_at_a_chunks_end_is_read_whole() -> None:
    data = b'[1234567, 89, {"data": {"text": "x"}}, 1e10, -1.5E+3]'
    for size in range(1, 12):
        items = list(importers._json_array_items(io.BytesIO(data), chunk_size=size))
        assert items == [1234567, 89, {"data": {"text": "x"}}, 1e10, -1500.0], size


# --- Download names ---------------------------------------------------------------------------


def filename_of(header: str) -> str:
    """The name a browser saves the file as: ``filename*`` over ``filename`` (RFC 6266 4.3)."""
    extended = re.search(r"filename\*=UTF-8''([^;\s]+)", header)
    if extended is not None:
        return unquote(extended.group(1), errors="strict")
    plain = re.search(r'filename="([^"]*)"', header)
    assert plain is not None
    return plain.group(1)


@pytest.mark.parametrize(
    ("name", "ascii_stem", "stem"),
    [
        ("Chats 日本 é", "-chats-e", "-chats-日本-é"),
        ("Café", "-cafe", "-café"),
        ("日本", "", "-日本"),
    ],
)
def test_a_streamed_export_is_an_attachment_named_in_ascii_and_in_utf8(
    buyer: User, buyer_api: APIClient, name: str, ascii_stem: str, stem: str
) -> None:
    """A header outside Latin-1 was MIME-encoded whole (``=?utf-8?b?...?=``: no attachment, no
    name); ``Café`` went as a raw Latin-1 byte."""
    project = Project.objects.create(name=name, data_kind="text", classes=["x", "y"])
    give_grant(project, buyer)
    accept(item_create_text(project=project, contributor=None, text="some text"), "x")
    response = buyer_api.get(f"/api/v1/datasets/{project.pk}/export", {"format": "csv"})
    assert response.status_code == 200
    header = response["Content-Disposition"]
    fallback, real = f"crowdmint-{project.pk}{ascii_stem}.csv", f"crowdmint-{project.pk}{stem}.csv"
    assert header == f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(real)}"
    assert header.isascii() and filename_of(header) == real
    assert b"some text" in body(response)


def test_an_ascii_name_is_sent_as_it_is(buyer: User, buyer_api: APIClient) -> None:
    project = Project.objects.create(name="Birds", data_kind="text", classes=["x", "y"])
    give_grant(project, buyer)
    response = buyer_api.get(f"/api/v1/datasets/{project.pk}/export", {"format": "jsonl"})
    assert response["Content-Disposition"] == (
        f'attachment; filename="crowdmint-{project.pk}-birds.jsonl"'
    )


def test_an_export_download_and_its_companions_are_named_in_ascii_and_in_utf8(
    buyer: User, buyer_api: APIClient, django_capture_on_commit_callbacks: Any
) -> None:
    project = Project.objects.create(
        name="Chats 日本 é", data_kind="text", classes=["x", "y"], licence="CC0-1.0"
    )
    give_grant(project, buyer)
    accept(item_create_text(project=project, contributor=None, text="some text"), "x")
    detail = request_export(buyer_api, project, django_capture_on_commit_callbacks, "parquet")
    stem = f"crowdmint-{project.pk}-chats-日本-é"
    for url, name in (
        (detail["download_url"], f"{stem}.parquet"),
        (detail["croissant_url"], f"{stem}-croissant.json"),
        (detail["card_url"], "README.md"),
    ):
        for headers in ({}, {"HTTP_RANGE": "bytes=0-3"}):
            response = buyer_api.get(url, **headers)
            assert response.status_code in (200, 206)
            header = response["Content-Disposition"]
            assert header.isascii() and header.startswith("attachment; filename=")
            assert filename_of(header) == name
            body(response)
    download = buyer_api.get(detail["download_url"])["Content-Disposition"]
    assert download.startswith(f'attachment; filename="crowdmint-{project.pk}-chats-e.parquet"; ')


# --- Repeated parameters ----------------------------------------------------------------------


def test_a_repeated_format_is_a_400_like_any_repeated_parameter(
    buyer: User, buyer_api: APIClient, text_project: Project
) -> None:
    give_grant(text_project, buyer)
    response = buyer_api.get(f"/api/v1/datasets/{text_project.pk}/export?format=jsonl&format=csv")
    assert response.status_code == 400
    assert response.json() == {"detail": "format: give it once"}
    same = buyer_api.get(f"/api/v1/datasets/{text_project.pk}/export?format=csv&format=csv")
    assert same.status_code == 400


@pytest.mark.parametrize(
    ("body", "content_type", "named"),
    [
        (
            "format=jsonl&min_labels=1&min_labels=5",
            "application/x-www-form-urlencoded",
            "min_labels",
        ),
        ("format=jsonl&format=csv", "application/x-www-form-urlencoded", "format"),
        ('{"format": "jsonl", "format": "csv"}', "application/json", "'format'"),
    ],
)
def test_a_field_repeated_in_an_export_request_is_a_400_and_queues_nothing(
    buyer: User,
    buyer_api: APIClient,
    text_project: Project,
    body: str,
    content_type: str,
    named: str,
) -> None:
    # The last value used to win: an export built with other filters than the buyer saw.
    give_grant(text_project, buyer)
    response = buyer_api.post(
        f"/api/v1/datasets/{text_project.pk}/exports/", body, content_type=content_type
    )
    assert response.status_code == 400, response.content
    assert named in response.json()["detail"] and "give it once" in response.json()["detail"]
    assert not DatasetExport.objects.exists()
