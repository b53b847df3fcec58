"""Export and import speed and peak memory (``make bench-exports``; figures in the README).

For each size, a fresh database gets a project of accepted text records (each with its
``Decision``, as real ones have); then, each in a fresh process: the background export's build
(``market.services.export_build``) as JSON Lines and as Parquet, and the streamed export's
JSON Lines (``market.streams``), and ``manage.py import_items`` of as many new items from a JSON
Lines file. Each process reports its wall time and peak RSS (``ru_maxrss``), and the RSS it had
after loading Django, so the memory a run adds is visible.

    python bench/exports/bench.py [--records 10000,100000] [--database-url postgres://...]

Without ``--database-url`` it uses SQLite files in a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "lazy",
    "dog",
    "battery",
    "phone",
    "screen",
    "great",
    "terrible",
    "fast",
    "slow",
    "love",
    "hate",
    "delivery",
    "box",
    "colour",
    "fit",
    "price",
    "support",
]


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def django_setup() -> float:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    return rss_mib()


def seed(records: int) -> None:
    django_setup()
    from django.db import transaction
    from django.utils import timezone

    from labeling.models import Decision, Item, Project

    project = Project.objects.create(
        name="Bench reviews", data_kind="text", classes=["positive", "negative"]
    )
    rng = random.Random(7)
    now = timezone.now()
    batch = 10_000
    for start in range(0, records, batch):
        with transaction.atomic():
            items = Item.objects.bulk_create(
                [
                    Item(
                        project=project,
                        text=" ".join(rng.choice(WORDS) for _ in range(14)) + f" #{n}",
                        content_sha256=f"{n:064x}",
                        near_hash=f"t{n:064x}",
                        required_labels=3,
                        status="accepted",
                        decided_label=rng.choice(["positive", "negative"]),
                        decided_value={},
                        decided_at=now,
                        confidence=0.9 + rng.random() / 10,
                        agreement=1.0,
                        label_count=3,
                        decision_version=1,
                        licence="CC-BY-4.0",
                    )
                    for n in range(start, min(start + batch, records))
                ],
                batch_size=2000,
            )
            Decision.objects.bulk_create(
                [
                    Decision(
                        item=item,
                        version=1,
                        label=item.decided_label,
                        posterior=item.confidence or 0.0,
                        method="dawid_skene",
                        decided_by="crowd",
                        n_classes=2,
                    )
                    for item in items
                ],
                batch_size=2000,
            )
    print(json.dumps({"project": project.pk}))


def export_async(fmt: str) -> None:
    base = django_setup()
    from django.test import override_settings

    from accounts.models import User
    from labeling.models import Project
    from market.models import DatasetExport
    from market.services import export_build

    project = Project.objects.get()
    buyer, _ = User.objects.get_or_create(username="bench-buyer", defaults={"role": "buyer"})
    with override_settings(MEDIA_ROOT=os.environ["BENCH_MEDIA"]):
        export = DatasetExport.objects.create(
            project=project, buyer=buyer, format=fmt, base_url="http://bench/"
        )
        started = time.perf_counter()
        export = export_build(export_id=export.pk)
        seconds = time.perf_counter() - started
    assert export.status == "done", export.error
    report(seconds, base, records=export.records, size=export.size_bytes)


def export_stream() -> None:
    base = django_setup()
    from labeling.models import Project
    from market import records as rec
    from market.streams import stream_chunks

    project = Project.objects.get()
    started = time.perf_counter()
    rows = rec.record_rows(
        rec.record_tuples(rec.records_queryset(project, rec.RecordFilters())),
        project,
        lambda pk, side: f"http://bench/api/v1/items/{pk}/content",
    )
    size = count = 0
    for chunk in stream_chunks("jsonl", rows):
        size += len(chunk.encode())
        count += chunk.count("\n")
    report(time.perf_counter() - started, base, records=count, size=size)


def import_file(path: str) -> None:
    base = django_setup()
    from labeling.models import Project
    from market.services import items_import

    project = Project.objects.create(
        name="Bench import", data_kind="text", classes=["positive", "negative"]
    )
    started = time.perf_counter()
    with open(path, "rb") as source:
        result = items_import(project=project, source=source, fmt="jsonl")
    assert result.created == result.rows, result
    report(time.perf_counter() - started, base, records=result.created, size=0)


def report(seconds: float, base: float, *, records: int, size: int) -> None:
    print(
        json.dumps(
            {
                "seconds": round(seconds, 3),
                "records": records,
                "size_bytes": size,
                "peak_rss_mib": round(rss_mib(), 1),
                "rss_after_setup_mib": round(base, 1),
            }
        )
    )


def child(env: dict[str, str], *args: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, *args], env=env, check=True, capture_output=True, text=True
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", default="10000,100000")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--out", default=str(ROOT / "bench" / "exports" / "results.md"))
    options = parser.parse_args()
    results = []
    for records in [int(n) for n in options.records.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            if options.database_url:
                url = options.database_url
                name = url.rsplit("/", 1)[1]
                admin = url.rsplit("/", 1)[0] + "/postgres"
                subprocess.run(
                    [
                        "psql",
                        admin,
                        "-qc",
                        f"DROP DATABASE IF EXISTS {name}",
                        "-c",
                        f"CREATE DATABASE {name}",
                    ],
                    check=True,
                )
                engine = "PostgreSQL"
            else:
                url = f"sqlite:///{tmp}/bench.sqlite3"
                engine = "SQLite"
            env = {
                **{k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CHAIN_RPC_URL")},
                "DATABASE_URL": url,
                "BENCH_MEDIA": f"{tmp}/media",
                "LOG_LEVEL": "WARNING",
            }
            subprocess.run(
                [sys.executable, str(ROOT / "manage.py"), "migrate", "-v0"], env=env, check=True
            )
            child(env, "seed", str(records))
            rng = random.Random(11)
            items = Path(tmp) / "items.jsonl"
            with items.open("w") as out:
                for n in range(records):
                    text = " ".join(rng.choice(WORDS) for _ in range(14))
                    out.write(json.dumps({"text": f"{text} import {n}"}) + "\n")
            cases = [
                ("export, background, JSON Lines", ("export_async", "jsonl")),
                ("export, background, Parquet", ("export_async", "parquet")),
                ("export, streamed, JSON Lines", ("export_stream",)),
                ("import, JSON Lines", ("import_file", str(items))),
            ]
            for name, args in cases:
                result = child(env, *args)
                result.update({"case": name, "database": engine, "n": records})
                print(json.dumps(result), flush=True)
                results.append(result)
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    lines = [
        f"Machine: {machine}. Each row is a fresh process; peak RSS includes Django (RSS after "
        "setup shown).",
        "",
        "| case | database | records | seconds | records/s | peak RSS MiB | RSS after setup MiB | size |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        rate = r["records"] / r["seconds"] if r["seconds"] else 0
        lines.append(
            f"| {r['case']} | {r['database']} | {r['records']:,} | {r['seconds']:.2f} | "
            f"{rate:,.0f} | {r['peak_rss_mib']:.0f} | {r['rss_after_setup_mib']:.0f} | "
            f"{r['size_bytes'] / 1e6:.1f} MB |"
        )
    Path(options.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in (
        "seed",
        "export_async",
        "export_stream",
        "import_file",
    ):
        command, *rest = sys.argv[1:]
        if command == "seed":
            seed(int(rest[0]))
        elif command == "export_async":
            export_async(rest[0])
        elif command == "export_stream":
            export_stream()
        else:
            import_file(rest[0])
    else:
        main()
