"""Per-item posteriors from fitted worker models, for the platform's online decisions.

After a batch :func:`~labeling.consensus.aggregate` run, the platform keeps each worker's confusion
matrix and the class priors; when a new answer arrives it recomputes only that item's posterior
(O(answers of the item)) to decide whether to stop collecting answers for it.

What the online decision keeps from a fit is shrunk toward a weak, symmetric prior in proportion
to the evidence behind it, so that a fit from a few dozen skewed labels cannot talk a clear vote
out of its answer:

* :func:`labeler_confusions`: each labeler's rows are their soft counts in the fit plus
  ``strength`` pseudo-answers of a one-coin labeler (errors spread evenly), normalised. A row the
  fit saw no evidence for is that one-coin row, never a copy of the other rows (which would make
  the labeler's answers carry no evidence) and never a zero (which would make them final).
* :func:`class_priors`: the fit's soft class counts plus one per class (a Dirichlet(1) prior),
  normalised; :func:`bounded_priors` then keeps every class at least ``floor_share / K`` of the
  mass (renormalised), whatever a stored fit says.
* A labeler the fit has not seen counts as the one-coin labeler (:func:`one_coin`): the fit has no
  evidence about them. :func:`decisive_margin` is then the vote margin that decides an item
  whatever the fit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ._common import EPS

FloatArray = npt.NDArray[np.float64]

# Online, no class is believed rarer than this share of its uniform share (1 / K).
PRIOR_FLOOR_SHARE = 0.1


def one_coin(accuracy: float, n_classes: int) -> FloatArray:
    """``(K, K)``: right with probability ``accuracy``, errors spread evenly over the others.

    Raises:
        ValueError: ``accuracy`` outside ``(0, 1)`` or fewer than two classes.
    """
    if n_classes < 2:
        raise ValueError(f"a one-coin labeler needs at least 2 classes, got {n_classes}")
    if not 0.0 < accuracy < 1.0:
        raise ValueError(f"accuracy must be in (0, 1), got {accuracy}")
    off = (1.0 - accuracy) / (n_classes - 1)
    matrix: FloatArray = np.full((n_classes, n_classes), off)
    np.fill_diagonal(matrix, accuracy)
    return matrix


def capped_confusion(confusion: Any, accuracy: float) -> FloatArray:
    """``(K, K)`` confusion rows mixed with uniform answers just enough that no answer favours one
    class over another by more than a one-coin labeler of ``accuracy``'s answer does (a ratio of
    ``accuracy * (K - 1) / (1 - accuracy)``); rows already within that are returned as they are.

    A labeler whose overall accuracy is low can still have one answer their rows make nearly
    final (never given but for one class); capping the ratio, not the accuracy, bounds what any
    one answer of theirs can do. Mixing toward uniform rows keeps which classes each answer
    favours.

    Raises:
        ValueError: not ``(K, K)`` rows of finite, non-negative numbers with positive sums, or
            ``accuracy`` outside ``(0, 1)``.
    """
    rows = np.asarray(confusion, dtype=np.float64)
    if rows.ndim != 2 or rows.shape[0] != rows.shape[1]:
        raise ValueError(f"confusion must have shape (K, K), got {rows.shape}")
    if not 0.0 < accuracy < 1.0:
        raise ValueError(f"accuracy must be in (0, 1), got {accuracy}")
    k = rows.shape[0]
    # At chance or below (accuracy <= 1 / K), an answer may favour nothing: uniform rows.
    ratio = max(1.0, accuracy * (k - 1) / (1.0 - accuracy))
    if not np.isfinite(rows).all() or (rows < 0).any() or (rows.sum(axis=1) <= 0).any():
        raise ValueError("confusion rows must be finite and non-negative with positive sums")
    normal: FloatArray = rows / rows.sum(axis=1, keepdims=True)
    high, low = (
        normal.max(axis=0),
        normal.min(axis=0),
    )  # per answer, the classes it favours most/least
    # Mixed with a share s of uniform rows: ((1 - s) high + s / K) / ((1 - s) low + s / K) is
    # the ratio when s = excess / (excess + (ratio - 1) / K), excess = high - ratio * low (s
    # itself, not 1 - s, is computed: it can be tiny).
    excess = np.maximum(high - ratio * low, 0.0)
    if not excess.any():
        return normal
    share = float((excess / (excess + (ratio - 1.0) / k)).max())
    capped: FloatArray = (1.0 - share) * normal + share / k
    return capped


def labeler_confusions(
    tasks: Any,
    workers: Any,
    labels: Any,
    posteriors: Any,
    n_workers: int,
    prior_accuracy: float,
    strength: float,
) -> FloatArray:
    """``(W, K, K)`` confusion rows for online decisions from a fit's task posteriors.

    ``confusion[w, k, :]`` = (soft counts of ``w``'s answers on tasks of class ``k`` + ``strength``
    times the one-coin row of ``prior_accuracy``) / (their total). ``tasks``, ``workers``,
    ``labels`` are the fitted answers' codes, ``posteriors`` the fit's ``(T, K)`` posteriors.

    Raises:
        ValueError: mismatched lengths, codes out of range, ``strength <= 0``, or a bad
            ``prior_accuracy`` (see :func:`one_coin`).
    """
    post = np.asarray(posteriors, dtype=np.float64)
    if post.ndim != 2:
        raise ValueError(f"posteriors must be (T, K), got shape {post.shape}")
    k = post.shape[1]
    task_codes, worker_codes, label_codes = (np.asarray(a) for a in (tasks, workers, labels))
    if not task_codes.shape == worker_codes.shape == label_codes.shape:
        raise ValueError("tasks, workers and labels must have the same length")
    if task_codes.size and not all(
        np.issubdtype(a.dtype, np.integer) and a.dtype != np.bool_
        for a in (task_codes, worker_codes, label_codes)
    ):
        raise ValueError("tasks, workers and labels must be integer codes")
    if task_codes.size and (
        task_codes.min() < 0
        or task_codes.max() >= post.shape[0]
        or worker_codes.min() < 0
        or worker_codes.max() >= n_workers
        or label_codes.min() < 0
        or label_codes.max() >= k
    ):
        raise ValueError("a task, worker or label code is out of range")
    if not 0 < strength < np.inf:
        raise ValueError(f"strength must be positive and finite, got {strength}")
    if not np.isfinite(post).all() or (post < 0).any():
        raise ValueError("posteriors must be finite and non-negative")
    prior_row = one_coin(prior_accuracy, k)
    counts = np.zeros((n_workers * k, k))  # [w * K + answer, true]
    np.add.at(counts, worker_codes * k + label_codes, post[task_codes])
    soft = np.transpose(counts.reshape(n_workers, k, k), (0, 2, 1))  # [w, true, answer]
    total = soft + strength * prior_row[None]
    rows: FloatArray = total / total.sum(axis=2, keepdims=True)
    return rows


def class_priors(posteriors: Any) -> FloatArray:
    """The class probabilities of a fit's ``(T, K)`` posteriors (the answered tasks' rows) under
    a Dirichlet(1) prior: (soft counts + 1) / (T + K)."""
    post = np.asarray(posteriors, dtype=np.float64)
    priors: FloatArray = (post.sum(axis=0) + 1.0) / (post.shape[0] + post.shape[1])
    return priors


def bounded_priors(priors: Any, floor_share: float = PRIOR_FLOOR_SHARE) -> FloatArray:
    """``priors`` normalised, with every class raised to at least ``floor_share / K`` and the
    result normalised again.

    Raises:
        ValueError: negative entries or a zero sum.
    """
    prior = np.asarray(priors, dtype=np.float64)
    if prior.ndim != 1 or not prior.size:
        raise ValueError(f"priors must be a 1-D array of class probabilities, got {prior.shape}")
    if not np.isfinite(prior).all() or (prior < 0).any() or prior.sum() <= 0:
        raise ValueError("priors must be finite and non-negative with a positive sum")
    if not 0.0 <= floor_share <= 1.0:
        raise ValueError(f"floor_share must be in [0, 1], got {floor_share}")
    k = prior.shape[0]
    raised = np.maximum(prior / prior.sum(), floor_share / k)
    bounded: FloatArray = raised / raised.sum()
    return bounded


def decisive_margin(
    n_classes: int,
    threshold: float,
    accuracy: float,
    floor_share: float = PRIOR_FLOOR_SHARE,
) -> int:
    """The smallest vote margin (answers for the leading class minus answers for the runner-up)
    that puts the leading class at ``threshold`` or more, when every answer comes from a one-coin
    labeler of ``accuracy``, whatever class priors :func:`bounded_priors` let through.

    E.g. 2 classes, threshold 0.95, accuracy 0.8: 5 (a 6-to-1 or 5-to-0 vote).

    Raises:
        ValueError: fewer than 2 classes, ``accuracy`` not above chance (``1 / n_classes``),
            ``threshold`` outside ``(0, 1)`` or ``floor_share`` outside ``(0, 1]``.
    """
    if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2:
        raise ValueError(f"n_classes must be an int of at least 2, got {n_classes!r}")
    if not 0.0 < floor_share <= 1.0:
        raise ValueError(f"floor_share must be in (0, 1], got {floor_share}")
    if not 1.0 / n_classes < accuracy < 1.0:
        raise ValueError(f"accuracy must be in (1/K, 1), got {accuracy}")
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    # The rarest a class can be after bounded_priors, and the odds one answer moves.
    rarest = (floor_share / n_classes) / (1.0 + floor_share)
    step = np.log(accuracy * (n_classes - 1) / (1.0 - accuracy))
    needed = np.log((1.0 - rarest) / rarest * threshold / (1.0 - threshold))
    return max(0, int(np.ceil(needed / step - 1e-12)))


def item_posterior(
    confusions: Any, priors: Any, workers: Any, labels: Any, floor: float = 0.0
) -> FloatArray:
    """The posterior over classes of one item given its answers.

    Args:
        confusions: ``(W, K, K)``, ``confusions[w, k, l]`` = P(worker ``w`` answers ``l`` | truth
            ``k``) — e.g. :attr:`AggregationResult.confusion`.
        priors: ``(K,)`` class probabilities (normalised here).
        workers, labels: equal-length integer codes of the item's answers (may be empty: the
            result is then the normalised prior).
        floor: the fit's calibration floor (:attr:`AggregationResult.calibration_floor`): the
            result is ``(1 - floor) * posterior + floor / K``.

    Returns:
        ``(K,)`` float64 summing to 1. Probabilities are clipped at 1e-10 before the log, as in
        the batch fit, so no single answer can rule a class out.

    Raises:
        ValueError: wrong shapes, mismatched lengths, a worker/label code out of range, or a
            ``floor`` outside ``[0, 1]``.
    """
    if not 0.0 <= floor <= 1.0:
        raise ValueError(f"floor must be in [0, 1], got {floor}")
    conf = np.asarray(confusions, dtype=np.float64)
    prior = np.asarray(priors, dtype=np.float64)
    if conf.ndim != 3 or conf.shape[1] != conf.shape[2]:
        raise ValueError(f"confusions must have shape (W, K, K), got {conf.shape}")
    k = conf.shape[1]
    if prior.shape != (k,):
        raise ValueError(f"priors must have shape ({k},), got {prior.shape}")
    if not np.isfinite(prior).all() or (prior < 0).any() or prior.sum() <= 0:
        raise ValueError("priors must be finite and non-negative with a positive sum")
    who = np.asarray(workers)
    said = np.asarray(labels)
    if who.ndim != 1 or said.ndim != 1 or who.shape != said.shape:
        raise ValueError("workers and labels must be 1-D arrays of the same length")
    if who.size and not (
        np.issubdtype(who.dtype, np.integer) and np.issubdtype(said.dtype, np.integer)
    ):
        raise ValueError("workers and labels must be integer codes")
    if who.size and (who.min() < 0 or who.max() >= conf.shape[0]):
        raise ValueError(f"worker codes must be in [0, {conf.shape[0]})")
    if said.size and (said.min() < 0 or said.max() >= k):
        raise ValueError(f"label codes must be in [0, {k})")
    logits = np.log(np.maximum(prior / prior.sum(), EPS))
    if who.size:
        used = conf[who, :, said]
        if not np.isfinite(used).all() or (used < 0).any():
            raise ValueError("confusions must be finite and non-negative")
        logits = logits + np.log(np.maximum(used, EPS)).sum(axis=0)
    logits -= logits.max()
    posterior: FloatArray = np.exp(logits)
    posterior /= posterior.sum()
    if floor:
        posterior = (1.0 - floor) * posterior + floor / k
    return posterior
