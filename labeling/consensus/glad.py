"""GLAD: worker ability and task difficulty (Whitehill et al., NIPS 2009), fitted by EM.

Worker ``w`` answers task ``t`` correctly with probability ``sigmoid(alpha_w * exp(beta_t))``;
a wrong answer is uniform over the other ``K - 1`` classes. The class prior is uniform; ``alpha`` and
``beta`` have standard-normal priors centred on 1 (crowd-kit's defaults).

E-step: posteriors from the current ``alpha`` and ``beta``. M-step: a few alternating Newton
(Fisher-scoring) steps on ``alpha`` (each worker's objective is concave) and ``beta`` (the expected
Hessian keeps each step an ascent direction), instead of crowd-kit's conjugate-gradient. It stops
when the expected complete log-likelihood per answer improves by less than ``tol``.
"""

from __future__ import annotations

import numpy as np

from ._common import FloatArray, IntArray, clamp_gold, expected_accuracy, hard_labels
from ._data import CrowdData
from .result import AggregationResult

_NEWTON_STEPS = 5
_MAX_STEP = 2.0


def _log_sigmoid(x: FloatArray) -> FloatArray:
    return -np.logaddexp(0.0, -x)


def _e_step(
    data: CrowdData, alpha: FloatArray, beta: FloatArray, log_wrong_share: float
) -> tuple[FloatArray, float]:
    """Posteriors ``(T, K)`` and the log marginal likelihood of the answers."""
    k = data.n_classes
    x = alpha[data.workers] * np.exp(beta[data.tasks])
    right = _log_sigmoid(x)
    wrong = _log_sigmoid(-x) - log_wrong_share
    logits = np.bincount(data.tasks, weights=wrong, minlength=data.n_tasks)[:, None] + np.bincount(
        data.tasks * k + data.labels, weights=right - wrong, minlength=data.n_tasks * k
    ).reshape(data.n_tasks, k)
    top = logits.max(axis=1, keepdims=True)
    posteriors = np.exp(logits - top)
    total = posteriors.sum(axis=1, keepdims=True)
    posteriors /= total
    return posteriors, float(np.sum(np.log(total) + top))


def _objective(
    data: CrowdData,
    p_right: FloatArray,
    alpha: FloatArray,
    beta: FloatArray,
    log_wrong_share: float,
) -> float:
    x = alpha[data.workers] * np.exp(beta[data.tasks])
    q = p_right * _log_sigmoid(x) + (1.0 - p_right) * (_log_sigmoid(-x) - log_wrong_share)
    return float(q.sum() - 0.5 * np.sum((alpha - 1.0) ** 2) - 0.5 * np.sum((beta - 1.0) ** 2))


def _m_step(
    data: CrowdData, p_right: FloatArray, alpha: FloatArray, beta: FloatArray
) -> tuple[FloatArray, FloatArray]:
    alpha, beta = alpha.copy(), beta.copy()
    for _ in range(_NEWTON_STEPS):
        scale = np.exp(beta[data.tasks])
        x = alpha[data.workers] * scale
        s = 1.0 / (1.0 + np.exp(-x))
        grad = np.bincount(data.workers, (p_right - s) * scale, data.n_workers) - (alpha - 1.0)
        curv = np.bincount(data.workers, s * (1.0 - s) * scale**2, data.n_workers) + 1.0
        alpha += np.clip(grad / curv, -_MAX_STEP, _MAX_STEP)

        x = alpha[data.workers] * scale
        s = 1.0 / (1.0 + np.exp(-x))
        grad = np.bincount(data.tasks, (p_right - s) * x, data.n_tasks) - (beta - 1.0)
        curv = np.bincount(data.tasks, s * (1.0 - s) * x**2, data.n_tasks) + 1.0
        beta += np.clip(grad / curv, -_MAX_STEP, _MAX_STEP)
    return alpha, beta


def glad(
    data: CrowdData, gold_tasks: IntArray, gold_labels: IntArray, max_iter: int, tol: float
) -> AggregationResult:
    """Fit GLAD; see the module docstring.

    ``worker_skill`` is each worker's expected accuracy (mean posterior of their answers); the
    fitted ``alpha`` and ``beta`` are not part of the result.
    """
    k = data.n_classes
    log_wrong_share = float(np.log(k - 1)) if k > 1 else 0.0
    alpha = np.ones(data.n_workers)
    beta = np.ones(data.n_tasks)
    posteriors, _ = _e_step(data, alpha, beta, log_wrong_share)
    clamp_gold(posteriors, gold_tasks, gold_labels)
    objective = -np.inf
    converged = False
    iterations = 0
    for _ in range(max_iter):
        iterations += 1
        p_right = posteriors[data.tasks, data.labels]
        alpha, beta = _m_step(data, p_right, alpha, beta)
        posteriors, _ = _e_step(data, alpha, beta, log_wrong_share)
        clamp_gold(posteriors, gold_tasks, gold_labels)
        new_objective = _objective(
            data, posteriors[data.tasks, data.labels], alpha, beta, log_wrong_share
        ) / max(data.n, 1)
        if new_objective - objective < tol:
            converged = True
            break
        objective = new_objective
    labeled = data.labeled
    posteriors[~labeled] = 1.0 / k
    clamp_gold(posteriors, gold_tasks, gold_labels)
    mask = labeled.copy()
    mask[gold_tasks] = True
    return AggregationResult(
        labels=hard_labels(posteriors, mask),
        posteriors=posteriors,
        worker_skill=expected_accuracy(data, posteriors),
        confusion=None,
        iterations=iterations,
        converged=converged,
        method="glad",
    )
