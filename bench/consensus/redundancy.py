"""Labels saved by adaptive redundancy: stop asking once an item's posterior is confident enough.

Crowd: a pool of workers from ``bench/consensus/synthetic.py`` (good, spammers, adversaries,
biased; 4 classes). A warm-up batch (every task answered by 5 random workers) is aggregated with
Dawid-Skene; its confusion matrices and class priors drive the online decisions. Then, for each
evaluation item, up to ``MAX_LABELS`` distinct random workers answer one at a time; after each
answer :func:`labeling.consensus.item_posterior` gives the item's posterior, and the adaptive
policy stops once ``max(posterior) >= threshold`` after at least ``MIN_LABELS`` answers. Fixed
overlap ``n`` uses the first ``n`` answers of the same sequences (common random numbers), decided by
majority vote and by the same posterior. "True confusions" replaces the Dawid-Skene estimates by
the generating matrices: the upper bound of what a perfect worker model could save. "The
platform's online model" is what ``labeling/services/decisions.py`` uses: a ``bayes_ds`` fit, each
labeler's rows shrunk toward a one-coin labeler of 0.8 worth two answers, bounded class priors.

Run: PYTHONPATH=. .venv/bin/python bench/consensus/redundancy.py
Writes bench/consensus/results/redundancy.md.
"""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

from labeling.consensus import (
    aggregate,
    bounded_priors,
    class_priors,
    item_posterior,
    labeler_confusions,
)

sys.path.insert(0, str(Path(__file__).parent))
from synthetic import worker_confusions

OUT = Path(__file__).parent / "results" / "redundancy.md"
K = 4
N_WORKERS = 200
WARMUP_TASKS = 3000
WARMUP_OVERLAP = 5
N_ITEMS = 3000
MIN_LABELS = 2
MAX_LABELS = 7
THRESHOLD = 0.95
SWEEP_THRESHOLDS = [0.8, 0.9, 0.95, 0.99, 0.995, 0.999]
SWEEP_MAX_LABELS = 15  # for "labels needed to reach 95%", the policies may go further
SEEDS = [0, 1, 2]
TARGET = 0.95
SMOOTHING = 1.0  # Dirichlet pseudo-count per confusion cell

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def _answers(
    confusions: FloatArray, truth: IntArray, length: int, rng: np.random.Generator
) -> tuple[IntArray, IntArray]:
    """``(items, length)`` distinct random workers per item and the labels they give."""
    n_workers = confusions.shape[0]
    workers = np.argsort(rng.random((truth.size, n_workers)), axis=1)[:, :length]
    cumulative = np.cumsum(confusions[workers, truth[:, None]], axis=2)
    draw = rng.random(workers.shape)[..., None]
    labels = np.minimum((draw > cumulative).sum(axis=2), K - 1)
    return workers.astype(np.int64), labels.astype(np.int64)


def _prefix_posteriors(
    confusions: FloatArray, priors: FloatArray, workers: IntArray, labels: IntArray
) -> FloatArray:
    """``(items, length, K)``: the posterior after each answer, via ``item_posterior``."""
    items, length = workers.shape
    out = np.empty((items, length, K))
    for i in range(items):
        for j in range(length):
            out[i, j] = item_posterior(confusions, priors, workers[i, : j + 1], labels[i, : j + 1])
    return out


def _adaptive(
    posteriors: FloatArray, truth: IntArray, threshold: float, max_labels: int
) -> tuple[float, float]:
    """Mean labels per item and accuracy of stop-at-threshold between MIN and max labels."""
    confident = posteriors[:, :max_labels].max(axis=2) >= threshold
    confident[:, : MIN_LABELS - 1] = False
    confident[:, max_labels - 1] = True
    stop = np.argmax(confident, axis=1)
    decided = posteriors[np.arange(truth.size), stop].argmax(axis=1)
    return float(np.mean(stop + 1)), float(np.mean(decided == truth))


def _majority(labels: IntArray, overlap: int) -> IntArray:
    counts = np.zeros((labels.shape[0], K))
    np.add.at(counts, (np.arange(labels.shape[0])[:, None], labels[:, :overlap]), 1.0)
    return counts.argmax(axis=1)  # ties to the lowest class, as aggregate() does


def run_seed(seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    true_conf = worker_confusions(N_WORKERS, K, rng)

    warm_truth = rng.integers(0, K, WARMUP_TASKS)
    warm_workers, warm_labels = _answers(true_conf, warm_truth, WARMUP_OVERLAP, rng)
    fitted = aggregate(
        np.repeat(np.arange(WARMUP_TASKS), WARMUP_OVERLAP),
        warm_workers.ravel(),
        warm_labels.ravel(),
        n_classes=K,
        n_workers=N_WORKERS,
        method="dawid_skene",
    )
    assert fitted.confusion is not None
    ds_conf = fitted.confusion
    ds_prior = fitted.posteriors.mean(axis=0)
    # With ~19 warm-up answers per (worker, true class), maximum-likelihood confusion rows are
    # often exactly 0 off the diagonal, and one answer then rules a class out (up to the 1e-10
    # clip), so the posterior is overconfident. Posterior-mean rows under a Dirichlet(1) prior fix
    # that: (expected counts + 1) / (expected total + K).
    seen = np.zeros((N_WORKERS, K))
    np.add.at(
        seen,
        warm_workers.ravel(),
        fitted.posteriors[np.repeat(np.arange(WARMUP_TASKS), WARMUP_OVERLAP)],
    )
    smoothed = (ds_conf * seen[:, :, None] + SMOOTHING) / (seen[:, :, None] + K * SMOOTHING)

    # What the platform's online decisions use: a bayes_ds fit, each labeler's rows shrunk toward a
    # one-coin labeler of 0.8 worth 2 answers (CONSENSUS_DEFAULT_ACCURACY, LABELER_PRIOR_STRENGTH),
    # bounded class priors.
    warm_tasks = np.repeat(np.arange(WARMUP_TASKS), WARMUP_OVERLAP)
    bayes = aggregate(
        warm_tasks,
        warm_workers.ravel(),
        warm_labels.ravel(),
        n_classes=K,
        n_workers=N_WORKERS,
        method="bayes_ds",
    )
    online_conf = labeler_confusions(
        warm_tasks, warm_workers.ravel(), warm_labels.ravel(), bayes.posteriors, N_WORKERS, 0.8, 2.0
    )
    online_prior = bounded_priors(class_priors(bayes.posteriors))

    truth = rng.integers(0, K, N_ITEMS)
    workers, labels = _answers(true_conf, truth, SWEEP_MAX_LABELS, rng)
    posts = {
        "platform": _prefix_posteriors(online_conf, online_prior, workers, labels),
        "ds": _prefix_posteriors(smoothed, ds_prior, workers, labels),
        "ds_raw": _prefix_posteriors(ds_conf, ds_prior, workers, labels),
        "true": _prefix_posteriors(true_conf, np.full(K, 1.0 / K), workers, labels),
    }
    row: dict[str, float] = {"warmup_accuracy": float(np.mean(fitted.labels == warm_truth))}
    for source, post in posts.items():
        for threshold in SWEEP_THRESHOLDS:
            for cap in (MAX_LABELS, SWEEP_MAX_LABELS):
                n, acc = _adaptive(post, truth, threshold, cap)
                row[f"adaptive/{source}/{threshold}/{cap}/labels"] = n
                row[f"adaptive/{source}/{threshold}/{cap}/accuracy"] = acc
        for overlap in range(1, SWEEP_MAX_LABELS + 1):
            decided = post[:, overlap - 1].argmax(axis=1)
            row[f"fixed/{source}/{overlap}/accuracy"] = float(np.mean(decided == truth))
    for overlap in range(1, SWEEP_MAX_LABELS + 1):
        row[f"fixed/mv/{overlap}/accuracy"] = float(np.mean(_majority(labels, overlap) == truth))
    return row


def main() -> None:
    started = time.time()
    rows = [run_seed(seed) for seed in SEEDS]
    mean = {key: float(np.mean([r[key] for r in rows])) for key in rows[0]}

    def cell(policy: str, n: float, acc: float) -> str:
        return f"| {policy} | {n:.2f} | {acc:.4f} |"

    lines = [
        "# Adaptive redundancy: labels per item vs accuracy",
        "",
        f"Machine: {platform.machine()}, Python {platform.python_version()}, numpy "
        f"{np.__version__}; generated {time.strftime('%Y-%m-%d')} by "
        f"`bench/consensus/redundancy.py` in {time.time() - started:.0f} s.",
        "",
        f"Crowd: {N_WORKERS} workers from `synthetic.worker_confusions` (60% good, 15% spammers, "
        f"10% adversaries, 15% biased), {K} classes, uniform truth. Worker model: Dawid-Skene "
        f"fitted on a warm-up batch of {WARMUP_TASKS} tasks x {WARMUP_OVERLAP} labels "
        f"({WARMUP_TASKS * WARMUP_OVERLAP} labels, not counted below; warm-up accuracy "
        f"{mean['warmup_accuracy']:.4f}), rows smoothed with a Dirichlet({SMOOTHING:g}) prior "
        "(posterior mean; the unsmoothed maximum-likelihood rows are shown too), or the true "
        f"confusions (upper bound). {N_ITEMS} "
        f"evaluation items per seed, each answered by distinct random workers one at a time; "
        f"seeds {SEEDS}, figures are the mean over seeds. Fixed overlap and adaptive use the same "
        "answer sequences. Posteriors after each answer come from "
        "`labeling.consensus.item_posterior`; the adaptive policy stops once the top class "
        "reaches the threshold after the minimum number of labels.",
        "",
        f"## Adaptive (threshold {THRESHOLD}, min {MIN_LABELS}, max {MAX_LABELS}) vs fixed overlap",
        "",
        "| policy | labels / item | accuracy |",
        "|---|---|---|",
    ]
    for source, name in (
        ("platform", "the platform's online model (bayes_ds fit, shrunk rows)"),
        ("ds", "DS confusions"),
        ("ds_raw", "unsmoothed DS confusions"),
        ("true", "true confusions"),
    ):
        key = f"adaptive/{source}/{THRESHOLD}/{MAX_LABELS}"
        lines.append(cell(f"adaptive, {name}", mean[key + "/labels"], mean[key + "/accuracy"]))
    for overlap in (3, 5, 7):
        lines.append(
            cell(f"fixed {overlap}, majority vote", overlap, mean[f"fixed/mv/{overlap}/accuracy"])
        )
        lines.append(
            cell(f"fixed {overlap}, DS posterior", overlap, mean[f"fixed/ds/{overlap}/accuracy"])
        )
        lines.append(
            cell(
                f"fixed {overlap}, the platform's online posterior",
                overlap,
                mean[f"fixed/platform/{overlap}/accuracy"],
            )
        )
    fixed7 = mean[f"fixed/ds/{MAX_LABELS}/accuracy"]
    adaptive_key = f"adaptive/ds/{THRESHOLD}/{MAX_LABELS}"
    lines += [
        "",
        f"Adaptive with DS confusions uses {mean[adaptive_key + '/labels']:.2f} labels per item "
        f"against {MAX_LABELS} for fixed overlap {MAX_LABELS} "
        f"({1 - mean[adaptive_key + '/labels'] / MAX_LABELS:.0%} fewer), at accuracy "
        f"{mean[adaptive_key + '/accuracy']:.4f} vs {fixed7:.4f}.",
        "",
        f"## Labels per item needed to reach {TARGET:.0%} accuracy",
        "",
        f"Smallest mean labels per item whose accuracy is at least {TARGET:.0%}: fixed overlap "
        f"1-{SWEEP_MAX_LABELS}; adaptive over thresholds {SWEEP_THRESHOLDS} with max "
        f"{MAX_LABELS} or {SWEEP_MAX_LABELS} labels.",
        "",
        "| policy | labels / item | accuracy | setting |",
        "|---|---|---|---|",
    ]

    def best_fixed(source: str) -> str:
        for overlap in range(1, SWEEP_MAX_LABELS + 1):
            acc = mean[f"fixed/{source}/{overlap}/accuracy"]
            if acc >= TARGET:
                return f"| {{}} | {overlap} | {acc:.4f} | overlap {overlap} |"
        return f"| {{}} | not reached by {SWEEP_MAX_LABELS} | | |"

    def best_adaptive(source: str) -> str:
        found = []
        for threshold in SWEEP_THRESHOLDS:
            for cap in (MAX_LABELS, SWEEP_MAX_LABELS):
                key = f"adaptive/{source}/{threshold}/{cap}"
                if mean[key + "/accuracy"] >= TARGET:
                    found.append((mean[key + "/labels"], mean[key + "/accuracy"], threshold, cap))
        if not found:
            return "| {} | not reached | | |"
        n, acc, threshold, cap = min(found)
        return f"| {{}} | {n:.2f} | {acc:.4f} | threshold {threshold}, max {cap} |"

    lines.append(best_fixed("mv").format("fixed, majority vote"))
    lines.append(best_fixed("ds").format("fixed, DS posterior"))
    lines.append(best_fixed("platform").format("fixed, the platform's online posterior"))
    lines.append(best_fixed("true").format("fixed, true-confusion posterior"))
    lines.append(best_adaptive("platform").format("adaptive, the platform's online model"))
    lines.append(best_adaptive("ds").format("adaptive, DS confusions"))
    lines.append(best_adaptive("ds_raw").format("adaptive, unsmoothed DS confusions"))
    lines.append(best_adaptive("true").format("adaptive, true confusions"))
    lines += [
        "",
        "## Adaptive sweep (DS confusions)",
        "",
        "| threshold | max labels | labels / item | accuracy |",
        "|---|---|---|---|",
    ]
    for threshold in SWEEP_THRESHOLDS:
        for cap in (MAX_LABELS, SWEEP_MAX_LABELS):
            key = f"adaptive/ds/{threshold}/{cap}"
            lines.append(
                f"| {threshold} | {cap} | {mean[key + '/labels']:.2f} | "
                f"{mean[key + '/accuracy']:.4f} |"
            )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
