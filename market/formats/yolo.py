"""YOLO detection layout (boxes projects): a zip of ``images/``, ``labels/<image>.txt`` (one
line per box: ``class x_center y_center width height``, normalised to 0..1 by the image's size)
and ``data.yaml`` naming the classes in index order (the Ultralytics dataset layout).

A class the project no longer has gets an index after the project's classes (``ClassCodes``);
``data.yaml`` is written last, once every class the boxes name is known."""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path

from labeling.models import Project
from market.formats import (
    Built,
    ClassCodes,
    OpenImage,
    Rows,
    one_line,
    slug,
    stated_licences,
    yaml_string,
)
from market.formats.coco import copy_image, entry, image_name


def data_yaml(
    project: Project, classes: Sequence[str] | None = None, licences: Sequence[str] = ()
) -> str:
    """``data.yaml``: ``classes`` by index (the project's by default) and, in its header
    comment, the licences of the images (``stated_licences``)."""
    names = list(project.classes if classes is None else classes)
    listed = "\n".join(f"  {n}: {yaml_string(name)}" for n, name in enumerate(names))
    stated = stated_licences(project, licences)
    licence = (
        f"licence {one_line(stated[0])}"
        if len(stated) == 1
        # YOLO has no place for an image's licence: the file name is the record's id, whose
        # licence field (records API, JSON Lines, CSV, Parquet) says it.
        else "licences per image, see its record's licence field: "
        + ", ".join(one_line(name) for name in stated)
    )
    return (
        f"# {one_line(project.name)}: accepted boxes from Crowdmint ({licence})\n"
        "path: .\ntrain: images\nval: images\n"
        f"nc: {len(names)}\nnames:\n{listed}\n"
    )


def write(directory: Path, project: Project, rows: Rows, open_image: OpenImage) -> Built:
    classes = ClassCodes(project.classes)
    licences: set[str] = set()
    path = directory / f"{slug(project)}-yolo.zip"
    count = 0
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        for row in rows:
            if not row["image_path"]:
                continue
            name = image_name(row)
            copy_image(archive, open_image, row, f"images/{name}")
            licences.add(row["licence"])
            width, height = float(row["width"]), float(row["height"])
            lines = []
            for box in row["value"].get("boxes", []):
                x, y, w, h = (float(box[k]) for k in ("x", "y", "w", "h"))
                cx, cy = (x + w / 2) / width, (y + h / 2) / height
                lines.append(
                    f"{classes.code(box['label'])} "
                    f"{cx:.6f} {cy:.6f} {w / width:.6f} {h / height:.6f}\n"
                )
            label_file = f"labels/{name.rsplit('.', 1)[0]}.txt"
            archive.writestr(entry(label_file, zipfile.ZIP_DEFLATED), "".join(lines))
            count += 1
        archive.writestr(
            entry("data.yaml", zipfile.ZIP_DEFLATED),
            data_yaml(project, classes.names, sorted(licences)),
        )
    return Built(
        path=path,
        filename=path.name,
        content_type="application/zip",
        records=count,
        layout="archive",
        contained=(("data.yaml", "application/yaml"), ("labels/*.txt", "text/plain")),
        licences=tuple(sorted(licences)),
    )
