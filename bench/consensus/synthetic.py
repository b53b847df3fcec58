"""Seeded synthetic crowds with mixed-quality workers, shared by the speed and redundancy benchmarks.

Workers (per 1,000): 60% good (diagonal 0.65-0.95, errors spread at random), 15% spammers (the same
random answer distribution whatever the truth), 10% adversaries (a fixed derangement of the truth,
80% of the time), 15% biased (good on half of the classes, guessing on the rest).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]


def worker_confusions(n_workers: int, k: int, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """``(W, K, K)`` confusion matrices ``[worker, truth, answer]``, rows summing to 1."""
    kind = rng.choice(4, size=n_workers, p=[0.6, 0.15, 0.1, 0.15])
    confusions = np.empty((n_workers, k, k))
    for w in range(n_workers):
        noise = rng.dirichlet(np.ones(k), size=k)
        if kind[w] == 0:
            diag = rng.uniform(0.65, 0.95)
            noise[np.arange(k), np.arange(k)] = 0.0
            noise /= noise.sum(axis=1, keepdims=True)
            confusions[w] = np.eye(k) * diag + noise * (1.0 - diag)
        elif kind[w] == 1:
            confusions[w] = np.tile(rng.dirichlet(np.ones(k)), (k, 1))
        elif kind[w] == 2:
            shift = np.roll(np.eye(k), int(rng.integers(1, k)), axis=1)
            confusions[w] = 0.8 * shift + 0.2 / k
        else:
            good = rng.random(k) < 0.5
            confusions[w] = np.where(good[:, None], 0.85 * np.eye(k) + 0.15 / k, 1.0 / k)
    return confusions


def crowd(
    n_labels: int,
    k: int = 4,
    overlap: int = 5,
    n_workers: int = 1000,
    seed: int = 0,
    chunk: int = 1 << 20,
) -> tuple[IntArray, IntArray, IntArray, IntArray, npt.NDArray[np.float64]]:
    """``(tasks, workers, labels, truth, confusions)``; each task gets ``overlap`` distinct workers.

    Built chunk by chunk so that generating 10M answers stays well under the engine's own memory.
    """
    rng = np.random.default_rng(seed)
    confusions = worker_confusions(n_workers, k, rng)
    cumulative = np.cumsum(confusions, axis=2)
    n_tasks = n_labels // overlap
    truth = rng.integers(0, k, n_tasks)
    tasks = np.repeat(np.arange(n_tasks, dtype=np.int64), overlap)
    first = rng.integers(0, n_workers, n_tasks)
    spread = (np.arange(overlap) * (n_workers // overlap + 3)) % n_workers
    workers = ((first[:, None] + spread[None, :]) % n_workers).ravel().astype(np.int64)
    labels = np.empty(tasks.size, dtype=np.int64)
    for lo in range(0, tasks.size, chunk):
        hi = min(lo + chunk, tasks.size)
        cum = cumulative[workers[lo:hi], truth[tasks[lo:hi]]]
        draw = rng.random(hi - lo)[:, None]
        labels[lo:hi] = np.minimum((draw > cum).sum(axis=1), k - 1)
    return tasks, workers, labels, truth, confusions


def shaped_crowd(
    n_tasks: int,
    k: int,
    overlap: int,
    n_workers: int,
    seed: int = 0,
    *,
    honest: bool = False,
    zipf: float = 0.0,
    class_prior: list[float] | None = None,
    repeat_share: float = 0.0,
) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """``(tasks, workers, labels, truth)`` of a crowd shaped like the held-out ones.

    ``honest``: one-coin workers of accuracy 0.7-0.95 instead of :func:`worker_confusions`' mix.
    ``zipf``: worker ``i`` is drawn with weight ``1 / (i + 1) ** zipf`` (0: uniform), so a few
    workers give most answers and most give a handful. ``class_prior``: the truth's class shares
    (default uniform). ``repeat_share``: that share of (task, worker) pairs get a second answer, a
    fresh draw from the same worker.
    """
    rng = np.random.default_rng(seed)
    if honest:
        accuracy = rng.uniform(0.7, 0.95, n_workers)
        confusions = np.repeat(((1.0 - accuracy) / max(k - 1, 1))[:, None, None], k, axis=1)
        confusions = np.repeat(confusions, k, axis=2)
        confusions[:, np.arange(k), np.arange(k)] = accuracy[:, None]
    else:
        confusions = worker_confusions(n_workers, k, rng)
    truth = rng.choice(k, size=n_tasks, p=class_prior)
    weight = 1.0 / np.arange(1, n_workers + 1) ** zipf
    weight /= weight.sum()
    tasks = np.repeat(np.arange(n_tasks, dtype=np.int64), overlap)
    workers = np.concatenate(
        [rng.choice(n_workers, size=overlap, replace=False, p=weight) for _ in range(n_tasks)]
    ).astype(np.int64)
    again = rng.random(tasks.size) < repeat_share
    tasks = np.concatenate([tasks, tasks[again]])
    workers = np.concatenate([workers, workers[again]])
    cumulative = np.cumsum(confusions[workers, truth[tasks]], axis=1)
    labels = np.minimum((rng.random(tasks.size)[:, None] > cumulative).sum(axis=1), k - 1)
    order = np.argsort(tasks, kind="stable")  # a repeat follows its task's other answers
    return tasks[order], workers[order], labels[order].astype(np.int64), truth
