"""Dawid-Skene speed and peak memory: ours vs crowd-kit 1.4.2, 50 EM iterations each.

Each run is a fresh subprocess (so peak RSS is that run's alone): it builds the seeded crowd, then
times one aggregate call (ours: `aggregate(..., max_iter=50, tol=-inf)`, everything included:
validation, de-duplication, layout) or `DawidSkene(n_iter=50, tol=-inf).fit` on the DataFrame.
`ours-bayes_ds` times the default method the same way (50 iterations of the same engine, plus its
community prior's M-step).

Run: PYTHONPATH=. .venv-bench/bin/python bench/consensus/speed.py
Writes bench/consensus/results/speed.md.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(__file__).parent / "results" / "speed.md"
SIZES = [100_000, 1_000_000, 10_000_000]
CROWDKIT_SIZES = {100_000, 1_000_000}  # 10M under crowd-kit takes many minutes and >10 GB


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(engine: str, n_labels: int) -> None:
    import resource
    import warnings

    import numpy as np

    sys.path.insert(0, str(Path(__file__).parent))
    from synthetic import crowd

    warnings.filterwarnings("ignore")
    tasks, workers, labels, truth, _ = crowd(n_labels, seed=0)
    if engine.startswith("ours"):
        from labeling.consensus import aggregate

        method = "bayes_ds" if engine == "ours-bayes_ds" else "dawid_skene"
        precision = "float64" if method == "bayes_ds" else engine.split("-")[1]
        before = _rss_mb()
        start = time.perf_counter()
        result = aggregate(
            tasks,
            workers,
            labels,
            method=method,
            max_iter=50,
            tol=float("-inf"),
            precision=precision,
        )
        seconds = time.perf_counter() - start
        predicted = result.labels
        iterations = result.iterations
    else:
        import pandas as pd
        from crowdkit.aggregation import DawidSkene

        frame = pd.DataFrame({"task": tasks, "worker": workers, "label": labels})
        before = _rss_mb()
        start = time.perf_counter()
        model = DawidSkene(n_iter=50, tol=float("-inf")).fit(frame)
        seconds = time.perf_counter() - start
        predicted = model.labels_.reindex(range(truth.size)).to_numpy()
        iterations = len(model.loss_history_)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_mb": peak,
                "before_mb": before,
                "iterations": iterations,
                "accuracy": float(np.mean(predicted == truth)),
            }
        )
    )


def main() -> None:
    rows = []
    for n in SIZES:
        engines = ["ours-float64", "ours-float32", "ours-bayes_ds"]
        if n in CROWDKIT_SIZES:
            engines.append("crowd-kit")
        for engine in engines:
            output = subprocess.run(
                [sys.executable, __file__, "--child", engine, str(n)],
                check=True,
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
            ).stdout
            record = json.loads(output.strip().splitlines()[-1])
            rows.append((n, engine, record))
            print(n, engine, record, flush=True)
    import numpy as np

    from labeling.consensus.dawid_skene import default_threads

    lines = [
        "# Dawid-Skene speed: ours vs crowd-kit 1.4.2 (50 EM iterations)",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"numpy {np.__version__}; generated {time.strftime('%Y-%m-%d')} by "
        "`bench/consensus/speed.py`. Synthetic crowd: K=4, 5 answers per task, 1,000 workers "
        "(good, spammers, adversaries, biased; see `synthetic.py`). Time covers the whole call "
        "(validation, de-duplication, layout, 50 iterations); ours runs its per-answer work on "
        f"{default_threads()} threads (the default: the CPUs available, at most 8). "
        "Both engines run in the same invocation, each case in a fresh subprocess, so the "
        "ratios compare like with like. Peak RSS is the subprocess's "
        "high-water mark, including the input arrays (`before` = RSS with the data built). "
        "crowd-kit at 10M is not run (many minutes, memory beyond this machine's comfort).",
        "",
        "| answers | engine | seconds | speed-up vs crowd-kit | peak RSS MB | before MB | accuracy |",
        "|---|---|---|---|---|---|---|",
    ]
    baseline = {n: r["seconds"] for n, e, r in rows if e == "crowd-kit"}
    for n, engine, record in rows:
        speedup = f"{baseline[n] / record['seconds']:.0f}x" if n in baseline else "n/a"
        if engine == "crowd-kit":
            speedup = "1x"
        lines.append(
            f"| {n:,} | {engine} | {record['seconds']:.2f} | {speedup} | "
            f"{record['peak_mb']:.0f} | {record['before_mb']:.0f} | {record['accuracy']:.4f} |"
        )
    for n in SIZES:
        if n not in CROWDKIT_SIZES:
            lines.append(f"| {n:,} | crowd-kit | skipped | | | | |")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]))
    else:
        main()
