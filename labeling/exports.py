"""Dataset exports for buyers' tools: JSON Lines (Hugging Face ``datasets``, pandas) and CSV.

Rows are streamed from the database in chunks, so an export of any size holds one chunk in memory.
Every CSV cell goes through ``config.csv_safety.csv_cell``: contributed text is untrusted, and a
spreadsheet would run a cell such as ``=HYPERLINK(...)`` as a formula.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator

from django.core.serializers.json import DjangoJSONEncoder

from config.csv_safety import csv_cell
from labeling.models import Item, Project

FORMATS = {"jsonl": "application/x-ndjson", "csv": "text/csv"}
COLUMNS = [
    "id",
    "text",
    "image_url",
    "label",
    "agreement",
    "confidence",
    "decided_at",
    "sha256",
    "contributor",
    "labels",
    "method",
]


def record_provenance(item: Item) -> dict[str, object]:
    """Where an accepted record comes from; ``contributor`` and ``project`` must be selected."""
    return {
        "sha256": item.content_sha256,
        "contributor": item.contributor.wallet_address if item.contributor else None,
        "labels": item.label_count,
        "method": item.project.consensus_method,
    }


def export_rows(
    records: Iterator[Item], image_url: Callable[[Item], str | None]
) -> Iterator[dict[str, object]]:
    for item in records:
        yield {
            "id": item.pk,
            "text": item.text or None,
            "image_url": image_url(item),
            "label": item.decided_label,
            "agreement": item.agreement,
            "confidence": item.confidence,
            "decided_at": item.decided_at,
            **record_provenance(item),
        }


def export_lines(fmt: str, rows: Iterator[dict[str, object]]) -> Iterator[str]:
    """The export as text chunks: one JSON object per line, or CSV with a header row."""
    if fmt == "jsonl":
        for row in rows:
            yield json.dumps(row, cls=DjangoJSONEncoder) + "\n"
        return
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: csv_cell(v) for k, v in row.items()})
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def export_filename(project: Project, fmt: str) -> str:
    slug = "".join(c if c.isalnum() else "-" for c in project.name.lower()).strip("-") or "dataset"
    return f"crowdmint-{project.pk}-{slug}.{fmt}"
