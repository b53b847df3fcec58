"""Dawid-Skene (full confusion matrix per worker) and its one-coin variant, fitted by EM.

The model: a task's true class ``z`` is drawn from ``prior``; worker ``w`` answers ``l`` with
probability ``confusion[w, z, l]``. EM starts from the majority-vote shares, then alternates:

* M-step: ``prior`` = mean posterior over the answered tasks; ``confusion[w, k, :]`` = the
  posterior-weighted counts of ``w``'s answers, clipped below at ``1e-10`` and normalised (one-coin:
  a single accuracy per worker, the mean posterior of their answers, with the errors spread evenly
  over the other classes).
* E-step: ``posterior[t] ~ prior * prod over t's answers of confusion[w_i, :, l_i]``, in log space.

It stops when the evidence lower bound per answer (the same quantity crowd-kit tracks) improves by
less than ``tol``, or after ``max_iter`` iterations. Gold tasks are clamped to their known class after
every E-step, which anchors the confusion matrices.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from ._common import EPS, FloatArray, IntArray, normalize_rows, vote_scores
from ._data import CrowdData
from ._layout import EMLayout
from .result import AggregationResult

Precision = Literal["float32", "float64"]


def _softmax_columns(
    logits: npt.NDArray[np.floating], scratch: npt.NDArray[np.floating]
) -> npt.NDArray[np.float64]:
    """In place: each column of ``logits`` ``(K, T)`` becomes a distribution.

    Returns each column's entropy (float64) computed from the same exponentials.
    """
    top = logits.max(axis=0)
    np.subtract(logits, top, out=scratch)
    np.exp(scratch, out=logits)
    total = logits.sum(axis=0)
    logits /= total
    # H = log(total) - sum_k p_k (z_k - max): no second pass of logs over (K, T).
    scratch *= logits
    return np.log(total, dtype=np.float64) - scratch.sum(axis=0, dtype=np.float64)


def _ds_tables(
    counts: npt.NDArray[np.float64], n_workers: int, k: int, one_coin: bool, answers: FloatArray
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Confusion ``(W, K, K)`` [w, true, answer] and its log in E-step layout ``(K, W * K)``."""
    by_answer = counts.reshape(n_workers, k, k)  # [w, answer l, true k]
    if one_coin:
        correct = np.trace(by_answer, axis1=1, axis2=2)
        with np.errstate(invalid="ignore", divide="ignore"):
            skill = np.where(answers > 0, correct / np.maximum(answers, 1.0), 1.0 / k)
        if k == 1:
            confusion = np.ones((n_workers, 1, 1))
        else:
            off = (1.0 - skill) / (k - 1)
            confusion = np.repeat(off[:, None, None], k, axis=1).repeat(k, axis=2)
            confusion[:, np.arange(k), np.arange(k)] = skill[:, None]
            np.clip(confusion, EPS, 1.0 - EPS, out=confusion)
    else:
        clipped = np.maximum(by_answer, EPS)
        confusion = np.transpose(clipped / clipped.sum(axis=1, keepdims=True), (0, 2, 1))
    log_table = np.log(np.transpose(confusion, (1, 0, 2)).reshape(k, n_workers * k))
    return np.ascontiguousarray(confusion), np.ascontiguousarray(log_table)


def dawid_skene(
    data: CrowdData,
    gold_tasks: IntArray,
    gold_labels: IntArray,
    max_iter: int,
    tol: float,
    one_coin: bool = False,
    precision: Precision = "float64",
) -> AggregationResult:
    """Fit Dawid-Skene (or one-coin Dawid-Skene) by EM; see the module docstring.

    ``worker_skill`` is each worker's expected accuracy: the mean posterior probability of the
    class they answered. ``confusion[w, k, l]`` = P(answer l | truth k). ``precision="float32"``
    runs the per-answer gathers and sums in float32 (about twice as fast; posteriors agree with
    float64 to ~1e-6); soft counts and parameters are always float64.
    """
    k = data.n_classes
    dtype = np.dtype(precision)
    layout = EMLayout.build(data)
    labeled = data.labeled

    # Start from the majority-vote shares, as crowd-kit does.
    start = normalize_rows(vote_scores(data), labeled)
    if gold_tasks.size:
        start[gold_tasks] = 0.0
        start[gold_tasks, gold_labels] = 1.0
    gold_rank = layout.task_rank[gold_tasks]
    gold_in = gold_rank >= 0
    gold_rank, gold_class = gold_rank[gold_in], gold_labels[gold_in]

    posterior_rows = np.ascontiguousarray(start[layout.rank_to_task], dtype=dtype)
    logits = np.empty((k, layout.n_labeled), dtype=dtype)
    scratch = np.empty_like(logits)
    answers = layout.answers_per_worker
    n_answers = max(data.n, 1)

    def m_step(
        rows: npt.NDArray[np.floating], prior: FloatArray
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        counts = layout.m_counts(rows)
        confusion, log_table = _ds_tables(counts, data.n_workers, k, one_coin, answers)
        return counts, prior, confusion, log_table

    prior = posterior_rows.mean(axis=0, dtype=np.float64)
    counts, prior, confusion, log_table = m_step(posterior_rows, prior)
    elbo = -np.inf
    converged = False
    iterations = 0
    for _ in range(max_iter):
        iterations += 1
        log_prior = np.log(np.maximum(prior, EPS))
        layout.e_step(log_table.astype(dtype), log_prior.astype(dtype), logits)
        entropy = _softmax_columns(logits, scratch)
        if gold_rank.size:
            logits[:, gold_rank] = 0.0
            logits[gold_class, gold_rank] = 1.0
            entropy[gold_rank] = 0.0
        np.copyto(posterior_rows, logits.T)
        prior = logits.sum(axis=1, dtype=np.float64) / layout.n_labeled
        counts, prior, confusion, log_table = m_step(posterior_rows, prior)
        # crowd-kit's evidence lower bound: E[log p(answers, z)] + H(posterior), per answer.
        log_prior = np.log(np.maximum(prior, EPS))
        new_elbo = (
            float(np.sum(counts * log_table.T))
            + float(counts.sum(axis=0) @ log_prior)
            + float(entropy.sum())
        ) / n_answers
        if new_elbo - elbo < tol:
            converged = True
            break
        elbo = new_elbo

    posteriors = np.full((data.n_tasks, k), 1.0 / k)
    posteriors[layout.rank_to_task] = posterior_rows
    if gold_tasks.size:
        posteriors[gold_tasks] = 0.0
        posteriors[gold_tasks, gold_labels] = 1.0
    mask = labeled.copy()
    mask[gold_tasks] = True
    labels = np.argmax(posteriors, axis=1).astype(np.int64)
    labels[~mask] = -1
    by_answer = counts.reshape(data.n_workers, k, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        skill = np.trace(by_answer, axis1=1, axis2=2) / answers
    skill[answers == 0] = np.nan
    return AggregationResult(
        labels=labels,
        posteriors=posteriors,
        worker_skill=skill,
        confusion=confusion,
        iterations=iterations,
        converged=converged,
        method="one_coin" if one_coin else "dawid_skene",
    )
