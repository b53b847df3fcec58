"""YOLO detection layout (boxes projects): a zip of ``images/``, ``labels/<image>.txt`` (one
line per box: ``class x_center y_center width height``, normalised to 0..1 by the image's size)
and ``data.yaml`` naming the classes in index order (the Ultralytics dataset layout)."""

from __future__ import annotations

import zipfile
from pathlib import Path

from labeling.models import Project
from market.formats import Built, OpenImage, Rows, one_line, slug, yaml_string
from market.formats.coco import copy_image, image_name


def data_yaml(project: Project) -> str:
    names = "\n".join(f"  {n}: {yaml_string(name)}" for n, name in enumerate(project.classes))
    return (
        f"# {one_line(project.name)}: accepted boxes from Crowdmint "
        f"(licence {one_line(project.licence)})\n"
        "path: .\ntrain: images\nval: images\n"
        f"nc: {len(project.classes)}\nnames:\n{names}\n"
    )


def write(directory: Path, project: Project, rows: Rows, open_image: OpenImage) -> Built:
    index = {name: n for n, name in enumerate(project.classes)}
    path = directory / f"{slug(project)}-yolo.zip"
    count = 0
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        archive.writestr("data.yaml", data_yaml(project))
        for row in rows:
            if not row["image_path"]:
                continue
            name = image_name(row)
            copy_image(archive, open_image, row, f"images/{name}")
            width, height = float(row["width"]), float(row["height"])
            lines = []
            for box in row["value"].get("boxes", []):
                x, y, w, h = (float(box[k]) for k in ("x", "y", "w", "h"))
                cx, cy = (x + w / 2) / width, (y + h / 2) / height
                lines.append(
                    f"{index[box['label']]} {cx:.6f} {cy:.6f} {w / width:.6f} {h / height:.6f}\n"
                )
            archive.writestr(f"labels/{name.rsplit('.', 1)[0]}.txt", "".join(lines))
            count += 1
    return Built(
        path=path,
        filename=path.name,
        content_type="application/zip",
        records=count,
        layout="archive",
        contained=(("data.yaml", "application/yaml"), ("labels/*.txt", "text/plain")),
    )
