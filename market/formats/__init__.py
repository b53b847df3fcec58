"""Export formats: each writes a dataset's records, streamed one chunk at a time, into files
in a working directory; ``market.services.exports`` stores them.

| format | file | read back by |
|---|---|---|
| ``jsonl`` | JSON Lines, one record per line | ``datasets``, pandas, ``json`` |
| ``csv`` | CSV with a header, flat columns, formula-safe | ``csv``, pandas, spreadsheets |
| ``coco`` | zip: ``annotations/instances.json`` + ``images/`` (boxes projects) | ``pycocotools.coco.COCO`` |
| ``yolo`` | zip: ``images/``, ``labels/*.txt``, ``data.yaml`` (boxes projects) | Ultralytics YOLO layout |
| ``label_studio`` | JSON array of Label Studio tasks with annotations (+ ``label_config.xml``) | Label Studio import |
| ``parquet`` | Parquet (+ the dataset card ``README.md``) | ``datasets.load_dataset("parquet")`` |

Every export also gets a Croissant JSON-LD description (``market.formats.croissant``).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from labeling.models import Project


@dataclass(frozen=True)
class Built:
    """What a format wrote: the main file, an optional companion (dataset card, labeling
    config), and what Croissant needs to describe the main file."""

    path: Path
    filename: str
    content_type: str
    records: int
    card: Path | None = None
    card_filename: str = ""
    #: Croissant: how the records are read from the file ("column" or "jsonPath"), or "archive".
    layout: str = "column"
    columns: tuple[str, ...] = ()
    contained: tuple[tuple[str, str], ...] = field(default=())  # (path in archive, mime)
    #: The main file's SHA-256, when the writer computed it while writing (else it is read).
    sha256: str = ""
    #: The licences of the records written, each once, sorted (``stated_licences``).
    licences: tuple[str, ...] = ()


#: Opens a stored image (``Item.image.name``) for reading, e.g. ``default_storage.open``.
OpenImage = Callable[[str], IO[bytes]]
Rows = Iterator[dict[str, Any]]
Writer = Callable[[Path, Project, Rows, OpenImage], Built]


class FormatError(ValueError):
    """A format that doesn't fit the dataset (COCO for a text project)."""


def writer_for(fmt: str, project: Project) -> Writer:
    """The writer of ``fmt`` for ``project``. Raises ``FormatError`` when it doesn't apply."""
    from market.formats import coco, label_studio, parquet, text, yolo

    if fmt in ("coco", "yolo") and project.task != Project.Task.BOXES:
        raise FormatError(
            f"{fmt} describes bounding boxes: dataset {project.pk} is a {project.task} project "
            "(use jsonl, csv, parquet or label_studio)"
        )
    writers: dict[str, Writer] = {
        "jsonl": text.write_jsonl,
        "csv": text.write_csv,
        "coco": coco.write,
        "yolo": yolo.write,
        "label_studio": label_studio.write,
        "parquet": parquet.write,
    }
    if fmt not in writers:
        raise FormatError(f"unknown format {fmt!r}: use {', '.join(writers)}")
    return writers[fmt]


def stated_licences(project: Project, licences: Iterable[str]) -> list[str]:
    """The licences a dataset states (Croissant, the dataset card, COCO, YOLO): those its
    records carry, each once, sorted.

    Each record carries the licence its contributor accepted at upload (``Item.licence``);
    the project's licence is only what new uploads accept, and may have changed since. An
    export without records states the project's licence.
    """
    return sorted(set(licences)) or [project.licence]


class ClassCodes:
    """The class codes of an export (YOLO's class index, COCO's category id less one): the
    project's classes in their order, then any class a record names that the project no longer
    has, in the order the records first name it.

    The admin form refuses to rename, remove or reorder a labeled project's classes, but one
    changed another way (a shell, an update) failed the whole export with a KeyError. A buyer
    would rather keep every decided box than have one silently missing (an unlabeled object
    teaches a detector that it is background): so a stale class keeps its name under the
    next free code, and the project's classes keep theirs.
    """

    def __init__(self, classes: Iterable[str]) -> None:
        self._codes: dict[str, int] = {}
        for name in classes:
            self.code(name)

    def code(self, name: str) -> int:
        """The code of ``name``, a new one after the others for a class not seen yet."""
        code = self._codes.get(name)
        if code is None:
            code = self._codes[name] = len(self._codes)
        return code

    @property
    def names(self) -> list[str]:
        """Every class by its code."""
        return list(self._codes)


def slug(project: Project) -> str:
    name = "".join(c if c.isalnum() else "-" for c in project.name.lower()).strip("-")
    return f"crowdmint-{project.pk}-{(name or 'dataset')[:60]}"


def yaml_string(text: str) -> str:
    """``text`` as a YAML double-quoted scalar.

    JSON's escapes are YAML's, but ``json.dumps`` writes a character outside the BMP as a
    surrogate pair, which PyYAML (Ultralytics' reader, the Hugging Face Hub's) reads back as two
    broken characters. So the characters stay as they are, except those YAML reads as line breaks
    or that are not printable, escaped one by one.
    """
    quoted = json.dumps(text, ensure_ascii=False)
    return "".join(f"\\u{ord(ch):04x}" if _breaks_yaml(ch) else ch for ch in quoted)


def one_line(text: str) -> str:
    """``text`` with every run of whitespace or control characters made one space, for a YAML
    comment (a name with a line break would otherwise add keys to the file)."""
    return " ".join("".join(" " if _breaks_yaml(ch) else ch for ch in text).split())


def _breaks_yaml(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Zl", "Zp")
