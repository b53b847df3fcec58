"""Dawid-Skene on a GPU (torch, CUDA) against our NumPy engine on the CPU: time and agreement.

Run on a machine with a CUDA GPU and torch's CUDA build: ``PYTHONPATH=. python bench/consensus/gpu.py``
(``--device torch-cpu --sizes 100000`` checks the script anywhere torch is installed). Each size
runs 50 EM iterations on the synthetic crowd of ``synthetic.py`` (K=4, 5 answers per task, 1,000
workers). The CPU engine is timed up to 10M answers; at every size both must agree (max
posterior difference printed). Writes ``results/gpu.md``.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic import crowd

from labeling.consensus import aggregate

RESULTS = Path(__file__).resolve().parent / "results" / "gpu.md"
CPU_LIMIT = 10_000_000


def run(
    device: str, tasks: np.ndarray, workers: np.ndarray, labels: np.ndarray
) -> tuple[float, object]:
    if device.startswith("cuda"):
        import torch

        aggregate(  # warm-up
            tasks[:1000],
            workers[:1000],
            labels[:1000],
            method="dawid_skene",
            device=device,
            max_iter=2,
        )
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = aggregate(
        tasks, workers, labels, method="dawid_skene", device=device, max_iter=50, tol=float("-inf")
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

    name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "torch on the CPU"
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        tasks, workers, labels, truth, _ = crowd(n, seed=0)
        gpu_seconds, gpu = run(args.device, tasks, workers, labels)
        accuracy = float(np.mean(gpu.labels == truth))  # type: ignore[attr-defined]
        cpu_seconds: float | None = None
        difference: float | None = None
        if n <= CPU_LIMIT:
            cpu_seconds, cpu = run("cpu", tasks, workers, labels)
            difference = float(np.abs(cpu.posteriors - gpu.posteriors).max())  # type: ignore[attr-defined]
        rows.append((n, gpu_seconds, cpu_seconds, difference, accuracy))
        print(rows[-1], flush=True)
    lines = [
        "# Dawid-Skene on the GPU (torch) vs NumPy on the CPU, 50 EM iterations",
        "",
        f"Device: {name}; torch {torch.__version__}; numpy {np.__version__}; Python {platform.python_version()}; "
        f"generated {time.strftime('%Y-%m-%d')} by `bench/consensus/gpu.py`.",
        "",
        "| answers | GPU seconds | CPU seconds | speed-up | max posterior difference | accuracy |",
        "|---|---|---|---|---|---|",
    ]
    for n, g, c, d, a in rows:
        speed = f"{c / g:.1f}x" if c else "n/a"
        lines.append(
            f"| {n:,} | {g:.2f} | {f'{c:.2f}' if c else 'not run'} | {speed} | {f'{d:.1e}' if d is not None else 'n/a'} | {a:.4f} |"
        )
    RESULTS.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
