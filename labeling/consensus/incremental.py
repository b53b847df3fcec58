"""Per-item posteriors from fitted worker models, for the platform's online decisions.

After a batch :func:`~labeling.consensus.aggregate` run, the platform keeps each worker's confusion
matrix and the class priors; when a new answer arrives it recomputes only that item's posterior
(O(answers of the item)) to decide whether to stop collecting answers for it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ._common import EPS

FloatArray = npt.NDArray[np.float64]


def item_posterior(confusions: Any, priors: Any, workers: Any, labels: Any) -> FloatArray:
    """The posterior over classes of one item given its answers.

    Args:
        confusions: ``(W, K, K)``, ``confusions[w, k, l]`` = P(worker ``w`` answers ``l`` | truth
            ``k``) — e.g. :attr:`AggregationResult.confusion`.
        priors: ``(K,)`` class probabilities (normalised here).
        workers, labels: equal-length integer codes of the item's answers (may be empty: the
            result is then the normalised prior).

    Returns:
        ``(K,)`` float64 summing to 1. Probabilities are clipped at 1e-10 before the log, as in
        the batch fit, so no single answer can rule a class out.

    Raises:
        ValueError: wrong shapes, mismatched lengths, or a worker/label code out of range.
    """
    conf = np.asarray(confusions, dtype=np.float64)
    prior = np.asarray(priors, dtype=np.float64)
    if conf.ndim != 3 or conf.shape[1] != conf.shape[2]:
        raise ValueError(f"confusions must have shape (W, K, K), got {conf.shape}")
    k = conf.shape[1]
    if prior.shape != (k,):
        raise ValueError(f"priors must have shape ({k},), got {prior.shape}")
    if (prior < 0).any() or prior.sum() <= 0:
        raise ValueError("priors must be non-negative with a positive sum")
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
        logits = logits + np.log(np.maximum(conf[who, :, said], EPS)).sum(axis=0)
    logits -= logits.max()
    posterior: FloatArray = np.exp(logits)
    posterior /= posterior.sum()
    return posterior
