"""COCO object detection (boxes projects): a zip of ``annotations/instances.json`` and the
images under ``images/``.

COCO boxes are ``[x, y, width, height]`` in pixels from the top-left corner: the decided
``{"x", "y", "w", "h", "label"}`` boxes as they are; each one's ``segmentation`` is the box as a
4-corner polygon, as tools do for box-only datasets (COCO has no "no mask"). Category ids start at 1, in the project's
class order (a class the project no longer has comes after them: ``ClassCodes``). Each image's
``license`` is the licence its record was contributed under, among ``licenses``. The JSON is one
object holding two long arrays; to stay in constant memory the two arrays are written to
temporary files first and then copied into the archive.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

from labeling.models import Project
from market.formats import Built, ClassCodes, OpenImage, Rows, slug
from market.formats.croissant import licence_url


def image_name(row: dict[str, Any]) -> str:
    extension = str(row["image_path"]).rsplit(".", 1)[-1].lower()
    return f"{row['id']}.{extension}"


#: Every archive entry's date: an export's bytes depend on its records only, so building it
#: twice gives the same file (and the same SHA-256). ``writestr(name, ...)`` stamps the time.
ENTRY_DATE = (2000, 1, 1, 0, 0, 0)


def entry(name: str, compress_type: int) -> zipfile.ZipInfo:
    """An archive entry named ``name``, dated ``ENTRY_DATE``."""
    info = zipfile.ZipInfo(name, date_time=ENTRY_DATE)
    info.compress_type = compress_type
    return info


def copy_image(
    archive: zipfile.ZipFile, open_image: OpenImage, row: dict[str, Any], name: str
) -> None:
    """Copy a stored image into the archive, streamed; stored as it is (already compressed)."""
    info = entry(name, zipfile.ZIP_STORED)
    with open_image(row["image_path"]) as source, archive.open(info, "w") as target:
        shutil.copyfileobj(source, target, 1 << 16)


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def write(directory: Path, project: Project, rows: Rows, open_image: OpenImage) -> Built:
    classes = ClassCodes(project.classes)
    # Licence ids in the order images first carry them (images are written before the head).
    licence_ids: dict[str, int] = {}
    images_part, annotations_part = directory / "images.part", directory / "annotations.part"
    path = directory / f"{slug(project)}-coco.zip"
    count = annotation_id = 0
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as archive,
        images_part.open("w", encoding="utf-8") as images,
        annotations_part.open("w", encoding="utf-8") as annotations,
    ):
        for row in rows:
            if not row["image_path"]:
                continue
            name = image_name(row)
            copy_image(archive, open_image, row, f"images/{name}")
            licence_id = licence_ids.setdefault(row["licence"], len(licence_ids) + 1)
            images.write(
                ("," if count else "")
                + _dump(
                    {
                        "id": row["id"],
                        "file_name": name,
                        "width": row["width"],
                        "height": row["height"],
                        "date_captured": row["created_at"],
                        "license": licence_id,
                        "crowdmint": {
                            "confidence": row["confidence"],
                            "agreement": row["agreement"],
                            "decided_at": row["decided_at"],
                            "decided_by": row["decided_by"],
                            "sha256": row["sha256"],
                        },
                    }
                )
            )
            count += 1
            for box in row["value"].get("boxes", []):
                annotation_id += 1
                x, y, w, h = (float(box[k]) for k in ("x", "y", "w", "h"))
                annotations.write(
                    ("," if annotation_id > 1 else "")
                    + _dump(
                        {
                            "id": annotation_id,
                            "image_id": row["id"],
                            "category_id": classes.code(box["label"]) + 1,
                            "bbox": [x, y, w, h],
                            "area": w * h,
                            "iscrowd": 0,
                            # The box as a polygon (its 4 corners): an empty list made
                            # pycocotools' annToMask and segm evaluation raise.
                            "segmentation": [[x, y, x + w, y, x + w, y + h, x, y + h]],
                        }
                    )
                )
        images.flush()
        annotations.flush()
        head = {
            "info": {
                "description": f"{project.name}: accepted boxes from Crowdmint",
                "version": "1.0",
                "contributor": "Crowdmint contributors",
            },
            "licenses": [
                {"id": n, "name": licence, "url": licence_url(licence)}
                for licence, n in licence_ids.items()
            ],
            "categories": [
                {"id": n, "name": name, "supercategory": ""}
                for n, name in enumerate(classes.names, start=1)
            ],
        }
        instances = entry("annotations/instances.json", zipfile.ZIP_STORED)
        with archive.open(instances, "w", force_zip64=True) as out:
            out.write(_dump(head)[:-1].encode() + b',"images":[')
            with images_part.open("rb") as text_in:
                shutil.copyfileobj(text_in, out, 1 << 16)
            out.write(b'],"annotations":[')
            with annotations_part.open("rb") as text_in:
                shutil.copyfileobj(text_in, out, 1 << 16)
            out.write(b"]}")
    images_part.unlink()
    annotations_part.unlink()
    return Built(
        path=path,
        filename=path.name,
        content_type="application/zip",
        records=count,
        layout="archive",
        licences=tuple(sorted(licence_ids)),
        contained=(("annotations/instances.json", "application/json"), ("images/*", "image/*")),
    )
