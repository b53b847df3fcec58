"""JSON Lines and CSV files: the streamed export's chunks, written to a file."""

from __future__ import annotations

import hashlib
from pathlib import Path

from labeling.models import Project
from market.formats import Built, OpenImage, Rows, slug
from market.records import EXPORT_COLUMNS
from market.streams import STREAM_FORMATS, stream_chunks


def _write(fmt: str, directory: Path, project: Project, rows: Rows) -> Built:
    path = directory / f"{slug(project)}.{fmt}"
    count = 0
    licences: set[str] = set()

    def counted(source: Rows) -> Rows:
        nonlocal count
        for row in source:
            count += 1
            licences.add(row["licence"])
            yield row

    digest = hashlib.sha256()
    with path.open("wb") as out:
        for chunk in stream_chunks(fmt, counted(rows)):
            data = chunk.encode("utf-8")
            digest.update(data)
            out.write(data)
    return Built(
        path=path,
        filename=path.name,
        content_type=STREAM_FORMATS[fmt],
        records=count,
        columns=EXPORT_COLUMNS,
        sha256=digest.hexdigest(),
        licences=tuple(sorted(licences)),
    )


def write_jsonl(directory: Path, project: Project, rows: Rows, open_image: OpenImage) -> Built:
    return _write("jsonl", directory, project, rows)


def write_csv(directory: Path, project: Project, rows: Rows, open_image: OpenImage) -> Built:
    return _write("csv", directory, project, rows)
