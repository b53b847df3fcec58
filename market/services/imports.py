"""Bulk import of items by moderators: every row validated like an upload, duplicates skipped,
rejected rows reported, the rest inserted in bulk.

Rows are read one at a time (``market.importers``) and inserted ``IMPORT_BATCH_SIZE`` at a time,
each batch in its own transaction, after checking its content hashes against the project by the
hash indexes (the same checks as an upload, asked by the hash alone). A crash leaves whole
batches: running the import again skips what was imported as duplicates. A run whose worker died
is taken over by the task delivered again once the time limit has passed, or marked failed by
Celery beat (``imports_fail_abandoned``). Answers in the file
become pre-labels (``Item.prelabel``, for moderators) or gold answers (classify and pairwise), or
are ignored; an answer that doesn't fit the project rejects its row.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection, models, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import User
from config.broker import task_send
from config.gcpause import cycle_collector_paused
from labeling.answers import GOLD_TASKS, AnswerContext, AnswerError, validate_answer
from labeling.models import Item, Project
from labeling.near_duplicates import text_hash, text_pair_hash
from labeling.validation import ContentError, sha256_hex, validate_image, validate_text
from market import importers
from market.models import ItemImport

logger = logging.getLogger(__name__)


class ItemImportError(Exception):
    """An import request was refused before any row was read (400)."""


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    duplicates: int = 0
    rejected: int = 0
    report: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def reject(self, row: int, message: str) -> None:
        self.rejected += 1
        if len(self.report) < settings.IMPORT_REPORT_MAX_ROWS:
            self.report.append({"row": row, "error": _storable(message)})

    def note(self, message: str) -> None:
        """Report what is true of the whole file, not of a row: ``{"row": None, ...}``."""
        self.report.append({"row": None, "error": message})


#: The report of an import that read no row (an empty file, a CSV with only its header):
#: said, so that "0 created" is not taken for "all duplicates" or a lost file.
NO_ROWS = "the file has no rows"


def _storable(message: str) -> str:
    """``message`` with its NULs and lone surrogates (a row's own keys, quoted in it) escaped:
    PostgreSQL's jsonb refuses both, and the report could not be saved."""
    return message.encode("utf-8", "backslashreplace").decode().replace("\x00", "\\x00")


Progress = Callable[[ImportReport, float], None]


def import_check(*, project: Project, fmt: str, answers: str) -> None:
    """Raise ``ItemImportError`` for a format or answers mode that can't apply to ``project``."""
    if fmt not in importers.READERS:
        raise ItemImportError(f"unknown format {fmt!r}: use {', '.join(importers.READERS)}")
    if answers not in ItemImport.Answers.values:
        raise ItemImportError(f"answers: use {', '.join(ItemImport.Answers.values)}")
    if answers == ItemImport.Answers.GOLD and project.task not in GOLD_TASKS:
        raise ItemImportError(
            f"gold answers are single classes: {project.task} projects can't import them as "
            "gold (use prelabel)"
        )


@dataclass
class _Prepared:
    item: Any  # a _NewItem: only the row's own fields (see _ItemRows)
    files: list[tuple[str, bytes, str]]  # (field, data, name)


class _Importer:
    def __init__(
        self, project: Project, answers: str, images_dir: Path | None, report: ImportReport
    ) -> None:
        self.project = project
        self.answers = answers
        self.images_dir = images_dir.resolve() if images_dir is not None else None
        self.report = report
        self.pairwise = project.task == Project.Task.PAIRWISE
        self.text = project.data_kind == Project.DataKind.TEXT
        self.batch: list[tuple[int, _Prepared]] = []
        self.batch_size = settings.IMPORT_BATCH_SIZE  # read once: settings are a lazy proxy
        self.rows = _ItemRows(project)

    def _image(self, path: object, what: str) -> Any:
        """The validated image at ``path`` in the images folder. Raises ``ContentError`` for
        anything else: a JSON Lines row's path may be any JSON value."""
        if not path:
            raise ContentError(f"{what}: this image project needs an image path")
        if not isinstance(path, str):
            raise ContentError(
                f"{what}: the image path must be a string, not {type(path).__name__}"
            )
        if self.images_dir is None:
            raise ContentError(
                f"{what}: images are imported from a folder: use manage.py import_items "
                "FILE --images DIR"
            )
        if "://" in path:
            raise ContentError(f"{what}: {path!r} is a URL; put the files in the images folder")
        if "\x00" in path:  # the OS refuses it (ValueError), past every check below
            raise ContentError(f"{what}: {path!r} contains a NUL character (U+0000)")
        # A name the file system can't hold (a lone surrogate has no bytes: UnicodeEncodeError,
        # a ValueError) names no file either.
        missing = ContentError(f"{what}: no file {path!r} in the images folder")
        try:
            target = (self.images_dir / path.lstrip("/")).resolve()
        except (OSError, ValueError):
            raise missing from None
        if not target.is_relative_to(self.images_dir):
            raise ContentError(f"{what}: {path!r} is outside the images folder")
        try:
            data = target.read_bytes()
        except (OSError, ValueError):
            raise missing from None
        return validate_image(data)

    def prepare(self, row: importers.Row) -> _Prepared:
        item = _NewItem()
        files: list[tuple[str, bytes, str]] = []
        if self.text:
            if row.image:
                raise ContentError("this project collects text: the row has an image")
            text = validate_text(row.text)
            if self.pairwise:
                text_b = validate_text(row.text_b, field="text_b")
                if text == text_b:
                    raise ContentError("the two texts of a pair are the same")
                item.text, item.text_b = text, text_b
                item.near_hash = text_pair_hash(text, text_b)
                body = f"{text}\x00{text_b}".encode()
            else:
                if row.text_b:
                    raise ContentError('"text_b" is for pairwise projects')
                item.text = text
                item.near_hash = text_hash(text)
                body = text.encode()
            item.content_sha256 = sha256_hex(body)
            item.size_bytes = len(body)
        else:
            if row.text:
                raise ContentError("this project collects images: the row has a text")
            image = self._image(row.image, "image")
            item.image_format, item.width, item.height = image.format, image.width, image.height
            files.append(("image", image.data, f"{image.sha256}.{image.extension}"))
            item.content_sha256 = image.sha256
            item.size_bytes = len(image.data)
            if self.pairwise:
                image_b = self._image(row.image_b, "image_b")
                if image_b.sha256 == image.sha256:
                    raise ContentError("the two images of a pair are the same")
                item.image_b_format = image_b.format
                item.width_b, item.height_b = image_b.width, image_b.height
                files.append(("image_b", image_b.data, f"{image_b.sha256}.{image_b.extension}"))
                item.content_sha256 = sha256_hex(f"{image.sha256}{image_b.sha256}".encode())
                item.size_bytes += len(image_b.data)
        self._answer(row, item)
        return _Prepared(item, files)

    def _answer(self, row: importers.Row, item: _NewItem) -> None:
        if self.answers == ItemImport.Answers.IGNORE:
            return
        body = row.answer
        if row.percent_boxes:
            width, height = float(item.width or 0), float(item.height or 0)
            body = {"boxes": [_pixels(box, width, height) for box in row.percent_boxes]}
        if body is None:
            return
        project = self.project
        context = AnswerContext(
            task=project.task,
            classes=project.classes,
            spans_may_overlap=project.spans_may_overlap,
            text=item.text or "",
            width=item.width,
            height=item.height,
        )
        try:
            answer = validate_answer(context, body)
        except AnswerError as exc:
            raise ContentError(f"answer: {exc}") from None
        if self.answers == ItemImport.Answers.GOLD:
            item.gold_label = answer.label
        else:
            item.prelabel = answer.value

    def add(self, number: int, row: importers.Row | importers.RowError) -> None:
        self.report.rows += 1
        if isinstance(row, importers.RowError):
            self.report.reject(number, row.message)
            return
        try:
            prepared = self.prepare(row)
        except ContentError as exc:
            self.report.reject(number, str(exc))
            return
        self.batch.append((number, prepared))
        if len(self.batch) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        """Insert the batch less its duplicates (in the project or earlier in the batch)."""
        if not self.batch:
            return
        batch, self.batch = self.batch, []
        project_id = self.project.pk
        hashes = {p.item.content_sha256 for _, p in batch}
        nears = {p.item.near_hash for _, p in batch if p.item.near_hash}
        with transaction.atomic():
            # By the hashes alone (their indexes), the project picked here: see
            # labeling.services.items.item_id_with_content.
            taken = _owned(hashes, "content_sha256", project_id)
            near_taken = _owned(nears, "near_hash", project_id)
            fresh: list[Item] = []
            stored: list[str] = []
            try:
                for _, prepared in batch:
                    item = prepared.item
                    if item.content_sha256 in taken or (
                        item.near_hash and item.near_hash in near_taken
                    ):
                        self.report.duplicates += 1
                        continue
                    taken.add(item.content_sha256)
                    if item.near_hash:
                        near_taken.add(item.near_hash)
                    for name, data, filename in prepared.files:
                        path = f"items/{project_id}/{item.content_sha256[:2]}/{filename}"
                        saved = default_storage.save(path, ContentFile(data))
                        stored.append(saved)
                        setattr(item, name, saved)
                    fresh.append(item)
                self.rows.insert(fresh)
            except BaseException:
                for name in stored:
                    default_storage.delete(name)
                raise
        self.report.created += len(fresh)


_COPY_NULL = "\\N"


@dataclass(slots=True)
class _NewItem:
    """The fields a row sets; everything else is the same for every row (``_ItemRows``).
    Building a model instance costs ~70 us a row: too much at 17,500 rows a second."""

    text: str | None = None
    text_b: str | None = None
    near_hash: str | None = None
    content_sha256: str = ""
    size_bytes: int = 0
    image: str | None = None
    image_format: str | None = None
    width: int | None = None
    height: int | None = None
    image_b: str | None = None
    image_b_format: str | None = None
    width_b: int | None = None
    height_b: int | None = None
    gold_label: str | None = None
    prelabel: dict[str, Any] | None = None


_ROW_FIELDS = tuple(_NewItem.__dataclass_fields__)


class _ItemRows:
    """Inserts items as rows, many per statement, without model instances: every column the
    same for the whole import is prepared once; a row's own fields go as they are (text,
    numbers; ``prelabel`` as JSON text)."""

    def __init__(self, project: Project) -> None:
        template = Item(
            project=project,
            contributor=None,
            licence=project.licence,
            required_labels=project.overlap,
            created_at=timezone.now(),
        )
        fields = [f for f in Item._meta.concrete_fields if not f.primary_key]
        self.columns = [str(f.column) for f in fields]
        # COPY reads an unquoted \N as NULL, and csv.writer quotes only what needs it: a text
        # that is exactly \N was NULL (an aborted import). Only the nullable columns are
        # matched against the NULL marker: numbers and dates, none holds text (a nullable text
        # column would need a NULL marker no text can be).
        self.not_null = [str(f.column) for f in fields if not f.null]
        self.row_index = {f.attname: n for n, f in enumerate(fields) if f.attname in _ROW_FIELDS}
        self.defaults = {
            f.attname: (
                None
                if f.null
                else ""
                if isinstance(f, models.CharField | models.TextField | models.FileField)
                else f.get_default()
            )
            for f in fields
            if f.attname in _ROW_FIELDS
        }
        self.constant = [
            None
            if f.attname in _ROW_FIELDS
            else json.dumps(getattr(template, f.attname))
            if isinstance(f, models.JSONField)
            else f.get_db_prep_save(getattr(template, f.attname), connection)
            for f in fields
        ]
        self.table = str(Item._meta.db_table)
        self.spec = [
            (name, index, self.defaults[name])
            for name, index in self.row_index.items()
            if name != "prelabel"
        ]
        self.prelabel_index = self.row_index["prelabel"]
        self.constant[self.prelabel_index] = "{}"

    def _row(self, item: Any) -> list[Any]:
        row = list(self.constant)
        for name, index, default in self.spec:
            value = getattr(item, name)
            row[index] = default if value is None else value
        if item.prelabel:
            row[self.prelabel_index] = json.dumps(
                item.prelabel, ensure_ascii=False, separators=(",", ":")
            )
        return row

    def insert(self, items: list[Any]) -> None:
        if not items:
            return
        rows = [self._row(item) for item in items]
        columns = ", ".join(connection.ops.quote_name(c) for c in self.columns)
        table = connection.ops.quote_name(self.table)
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # COPY: the rows as CSV in one stream, several times faster than INSERTs.
                buffer = io.StringIO()
                writer = csv.writer(buffer)
                writer.writerows([_COPY_NULL if v is None else v for v in row] for row in rows)
                buffer.seek(0)
                not_null = ", ".join(connection.ops.quote_name(c) for c in self.not_null)
                cursor.cursor.copy_expert(
                    f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv, NULL '\\N', "
                    f"FORCE_NOT_NULL ({not_null}))",
                    buffer,
                )
            else:
                marks = ", ".join(["%s"] * len(self.columns))
                cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)


def _owned(values: set[str], column: str, project_id: int) -> set[str]:
    """Which of ``values`` (of ``content_sha256`` or ``near_hash``) the project already has.

    Asked by the hash alone, so only the hash's index can serve it (see
    ``labeling.services.items.item_id_with_content``), in plain SQL: building an ORM ``IN``
    lookup of 5,000 values cost more than the query.
    """
    found: set[str] = set()
    ordered = sorted(values)
    table = connection.ops.quote_name(Item._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # While a fresh project's statistics are stale the planner takes the growing table
            # for a small one and scans it whole for each IN list (50 ms a batch at 100k items):
            # in this transaction only, the hash indexes are the sole way left.
            cursor.execute("SET LOCAL enable_seqscan = off")
            # One array parameter for the whole batch.
            cursor.execute(
                f"SELECT {column}, project_id FROM {table} WHERE {column} = ANY(%s)", [ordered]
            )
            found.update(value for value, owner in cursor.fetchall() if owner == project_id)
            return found
        for start in range(0, len(ordered), 900):
            chunk = ordered[start : start + 900]
            marks = ", ".join(["%s"] * len(chunk))
            cursor.execute(
                f"SELECT {column}, project_id FROM {table} WHERE {column} IN ({marks})", chunk
            )
            found.update(value for value, owner in cursor.fetchall() if owner == project_id)
    return found


def _pixels(box: dict[str, Any], width: float, height: float) -> dict[str, Any]:
    """A Label Studio box (percent of the image) in pixels, clamped to the image.

    A coordinate that is missing, not a number, or not finite in pixels (an integer past
    float's range, 400 digits long, raised ``OverflowError``) is None, which
    ``validate_answer`` rejects naming it: the row is refused, the import goes on.
    """
    x = _percent_of(box.get("x"), width)
    y = _percent_of(box.get("y"), height)
    w = _percent_of(box.get("width"), width)
    h = _percent_of(box.get("height"), height)
    if x is not None and w is not None:
        w = min(w, width - x)
    if y is not None and h is not None:
        h = min(h, height - y)
    return {
        "x": None if x is None else round(x, 3),
        "y": None if y is None else round(y, 3),
        "w": None if w is None else round(w, 3),
        "h": None if h is None else round(h, 3),
        "label": box.get("label"),
    }


def _percent_of(value: object, size: float) -> float | None:
    """``value`` percent of ``size``; None unless that is a finite number."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        pixels = float(value) * size / 100
    except (ValueError, OverflowError):
        return None
    return pixels if math.isfinite(pixels) else None


def items_import(
    *,
    project: Project,
    source: IO[bytes],
    fmt: str,
    answers: str = ItemImport.Answers.IGNORE,
    images_dir: Path | None = None,
    size: int = 0,
    progress: Progress | None = None,
) -> ImportReport:
    """Import the rows of ``source`` (a ``fmt`` file of ``size`` bytes) into ``project``.

    Raises ``ItemImportError`` before reading for a format or answers mode that can't apply, and
    before writing anything for a file refused whole (a CSV or Label Studio file that is not
    UTF-8: ``importers.check_utf8``); ``progress(report, fraction)`` is called after every batch.
    """
    import_check(project=project, fmt=fmt, answers=answers)
    report = ImportReport()
    importer = _Importer(project, answers, images_dir, report)
    started = time.perf_counter()
    batch_rows = settings.IMPORT_BATCH_SIZE
    read = importers.READERS[fmt]
    with cycle_collector_paused():
        try:
            for number, row in read(source, answers != ItemImport.Answers.IGNORE):
                importer.add(number, row)
                if progress is not None and report.rows % batch_rows == 0:
                    progress(report, _fraction(source, size))
        except importers.FileRefused as exc:  # raised before the first row: nothing written
            raise ItemImportError(str(exc)) from None
        importer.flush()
    if report.rows == 0:
        report.note(NO_ROWS)
    report.seconds = time.perf_counter() - started
    if progress is not None:
        progress(report, 1.0)
    return report


def _fraction(source: IO[bytes], size: int) -> float:
    try:
        return min(1.0, source.tell() / size) if size else 0.0
    except (OSError, ValueError):
        return 0.0


def import_request(
    *, project: Project, moderator: User, name: str, data: bytes, fmt: str, answers: str
) -> ItemImport:
    """Queue an import of an uploaded file (admin); it runs in a Celery task, on commit.
    Raises ``ItemImportError`` for a format or answers mode that can't apply."""
    import_check(project=project, fmt=fmt, answers=answers)
    with transaction.atomic():
        job = ItemImport(project=project, moderator=moderator, format=fmt, answers=answers)
        job.file.save(name or f"import.{fmt}", ContentFile(data), save=False)
        job.save()
        job_id = job.pk
        transaction.on_commit(lambda: _enqueue(job_id))
    return job


def _enqueue(job_id: int) -> None:
    """Queue the import; with the broker (Redis) down, it fails at once, saying why."""
    from market.tasks import run_import

    if not task_send(run_import.name, args=(job_id,)):
        ItemImport.objects.filter(pk=job_id, status=ItemImport.Status.QUEUED).update(
            status=ItemImport.Status.FAILED,
            error="the task queue could not be reached, so nothing was imported: upload the "
            "file again in a minute",
            finished_at=timezone.now(),
        )


def _abandoned_before() -> datetime:
    """A running import started before this has no worker left: the task's hard time limit
    (``DATASET_EXPORT_TIME_LIMIT_SECONDS``) has killed it, or it died sooner."""
    return timezone.now() - timedelta(seconds=settings.DATASET_EXPORT_TIME_LIMIT_SECONDS)


def _claim(import_id: int) -> bool:
    """Take the import for this run: queued, or running but abandoned (its worker died: killed
    out of memory, the message redelivered; or past the time limit), as exports are taken over.
    The counts start again: the rows the dead run imported are skipped as duplicates."""
    return bool(
        ItemImport.objects.filter(pk=import_id)
        .filter(
            Q(status=ItemImport.Status.QUEUED)
            | Q(status=ItemImport.Status.RUNNING, started_at__lt=_abandoned_before())
        )
        .update(
            status=ItemImport.Status.RUNNING,
            started_at=timezone.now(),
            progress=0,
            rows=0,
            created=0,
            duplicates=0,
            rejected=0,
            report=[],
            error="",
        )
    )


def imports_fail_abandoned() -> int:
    """Mark failed, saying why, every running import whose worker is gone (Celery beat); returns
    how many. A task killed at its hard time limit is not delivered again (Celery acks a task
    that failed), so nothing would take it over: it said ``running`` for ever."""
    limit = settings.DATASET_EXPORT_TIME_LIMIT_SECONDS
    return ItemImport.objects.filter(
        status=ItemImport.Status.RUNNING, started_at__lt=_abandoned_before()
    ).update(
        status=ItemImport.Status.FAILED,
        finished_at=timezone.now(),
        error=f"its worker stopped without finishing (killed at the {limit} s time limit, or "
        "out of memory); the batches before it were imported (the counts are those last "
        "recorded): import the file again to import the rest (they are skipped as duplicates)",
    )


def import_run(*, import_id: int) -> ItemImport:
    """Run a queued import, or take over an abandoned one (``_claim``); idempotent: one claimed
    by a live run, or finished, is left alone."""
    claimed = _claim(import_id)
    job = ItemImport.objects.select_related("project").get(pk=import_id)
    if not claimed:
        return job

    def progress(report: ImportReport, fraction: float) -> None:
        ItemImport.objects.filter(pk=import_id).update(
            progress=min(99, int(fraction * 100)),
            rows=report.rows,
            created=report.created,
            duplicates=report.duplicates,
            rejected=report.rejected,
        )

    try:
        with job.file.open("rb") as source:
            report = items_import(
                project=job.project,
                source=source,
                fmt=job.format,
                answers=job.answers,
                size=job.file.size,
                progress=progress,
            )
    except ItemImportError as exc:  # the file refused whole, before anything was written
        ItemImport.objects.filter(pk=import_id).update(
            status=ItemImport.Status.FAILED, error=str(exc)[:2000], finished_at=timezone.now()
        )
        job.refresh_from_db()
        return job
    except Exception as exc:
        logger.exception("import %s failed", import_id)
        ItemImport.objects.filter(pk=import_id).update(
            status=ItemImport.Status.FAILED,
            error=f"{type(exc).__name__}: {exc}; the batches before it were imported, run it "
            "again to import the rest (they are skipped as duplicates)"[:2000],
            finished_at=timezone.now(),
        )
        job.refresh_from_db()
        return job
    ItemImport.objects.filter(pk=import_id).update(
        status=ItemImport.Status.DONE,
        progress=100,
        rows=report.rows,
        created=report.created,
        duplicates=report.duplicates,
        rejected=report.rejected,
        report=report.report,
        finished_at=timezone.now(),
    )
    job.refresh_from_db()
    return job
