"""How far posteriors are from the truth's frequencies: the measures the benchmarks report.

A posterior is calibrated when, of the tasks it puts at ``p``, a share ``p`` is right. Items are
accepted, and contributors paid, at a posterior threshold (0.95 by default), so the share right
among the tasks at or above the threshold is what a payout's correctness rests on.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _top(posteriors: Any, truth: Any) -> tuple[np.ndarray, np.ndarray]:
    """The top posterior and whether its class is the truth, for the tasks with a truth (>= 0).

    Raises:
        ValueError: shapes that don't match, or a truth code >= K.
    """
    post = np.asarray(posteriors, dtype=np.float64)
    true = np.asarray(truth)
    if post.ndim != 2 or true.shape != (post.shape[0],):
        raise ValueError(
            f"posteriors must be (T, K) and truth (T,); got {post.shape}, {true.shape}"
        )
    known = true >= 0
    if known.any() and true[known].max() >= post.shape[1]:
        raise ValueError("a truth code is out of range")
    post, true = post[known], true[known]
    top = post.max(axis=1)
    right = np.argmax(post, axis=1) == true
    return top, right


def expected_calibration_error(posteriors: Any, truth: Any, bins: int = 10) -> float:
    """ECE of the top posterior against the truth: tasks binned by their top posterior in
    ``bins`` equal-width bins of [0, 1], then the bins' |accuracy - mean confidence| averaged,
    weighted by the share of tasks in each. Tasks with truth ``-1`` are skipped; NaN without any.
    """
    top, right = _top(posteriors, truth)
    if top.size == 0:
        return float("nan")
    which = np.minimum((top * bins).astype(np.int64), bins - 1)
    gap = np.abs(
        np.bincount(which, weights=right.astype(np.float64), minlength=bins)
        - np.bincount(which, weights=top, minlength=bins)
    )
    return float(gap.sum() / top.size)


def confident_accuracy(posteriors: Any, truth: Any, level: float = 0.95) -> tuple[float, int]:
    """``(share right, how many)`` among the tasks whose top posterior is at least ``level``
    (share NaN when there are none). Tasks with truth ``-1`` are skipped."""
    top, right = _top(posteriors, truth)
    confident = top >= level
    n = int(confident.sum())
    return (float(right[confident].mean()) if n else float("nan")), n
