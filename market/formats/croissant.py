"""MLCommons Croissant 1.0 JSON-LD describing an export: the dataset (name, description,
licence, creators, provenance), the file (URL, format, SHA-256, size) and its records' fields.

The ``@context`` is the one the Croissant 1.0 specification gives for every document. Records
are read from CSV, JSON Lines and Parquet files by column, from JSON files by JSONPath; the
archives (COCO, YOLO) are described as a file with the files it contains.

The decision's ``value`` is JSON text in CSV and Parquet (``sc:Text``), but a JSON object in JSON
Lines: a reader gets it as a mapping, which no Croissant data type holds (``mlcroissant`` failed
every JSON Lines record casting it to text). There it is described by its keys, in the project's
task shape (``VALUE_SHAPES``), each read from the ``value`` column by a JSONPath transform.
"""

from __future__ import annotations

import re
from typing import Any

from django.utils import timezone

from labeling.models import Project
from market.formats import Built, stated_licences

CONTEXT: dict[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}
CONFORMS_TO = "http://mlcommons.org/croissant/1.0"

#: Croissant data types of the flat export columns.
COLUMN_TYPES = {
    "id": "sc:Integer",
    "width": "sc:Integer",
    "height": "sc:Integer",
    "labels": "sc:Integer",
    "agreement": "sc:Float",
    "confidence": "sc:Float",
    "decided_at": "sc:Date",
    "created_at": "sc:Date",
    "image_url": "sc:URL",
    "image_b_url": "sc:URL",
}
DESCRIPTIONS = {
    "id": "The item's id in Crowdmint.",
    "label": "The decided class (a summary for multi-label, boxes and spans).",
    "value": "The decision in the task's shape, as JSON.",
    "confidence": "The decision's posterior probability.",
    "agreement": "Share of the item's labels that agree with the decision.",
    "decided_at": "When it was decided (UTC).",
    "decided_by": "crowd or moderator.",
    "sha256": "SHA-256 of the item's content.",
    "contributor": "The contributor's wallet address.",
    "image_url": "The image; fetchable with the buyer's API key only.",
}
LAST_TASK_JSONPATH = "$[*]"

#: The keys of the decision's value by task (``labeling.answers``): (name, data type, repeated);
#: a list of objects (boxes, spans) has its own keys, in order, for its sub-fields.
VALUE_SHAPES: dict[str, list[tuple[str, str | list[tuple[str, str]], bool]]] = {
    "classify": [("label", "sc:Text", False)],
    "pairwise": [("choice", "sc:Text", False)],
    "multilabel": [("labels", "sc:Text", True)],
    "boxes": [
        (
            "boxes",
            [
                ("x", "sc:Float"),
                ("y", "sc:Float"),
                ("w", "sc:Float"),
                ("h", "sc:Float"),
                ("label", "sc:Text"),
            ],
            True,
        )
    ],
    "spans": [
        (
            "spans",
            [
                ("start", "sc:Integer"),
                ("end", "sc:Integer"),
                ("label", "sc:Text"),
                ("text", "sc:Text"),
            ],
            True,
        )
    ],
}


# An SPDX licence id (``CC-BY-4.0``, ``LicenseRef-acme``): letters, digits, ``.``, ``-``, ``+``.
SPDX_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+-]*")


def licence_url(licence: str) -> str:
    """SPDX's page for a licence id; ``""`` for anything else (free text such as "Proprietary,
    ask us" names no page: a URL built from it would lead nowhere)."""
    if not SPDX_ID.fullmatch(licence) or licence.startswith("LicenseRef-"):
        return ""
    return f"https://spdx.org/licenses/{licence}.html"


def _value_source(file_id: str, *paths: str) -> dict[str, Any]:
    """The ``value`` column, then each JSONPath in turn: on a list, a JSONPath applies to every
    element (``boxes`` then ``x``: every box's x; ``boxes[*].x`` gives readers the first only)."""
    transforms = [{"jsonPath": path} for path in paths]
    return {
        "fileObject": {"@id": file_id},
        "extract": {"column": "value"},
        "transform": transforms[0] if len(transforms) == 1 else transforms,
    }


def value_field(task: str, file_id: str) -> dict[str, Any]:
    """The JSON Lines ``value`` field: its keys in ``task``'s shape as sub-fields."""
    sub_fields: list[dict[str, Any]] = []
    for name, shape, repeated in VALUE_SHAPES[task]:
        sub: dict[str, Any] = {"@type": "cr:Field", "@id": f"records/value/{name}", "name": name}
        if isinstance(shape, str):
            sub["dataType"] = shape
            sub["source"] = _value_source(file_id, name)
        else:
            sub["subField"] = [
                {
                    "@type": "cr:Field",
                    "@id": f"records/value/{name}/{key}",
                    "name": key,
                    "dataType": data_type,
                    "source": _value_source(file_id, name, key),
                }
                for key, data_type in shape
            ]
        if repeated:
            sub["repeated"] = True
        sub_fields.append(sub)
    return {
        "@type": "cr:Field",
        "@id": "records/value",
        "name": "value",
        "description": "The decision in the task's shape, as a JSON object.",
        "subField": sub_fields,
    }


def document(
    *,
    project: Project,
    built: Built,
    fmt: str,
    url: str,
    download_url: str,
    sha256: str,
    size_bytes: int,
) -> dict[str, Any]:
    """The Croissant description of one export. Its licence is the records' (``built.licences``,
    ``stated_licences``): one URL, or a list of them when the records' licences differ."""
    licences = stated_licences(project, built.licences)
    # A licence that isn't an SPDX id is stated as its text (schema.org's license is a URL or
    # a text).
    licence_urls = [licence_url(licence) or licence for licence in licences]
    accepted = (
        f"the licence ({licences[0]}) at upload"
        if len(licences) == 1
        else "the project's licence of the time at upload, which its record carries (the "
        f"licence field): {', '.join(licences)}"
    )
    file_id = "export-file"
    distribution: list[dict[str, Any]] = [
        {
            "@type": "cr:FileObject",
            "@id": file_id,
            "name": built.filename,
            "description": f"The {fmt} export (download it with the buyer's API key).",
            "contentUrl": download_url,
            "encodingFormat": "application/jsonlines"
            if fmt == "jsonl"
            else "application/x-parquet"
            if fmt == "parquet"
            else built.content_type,
            "contentSize": f"{size_bytes} B",
            "sha256": sha256,
        }
    ]
    for n, (path, mime) in enumerate(built.contained):
        entry: dict[str, Any] = {
            "@type": "cr:FileSet" if "*" in path else "cr:FileObject",
            "@id": f"contained-{n}",
            "name": path.replace("*", "all"),
            "containedIn": {"@id": file_id},
            "encodingFormat": mime,
        }
        if "*" in path:
            entry["includes"] = path
        else:
            entry["contentUrl"] = path
        distribution.append(entry)
    record_sets: list[dict[str, Any]] = []
    if built.layout in ("column", "jsonPath"):
        fields = []
        for name in built.columns or ("id",):
            if name == "value" and fmt == "jsonl":
                fields.append(value_field(project.task, file_id))
                continue
            extract = (
                {"column": name}
                if built.layout == "column"
                else {"jsonPath": f"{LAST_TASK_JSONPATH}.{name}"}
            )
            field: dict[str, Any] = {
                "@type": "cr:Field",
                "@id": f"records/{name}",
                "name": name,
                "dataType": COLUMN_TYPES.get(name, "sc:Text"),
                "source": {"fileObject": {"@id": file_id}, "extract": extract},
            }
            if name in DESCRIPTIONS:
                field["description"] = DESCRIPTIONS[name]
            fields.append(field)
        record_sets.append(
            {
                "@type": "cr:RecordSet",
                "@id": "records",
                "name": "records",
                "description": "The accepted records, one per item.",
                "key": {"@id": "records/id"},
                "field": fields,
            }
        )
    now = timezone.now()
    doc: dict[str, Any] = {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": CONFORMS_TO,
        "name": f"crowdmint-{project.pk}-{fmt}",
        "alternateName": project.name,
        "description": (project.description or project.name)
        + f" ({project.task} on {project.data_kind}; classes: {', '.join(project.classes)})",
        "license": licence_urls[0] if len(licence_urls) == 1 else licence_urls,
        "url": url,
        # The export's date as MAJOR.MINOR.PATCH (no leading zeros), as Croissant asks.
        "version": f"{now.year}.{now.month}.{now.day}",
        "datePublished": now.date().isoformat(),
        "dateModified": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "isLiveDataset": project.is_open,
        "creator": {"@type": "sc:Organization", "name": "Crowdmint contributors"},
        "publisher": {"@type": "sc:Organization", "name": "Crowdmint"},
        "citeAs": f"Crowdmint contributors. {project.name}. Dataset {project.pk}, {now:%Y}.",
        "keywords": ["crowdsourcing", "crowdmint", project.task, project.data_kind],
        # Provenance: how every record was made (RAI vocabulary).
        "rai:dataCollection": "Contributed by the crowd, each contributor accepting "
        f"{accepted}; exact and near copies refused.",
        "rai:dataAnnotationProtocol": f"Labeled by contributors; {project.consensus_method} "
        f"consensus accepted an item at posterior {project.acceptance_threshold} after "
        f"{project.overlap} to {project.max_labels} labels, or a moderator decided it "
        "(decided_by).",
        "rai:dataAnnotationPlatform": "Crowdmint",
        "distribution": distribution,
        "recordSet": record_sets,
    }
    return doc
