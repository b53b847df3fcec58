"""Records as text chunks, for the streamed ``GET .../export`` and the background exports:
JSON Lines (one object per line) and CSV (flat columns, formula-safe)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from json.encoder import encode_basestring as _string  # C, keeps non-ASCII as is
from typing import Any

from config.csv_safety import csv_cell
from labeling.models import Project
from market.formats import slug
from market.records import EXPORT_COLUMNS

STREAM_FORMATS = {"jsonl": "application/x-ndjson", "csv": "text/csv"}
#: The Content-Type each is sent with, streamed or downloaded once built: the same for both, and
#: CSV's charset said (text/csv defaults to US-ASCII for some clients; ours is UTF-8).
CONTENT_TYPES = {"jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}
#: Rows per chunk written or yielded at once: big enough to amortise, small enough to stay flat.
CHUNK_ROWS = 500


def jsonl_line(row: dict[str, Any]) -> str:
    """One record as a JSON object on one line, in ``EXPORT_COLUMNS`` order. Written field by
    field, each test inline (the generic encoder was a third of an export's time, a helper
    call per field another tenth); the decision's value is already JSON text."""
    s = _string
    text, text_b, image_url, image_b_url = (
        row["text"],
        row["text_b"],
        row["image_url"],
        row["image_b_url"],
    )
    width, height, label, agreement = row["width"], row["height"], row["label"], row["agreement"]
    confidence, decided_at, method = row["confidence"], row["decided_at"], row["method"]
    decided_by = row["decided_by"]
    sha256, contributor, labels = row["sha256"], row["contributor"], row["labels"]
    licence, created_at = row["licence"], row["created_at"]
    return (
        f'{{"id":{row["id"]},"text":{"null" if text is None else s(text)},'
        f'"text_b":{"null" if text_b is None else s(text_b)},'
        f'"image_url":{"null" if image_url is None else s(image_url)},'
        f'"image_b_url":{"null" if image_b_url is None else s(image_b_url)},'
        f'"width":{"null" if width is None else repr(width)},'
        f'"height":{"null" if height is None else repr(height)},'
        f'"label":{"null" if label is None else s(label)},'
        f'"agreement":{"null" if agreement is None else repr(agreement)},'
        f'"confidence":{"null" if confidence is None else repr(confidence)},'
        f'"decided_at":{"null" if decided_at is None else s(decided_at)},'
        f'"decided_by":{"null" if decided_by is None else s(decided_by)},'
        f'"method":{"null" if method is None else s(method)},'
        f'"sha256":{"null" if sha256 is None else s(sha256)},'
        f'"contributor":{"null" if contributor is None else s(contributor)},'
        f'"labels":{"null" if labels is None else repr(labels)},'
        f'"licence":{"null" if licence is None else s(licence)},'
        f'"created_at":{"null" if created_at is None else s(created_at)},'
        f'"value":{row["value_json"]}}}\n'
    )


def tombstone_line(row: dict[str, Any]) -> str:
    """A tombstone (``records.tombstone``) as a JSON Lines object: a record to delete."""
    return (
        f'{{"id":{row["id"]},"withdrawn":true,"withdrawn_at":{_string(row["withdrawn_at"])},'
        f'"reason":{_string(row["reason"])}}}\n'
    )


def csv_values(row: dict[str, Any]) -> list[object]:
    """A record as CSV cells: the decision's value as compact JSON, every cell formula-safe."""
    return [
        csv_cell(row["value_json"] if name == "value" else row[name]) for name in EXPORT_COLUMNS
    ]


def stream_chunks(fmt: str, rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """The records as text, ``CHUNK_ROWS`` at a time (the header first, for CSV); JSON Lines
    also writes tombstones (``records.sync_rows``), which CSV can't hold."""
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(EXPORT_COLUMNS)
        for count, row in enumerate(rows, start=1):
            writer.writerow(csv_values(row))
            if count % CHUNK_ROWS == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        if tail := buffer.getvalue():
            yield tail
        return
    lines: list[str] = []
    for row in rows:
        lines.append(tombstone_line(row) if "withdrawn" in row else jsonl_line(row))
        if len(lines) == CHUNK_ROWS:
            yield "".join(lines)
            lines = []
    if lines:
        yield "".join(lines)


def export_filename(project: Project, fmt: str) -> str:
    """The name of a streamed export: the background exports' (``formats.slug``), which may be
    outside ASCII (``ranges.attachment`` sends it with an ASCII rendering)."""
    return f"{slug(project)}.{fmt}"
