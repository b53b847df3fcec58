"""Export and import speed and peak memory (``make bench-exports``; figures in the README).

For each size, a fresh database gets a project of accepted text records (each with its
``Decision``, as real ones have); then, each in a fresh process: the background export's build
(``market.services.export_build``) as JSON Lines and as Parquet, and the streamed export's
JSON Lines (``market.streams``), and ``manage.py import_items`` of as many new items from a JSON
Lines file. Each process reports its wall time and peak RSS (``ru_maxrss``), and the RSS it had
after loading Django, so the memory a run adds is visible.

    python bench/exports/bench.py [--records 10000,100000] [--database-url postgres://...]
        [--peer .venv-peer]

Without ``--database-url`` it uses SQLite files in a temporary folder. With ``--peer`` (Label
Studio 1.23.2's venv, from ``bench/load/peer/install.sh``), the same run also measures Label
Studio importing the same items file and exporting as many annotated tasks as JSON, on the same
kind of database (``peer_ls.py``). The seeded tables are analysed before the exports, as
autoanalyze would have done long before a dataset reaches that size.
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
    from django.db import connection, transaction
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
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(json.dumps({"project": project.pk}))


def export_async(fmt: str) -> None:
    base = django_setup()
    from django.test import override_settings
    from django.urls import reverse

    from accounts.models import User
    from labeling.models import Project
    from market.models import DatasetExport
    from market.services import export_build

    project = Project.objects.get()
    buyer, _ = User.objects.get_or_create(username="bench-buyer", defaults={"role": "buyer"})
    # As in a worker past its first task: the URLconf (which imports every view) is loaded.
    reverse("item-content", args=[0])
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


def peer_env(venv: Path, tmp: str, database_url: str) -> dict[str, str]:
    """Label Studio's settings for a run: its SQLite file in ``tmp``, or a fresh PostgreSQL
    database beside ``database_url``'s; migrated."""
    python = str(venv / "bin" / "python")
    ls = subprocess.run(
        [python, "-c", "import label_studio, os; print(os.path.dirname(label_studio.__file__))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "DATABASE"))},
        "DJANGO_SETTINGS_MODULE": "core.settings.label_studio",
        "PYTHONPATH": ls,
        "LABEL_STUDIO_BASE_DATA_DIR": f"{tmp}/peer",
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        "DEBUG": "false",
        "SENTRY_DSN": "",
        "COLLECT_ANALYTICS": "false",
        "LOG_LEVEL": "WARNING",
    }
    if database_url:
        admin = database_url.rsplit("/", 1)[0]
        name = database_url.rsplit("/", 1)[1] + "_peer"
        subprocess.run(
            [
                "psql",
                f"{admin}/postgres",
                "-qc",
                f"DROP DATABASE IF EXISTS {name}",
                "-c",
                f"CREATE DATABASE {name}",
            ],
            check=True,
        )
        host, port = admin.split("@", 1)[1].split(":")
        env.update(
            DJANGO_DB="default",
            POSTGRE_NAME=name,
            POSTGRE_USER="postgres",
            POSTGRE_PASSWORD="",
            POSTGRE_HOST=host,
            POSTGRE_PORT=port,
        )
    else:
        env.update(DJANGO_DB="sqlite", DATABASE_NAME=f"{tmp}/peer.sqlite3")
    subprocess.run(
        [python, f"{ls}/manage.py", "migrate", "--noinput", "-v0"],
        env=env,
        check=True,
        capture_output=True,
    )
    return env


def peer_child(venv: Path, env: dict[str, str], *args: str) -> dict[str, float]:
    out = subprocess.run(
        [str(venv / "bin" / "python"), str(Path(__file__).with_name("peer_ls.py")), *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", default="10000,100000")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--out", default=str(ROOT / "bench" / "exports" / "results.md"))
    parser.add_argument("--peer", default="", help="Label Studio's venv (bench/load/peer)")
    options = parser.parse_args()
    peer = Path(options.peer).resolve() if options.peer else None
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
            if peer is not None:
                ls_env = peer_env(peer, tmp, options.database_url)
                for name, args in [
                    ("peer: Label Studio export, JSON (in the request)", ("export", str(records))),
                    ("peer: Label Studio import, JSON", ("import", str(items))),
                ]:
                    result = peer_child(peer, ls_env, *args)
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
    if peer is not None:
        lines += ["", "Against Label Studio in this run (its seconds / ours):", ""]
        for database, n in dict.fromkeys((r["database"], r["n"]) for r in results):
            seconds = {
                r["case"]: r["seconds"] for r in results if (r["database"], r["n"]) == (database, n)
            }
            export_peer = seconds["peer: Label Studio export, JSON (in the request)"]
            import_peer = seconds["peer: Label Studio import, JSON"]
            lines.append(
                f"- {database}, {n:,} records: export {export_peer / seconds['export, background, JSON Lines']:,.0f}× "
                f"(background JSON Lines), {export_peer / seconds['export, background, Parquet']:,.0f}× (Parquet), "
                f"{export_peer / seconds['export, streamed, JSON Lines']:,.0f}× (streamed); "
                f"import {import_peer / seconds['import, JSON Lines']:.1f}×"
            )
    load = os.getloadavg()
    lines += [
        "",
        f"Load average at the end of the run: {load[0]:.2f} (1 min), {load[1]:.2f} (5 min).",
    ]
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
