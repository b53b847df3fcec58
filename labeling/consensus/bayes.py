"""The priors of Bayesian Dawid-Skene (``bayes_ds``) and its calibration from gold tasks.

Every confusion row of every worker has a Dirichlet prior, and the confusion used in the E-step is
the row's posterior mean: the worker's soft counts plus the prior's pseudo-counts, normalised. So a
row with little evidence stays close to its prior, and no row is ever zero (Dawid-Skene's maximum
likelihood rows are zero for every error not yet seen, and make a few labels look certain).

The prior of a worker is a mixture of *community* rows learned from the whole crowd (Venanzi et
al., "Community-based Bayesian aggregation models for crowdsourcing", WWW 2014): a few typical
kinds of worker, e.g. careful, spamming, confused between two classes. Each community ``c`` has a
confusion matrix; a worker belongs to each with a responsibility given by the Dirichlet-multinomial
likelihood of the worker's soft counts under that community's rows, and the worker's prior is the
responsibility-weighted mix of the communities' rows, worth :data:`STRENGTH` answers per row. A
sparse worker thus borrows the behaviour of the workers they resemble instead of one global
average (which, in a crowd of a few careful workers and many poor ones, describes nobody), and a
prolific worker's own counts dominate.

The class prior has a Dirichlet(1) prior: its estimate is (soft class counts + 1) / (tasks + K).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ._common import FloatArray, IntArray, log_gamma
from ._data import CrowdData

# Communities learned from the crowd: a careful one, a uniform (spamming) one and a weak one to
# start with; EM moves them to whatever kinds of worker the crowd has.
N_COMMUNITIES = 3
# How many answers a community's row is worth in a worker's prior. Ten is weak next to a prolific
# worker's hundreds, strong next to a worker's handful (a worker with 2 answers per row keeps
# about 2/12 of their own estimate).
STRENGTH = 10.0
# Cells per block of the responsibilities' computation (its temporaries: a few of these, in
# float64, whatever the number of classes).
_BLOCK_CELLS = 1 << 20
# Pseudo-answers per row of a community's own estimate, shaped like the community's starting row:
# a class that (almost) no task is believed to have keeps its starting rows, so a careful
# community stays careful about it instead of drifting to uniform rows that would make answers of
# that class carry no evidence.
_COMMUNITY_SMOOTHING = 1.0


class CommunityPrior:
    """The community mixture prior of the workers' confusion rows, re-estimated at each M-step."""

    def __init__(self, n_workers: int, k: int) -> None:
        self.k = k
        eye = np.eye(k)
        careful = 0.7 * eye + 0.3 / k
        uniform = np.full((k, k), 1.0 / k)
        weak = 0.4 * eye + 0.6 / k
        self.rows = np.stack([careful, uniform, weak])[:N_COMMUNITIES]  # (M, true, answer)
        self.start = self.rows.copy()
        self.weights = np.full(N_COMMUNITIES, 1.0 / N_COMMUNITIES)
        self.responsibility = np.full((n_workers, N_COMMUNITIES), 1.0 / N_COMMUNITIES)
        self.prior_counts = np.zeros((n_workers, k, k))

    def update(self, counts: FloatArray) -> FloatArray:
        """One EM step of the mixture on the workers' soft counts ``(W, true, answer)``; returns
        each worker's prior pseudo-counts, same shape."""
        pseudo = STRENGTH * self.rows  # (M, K, K)
        row_pseudo = pseudo.sum(axis=2)  # (M, K)
        row_counts = counts.sum(axis=2)  # (W, K)
        n_workers, k = counts.shape[0], self.k
        n_communities = pseudo.shape[0]
        # log Dirichlet-multinomial likelihood of each worker's rows under each community:
        #   sum_k [lgG(a_k) - lgG(a_k + n_k)] + sum_{k,l} [lgG(a_kl + n_kl) - lgG(a_kl)].
        # A (true, answer) cell the worker never answered (n_kl = 0: every cell of an answer
        # column the worker never gave) adds 0, so the second sum runs over the (worker, answer)
        # pairs they gave: with many classes and sparse workers, a small part of W x K x K.
        # Both run in blocks whose temporaries stay near _BLOCK_CELLS, whatever K.
        log_like = np.zeros((n_workers, n_communities))
        block = max(1, _BLOCK_CELLS // (n_communities * k))
        base = log_gamma(row_pseudo)  # (M, K)
        for lo in range(0, n_workers, block):
            hi = min(lo + block, n_workers)
            log_like[lo:hi] = (
                base[None] - log_gamma(row_pseudo[None] + row_counts[lo:hi, None])
            ).sum(axis=2)
        given_w, given_l = np.nonzero(counts.sum(axis=1) > 0)  # (worker, answer) pairs
        by_answer = pseudo.transpose(2, 0, 1)  # (answer, M, true)
        by_answer_log = log_gamma(by_answer)
        for lo in range(0, given_w.size, block):
            hi = min(lo + block, given_w.size)
            w, ans = given_w[lo:hi], given_l[lo:hi]
            cells = counts[w, :, ans]  # (P, true)
            gain = (log_gamma(by_answer[ans] + cells[:, None, :]) - by_answer_log[ans]).sum(
                axis=2
            )  # (P, M)
            for c in range(n_communities):
                log_like[:, c] += np.bincount(w, weights=gain[:, c], minlength=n_workers)
        log_like += np.log(self.weights)[None]
        log_like -= log_like.max(axis=1, keepdims=True)
        resp = np.exp(log_like)
        resp /= resp.sum(axis=1, keepdims=True)
        self.responsibility = resp
        self.weights = (resp.sum(axis=0) + 1.0) / (n_workers + N_COMMUNITIES)
        pooled = np.einsum("wc,wkl->ckl", resp, counts) + _COMMUNITY_SMOOTHING * self.start
        self.rows = pooled / pooled.sum(axis=2, keepdims=True)
        prior: FloatArray = np.einsum("wc,ckl->wkl", resp, STRENGTH * self.rows)
        self.prior_counts = prior
        return prior


def posterior_rows(counts: FloatArray, prior: FloatArray) -> FloatArray:
    """The posterior-mean confusion ``(W, true, answer)`` of soft counts under a Dirichlet prior."""
    total = counts + prior
    rows: FloatArray = total / total.sum(axis=2, keepdims=True)
    return rows


def class_prior(mass: FloatArray, n_tasks: int) -> FloatArray:
    """The posterior-mean class probabilities under a Dirichlet(1) prior."""
    prior: FloatArray = (mass + 1.0) / (n_tasks + mass.shape[0])
    return prior


def largest_change(
    rows: FloatArray, previous_rows: FloatArray, classes: FloatArray, previous_classes: FloatArray
) -> float:
    """The stopping rule's measure: the largest move of any confusion entry or class probability
    between two iterations (EM stops once it is below ``tol``)."""
    return max(
        float(np.abs(rows - previous_rows).max(initial=0.0)),
        float(np.abs(classes - previous_classes).max(initial=0.0)),
    )


def calibrate_to_gold(
    posteriors: FloatArray,
    data: CrowdData,
    gold_tasks: IntArray,
    gold_labels: IntArray,
    counts: FloatArray,
    prior: FloatArray,
    classes: FloatArray,
) -> float:
    """The last step of a fit, whatever backend ran its EM: estimate :func:`gold_floor` from the
    answered gold tasks' held-out posteriors (:func:`held_out_gold_posteriors`; a gold task nobody
    answered tells nothing about the crowd) and mix it, in place, into every non-gold row of
    ``posteriors`` ``(n_tasks, K)``. ``counts``/``prior`` are the final ``(W, true, answer)`` soft
    counts and prior pseudo-counts, ``classes`` the class prior. Returns the floor (0 without gold).
    """
    if not gold_tasks.size:
        return 0.0
    answered = data.labeled[gold_tasks]
    held_out = held_out_gold_posteriors(
        data.tasks,
        data.workers,
        data.labels,
        gold_tasks[answered],
        gold_labels[answered],
        counts,
        prior,
        classes,
    )
    floor = gold_floor(held_out, gold_labels[answered])
    not_gold = np.ones(posteriors.shape[0], dtype=bool)
    not_gold[gold_tasks] = False
    posteriors[not_gold] = apply_floor(posteriors[not_gold], floor)
    return floor


def held_out_gold_posteriors(
    tasks: IntArray,
    workers: IntArray,
    labels: IntArray,
    gold_tasks: IntArray,
    gold_labels: IntArray,
    counts: FloatArray,
    prior: FloatArray,
    classes: FloatArray,
) -> FloatArray:
    """Each gold task's posterior as if its label were unknown: from its answers, with the
    confusion rows re-estimated without that task's own (clamped) contribution.

    ``tasks``/``workers``/``labels`` are all the answers; ``counts`` and ``prior`` the final
    ``(W, true, answer)`` soft counts and prior pseudo-counts; ``classes`` the class prior.
    Returns ``(len(gold_tasks), K)``.
    """
    k = counts.shape[1]
    top = max(int(tasks.max(initial=-1)), int(gold_tasks.max(initial=-1))) + 1
    index = np.full(top, -1, dtype=np.int64)
    index[gold_tasks] = np.arange(gold_tasks.size)
    mine = np.flatnonzero(index[tasks] >= 0) if tasks.size else np.zeros(0, dtype=np.int64)
    which = index[tasks[mine]]
    who, said = workers[mine], labels[mine]
    # Each answer's own one-hot count (its task was clamped to the gold label) comes out.
    own = np.zeros((mine.size, k))
    own[np.arange(mine.size), gold_labels[which]] = 1.0
    numerator = counts[who, :, said] + prior[who, :, said] - own
    denominator = (counts + prior).sum(axis=2)[who] - own
    logits = np.tile(np.log(classes), (gold_tasks.size, 1))
    np.add.at(logits, which, np.log(np.maximum(numerator, 1e-300) / denominator))
    logits -= logits.max(axis=1, keepdims=True)
    held_out: FloatArray = np.exp(logits)
    held_out /= held_out.sum(axis=1, keepdims=True)
    return held_out


def gold_floor(held_out: FloatArray, gold_labels: IntArray, grid: int = 1001) -> float:
    """The share ``e`` of tasks on which the crowd's posterior carries no information, estimated
    from gold tasks: the posterior mean of ``e`` (uniform prior) under the model
    ``P(truth = y) = (1 - e) * posterior[y] + e / K``.

    Correlated errors (the crowd agreeing on the wrong class for some items) are the usual cause,
    and no model of independent workers can see them in unlabeled data; gold items can. With few
    gold items the estimate is cautious (about ``1 / (n + 2)`` even when every one is right).
    Returns 0 without gold tasks.
    """
    if held_out.shape[0] == 0:
        return 0.0
    k = held_out.shape[1]
    right = held_out[np.arange(held_out.shape[0]), gold_labels]
    share = np.linspace(0.0, 1.0, grid)
    likelihood = (1.0 - share)[:, None] * right[None] + share[:, None] / k
    log_like = np.log(np.maximum(likelihood, 1e-300)).sum(axis=1)
    weight = np.exp(log_like - log_like.max())
    return float((share * weight).sum() / weight.sum())


def apply_floor(posteriors: npt.NDArray[np.float64], floor: float) -> FloatArray:
    """``(1 - floor) * posteriors + floor / K``, row by row (the most probable class is kept)."""
    k = posteriors.shape[-1]
    mixed: FloatArray = (1.0 - floor) * posteriors + floor / k
    return mixed
