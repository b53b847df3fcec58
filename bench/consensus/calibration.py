"""Do the posteriors mean what they say? Calibration (and accuracy) of our methods on the real
crowds, with and without gold tasks, and on synthetic crowds.

Items are accepted, and contributors paid, once their posterior reaches 0.95, so two measures per
dataset and method, both against the published truth:

* ECE: tasks binned by their top posterior in 10 equal-width bins; the bins' |share right - mean
  top posterior|, weighted by their share of the tasks.
* right >= 0.95: the share right among the tasks whose top posterior is at least 0.95, and how many
  tasks that is.

Without gold: each method on each dataset as published. With gold: one task in ten (the platform's
rate for a contributor with a trusted record) drawn at random as gold, ``GOLD_DRAWS`` seeded draws, measured on the other
nine tenths; gold anchors every method's fit, and ``bayes_ds`` also calibrates on it (its
``calibration_floor``). Ours only: this is also the quick accuracy check of our methods
(``accuracy.py`` runs crowd-kit beside them and takes ~25 minutes; this takes about one).

Run: PYTHONPATH=. .venv/bin/python bench/consensus/calibration.py
Writes bench/consensus/results/calibration.md. ``CROWD_BENCHMARKS`` points at the datasets
(default: ``../shared/benchmarks/crowd`` beside the repository).
"""

from __future__ import annotations

import csv
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

from labeling.consensus import (
    METHODS,
    aggregate,
    confident_accuracy,
    expected_calibration_error,
)

sys.path.insert(0, str(Path(__file__).parent))
from synthetic import crowd as synthetic_crowd

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("CROWD_BENCHMARKS", REPO.parent / "shared" / "benchmarks" / "crowd"))
DATASETS = ["duck", "dog", "face", "sentiment", "rte", "temp", "wsd", "web"]
OUT = Path(__file__).parent / "results" / "calibration.md"
DEFAULT = "bayes_ds"
LEVEL = 0.95
GOLD_SHARE = 0.1
GOLD_DRAWS = 5
SYNTHETIC = [
    {"n_labels": 20_000, "k": 4, "overlap": 5, "n_workers": 200},
    {"n_labels": 9_000, "k": 2, "overlap": 3, "n_workers": 176},
    {"n_labels": 30_000, "k": 4, "overlap": 3, "n_workers": 770},
    {"n_labels": 20_000, "k": 3, "overlap": 7, "n_workers": 100},
]
SYNTHETIC_SEEDS = 3

IntArray = npt.NDArray[np.int64]
Crowd = tuple[IntArray, IntArray, IntArray, IntArray, int]


def load(name: str) -> Crowd:
    """``(tasks, workers, labels, truth, K)``: codes in first-appearance order (ids are strings,
    as published), classes in sorted order; truth -1 for a task without one."""
    with open(DATA / name / "labels.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    with open(DATA / name / "truth.csv", newline="") as handle:
        truth_of = {row["task"]: row["label"] for row in csv.DictReader(handle)}
    classes = sorted({row["label"] for row in rows} | set(truth_of.values()))
    class_code = {c: i for i, c in enumerate(classes)}
    task_code: dict[str, int] = {}
    worker_code: dict[str, int] = {}
    tasks = np.array([task_code.setdefault(r["task"], len(task_code)) for r in rows])
    workers = np.array([worker_code.setdefault(r["worker"], len(worker_code)) for r in rows])
    labels = np.array([class_code[r["label"]] for r in rows])
    truth = np.full(len(task_code), -1)
    for task, label in truth_of.items():
        if task in task_code:
            truth[task_code[task]] = class_code[label]
    return tasks, workers, labels, truth, len(classes)


Measures = tuple[float, float, float, int]  # accuracy, ECE, right >= LEVEL, how many


def measure(posteriors: npt.NDArray[np.float64], truth: IntArray) -> Measures:
    known = truth >= 0
    accuracy = float(np.mean(np.argmax(posteriors[known], axis=1) == truth[known]))
    right, n = confident_accuracy(posteriors, truth, LEVEL)
    return accuracy, expected_calibration_error(posteriors, truth), right, n


def without_gold(crowds: dict[str, Crowd]) -> dict[tuple[str, str], Measures]:
    out = {}
    for name, (tasks, workers, labels, truth, k) in crowds.items():
        for method in METHODS:
            result = aggregate(tasks, workers, labels, n_classes=k, method=method)
            out[name, method] = measure(result.posteriors, truth)
    return out


def with_gold(
    crowds: dict[str, Crowd], methods: list[str]
) -> dict[tuple[str, str], tuple[Measures, float]]:
    """Mean measures over the gold draws, on the non-gold tasks; and the mean floor."""
    out = {}
    for name, (tasks, workers, labels, truth, k) in crowds.items():
        known = np.flatnonzero(truth >= 0)
        for method in methods:
            runs, floors = [], []
            for draw in range(GOLD_DRAWS):
                rng = np.random.default_rng(draw)
                chosen = rng.choice(
                    known, size=max(1, round(GOLD_SHARE * known.size)), replace=False
                )
                gold = {int(t): int(truth[t]) for t in chosen}
                result = aggregate(tasks, workers, labels, n_classes=k, method=method, gold=gold)
                held = truth.copy()
                held[chosen] = -1
                runs.append(measure(result.posteriors, held))
                floors.append(result.calibration_floor)
            counts = [r[3] for r in runs]
            right = [r[2] for r in runs if r[3]]
            out[name, method] = (
                (
                    float(np.mean([r[0] for r in runs])),
                    float(np.mean([r[1] for r in runs])),
                    float(np.mean(right)) if right else float("nan"),
                    round(float(np.mean(counts))),
                ),
                float(np.mean(floors)),
            )
    return out


def synthetic(methods: list[str]) -> dict[tuple[int, str], tuple[float, float]]:
    out = {}
    for i, spec in enumerate(SYNTHETIC):
        for method in methods:
            scores = []
            for seed in range(SYNTHETIC_SEEDS):
                tasks, workers, labels, truth, _ = synthetic_crowd(seed=seed, **spec)  # type: ignore[arg-type]
                result = aggregate(tasks, workers, labels, n_classes=spec["k"], method=method)
                accuracy, ece, _, _ = measure(result.posteriors, truth)
                scores.append((accuracy, ece))
            out[i, method] = (
                float(np.mean([s[0] for s in scores])),
                float(np.mean([s[1] for s in scores])),
            )
    return out


def _right(right: float, n: int) -> str:
    return "— (0)" if n == 0 else f"{right:.3f} ({n})"


def main() -> None:
    started = time.perf_counter()
    crowds = {name: load(name) for name in DATASETS}
    plain = without_gold(crowds)
    gold = with_gold(crowds, [DEFAULT, "dawid_skene"])
    synth = synthetic([DEFAULT, "dawid_skene"])
    header = "| method | " + " | ".join(DATASETS) + " | mean |"
    rule = "|---|" + "---|" * (len(DATASETS) + 1)

    def mean(values: list[float]) -> str:
        return f"{np.mean(values):.4f}"

    lines = [
        "# Calibration of the posteriors (and accuracy of our methods)",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, numpy {np.__version__}; generated "
        f"{time.strftime('%Y-%m-%d')} by `bench/consensus/calibration.py` in "
        f"{time.perf_counter() - started:.0f} s. Datasets: `../shared/benchmarks/crowd/` "
        "(8 crowds with published truth). The platform's default method is "
        f"`{DEFAULT}`.",
        "",
        "ECE: 10 equal-width bins of the top posterior, against the truth. "
        f"Right >= {LEVEL}: the share right among the tasks whose top posterior is at least "
        f"{LEVEL} (how many tasks that is). Target for the default: mean ECE <= 0.05, and on "
        f"every crowd at least 95% right at >= {LEVEL} (or no task there).",
        "",
        "## Without gold",
        "",
        "### ECE",
        "",
        header,
        rule,
    ]
    for method in METHODS:
        eces = [plain[n, method][1] for n in DATASETS]
        lines.append(
            f"| {method} | " + " | ".join(f"{e:.3f}" for e in eces) + f" | {np.mean(eces):.3f} |"
        )
    lines += ["", f"### Right >= {LEVEL} (tasks)", "", header[: -len(" mean |")], rule[:-4]]
    for method in METHODS:
        cells = [_right(plain[n, method][2], plain[n, method][3]) for n in DATASETS]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines += ["", "### Accuracy (ours; crowd-kit beside it in `accuracy.md`)", "", header, rule]
    for method in METHODS:
        accuracies = [plain[n, method][0] for n in DATASETS]
        lines.append(
            f"| {method} | "
            + " | ".join(f"{a:.4f}" for a in accuracies)
            + f" | {mean(accuracies)} |"
        )
    lines += [
        "",
        f"## With gold: one task in ten, {GOLD_DRAWS} draws, measured on the other tasks",
        "",
        "Each cell: ECE / right >= 0.95 (tasks) / accuracy; `bayes_ds` also shows its calibration "
        "floor (the share of tasks on which, judging by the gold, the crowd's answers carry no "
        "information). `dawid_skene` gets the same gold (it anchors the fit) and no calibration.",
        "",
        "| method | " + " | ".join(DATASETS) + " | mean ECE | mean accuracy |",
        "|---|" + "---|" * (len(DATASETS) + 2),
    ]
    for method in [DEFAULT, "dawid_skene"]:
        cells = []
        for n in DATASETS:
            (accuracy, ece, right, count), floor = gold[n, method]
            cell = f"{ece:.3f} / {_right(right, count)} / {accuracy:.4f}"
            if method == DEFAULT:
                cell += f" / floor {floor:.3f}"
            cells.append(cell)
        eces = [gold[n, method][0][1] for n in DATASETS]
        accuracies = [gold[n, method][0][0] for n in DATASETS]
        lines.append(
            f"| {method} | " + " | ".join(cells) + f" | {np.mean(eces):.3f} | {mean(accuracies)} |"
        )
    lines += [
        "",
        f"## Synthetic crowds, without gold ({SYNTHETIC_SEEDS} seeds each)",
        "",
        "`bench/consensus/synthetic.py` crowds (good workers, spammers, adversaries, biased). "
        "Each cell: accuracy / ECE.",
        "",
        "| crowd | " + " | ".join([DEFAULT, "dawid_skene"]) + " |",
        "|---|---|---|",
    ]
    for i, spec in enumerate(SYNTHETIC):
        shape = (
            f"{spec['n_labels']:,} answers, K={spec['k']}, {spec['overlap']} per task, "
            f"{spec['n_workers']} workers"
        )
        cells = [f"{synth[i, m][0]:.4f} / {synth[i, m][1]:.3f}" for m in [DEFAULT, "dawid_skene"]]
        lines.append(f"| {shape} | " + " | ".join(cells) + " |")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
