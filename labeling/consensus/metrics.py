"""Inter-annotator agreement on nominal labels: percent agreement, Fleiss' kappa, Krippendorff's alpha.

All three take the same ``(tasks, workers, labels)`` code arrays as :func:`aggregate`, keep only the
last answer of a repeated (task, worker) pair (a worker agreeing with themselves is not agreement
between annotators) and use only the tasks with at least two answers.
Each returns ``nan`` when fewer than two such answers exist or when the statistic is undefined
(e.g. every answer is the same class, so chance agreement is 1).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._common import vote_scores
from ._data import prepare


def _counts(tasks: Any, workers: Any, labels: Any, n_classes: int | None) -> np.ndarray:
    """``(T', K)`` answer counts of the tasks with at least two answers."""
    data = prepare(tasks, workers, labels, n_classes, repeats="last")
    if data.n == 0:
        return np.zeros((0, data.n_classes))
    counts: np.ndarray = vote_scores(data)
    kept: np.ndarray = counts[counts.sum(axis=1) >= 2]
    return kept


def agreement(
    tasks: Any, workers: Any, labels: Any, n_classes: int | None = None
) -> dict[str, float]:
    """All three statistics from one pass over the answers: ``percent_agreement``,
    ``fleiss_kappa`` and ``krippendorff_alpha``, keyed by those names."""
    counts = _counts(tasks, workers, labels, n_classes)
    return {
        "percent_agreement": _percent(counts),
        "fleiss_kappa": _fleiss(counts),
        "krippendorff_alpha": _alpha(counts),
    }


def percent_agreement(tasks: Any, workers: Any, labels: Any, n_classes: int | None = None) -> float:
    """Mean over tasks of the share of answer pairs that agree.

    Raises:
        ValueError: as :func:`aggregate` does for bad codes.
    """
    return _percent(_counts(tasks, workers, labels, n_classes))


def fleiss_kappa(tasks: Any, workers: Any, labels: Any, n_classes: int | None = None) -> float:
    """Fleiss' kappa, generalised to a varying number of answers per task.

    Observed agreement is the mean per-task pairwise agreement; chance agreement is
    ``sum_k p_k^2`` with ``p_k`` the overall share of class ``k``.
    """
    return _fleiss(_counts(tasks, workers, labels, n_classes))


def krippendorff_alpha(
    tasks: Any, workers: Any, labels: Any, n_classes: int | None = None
) -> float:
    """Krippendorff's alpha for nominal data: ``1 - D_o / D_e`` from the coincidence matrix.

    Missing answers are allowed (tasks with one answer are not pairable and are dropped).
    """
    return _alpha(_counts(tasks, workers, labels, n_classes))


def _percent(counts: np.ndarray) -> float:
    if counts.shape[0] == 0:
        return float("nan")
    m = counts.sum(axis=1)
    return float(np.mean((counts * (counts - 1)).sum(axis=1) / (m * (m - 1))))


def _fleiss(counts: np.ndarray) -> float:
    if counts.shape[0] == 0:
        return float("nan")
    observed = _percent(counts)
    shares = counts.sum(axis=0) / counts.sum()
    chance = float(np.sum(shares**2))
    if chance >= 1.0:
        return float("nan")
    return (observed - chance) / (1.0 - chance)


def _alpha(counts: np.ndarray) -> float:
    if counts.shape[0] == 0:
        return float("nan")
    m = counts.sum(axis=1)
    # Coincidences: o[c, k] = sum_u n_uc (n_uk - [c = k]) / (m_u - 1).
    weighted = counts / (m - 1)[:, None]
    coincidence = weighted.T @ counts - np.diag(weighted.sum(axis=0))
    n_c = coincidence.sum(axis=1)
    n = n_c.sum()
    observed = (n - np.trace(coincidence)) / n
    expected = (n * n - np.sum(n_c**2)) / (n * (n - 1))
    if expected <= 0:
        return float("nan")
    return float(1.0 - observed / expected)
