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
from market.records import EXPORT_COLUMNS

STREAM_FORMATS = {"jsonl": "application/x-ndjson", "csv": "text/csv"}
#: Rows per chunk written or yielded at once: big enough to amortise, small enough to stay flat.
CHUNK_ROWS = 500


def _text(value: str | None) -> str:
    return "null" if value is None else _string(value)


def _number(value: float | None) -> str:
    return "null" if value is None else repr(value)


def jsonl_line(row: dict[str, Any]) -> str:
    """One record as a JSON object on one line, in ``EXPORT_COLUMNS`` order. Written field by
    field (the generic encoder was a third of an export's time); the decision's value is
    already JSON text."""
    return (
        f'{{"id":{row["id"]},"text":{_text(row["text"])},"text_b":{_text(row["text_b"])},'
        f'"image_url":{_text(row["image_url"])},"image_b_url":{_text(row["image_b_url"])},'
        f'"width":{_number(row["width"])},"height":{_number(row["height"])},'
        f'"label":{_text(row["label"])},"agreement":{_number(row["agreement"])},'
        f'"confidence":{_number(row["confidence"])},"decided_at":{_text(row["decided_at"])},'
        f'"decided_by":{_text(row["decided_by"])},"method":{_text(row["method"])},'
        f'"sha256":{_text(row["sha256"])},"contributor":{_text(row["contributor"])},'
        f'"labels":{_number(row["labels"])},"licence":{_text(row["licence"])},'
        f'"created_at":{_text(row["created_at"])},"value":{row["value_json"]}}}\n'
    )


def csv_values(row: dict[str, Any]) -> list[object]:
    """A record as CSV cells: the decision's value as compact JSON, every cell formula-safe."""
    return [
        csv_cell(row["value_json"] if name == "value" else row[name]) for name in EXPORT_COLUMNS
    ]


def stream_chunks(fmt: str, rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """The records as text, ``CHUNK_ROWS`` at a time (the header first, for CSV)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer) if fmt == "csv" else None
    if writer is not None:
        writer.writerow(EXPORT_COLUMNS)
    for count, row in enumerate(rows, start=1):
        if writer is not None:
            writer.writerow(csv_values(row))
        else:
            buffer.write(jsonl_line(row))
        if count % CHUNK_ROWS == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    tail = buffer.getvalue()
    if tail:
        yield tail


def export_filename(project: Project, fmt: str) -> str:
    slug = "".join(c if c.isalnum() else "-" for c in project.name.lower()).strip("-") or "dataset"
    return f"crowdmint-{project.pk}-{slug[:60]}.{fmt}"
