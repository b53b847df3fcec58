"""Label Studio's JSON task format, with each record's decision as a completed annotation, so a
Label Studio user can move a dataset over (``label_config.xml`` is the labeling interface the
results refer to: paste it into the project's Labeling Setup).

Results follow Label Studio's export format: ``choices`` (classify, multi-label),
``rectanglelabels`` (boxes, in percent of the image, as Label Studio stores them),
``labels`` (spans, character offsets) and ``pairwise`` (``left``/``right``). The array is
written a task at a time; the config after it, so that it also lists a class the project no
longer has but a record names (``ClassCodes``): every label a result names is one of the
config's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from labeling.models import Project
from market.formats import Built, ClassCodes, OpenImage, Rows, slug

#: The keys of a result's value that name classes, by result type.
CLASS_KEYS = ("rectanglelabels", "labels", "choices")


def label_config(project: Project, classes: Sequence[str] | None = None) -> str:
    """The Label Studio labeling config matching the exported results: ``classes`` (the
    project's by default) as its labels or choices."""
    task, kind = project.task, project.data_kind
    names = project.classes if classes is None else classes
    labels = "".join(f"    <Label value={quoteattr(c)}/>\n" for c in names)
    choices = "".join(f"    <Choice value={quoteattr(c)}/>\n" for c in names)
    if task == Project.Task.PAIRWISE:
        tag = "Text" if kind == Project.DataKind.TEXT else "Image"
        attr = "value" if tag == "Text" else "value"
        field = "text" if tag == "Text" else "image"
        return (
            "<View>\n"
            f'  <{tag} name="{field}1" {attr}="${field}1"/>\n'
            f'  <{tag} name="{field}2" {attr}="${field}2"/>\n'
            f'  <Pairwise name="comparison" toName="{field}1,{field}2"/>\n'
            "</View>\n"
        )
    tag, field = ("Text", "text") if kind == Project.DataKind.TEXT else ("Image", "image")
    body = f'  <{tag} name="{field}" value="${field}"/>\n'
    if task == Project.Task.BOXES:
        body += f'  <RectangleLabels name="label" toName="{field}">\n{labels}  </RectangleLabels>\n'
    elif task == Project.Task.SPANS:
        body += f'  <Labels name="label" toName="{field}">\n{labels}  </Labels>\n'
    else:
        choice = "multiple" if task == Project.Task.MULTILABEL else "single"
        body += (
            f'  <Choices name="label" toName="{field}" choice="{choice}">\n{choices}  </Choices>\n'
        )
    return f"<View>\n{body}</View>\n"


def results(project: Project, row: dict[str, Any]) -> list[dict[str, Any]]:
    """The decision as Label Studio result regions."""
    task, value = project.task, row["value"]
    field = "text" if project.data_kind == Project.DataKind.TEXT else "image"
    if task == Project.Task.PAIRWISE:
        return [
            {
                "from_name": "comparison",
                "to_name": f"{field}1,{field}2",
                "type": "pairwise",
                "value": {"selected": "left" if value.get("choice") == "a" else "right"},
            }
        ]
    if task == Project.Task.BOXES:
        width, height = float(row["width"]), float(row["height"])
        return [
            {
                "id": f"b{n}",
                "from_name": "label",
                "to_name": field,
                "type": "rectanglelabels",
                "original_width": row["width"],
                "original_height": row["height"],
                "image_rotation": 0,
                "value": {
                    "x": float(box["x"]) / width * 100,
                    "y": float(box["y"]) / height * 100,
                    "width": float(box["w"]) / width * 100,
                    "height": float(box["h"]) / height * 100,
                    "rotation": 0,
                    "rectanglelabels": [box["label"]],
                },
            }
            for n, box in enumerate(value.get("boxes", []))
        ]
    if task == Project.Task.SPANS:
        text = row["text"] or ""
        return [
            {
                "id": f"s{n}",
                "from_name": "label",
                "to_name": field,
                "type": "labels",
                "value": {
                    "start": span["start"],
                    "end": span["end"],
                    "text": text[span["start"] : span["end"]],
                    "labels": [span["label"]],
                },
            }
            for n, span in enumerate(value.get("spans", []))
        ]
    chosen = value.get("labels", []) if task == Project.Task.MULTILABEL else [row["label"]]
    return [
        {"from_name": "label", "to_name": field, "type": "choices", "value": {"choices": chosen}}
    ]


def task(project: Project, row: dict[str, Any]) -> dict[str, Any]:
    if project.task == Project.Task.PAIRWISE:
        if project.data_kind == Project.DataKind.TEXT:
            data = {"text1": row["text"], "text2": row["text_b"]}
        else:
            data = {"image1": row["image_url"], "image2": row["image_b_url"]}
    elif project.data_kind == Project.DataKind.TEXT:
        data = {"text": row["text"]}
    else:
        data = {"image": row["image_url"]}
    return {
        "id": row["id"],
        "data": data,
        "annotations": [
            {
                "id": row["id"],
                "result": results(project, row),
                "was_cancelled": False,
                "ground_truth": False,
                "created_at": row["decided_at"],
                "updated_at": row["decided_at"],
                "lead_time": None,
                "completed_by": None,
            }
        ],
        "predictions": [],
        "meta": {
            "crowdmint": {
                "confidence": row["confidence"],
                "agreement": row["agreement"],
                "decided_by": row["decided_by"],
                "method": row["method"],
                "labels": row["labels"],
                "sha256": row["sha256"],
                "contributor": row["contributor"],
                "licence": row["licence"],
            }
        },
        "created_at": row["created_at"],
        "updated_at": row["decided_at"],
    }


def write(directory: Path, project: Project, rows: Rows, open_image: OpenImage) -> Built:
    path = directory / f"{slug(project)}-label-studio.json"
    config = directory / "label_config.xml"
    classes = ClassCodes(project.classes)
    licences: set[str] = set()
    count = 0
    with path.open("w", encoding="utf-8") as out:
        out.write("[")
        for row in rows:
            exported = task(project, row)
            for region in exported["annotations"][0]["result"]:
                for key in CLASS_KEYS:
                    for name in region["value"].get(key, ()):
                        classes.code(name)
            licences.add(row["licence"])
            out.write(("," if count else "") + "\n")
            out.write(json.dumps(exported, ensure_ascii=False, separators=(",", ":")))
            count += 1
        out.write("\n]\n")
    config.write_text(label_config(project, classes.names), encoding="utf-8")
    return Built(
        path=path,
        filename=path.name,
        content_type="application/json",
        records=count,
        card=config,
        card_filename=config.name,
        layout="jsonPath",
        licences=tuple(sorted(licences)),
    )
