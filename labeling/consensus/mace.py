"""MACE: Multi-Annotator Competence Estimation (Hovy et al., NAACL 2013), variational Bayes.

Each worker either knows the answer (probability ``s_w``) and gives the truth, or spams, drawing a
label from their own strategy ``xi_w``. So ``P(answer l | truth k) = (1 - s_w) xi_w[l] + s_w [l = k]``.
Variational Bayes with ``Beta(0.5, 0.5)`` on the spam/know split and ``Dirichlet(10)`` on the
strategy (crowd-kit's defaults). Unlike the original MACE (and crowd-kit), the class prior is
learned (the mean posterior, with a Dirichlet(1) prior): with a fixed uniform prior, a crowd whose
classes are imbalanced is explained as spamming toward the common class, and every minority
answer then reads as "knowing" (on a binary crowd of 3 answers per task with 90% of one class, the
uniform prior put MACE 10-15 points below majority vote; see ``bench/consensus/results/heldout.md``).
``_RESTARTS`` random initialisations,
seeded by ``seed``, each run until the log marginal likelihood improves by less than ``tol`` per
answer (at most ``max_iter`` iterations); the restart with the highest likelihood wins.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ._common import FloatArray, IntArray, clamp_gold, hard_labels, normalize_rows, vote_scores
from ._data import CrowdData
from .result import AggregationResult

_RESTARTS = 10
_SPLIT_PRIOR = 0.5  # Beta(0.5, 0.5) on the spam/know split
_STRATEGY_PRIOR = 10.0


def digamma(x: FloatArray) -> FloatArray:
    """The digamma function for ``x > 0`` (recurrence to ``x >= 6``, then the asymptotic series)."""
    x = np.asarray(x, dtype=np.float64).copy()
    shift = np.zeros_like(x)
    for _ in range(6):
        small = x < 6.0
        if not small.any():
            break
        shift[small] -= 1.0 / x[small]
        x[small] += 1.0
    inv2 = 1.0 / (x * x)
    series = inv2 * (1 / 12 - inv2 * (1 / 120 - inv2 * (1 / 252 - inv2 * (1 / 240 - inv2 / 132))))
    result: FloatArray = shift + np.log(x) - 0.5 / x - series
    return result


def _variational_normalize(counts: FloatArray, prior: float) -> FloatArray:
    """``exp(digamma(c + prior) - digamma(sum(c + prior)))`` row-wise."""
    total = (counts + prior).sum(axis=1, keepdims=True)
    return np.exp(digamma(counts + prior) - digamma(total))


class _Fit:
    def __init__(self, data: CrowdData, gold_tasks: IntArray, gold_labels: IntArray) -> None:
        self.data = data
        self.gold_tasks = gold_tasks
        self.gold_labels = gold_labels

    def e_step(
        self, know: FloatArray, strategy: FloatArray, prior: FloatArray
    ) -> tuple[FloatArray, FloatArray, float]:
        """Posteriors ``(T, K)``, each answer's probability of being "known", log likelihood."""
        data = self.data
        k = data.n_classes
        spam_part = know[data.workers, 0] * strategy[data.workers, data.labels]
        spam_part = np.maximum(spam_part, 1e-300)
        know_part = know[data.workers, 1]
        log_off = np.log(spam_part)
        log_on = np.log(spam_part + know_part)
        logits = np.bincount(data.tasks, weights=log_off, minlength=data.n_tasks)[:, None]
        logits = logits + np.bincount(
            data.tasks * k + data.labels, weights=log_on - log_off, minlength=data.n_tasks * k
        ).reshape(data.n_tasks, k)
        logits = logits + np.log(prior)[None]
        top = logits.max(axis=1, keepdims=True)
        posteriors = np.exp(logits - top)
        total = posteriors.sum(axis=1, keepdims=True)
        posteriors /= total
        likelihood = float(np.sum((np.log(total) + top)[data.labeled]))
        clamp_gold(posteriors, self.gold_tasks, self.gold_labels)
        p_truth = posteriors[data.tasks, data.labels]
        knew = p_truth * know_part / (spam_part + know_part)
        return posteriors, knew, likelihood

    def class_prior(self, posteriors: FloatArray) -> FloatArray:
        """The mean posterior over the answered tasks, with a Dirichlet(1) prior."""
        labeled = self.data.labeled
        prior: FloatArray = (posteriors[labeled].sum(axis=0) + 1.0) / (
            int(labeled.sum()) + self.data.n_classes
        )
        return prior

    def m_step(self, knew: FloatArray) -> tuple[FloatArray, FloatArray]:
        data = self.data
        k = data.n_classes
        spammed = 1.0 - knew
        spam_know = np.stack(
            [
                np.bincount(data.workers, weights=spammed, minlength=data.n_workers).astype(
                    np.float64
                ),
                np.bincount(data.workers, weights=knew, minlength=data.n_workers).astype(
                    np.float64
                ),
            ],
            axis=1,
        )
        strategy_counts = (
            np.bincount(
                data.workers * k + data.labels, weights=spammed, minlength=data.n_workers * k
            )
            .astype(np.float64)
            .reshape(data.n_workers, k)
        )
        split = _variational_normalize(spam_know, _SPLIT_PRIOR)
        # Column 0 is the spam weight, column 1 the know weight. Variational Bayes leaves them
        # (and the strategy) sub-normalised, which is what the E-step must use.
        strategy = _variational_normalize(strategy_counts, _STRATEGY_PRIOR)
        return split, strategy


_U64 = np.uint64


def _mix(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """SplitMix64's finaliser: a well-mixed 64-bit hash of each element."""
    with np.errstate(over="ignore"):
        x = x + _U64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> _U64(27))) * _U64(0x94D049BB133111EB)
    result: npt.NDArray[np.uint64] = x ^ (x >> _U64(31))
    return result


def _worker_uniforms(data: CrowdData, seed: int, restart: int, width: int) -> FloatArray:
    """``(W, width)`` starting values in [1, 2.5) for one random restart.

    Each worker's values are a hash of the seed, the restart and the worker's own answer counts
    per class, not of the worker's code: relabelling workers or tasks relabels the restarts with
    them, so the fit (and the restart it keeps) is the same whatever the codes.
    """
    k = data.n_classes
    flat = np.bincount(data.workers * k + data.labels, minlength=data.n_workers * k)
    counts: npt.NDArray[np.uint64] = flat.reshape(data.n_workers, k).astype(np.uint64)
    key = _mix(np.full(data.n_workers, seed & 0xFFFFFFFFFFFFFFFF, dtype=np.uint64))
    for column in range(k):
        column_counts: npt.NDArray[np.uint64] = counts[:, column]
        key = _mix(np.bitwise_xor(key, column_counts))
    key = _mix(key ^ _U64(restart))
    bits = _mix(key[:, None] + np.arange(width, dtype=np.uint64)[None, :])
    uniform = (bits >> _U64(11)).astype(np.float64) * 2.0**-53
    result: FloatArray = 1.0 + 1.5 * uniform
    return result


def mace(
    data: CrowdData,
    gold_tasks: IntArray,
    gold_labels: IntArray,
    max_iter: int,
    tol: float,
    seed: int = 0,
) -> AggregationResult:
    """Fit MACE; see the module docstring.

    ``worker_skill`` is each worker's competence ``s_w`` (probability of knowing the answer) plus
    the chance that their strategy hits the truth, i.e. ``s_w + (1 - s_w) * xi_w . prior``;
    ``confusion`` is the implied ``(1 - s_w) xi_w[l] + s_w [l = k]``.
    """
    k = data.n_classes
    fit = _Fit(data, gold_tasks, gold_labels)
    best: tuple[float, FloatArray, FloatArray, FloatArray, int, bool] | None = None
    for restart in range(_RESTARTS + 1):
        if restart == 0:
            # One start from the majority vote: each answer's vote share as its chance of being known.
            shares = normalize_rows(vote_scores(data), data.labeled)
            clamp_gold(shares, gold_tasks, gold_labels)
            know, strategy = fit.m_step(shares[data.tasks, data.labels])
            prior = fit.class_prior(shares)
        else:
            draws = _worker_uniforms(data, seed, restart, 2 + k)
            know = draws[:, :2] / draws[:, :2].sum(axis=1, keepdims=True)
            strategy = draws[:, 2:] / draws[:, 2:].sum(axis=1, keepdims=True)
            prior = np.full(k, 1.0 / k)
        posteriors, knew, likelihood = fit.e_step(know, strategy, prior)
        converged = False
        iterations = 0
        for _ in range(max_iter):
            iterations += 1
            know, strategy = fit.m_step(knew)
            prior = fit.class_prior(posteriors)
            posteriors, knew, new_likelihood = fit.e_step(know, strategy, prior)
            improved = (new_likelihood - likelihood) / max(data.n, 1)
            likelihood = new_likelihood
            if abs(improved) < tol:
                converged = True
                break
        if best is None or likelihood > best[0]:
            best = (likelihood, posteriors, know, strategy, iterations, converged)
    assert best is not None
    _, posteriors, know, strategy, iterations, converged = best
    labeled = data.labeled
    posteriors[~labeled] = 1.0 / k
    clamp_gold(posteriors, gold_tasks, gold_labels)
    mask = labeled.copy()
    mask[gold_tasks] = True
    know = know[:, 1] / know.sum(axis=1)
    strategy = strategy / strategy.sum(axis=1, keepdims=True)
    confusion = (1.0 - know)[:, None, None] * strategy[:, None, :] + know[:, None, None] * np.eye(k)
    prior = posteriors[labeled].mean(axis=0) if labeled.any() else np.full(k, 1.0 / k)
    skill = know + (1.0 - know) * (strategy @ prior)
    skill[np.bincount(data.workers, minlength=data.n_workers) == 0] = np.nan
    return AggregationResult(
        labels=hard_labels(posteriors, mask),
        posteriors=posteriors,
        worker_skill=skill,
        confusion=confusion,
        iterations=iterations,
        converged=converged,
        method="mace",
    )
