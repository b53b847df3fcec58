"""The load benchmark: annotation submits against `make stack` (Crowdmint) and Label Studio
1.23.2 (bench/load/peer/), with the same closed-loop load generator, in the same run.

    python bench/load/run.py [--targets crowdmint,ls] [--shapes one,three] [--clients 1,8,32,128]
                             [--modes keepalive,new] [--warmup 5] [--seconds 60] [--out FILE]

Shapes: ``one``: one labeler per fresh item (Label Studio's shape: every request labels a task
nobody has labeled); ``three``: three labelers per item, so every item reaches its decision
(Crowdmint's consensus in Celery) during the run. Label Studio runs the ``one`` shape.

For each run: throughput (2xx per second), p50/p95/p99 latency, errors, CPU per submit (CPU time
of the web server's processes plus the database backends serving it, over the measured window,
per acknowledged submit), and afterwards the checks: every acknowledged annotation is in the
database exactly once, nothing unacknowledged is, and (shape ``three``) every item that got its
labels is decided, with the decision lag (third label to decision) and the queue depth. SQL
statements per submit come from an in-process probe (sqlprobe.py) with the server's settings.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadgen import Request, json_body, run

ROOT = Path(__file__).resolve().parents[2]
CLK_TCK = os.sysconf("SC_CLK_TCK")
MAX_RPS = 2000  # items seeded per run are sized for at most this rate
PER_CLIENT_MAX_RPS = 600


# --- processes and CPU time ---------------------------------------------------------------------


def group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # field 5 of stat: the process group
            pids.append(int(entry.name))
    return pids


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    out = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime
    return out


def psql(url: str, sql: str) -> list[list[str]]:
    done = subprocess.run(
        ["psql", url, "-AtqX", "-F", "\t", "-c", sql], capture_output=True, text=True, check=True
    )
    return [line.split("\t") for line in done.stdout.splitlines() if line]


def backend_pids(server_url: str, database: str) -> list[int]:
    rows = psql(server_url, f"SELECT pid FROM pg_stat_activity WHERE datname = '{database}'")
    return [int(r[0]) for r in rows]


def machine_busy_seconds() -> float:
    """CPU time the whole machine spent busy (all cores), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / CLK_TCK


class CpuMeter:
    """CPU time of the web server's process group, its database backends and the Celery
    workers' process groups (decisions and fraud checks; none for Label Studio) between two
    marks; processes that appear in between count from zero."""

    def __init__(self, server_pgid: int, pg_server: str, database: str, worker_pgids: list[int]):
        self.server_pgid, self.pg_server, self.database = server_pgid, pg_server, database
        self.worker_pgids = worker_pgids
        self.marks: dict[str, dict[str, dict[int, float]]] = {}

    def sample(self) -> dict[str, dict[int, float]]:
        sample = {
            "web": cpu_seconds(group_pids(self.server_pgid)),
            "db": cpu_seconds(backend_pids(self.pg_server, self.database)),
            "loadgen": cpu_seconds([os.getpid()]),
            "machine": {0: machine_busy_seconds()},
        }
        if self.worker_pgids:
            sample["worker"] = cpu_seconds(
                [pid for pgid in self.worker_pgids for pid in group_pids(pgid)]
            )
        return sample

    def mark(self, name: str) -> None:
        self.marks[name] = self.sample()

    def spent(self) -> dict[str, float]:
        start, end = self.marks["start"], self.marks["end"]
        return {
            part: sum(v - start[part].get(pid, 0.0) for pid, v in end[part].items()) for part in end
        }


# --- targets ------------------------------------------------------------------------------------


def read_env(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            name, _, value = line[len("export ") :].partition("=")
            env[name] = value
    return env


class Crowdmint:
    name = "crowdmint"

    def __init__(self) -> None:
        self.env = read_env(ROOT / "var/stack/env")
        url = urlparse(self.env["STACK_URL"])
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80
        db = urlparse(self.env["DATABASE_URL"])
        self.database = db.path.lstrip("/")
        self.pg_server = self.env["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
        self.db_url = self.env["DATABASE_URL"]
        self.server_pgid = int((ROOT / "var/stack/gunicorn.pid").read_text())
        self.worker_pgids = [
            int(path.read_text())
            for path in (
                ROOT / "var/stack/worker-decisions.pid",
                ROOT / "var/stack/worker-moderation.pid",
            )
            if path.exists()
        ]
        self.seed: dict[str, Any] = {}

    def python(self, *args: str) -> str:
        done = subprocess.run(
            [str(ROOT / ".venv/bin/python"), *args],
            cwd=ROOT,
            env={
                **os.environ,
                **self.env,
                "DJANGO_SETTINGS_MODULE": "config.settings",
                "PYTHONPATH": str(ROOT),
            },
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(done.stderr[-3000:])
        return done.stdout.strip().splitlines()[-1]

    def prepare(self, shape: str, clients: int, seconds: float) -> None:
        per_client_rps = min(PER_CLIENT_MAX_RPS, MAX_RPS / clients)
        requests = int(per_client_rps * seconds) + 10
        per_client = requests // 3 + 2 if shape == "three" else requests
        self.seed = json.loads(
            self.python("bench/load/seed_crowdmint.py", shape, str(clients), str(per_client))
        )
        self.shape = shape

    def requests(self, client: int) -> Iterator[Request]:
        first, last = self.seed["items"][client]
        tokens = self.seed["tokens"][client]
        body = json_body({"label": "positive"})
        for item in range(first, last + 1):
            for k, token in enumerate(tokens):
                yield Request(
                    "POST",
                    f"/api/v1/items/{item}/annotations/",
                    {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                    body,
                    key=(item, self.seed["labelers"][client][k]),
                )

    def queue_depth(self) -> int:
        """Work still queued: the items in the decisions' queue and the Celery messages waiting
        on the decisions' queue and the default one (wake-ups, credits, refits)."""
        import redis

        waiting = int(psql(self.db_url, "SELECT count(*) FROM labeling_decisiondue")[0][0])
        broker = redis.Redis.from_url(self.env["REDIS_URL"])
        return waiting + int(broker.llen("decisions")) + int(broker.llen("celery"))

    def verify(self, acked: list[Any], wait_s: float = 60) -> dict[str, Any]:
        project = self.seed["project"]
        report: dict[str, Any] = {"queue_depth_at_end": self.queue_depth()}
        rows = psql(
            self.db_url,
            "SELECT a.item_id, a.annotator_id FROM labeling_annotation a "
            f"JOIN labeling_item i ON i.id = a.item_id WHERE i.project_id = {project}",
        )
        in_db = [(int(a), int(b)) for a, b in rows]
        acked_set = set(acked)
        report.update(
            acknowledged=len(acked),
            acknowledged_twice=len(acked) - len(acked_set),
            in_db=len(in_db),
            duplicates_in_db=len(in_db) - len(set(in_db)),
            missing=len(acked_set - set(in_db)),
            unacknowledged_in_db=len(set(in_db) - acked_set),
        )
        [[mismatch]] = psql(
            self.db_url,
            "SELECT count(*) FROM labeling_item i WHERE i.project_id = "
            f"{project} AND i.label_count <> (SELECT count(*) FROM labeling_annotation a "
            "WHERE a.item_id = i.id)",
        )
        report["label_count_mismatches"] = int(mismatch)
        if self.shape == "three":
            undecided_sql = (
                f"SELECT count(*) FROM labeling_item WHERE project_id = {project} "
                "AND label_count >= required_labels AND status = 'open'"
            )
            report["undecided_at_end"] = int(psql(self.db_url, undecided_sql)[0][0])
            started = time.monotonic()
            while (
                int(psql(self.db_url, undecided_sql)[0][0]) and time.monotonic() - started < wait_s
            ):
                time.sleep(0.5)
            report["undecided_after_drain"] = int(psql(self.db_url, undecided_sql)[0][0])
            report["drain_seconds"] = round(time.monotonic() - started, 1)
            report["queue_depth_after_drain"] = self.queue_depth()
            [stats] = psql(
                self.db_url,
                "WITH lag AS (SELECT extract(epoch FROM i.decided_at - max(a.created_at)) AS s "
                "FROM labeling_item i JOIN labeling_annotation a ON a.item_id = i.id "
                f"WHERE i.project_id = {project} AND i.decided_at IS NOT NULL GROUP BY i.id) "
                "SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY s), "
                "percentile_cont(0.99) WITHIN GROUP (ORDER BY s), max(s) FROM lag",
            )
            report["decided"] = int(stats[0])
            report["decision_lag_ms"] = {
                k: round(1000 * float(v), 1) if v else None
                for k, v in zip(("p50", "p99", "max"), stats[1:], strict=True)
            }
            [[accepted]] = psql(
                self.db_url,
                f"SELECT count(*) FROM labeling_item WHERE project_id = {project} "
                "AND status = 'accepted'",
            )
            report["accepted"] = int(accepted)
        return report

    def acked(self, answers: list[Any]) -> list[Any]:
        return [a.key for a in answers if a.status == 201]

    def probe(self) -> dict[str, Any]:
        """SQL statements of one submit, in-process with the stack's settings (fresh items)."""
        self.prepare("one", 1, 0.01)
        first, _ = self.seed["items"][0]
        token = self.seed["tokens"][0][0]
        out = json.loads(
            self.python(
                "bench/load/sqlprobe.py",
                "POST",
                f"/api/v1/items/{first}/annotations/",
                f"/api/v1/items/{first + 1}/annotations/",
                f"Bearer {token}",
                '{"label": "positive"}',
            )
        )
        return out


class LabelStudio:
    name = "label-studio"

    def __init__(self) -> None:
        seed = json.loads((ROOT / "var/peer/seed.json").read_text())
        self.token = seed["token"]
        self.next_task, self.last_task = seed["tasks"]
        self.host, self.port = "127.0.0.1", int(os.environ.get("PEER_PORT", "8401"))
        self.database = os.environ.get("PEER_DB", "ls_bench")
        self.pg_server = "postgres://postgres@127.0.0.1:5432/postgres"
        self.db_url = f"postgres://postgres@127.0.0.1:5432/{self.database}"
        self.server_pgid = int((ROOT / "var/peer/gunicorn.pid").read_text())
        self.worker_pgids: list[int] = []
        self.ranges: list[tuple[int, int]] = []

    def prepare(self, shape: str, clients: int, seconds: float) -> None:
        per_client_rps = min(100, 400 / clients)  # Label Studio's rate is far lower
        per_client = int(per_client_rps * seconds) + 10
        self.ranges = []
        for _ in range(clients):
            first = self.next_task
            self.next_task += per_client
            if self.next_task - 1 > self.last_task:
                raise RuntimeError("not enough Label Studio tasks seeded: start it with more")
            self.ranges.append((first, self.next_task - 1))

    def requests(self, client: int) -> Iterator[Request]:
        first, last = self.ranges[client]
        body = json_body(
            {
                "result": [
                    {
                        "from_name": "label",
                        "to_name": "text",
                        "type": "choices",
                        "value": {"choices": ["positive"]},
                    }
                ],
                "lead_time": 1.5,
            }
        )
        headers = {"Authorization": f"Token {self.token}", "Content-Type": "application/json"}
        for task in range(first, last + 1):
            yield Request("POST", f"/api/tasks/{task}/annotations/", headers, body, key=task)

    def acked(self, answers: list[Any]) -> list[Any]:
        return [(a.key, json.loads(a.body)["id"]) for a in answers if a.status == 201]

    def verify(self, acked: list[Any], wait_s: float = 0) -> dict[str, Any]:
        if not acked:
            return {"acknowledged": 0}
        tasks = sorted({t for t, _ in acked})
        rows = psql(
            self.db_url,
            "SELECT task_id, id FROM task_completion WHERE task_id BETWEEN "
            f"{tasks[0]} AND {tasks[-1]}",
        )
        in_db = {(int(t), int(i)) for t, i in rows}
        acked_set = set(acked)
        touched = {t for t, _ in acked_set}
        return {
            "acknowledged": len(acked),
            "acknowledged_twice": len(acked) - len(acked_set),
            "in_db": len([r for r in in_db if r[0] in touched]),
            "missing": len(acked_set - in_db),
            "unacknowledged_in_db": len({r for r in in_db if r[0] in touched} - acked_set),
        }

    def probe(self) -> dict[str, Any]:
        self.prepare("one", 1, 0.01)
        first, _ = self.ranges[0]
        ls = subprocess.run(
            [
                str(ROOT / ".venv-peer/bin/python"),
                "-c",
                "import label_studio,os;print(os.path.dirname(label_studio.__file__))",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        env = {
            **os.environ,
            "DJANGO_DB": "default",
            "POSTGRE_NAME": self.database,
            "POSTGRE_USER": "postgres",
            "POSTGRE_PASSWORD": "",
            "POSTGRE_HOST": "127.0.0.1",
            "POSTGRE_PORT": "5432",
            "LABEL_STUDIO_BASE_DATA_DIR": str(ROOT / "var/peer/data"),
            "DJANGO_SETTINGS_MODULE": "core.settings.label_studio",
            "PYTHONPATH": ls,
            "DEBUG": "false",
            "LOG_LEVEL": "WARNING",
        }
        body = json.dumps(
            {
                "result": [
                    {
                        "from_name": "label",
                        "to_name": "text",
                        "type": "choices",
                        "value": {"choices": ["positive"]},
                    }
                ],
                "lead_time": 1.5,
            }
        )
        done = subprocess.run(
            [
                str(ROOT / ".venv-peer/bin/python"),
                str(ROOT / "bench/load/sqlprobe.py"),
                "POST",
                f"/api/tasks/{first}/annotations/",
                f"/api/tasks/{first + 1}/annotations/",
                f"Token {self.token}",
                body,
            ],
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(done.stderr[-3000:])
        return json.loads(done.stdout.strip().splitlines()[-1])


# --- the run ------------------------------------------------------------------------------------


def one_run(
    target: Any, shape: str, clients: int, mode: str, warmup: float, seconds: float
) -> dict[str, Any]:
    target.prepare(shape, clients, warmup + seconds)
    meter = CpuMeter(target.server_pgid, target.pg_server, target.database, target.worker_pgids)
    result = run(
        target.host,
        target.port,
        target.requests,
        clients=clients,
        warmup=warmup,
        seconds=seconds,
        keepalive=mode == "keepalive",
        on_window=meter.mark,
    )
    summary = result.summary()
    spent = meter.spent()
    ours = sum(v for k, v in spent.items() if k != "machine")
    # What else ran on the machine meanwhile (this benchmark's machine is shared): cores' worth.
    summary["other_processes_cores"] = round(
        max(0.0, spent["machine"] - ours) / args_seconds(result), 2
    )
    summary["machine_busy_cores"] = round(spent["machine"] / args_seconds(result), 2)
    ok = summary["ok"] or 1
    summary["cpu_ms_per_submit"] = {
        "web": round(1000 * spent["web"] / ok, 2),
        "db": round(1000 * spent["db"] / ok, 2),
        "web+db": round(1000 * (spent["web"] + spent["db"]) / ok, 2),
    }
    if "worker" in spent:
        summary["cpu_ms_per_submit"]["worker"] = round(1000 * spent["worker"] / ok, 2)
    summary["cpu_ms_per_submit"]["loadgen"] = round(1000 * spent["loadgen"] / ok, 2)
    summary["checks"] = target.verify(target.acked(result.answers))
    summary.update(target=target.name, shape=shape)
    return summary


def args_seconds(result: Any) -> float:
    return float(result.seconds)


def machine() -> dict[str, str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    pg = subprocess.run(["psql", "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "postgresql": pg,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--targets", default="crowdmint,ls")
    parser.add_argument("--shapes", default="one,three")
    parser.add_argument("--clients", default="1,8,32,128")
    parser.add_argument("--modes", default="keepalive")
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    targets = {"crowdmint": Crowdmint, "ls": LabelStudio}
    chosen = [targets[t]() for t in args.targets.split(",")]
    runs = []
    report: dict[str, Any] = {
        "command": " ".join(shlex.quote(a) for a in sys.argv),
        "machine": machine(),
        "runs": runs,
        "sql_per_submit": {},
    }
    for clients, mode in itertools.product(
        [int(c) for c in args.clients.split(",")], args.modes.split(",")
    ):
        for target in chosen:  # interleaved: drift on the shared machine hits both alike
            for shape in args.shapes.split(","):
                if target.name == "label-studio" and shape != "one":
                    continue
                summary = one_run(target, shape, clients, mode, args.warmup, args.seconds)
                runs.append(summary)
                print(json.dumps(summary), flush=True)
    for target in chosen:
        probe = target.probe()
        report["sql_per_submit"][target.name] = probe
        print(
            json.dumps(
                {target.name: {"status": probe["status"], "statements": probe["statements"]}}
            ),
            flush=True,
        )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=1))
        Path(args.out).with_suffix(".md").write_text(markdown(report))


def lag_text(lag: dict[str, Any] | None) -> str:
    return f"{lag['p50']}/{lag['p99']}" if lag else "-"


def markdown(report: dict[str, Any]) -> str:
    """The run as tables: one row per target, shape, clients and connection mode."""
    m = report["machine"]
    sql = {k: v["statements"] for k, v in report["sql_per_submit"].items()}
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, {m['postgresql']}, "
        f"Linux {m['kernel']}. Command: `{report['command']}`.",
        "",
        "SQL statements per submit (in-process probe): "
        + ", ".join(f"{k} {v}" for k, v in sql.items()),
        "",
        "| target | shape | clients | mode | req/s | p50 ms | p95 ms | p99 ms | errors | CPU ms/submit "
        "(web+db) | lost / dup / unacked | decision lag p50/p99 ms | queue at end | other jobs (cores) |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---|---|---:|---:|",
    ]
    for r in report["runs"]:
        c = r["checks"]
        lag = c.get("decision_lag_ms")
        lines.append(
            f"| {r['target']} | {r['shape']} | {r['clients']} | {r['mode']} | {r['rps']} | "
            f"{r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | {r['errors']} | "
            f"{r['cpu_ms_per_submit']['web+db']} | {c.get('missing', '-')} / "
            f"{c.get('duplicates_in_db', 0) + c.get('acknowledged_twice', 0)} / "
            f"{c.get('unacknowledged_in_db', '-')} | "
            f"{lag_text(lag)} | "
            f"{c.get('queue_depth_at_end', '-')} | {r.get('other_processes_cores', '-')} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
