"""``manage.py import_items FILE --project N``: bulk-import items, with a progress bar."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from labeling.models import Project
from market.models import ItemImport
from market.services import ImportReport, ItemImportError, items_import

FORMATS_BY_SUFFIX = {".json": "label_studio", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


class Command(BaseCommand):
    help = (
        "Import items into a project from a Label Studio JSON export, a CSV or a JSON Lines "
        "file: every row validated, duplicates skipped, rejected rows reported."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--project", type=int, required=True, help="The project's id.")
        parser.add_argument(
            "--format",
            choices=sorted(set(FORMATS_BY_SUFFIX.values())),
            help="Default: from the file's suffix (.json: label_studio, .csv, .jsonl).",
        )
        parser.add_argument(
            "--answers",
            choices=ItemImport.Answers.values,
            default=ItemImport.Answers.IGNORE,
            help="What to do with the file's answers: ignore them, keep them as pre-labels, or "
            "make them gold answers (classify and pairwise projects).",
        )
        parser.add_argument(
            "--images", type=Path, help="The folder image paths are relative to (image projects)."
        )
        parser.add_argument("--quiet", action="store_true", help="No progress bar.")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        project = Project.objects.filter(pk=options["project"]).first()
        if project is None:
            raise CommandError(f"no project {options['project']}")
        fmt = options["format"] or FORMATS_BY_SUFFIX.get(path.suffix.lower())
        if fmt is None:
            raise CommandError(f"can't tell the format of {path.name}: pass --format")
        if not path.is_file():
            raise CommandError(f"no file {path}")
        images = options["images"] or (path.parent if project.data_kind == "image" else None)
        started = time.perf_counter()

        def bar(report: ImportReport, fraction: float) -> None:
            if options["quiet"]:
                return
            done = int(fraction * 30)
            rate = report.rows / max(time.perf_counter() - started, 1e-9)
            self.stderr.write(
                f"\r[{'#' * done}{'.' * (30 - done)}] {fraction:4.0%} {report.rows:,} rows, "
                f"{report.created:,} new, {report.duplicates:,} duplicates, "
                f"{report.rejected:,} rejected, {rate:,.0f} rows/s",
                ending="",
            )
            self.stderr.flush()

        try:
            with path.open("rb") as source:
                report = items_import(
                    project=project,
                    source=source,
                    fmt=fmt,
                    answers=options["answers"],
                    images_dir=images,
                    size=path.stat().st_size,
                    progress=bar,
                )
        except ItemImportError as exc:
            raise CommandError(str(exc)) from exc
        if not options["quiet"]:
            self.stderr.write("")
        rate = report.rows / report.seconds if report.seconds else 0.0
        self.stdout.write(
            f"{report.rows} rows in {report.seconds:.2f} s ({rate:,.0f} rows/s): "
            f"{report.created} items created, {report.duplicates} duplicates skipped, "
            f"{report.rejected} rejected"
        )
        for entry in report.report:
            where = "the file" if entry["row"] is None else f"row {entry['row']}"
            self.stdout.write(f"  {where}: {entry['error']}")
        if report.rejected > len(report.report):
            self.stdout.write(f"  … and {report.rejected - len(report.report)} more")
