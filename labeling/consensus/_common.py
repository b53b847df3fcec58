"""Small array helpers shared by the aggregation methods."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ._data import CrowdData

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# Probabilities are clipped here before a log, as crowd-kit does, so a zero count is "very unlikely"
# rather than impossible (one contrary answer must not veto a class forever).
EPS = 1e-10


def hard_labels(posteriors: FloatArray, labeled: npt.NDArray[np.bool_]) -> IntArray:
    """Argmax per row, ties to the lowest class code; ``-1`` for rows not in ``labeled``."""
    if posteriors.shape[1] == 0:
        return np.full(posteriors.shape[0], -1, dtype=np.int64)
    result: IntArray = np.argmax(posteriors, axis=1).astype(np.int64)
    result[~labeled] = -1
    return result


def normalize_rows(scores: FloatArray, labeled: npt.NDArray[np.bool_]) -> FloatArray:
    """Scale each row to sum to 1; unlabeled rows (or rows summing to 0) become uniform."""
    k = scores.shape[1]
    totals = scores.sum(axis=1)
    good = labeled & (totals > 0)
    out = np.full(scores.shape, 1.0 / k if k else 0.0)
    out[good] = scores[good] / totals[good, None]
    return out


def vote_scores(data: CrowdData, weights: FloatArray | None = None) -> FloatArray:
    """``scores[t, k]`` = summed weight of the answers ``k`` to task ``t``."""
    k = data.n_classes
    flat = data.tasks * k + data.labels
    scores = np.bincount(flat, weights=weights, minlength=data.n_tasks * k)
    return scores.astype(np.float64, copy=False).reshape(data.n_tasks, k)


def per_worker_mean(data: CrowdData, values: FloatArray) -> FloatArray:
    """Mean of ``values`` (one per answer) over each worker's answers; NaN for idle workers."""
    sums = np.bincount(data.workers, weights=values, minlength=data.n_workers)
    counts = np.bincount(data.workers, minlength=data.n_workers)
    out = np.full(data.n_workers, np.nan)
    active = counts > 0
    out[active] = sums[active] / counts[active]
    return out


def accuracy_against(data: CrowdData, truth: IntArray) -> FloatArray:
    """Each worker's share of answers equal to ``truth`` of their task (NaN for idle workers)."""
    return per_worker_mean(data, (data.labels == truth[data.tasks]).astype(np.float64))


def expected_accuracy(data: CrowdData, posteriors: FloatArray) -> FloatArray:
    """Each worker's mean posterior probability that their answer is the truth."""
    return per_worker_mean(data, posteriors[data.tasks, data.labels].astype(np.float64))


def clamp_gold(posteriors: FloatArray, gold_tasks: IntArray, gold_labels: IntArray) -> None:
    """Overwrite, in place, the rows of gold tasks with a one-hot row on the known label."""
    if gold_tasks.size:
        posteriors[gold_tasks] = 0.0
        posteriors[gold_tasks, gold_labels] = 1.0


def log_gamma(x: npt.ArrayLike) -> FloatArray:
    """``log Gamma(x)`` for ``x > 0``, elementwise (NumPy has none; SciPy is not a dependency).

    The recurrence ``log Gamma(x) = log Gamma(x + 8) - log(x (x + 1) ... (x + 7))`` moves every
    value to ``x >= 8``, where Stirling's series to ``x^-9`` is exact to double precision.
    """
    x = np.asarray(x, dtype=np.float64)
    small = x < 8.0
    shifted = np.where(small, x + 8.0, x)
    correction = np.zeros_like(x)
    if small.any():
        product = np.ones_like(x)
        for i in range(8):
            product = np.where(small, product * (x + i), product)
        correction = np.where(small, np.log(product), 0.0)
    inv = 1.0 / shifted
    inv2 = inv * inv
    series = inv * (1 / 12 - inv2 * (1 / 360 - inv2 * (1 / 1260 - inv2 * (1 / 1680 - inv2 / 1188))))
    result: FloatArray = (
        (shifted - 0.5) * np.log(shifted) - shifted + 0.5 * np.log(2 * np.pi) + series - correction
    )
    return result
