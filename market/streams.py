"""Records as text chunks, for the streamed ``GET .../export`` and the background exports:
JSON Lines (one object per line) and CSV (flat columns, formula-safe)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

from config.csv_safety import csv_cell
from labeling.models import Project
from market.records import EXPORT_COLUMNS, export_record

STREAM_FORMATS = {"jsonl": "application/x-ndjson", "csv": "text/csv"}
#: Rows per chunk written or yielded at once: big enough to amortise, small enough to stay flat.
CHUNK_ROWS = 500


def jsonl_line(row: dict[str, Any]) -> str:
    return json.dumps(export_record(row), ensure_ascii=False, separators=(",", ":")) + "\n"


def csv_values(row: dict[str, Any]) -> list[object]:
    """A record as CSV cells: the decision's value as compact JSON, every cell formula-safe."""
    record = export_record(row)
    record["value"] = json.dumps(record["value"], ensure_ascii=False, separators=(",", ":"))
    return [csv_cell(record[name]) for name in EXPORT_COLUMNS]


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
