"""Our torch backend (on a GPU) against our NumPy engine: time and agreement, for ``dawid_skene`` and
``bayes_ds`` (Bayesian Dawid-Skene, the default method).

Run on a machine with a CUDA GPU and torch's CUDA build: ``PYTHONPATH=. python bench/consensus/gpu.py``
(``make bench-gpu``). Each size runs 50 EM iterations of each method on the synthetic crowd of
``synthetic.py`` (K=4, 5 answers per task, 1,000 workers). NumPy is timed up to 10M answers; at
every size both must agree (max posterior difference printed). On CUDA it writes
``results/gpu.md``.

``--device torch-cpu --sizes 1000000`` runs the same comparison with torch's CPU build, anywhere
torch is installed: it writes ``results/torch_cpu.md`` (CPU figures, titled as such), never
``gpu.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic import crowd

from labeling.consensus import aggregate

RESULTS = Path(__file__).resolve().parent / "results"
NUMPY_LIMIT = 10_000_000
METHODS = ("dawid_skene", "bayes_ds")


def run(
    method: str, device: str, tasks: np.ndarray, workers: np.ndarray, labels: np.ndarray
) -> tuple[float, object]:
    """Seconds for 50 EM iterations (``tol=-inf``: no early stop), and the result."""
    if device != "cpu":  # a first torch call pays for lazy initialisation: not timed
        aggregate(
            tasks[:1000], workers[:1000], labels[:1000], method=method, device=device, max_iter=2
        )
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
    start = time.perf_counter()
    result = aggregate(
        tasks, workers, labels, method=method, device=device, max_iter=50, tol=float("-inf")
    )
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--sizes", default="1000000,10000000,100000000")
    args = parser.parse_args()
    import torch

    on_gpu = args.device.startswith("cuda")
    if on_gpu:
        name = f"{torch.cuda.get_device_name(torch.device(args.device))} (torch, CUDA)"
    else:
        name = f"torch's CPU build on {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        tasks, workers, labels, truth, _ = crowd(n, seed=0)
        for method in METHODS:
            torch_seconds, fit = run(method, args.device, tasks, workers, labels)
            accuracy = float(np.mean(fit.labels == truth))  # type: ignore[attr-defined]
            numpy_seconds: float | None = None
            difference: float | None = None
            if n <= NUMPY_LIMIT:
                numpy_seconds, reference = run(method, "cpu", tasks, workers, labels)
                difference = float(
                    np.abs(reference.posteriors - fit.posteriors).max()  # type: ignore[attr-defined]
                )
            rows.append((n, method, torch_seconds, numpy_seconds, difference, accuracy))
            print(rows[-1], flush=True)
    where = "the GPU" if on_gpu else "the CPU (torch's CPU build; no GPU)"
    lines = [
        f"# Our torch backend on {where} vs our NumPy engine, 50 EM iterations",
        "",
        f"torch device: {name}; torch {torch.__version__}; numpy {np.__version__}; "
        f"Python {platform.python_version()}; load average {os.getloadavg()[0]:.1f} at the end; "
        f"generated {time.strftime('%Y-%m-%d')} by `bench/consensus/gpu.py --device {args.device}`.",
        "",
        "| answers | method | torch seconds | NumPy seconds | NumPy / torch | max posterior difference | accuracy |",
        "|---|---|---|---|---|---|---|",
    ]
    for n, method, t, c, d, a in rows:
        ratio = f"{c / t:.2f}x" if c else "n/a"
        lines.append(
            f"| {n:,} | `{method}` | {t:.2f} | {f'{c:.2f}' if c else 'not run'} | {ratio} | "
            f"{f'{d:.1e}' if d is not None else 'n/a'} | {a:.4f} |"
        )
    out = RESULTS / ("gpu.md" if on_gpu else "torch_cpu.md")
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
