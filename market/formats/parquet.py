"""Parquet, as a Hugging Face dataset: ``datasets.load_dataset("parquet", data_files=...)``
loads it; the dataset card (``README.md``, YAML metadata then prose) goes beside it.

Rows are written in row groups of ``ROWS_PER_GROUP``: memory stays flat in the record count.
Timestamps are Parquet timestamps (microseconds, UTC); the decision's value is a JSON string.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from django.utils import timezone

from labeling.models import Project
from market.formats import Built, OpenImage, Rows, slug, stated_licences, yaml_string
from market.formats.croissant import licence_url
from market.records import EXPORT_COLUMNS

ROWS_PER_GROUP = 20_000

SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("text", pa.string()),
        ("text_b", pa.string()),
        ("image_url", pa.string()),
        ("image_b_url", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("label", pa.string()),
        ("agreement", pa.float64()),
        ("confidence", pa.float64()),
        ("decided_at", pa.timestamp("us", tz="UTC")),
        ("decided_by", pa.string()),
        ("method", pa.string()),
        ("sha256", pa.string()),
        ("contributor", pa.string()),
        ("labels", pa.int32()),
        ("licence", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
        ("value", pa.string()),
    ]
)
assert tuple(SCHEMA.names) == EXPORT_COLUMNS

#: Hugging Face task categories by project task and data kind.
HF_TASKS = {
    ("classify", "text"): "text-classification",
    ("multilabel", "text"): "text-classification",
    ("pairwise", "text"): "text-classification",
    ("spans", "text"): "token-classification",
    ("classify", "image"): "image-classification",
    ("multilabel", "image"): "image-classification",
    ("pairwise", "image"): "image-classification",
    ("boxes", "image"): "object-detection",
}


def _table(batch: list[dict[str, Any]]) -> pa.Table:
    """A row group, column by column; timestamps are the records' ISO strings ("...Z"), which
    Arrow reads as UTC; the decision's value is its JSON text."""
    arrays = []
    for field in SCHEMA:
        key = "value_json" if field.name == "value" else field.name
        values = [row[key] for row in batch]
        if pa.types.is_timestamp(field.type):
            arrays.append(pa.array(values, pa.string()).cast(field.type))
        else:
            arrays.append(pa.array(values, field.type))
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


def _hub_licence(licence: str) -> str:
    """The Hub's id of a licence: an SPDX id in lower case; ``other`` for anything else (free
    text, which the Licence line states as it is)."""
    return licence.lower() if licence_url(licence) else "other"


def _licence_lines(project: Project, licences: Mapping[str, int]) -> tuple[str, str]:
    """The card's ``license:`` value (YAML: one licence, or a list) and its Licence line: the
    licences the records carry (``stated_licences``), each with its record count when they
    differ (the Hub's ``license`` may be a list)."""
    stated = stated_licences(project, licences)
    if len(stated) == 1:
        return (
            f" {yaml_string(_hub_licence(stated[0]))}",
            f"{stated[0]}, accepted by each contributor at upload.",
        )
    counted = ", ".join(
        f"{name} ({licences[name]} record{'' if licences[name] == 1 else 's'})" for name in stated
    )
    return "".join(f"\n- {yaml_string(_hub_licence(name))}" for name in stated), (
        "per record (the `licence` field): the licence its contributor accepted at upload; "
        f"{counted}."
    )


def card(
    project: Project, records: int, data_file: str, licences: Mapping[str, int] | None = None
) -> str:
    """The Hugging Face dataset card: metadata the Hub reads, then what the data is.
    ``licences`` counts the records by licence (none: the project's licence is stated)."""
    licence_yaml, licence_line = _licence_lines(project, licences or {})
    task = HF_TASKS.get((project.task, project.data_kind), "other")
    size = (
        "n<1K"
        if records < 1_000
        else "1K<n<10K"
        if records < 10_000
        else "10K<n<100K"
        if records < 100_000
        else "100K<n<1M"
        if records < 1_000_000
        else "1M<n<10M"
    )
    fit = getattr(project, "consensus_fit", None)
    quality = (
        f"percent agreement {fit.percent_agreement}, Fleiss' kappa {fit.fleiss_kappa}, "
        f"Krippendorff's alpha {fit.krippendorff_alpha} (at the refit of {fit.fitted_at:%Y-%m-%d})"
        if fit is not None
        else "no refit has measured agreement yet"
    )
    classes = ", ".join(f"`{c}`" for c in project.classes)
    return f"""---
license:{licence_yaml}
pretty_name: {yaml_string(project.name)}
task_categories:
- {task}
size_categories:
- {size}
tags:
- crowdsourced
- crowdmint
configs:
- config_name: default
  data_files:
  - split: train
    path: {yaml_string(data_file)}
---

# {project.name}

{project.description or "A dataset labeled by the Crowdmint crowd."}

- **Records:** {records} accepted items (gold items excluded), exported {timezone.now():%Y-%m-%d %H:%M} UTC.
- **Task:** {project.task} on {project.data_kind}; classes: {classes}.
- **Licence:** {licence_line}
- **How labels were decided:** the `{project.consensus_method}` consensus model accepted an item
  once its posterior reached {project.acceptance_threshold}; `decided_by` says `moderator` where a
  moderator decided instead (then `method` is null).
- **Quality:** {quality}; each record has its `confidence` (posterior) and `agreement`.

## Fields

`id`, `text` / `text_b` (pairwise), `image_url` / `image_b_url` (fetchable with the buyer's API
key only), `width`, `height`, `label`, `value` (the decision as JSON, in the task's shape),
`agreement`, `confidence`, `decided_at` (UTC), `decided_by` (`crowd` or `moderator`), `method`,
`sha256` (of the content), `contributor` (wallet), `labels` (how many), `licence`, `created_at`.

## Loading

```python
from datasets import load_dataset
ds = load_dataset("parquet", data_files={json.dumps(data_file)}, split="train")
```
"""


def write(directory: Path, project: Project, rows: Rows, open_image: OpenImage) -> Built:
    path = directory / f"{slug(project)}.parquet"
    count = 0
    licences: Counter[str] = Counter()
    batch: list[dict[str, Any]] = []
    with pq.ParquetWriter(path, SCHEMA, compression="zstd") as writer:
        for row in rows:
            batch.append(row)
            licences[row["licence"]] += 1
            if len(batch) == ROWS_PER_GROUP:
                writer.write_table(_table(batch))
                count += len(batch)
                batch = []
        if batch or not count:
            writer.write_table(_table(batch))
            count += len(batch)
    readme = directory / "README.md"
    readme.write_text(card(project, count, path.name, licences), encoding="utf-8")
    return Built(
        path=path,
        filename=path.name,
        content_type="application/vnd.apache.parquet",
        records=count,
        card=readme,
        card_filename="README.md",
        columns=EXPORT_COLUMNS,
        licences=tuple(sorted(licences)),
    )
