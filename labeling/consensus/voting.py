"""Voting methods: majority vote, Wawa and zero-based skill (weighted majority votes).

Each takes a prepared :class:`~labeling.consensus._data.CrowdData` and returns an
:class:`~labeling.consensus.result.AggregationResult`; :func:`labeling.consensus.aggregate` is the
public entry point.
"""

from __future__ import annotations

import numpy as np

from ._common import (
    FloatArray,
    IntArray,
    accuracy_against,
    clamp_gold,
    hard_labels,
    normalize_rows,
    vote_scores,
)
from ._data import CrowdData
from .result import AggregationResult


def _weighted_vote(
    data: CrowdData,
    worker_weight: FloatArray | None,
    gold_tasks: IntArray,
    gold_labels: IntArray,
) -> tuple[FloatArray, IntArray]:
    labeled = data.labeled
    if worker_weight is None:
        scores = vote_scores(data)
    else:
        weights = np.nan_to_num(worker_weight, nan=0.0)[data.workers]
        scores = vote_scores(data, weights)
        # A task whose workers all weigh 0 falls back to its plain vote count.
        empty = labeled & (scores.sum(axis=1) <= 0)
        if empty.any():
            scores[empty] = vote_scores(data)[empty]
    posteriors = normalize_rows(scores, labeled)
    clamp_gold(posteriors, gold_tasks, gold_labels)
    return posteriors, hard_labels(posteriors, labeled | _gold_mask(data, gold_tasks))


def _gold_mask(data: CrowdData, gold_tasks: IntArray) -> np.ndarray:
    mask = np.zeros(data.n_tasks, dtype=bool)
    mask[gold_tasks] = True
    return mask


def majority_vote(
    data: CrowdData, gold_tasks: IntArray, gold_labels: IntArray
) -> AggregationResult:
    """Plain majority vote.

    ``posteriors`` are the vote shares; ``labels`` the most voted class (ties: lowest class code);
    ``worker_skill`` is each worker's agreement with the majority label.
    """
    posteriors, labels = _weighted_vote(data, None, gold_tasks, gold_labels)
    return AggregationResult(
        labels=labels,
        posteriors=posteriors,
        worker_skill=accuracy_against(data, labels),
        confusion=None,
        iterations=0,
        converged=True,
        method="majority_vote",
    )


def wawa(data: CrowdData, gold_tasks: IntArray, gold_labels: IntArray) -> AggregationResult:
    """Worker Agreement With Aggregate: a majority vote weighted by agreement with majority vote.

    ``worker_skill`` (the weight) is each worker's share of answers equal to the (gold-clamped)
    majority label.
    """
    _, mv_labels = _weighted_vote(data, None, gold_tasks, gold_labels)
    skill = accuracy_against(data, mv_labels)
    posteriors, labels = _weighted_vote(data, skill, gold_tasks, gold_labels)
    return AggregationResult(
        labels=labels,
        posteriors=posteriors,
        worker_skill=skill,
        confusion=None,
        iterations=1,
        converged=True,
        method="wawa",
    )


def zero_based_skill(
    data: CrowdData,
    gold_tasks: IntArray,
    gold_labels: IntArray,
    max_iter: int,
    tol: float,
    lr_init: float = 1.0,
    lr_steps_to_reduce: int = 20,
    lr_reduce_factor: float = 0.5,
) -> AggregationResult:
    """Zero-based skill: skills start at ``1 / n_present_classes`` and move toward each worker's
    accuracy against the current weighted vote, with a learning rate halved every 20 steps.

    Stops after ``max_iter`` steps, or earlier once the vote's labels are unchanged and no skill
    moved by more than ``tol`` (``converged=True``).
    """
    n_present = int(np.unique(data.labels).size) if data.n else 1
    skill = np.full(data.n_workers, 1.0 / n_present + 1e-5)
    skill[np.bincount(data.workers, minlength=data.n_workers) == 0] = np.nan
    rate = lr_init
    labels: IntArray | None = None
    converged = False
    iterations = 0
    for iteration in range(1, max_iter + 1):
        iterations = iteration
        if iteration % lr_steps_to_reduce == 0:
            rate *= lr_reduce_factor
        _, new_labels = _weighted_vote(data, skill, gold_tasks, gold_labels)
        step = rate * (accuracy_against(data, new_labels) - skill)
        skill = skill + step
        same = labels is not None and bool(np.array_equal(labels, new_labels))
        labels = new_labels
        if same and float(np.nanmax(np.abs(step), initial=0.0)) < tol:
            converged = True
            break
    posteriors, labels = _weighted_vote(data, skill, gold_tasks, gold_labels)
    return AggregationResult(
        labels=labels,
        posteriors=posteriors,
        # The vote uses the skills as they are (crowd-kit's); reported, a skill is a share: its
        # start of 1/n + 1e-5 is above 1 when only one class was answered.
        worker_skill=np.minimum(skill, 1.0),
        confusion=None,
        iterations=iterations,
        converged=converged,
        method="zbs",
    )
