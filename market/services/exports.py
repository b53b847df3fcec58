"""Exports built in the background: requested (202), built by a Celery task into the media
storage in constant memory, downloaded (with HTTP Range), expired after
``DATASET_EXPORT_TTL_HOURS``.

The build claims its export with a conditional UPDATE (a second delivery of the task finds it
taken and stops), reads the records as tuples in chunks, writes the format into a temporary
directory, computes the file's SHA-256 while storing it, writes the Croissant description beside
it and only then marks the export done: a failed build leaves no file and says why.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from config.broker import task_send
from config.gcpause import cycle_collector_paused
from labeling.models import Project
from market import formats, records
from market.formats import croissant
from market.models import DatasetExport

logger = logging.getLogger(__name__)

#: Progress is written at most every this many records.
PROGRESS_EVERY = 5_000
CHUNK = 2_000


class ExportError(Exception):
    """An export request was refused (400)."""


def export_check(*, project: Project, fmt: str) -> None:
    """Raise ``ExportError`` for a format that doesn't fit ``project`` (COCO for texts)."""
    try:
        formats.writer_for(fmt, project)
    except formats.FormatError as exc:
        raise ExportError(str(exc)) from exc


def export_request(
    *,
    project: Project,
    buyer: User,
    fmt: str,
    filters: records.RecordFilters,
    base_url: str,
) -> DatasetExport:
    """Queue an export of ``project``'s records in ``fmt``; the build is enqueued on commit.

    Raises ``ExportError`` for a format that doesn't fit the dataset.
    """
    export_check(project=project, fmt=fmt)
    with transaction.atomic():
        export = DatasetExport.objects.create(
            project=project,
            buyer=buyer,
            format=fmt,
            filters=filters.as_json(),
            base_url=base_url.rstrip("/") + "/",
        )
        export_id = export.pk
        transaction.on_commit(lambda: _enqueue_build(export_id))
    return export


QUEUE_DOWN = (
    "the task queue could not be reached, so nothing was built: request the export again in a "
    "minute"
)


def _enqueue_build(export_id: int) -> None:
    """Queue the build; with the broker (Redis) down, the export fails at once, saying why,
    rather than sit ``queued`` with nothing to build it."""
    from market.tasks import build_export

    if not task_send(build_export.name, args=(export_id,)):
        DatasetExport.objects.filter(pk=export_id, status=DatasetExport.Status.QUEUED).update(
            status=DatasetExport.Status.FAILED, error=QUEUE_DOWN, finished_at=timezone.now()
        )


def _claim(export_id: int) -> bool:
    """Take the export for this build: queued, or running but abandoned (its worker died)."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.DATASET_EXPORT_TIME_LIMIT_SECONDS)
    return bool(
        DatasetExport.objects.filter(pk=export_id)
        .filter(
            Q(status=DatasetExport.Status.QUEUED)
            | Q(status=DatasetExport.Status.RUNNING, started_at__lt=stale)
        )
        .update(status=DatasetExport.Status.RUNNING, started_at=now, progress=0, error="")
    )


def _with_progress(
    rows: Iterator[dict[str, Any]], export_id: int, total: int
) -> Iterator[dict[str, Any]]:
    for count, row in enumerate(rows, start=1):
        if count % PROGRESS_EVERY == 0 and total:
            # 99 at most: 100 means the files are stored.
            progress = min(99, count * 100 // total)
            DatasetExport.objects.filter(pk=export_id).update(progress=progress, records=count)
        yield row


def _store(
    export: DatasetExport, field: str, path: Path, name: str, sha256: str = ""
) -> tuple[str, int]:
    """Save ``path`` into the export's ``field``; returns its SHA-256 (computed here unless
    the writer did) and size."""
    if not sha256:
        digest = hashlib.sha256()
        with path.open("rb") as source:
            for block in iter(lambda: source.read(1 << 20), b""):
                digest.update(block)
        sha256 = digest.hexdigest()
    with path.open("rb") as source:
        getattr(export, field).save(name, File(source), save=False)
    return sha256, path.stat().st_size


def open_stored(name: str) -> IO[bytes]:
    return default_storage.open(name, "rb")


def export_build(*, export_id: int) -> DatasetExport:
    """Build a queued export (idempotent: a taken or finished export is left alone)."""
    if not _claim(export_id):
        return DatasetExport.objects.get(pk=export_id)
    export = DatasetExport.objects.select_related("project", "project__consensus_fit").get(
        pk=export_id
    )
    project = export.project
    try:
        filters = records.filters_from_json(export.filters, project)
        queryset = records.records_queryset(project, filters)
        total = queryset.count()
        writer = formats.writer_for(export.format, project)
        content_url = _content_url(export.base_url)
        rows = records.record_rows(records.record_tuples(queryset, CHUNK), project, content_url)
        with (
            tempfile.TemporaryDirectory(prefix="crowdmint-export-") as directory,
            cycle_collector_paused(),
        ):
            built = writer(
                Path(directory), project, _with_progress(rows, export.pk, total), open_stored
            )
            sha256, size = _store(export, "file", built.path, built.filename, built.sha256)
            if built.card is not None:
                _store(export, "card", built.card, built.card_filename)
        document = croissant.document(
            project=project,
            built=built,
            fmt=export.format,
            url=export.base_url.rstrip("/") + reverse("export-detail", args=[export.pk]),
            download_url=export.base_url.rstrip("/") + reverse("export-download", args=[export.pk]),
            sha256=sha256,
            size_bytes=size,
        )
        export.croissant.save(
            f"{formats.slug(project)}-croissant.json",
            ContentFile(json.dumps(document, indent=2, ensure_ascii=False).encode()),
            save=False,
        )
    except Exception as exc:
        logger.exception("export %s failed", export.pk)
        _delete_files(export)
        DatasetExport.objects.filter(pk=export.pk).update(
            status=DatasetExport.Status.FAILED,
            error=f"{type(exc).__name__}: {exc}"[:2000],
            finished_at=timezone.now(),
            file="",
            card="",
            croissant="",
        )
        export.refresh_from_db()
        return export
    now = timezone.now()
    export.status = DatasetExport.Status.DONE
    export.progress = 100
    export.records = built.records
    export.size_bytes = size
    export.sha256 = sha256
    export.finished_at = now
    export.expires_at = now + timedelta(hours=settings.DATASET_EXPORT_TTL_HOURS)
    export.save(
        update_fields=[
            "status",
            "progress",
            "records",
            "size_bytes",
            "sha256",
            "file",
            "card",
            "croissant",
            "finished_at",
            "expires_at",
        ]
    )
    return export


def _content_url(base_url: str) -> records.ContentUrl:
    return records.content_url_from(base_url.rstrip("/") + reverse("item-content", args=[0]))


def _delete_files(export: DatasetExport) -> None:
    for field in ("file", "card", "croissant"):
        stored = getattr(export, field)
        if stored and stored.name:
            stored.storage.delete(stored.name)


def exports_expire() -> int:
    """Delete the files of exports past their expiry; returns how many expired. Also marks
    failed, saying why, the builds whose worker is gone: a task killed at its hard time limit is
    not delivered again (Celery acks a task that failed), so nothing would take it over and the
    buyer would read ``running`` for ever."""
    now = timezone.now()
    limit = settings.DATASET_EXPORT_TIME_LIMIT_SECONDS
    DatasetExport.objects.filter(
        status=DatasetExport.Status.RUNNING, started_at__lt=now - timedelta(seconds=limit)
    ).update(
        status=DatasetExport.Status.FAILED,
        finished_at=now,
        error=f"the build stopped without finishing (past the {limit} s time limit, or out of "
        "memory): request the export again, or narrow it with the record filters",
    )
    expired = 0
    due = DatasetExport.objects.filter(status=DatasetExport.Status.DONE, expires_at__lte=now)
    for export in due.iterator():
        _delete_files(export)
        expired += DatasetExport.objects.filter(
            pk=export.pk, status=DatasetExport.Status.DONE
        ).update(status=DatasetExport.Status.EXPIRED, file="", card="", croissant="")
    return expired
