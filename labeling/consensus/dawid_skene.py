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

The per-answer work runs block by block over :class:`~._layout.EMLayout` (see there), on up to
``n_threads`` threads; blocks and their sums are fixed by the layout alone, so the result is the same
bit for bit whatever the number of threads.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from . import bayes
from ._common import EPS, FloatArray, IntArray
from ._data import CrowdData
from ._layout import EMLayout, pair_view
from .result import AggregationResult

Precision = Literal["float32", "float64"]

# Below this many answers one thread is faster than handing blocks to a pool.
_THREADS_FROM = 1 << 17
_MAX_THREADS = 8


def default_threads() -> int:
    """The CPUs this process may run on, capped at ``_MAX_THREADS``."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        available = os.cpu_count() or 1
    return max(1, min(available, _MAX_THREADS))


def _ds_tables(
    counts: npt.NDArray[np.float64],
    n_workers: int,
    k: int,
    one_coin: bool,
    answers: FloatArray,
    community: bayes.CommunityPrior | None = None,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Confusion by answer ``(W, K, K)`` [w, answer l, true k] (:func:`_confusion` turns it into
    the result's layout) and its log, ``(W * K, K)``: row ``w * K + l``, column ``k`` =
    log P(answer l | truth k) for worker ``w``. With ``community`` (Bayesian Dawid-Skene) the rows
    are posterior means under the community prior, which it re-estimates from ``counts``.

    Runs every iteration on ``W * K^2`` values: it avoids NumPy reductions over short axes,
    which cost a C-level loop call per row.
    """
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
        by_answer_conf = np.transpose(confusion, (0, 2, 1))
    elif community is not None:
        soft = np.transpose(by_answer, (0, 2, 1))  # [w, true, answer]
        rows = bayes.posterior_rows(soft, community.update(soft))
        by_answer_conf = np.transpose(rows, (0, 2, 1))
    else:
        clipped = np.maximum(by_answer, EPS)
        totals = np.einsum("wlk->wk", clipped)
        by_answer_conf = clipped / np.repeat(totals[:, None, :], k, axis=1)
    log_rows = np.log(by_answer_conf).reshape(n_workers * k, k)
    return by_answer_conf, np.ascontiguousarray(log_rows)


def _confusion(by_answer_conf: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """``(W, K, K)`` [w, true, answer] from :func:`_ds_tables`'s [w, answer, true]."""
    return np.ascontiguousarray(np.transpose(by_answer_conf, (0, 2, 1)))


# Up to this many classes, reductions over the class axis go a column at a time (fast for narrow
# arrays); wider ones are whole-array reductions (a Python loop per class would dominate).
_NARROW = 16


def _column_sums(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """``x.sum(axis=0)`` of an ``(n, K)`` array, a column at a time when it is narrow."""
    if x.shape[1] > _NARROW:
        return np.asarray(x.sum(axis=0))
    return np.array([x[:, c].sum() for c in range(x.shape[1])])


def _row_max(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """``x.max(axis=1)`` of an ``(n, K)`` array, a column at a time when it is narrow."""
    if x.shape[1] > _NARROW:
        return np.asarray(x.max(axis=1))
    out = x[:, 0].copy()
    for c in range(1, x.shape[1]):
        np.maximum(out, x[:, c], out=out)
    return out


class _Blocks:
    """Runs ``work(thread, item)`` for items ``0..n-1`` on ``n_threads`` threads (this one too).

    Items are handed out in order from a shared counter; each item writes only its own outputs,
    so which thread ran it does not matter.
    """

    def __init__(self, n_threads: int) -> None:
        self.n_threads = n_threads
        self.pool = ThreadPoolExecutor(n_threads - 1) if n_threads > 1 else None

    def run(self, n_items: int, work: Callable[[int, int], None]) -> None:
        if self.pool is None or n_items < 2:
            for item in range(n_items):
                work(0, item)
            return
        counter = itertools.count()

        def loop(thread: int) -> None:
            for item in iter(counter.__next__, None):
                if item >= n_items:
                    return
                work(thread, item)

        futures = [self.pool.submit(loop, t) for t in range(1, self.n_threads)]
        try:
            loop(0)
        finally:
            for future in futures:
                future.result()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()


def dawid_skene(
    data: CrowdData,
    gold_tasks: IntArray,
    gold_labels: IntArray,
    max_iter: int,
    tol: float,
    one_coin: bool = False,
    precision: Precision = "float64",
    n_threads: int | None = None,
    bayesian: bool = False,
) -> AggregationResult:
    """Fit Dawid-Skene (or one-coin Dawid-Skene) by EM; see the module docstring.

    ``bayesian`` fits Bayesian Dawid-Skene (:mod:`.bayes`): confusion rows and class prior are
    posterior means under Dirichlet priors (the rows' prior a mixture of community rows learned
    from the crowd); it stops when no confusion entry or class probability moves by ``tol`` or
    more. Its gold tasks also calibrate it: the result's ``calibration_floor`` (see
    :func:`.bayes.gold_floor`) is mixed into every other task's posterior.

    ``worker_skill`` is each worker's expected accuracy: the mean posterior probability of the
    class they answered. ``confusion[w, k, l]`` = P(answer l | truth k). ``precision="float32"``
    runs the per-answer gathers and sums in float32 (posteriors agree with float64 to ~1e-6);
    soft counts and parameters are always float64. ``n_threads`` (default: the CPUs available,
    at most 8; one for small inputs) does not change the result.

    Raises:
        ValueError: ``n_threads`` is not a positive int.
    """
    if n_threads is None:
        n_threads = default_threads() if data.n >= _THREADS_FROM else 1
    elif isinstance(n_threads, bool) or not isinstance(n_threads, int) or n_threads < 1:
        raise ValueError(f"n_threads must be a positive int, got {n_threads!r}")
    k = data.n_classes
    dtype = np.dtype(precision)
    layout = EMLayout.build(data, itemsize=dtype.itemsize)
    n_labeled = layout.n_labeled
    n_blocks = len(layout.blocks)
    n_pieces = len(layout.pieces)
    n_workers = data.n_workers
    answers = layout.answers_per_worker
    n_answers = max(data.n, 1)

    # Gold tasks with answers, by block: local rows and classes.
    gold_rank = layout.task_rank[gold_tasks]
    gold_in = gold_rank >= 0
    gold_rank, gold_class = gold_rank[gold_in], gold_labels[gold_in]
    block_start = np.array([lo for lo, _ in layout.blocks], dtype=np.intp)
    gold_block = np.searchsorted(block_start, gold_rank, side="right") - 1
    block_gold = []
    for b, (lo, _) in enumerate(layout.blocks):
        mine = gold_block == b
        block_gold.append((gold_rank[mine] - lo, gold_class[mine]))

    # Everything the loop touches is allocated once: fresh pages cost more than the arithmetic.
    posterior_rows = np.empty((n_labeled, k), dtype=dtype)
    gathered = [np.empty((layout.max_block, k), dtype=dtype) for _ in range(n_threads)]
    e_where = [np.empty(layout.max_block_answers, dtype=np.intp) for _ in range(n_threads)]
    m_where = [np.empty(layout.max_piece, dtype=np.intp) for _ in range(n_threads)]
    rows_scratch = [_RowScratch(layout.max_block, k, dtype) for _ in range(n_threads)]
    m_buffers = [np.empty((layout.max_piece, k), dtype=dtype) for _ in range(n_threads)]
    segments = np.zeros((layout.n_segments + 1, k), dtype=dtype)  # the last row stays 0
    cell_sums = np.empty((n_workers * k, k), dtype=dtype)
    counts = np.empty((n_workers * k, k))
    block_log_total = np.zeros(n_blocks)
    block_gold_logit = np.zeros(n_blocks)
    block_mass = np.zeros((n_blocks, k))
    per_task = layout.answers_per_task
    # Below this a row's exponentials may be subnormal: recompute it with its maximum taken out.
    tiny = float(np.finfo(dtype).tiny) * 2.0**64
    # The E-step's table: rows [0, W*K) for an answer that is not its task's first, rows
    # [W*K, 2*W*K) the same plus the log prior, for the first.
    table = np.empty((2 * n_workers * k, k), dtype=dtype)
    vote = True

    def e_block(thread: int, b: int) -> None:
        lo, hi = layout.blocks[b]
        x = posterior_rows[lo:hi]
        layout.gather_logits(table, b, x, gathered[thread], e_where[thread])
        rows, classes = block_gold[b]
        work = rows_scratch[thread]
        if vote:
            total = work.row_sums(x)
        else:
            if rows.size:
                block_gold_logit[b] = float(x[rows, classes].sum(dtype=np.float64))
            np.exp(x, out=x)
            total = work.row_sums(x)
            fixed = None
            if float(total.min()) < tiny:
                fixed = _fix_underflow(layout, x, total, lo, tiny, table)
            log_total = work.log(total)
            if fixed is not None:
                log_total[fixed[0]] = fixed[1]
            if rows.size:
                log_total[rows] = 0.0
            block_log_total[b] = float(log_total.sum(dtype=np.float64))
        work.divide_rows(x, total)
        if rows.size:
            x[rows] = 0.0
            x[rows, classes] = 1.0
        if not per_task:
            # In the posterior's dtype (a strided float64 sum is twice as slow); the blocks' sums
            # are added in float64.
            work.column_sums(x, block_mass[b])

    def total_mass(by_class: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """The posteriors' column sums. When every task has the same number of answers, they are
        the soft counts' column sums (``by_class``) over that number: no per-block pass."""
        if per_task:
            return by_class / per_task
        return _column_sums(block_mass)

    def class_prior(mass: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        if bayesian:
            return bayes.class_prior(mass, n_labeled)
        return mass / n_labeled

    def m_piece(thread: int, p: int) -> None:
        layout.segment_sums(posterior_rows, p, m_buffers[thread], m_where[thread], segments)

    blocks = _Blocks(n_threads)
    try:
        # Start from the majority-vote shares, as crowd-kit does: the E-step machinery with a
        # one-hot table sums each task's votes.
        table[:] = np.tile(np.eye(k, dtype=dtype), (2 * n_workers, 1))
        blocks.run(n_blocks, e_block)
        vote = False
        blocks.run(n_pieces, m_piece)
        layout.combine(segments, counts, cell_sums)
        community = bayes.CommunityPrior(n_workers, k) if bayesian else None
        prior = class_prior(total_mass(_column_sums(counts)))
        by_answer_conf, log_rows = _ds_tables(counts, n_workers, k, one_coin, answers, community)

        elbo = -np.inf
        converged = False
        iterations = 0
        wk = n_workers * k
        for _ in range(max_iter):
            iterations += 1
            log_prior = np.log(np.maximum(prior, EPS))
            # Each row of the table shifted to a maximum of 0: a per-task constant that the
            # softmax ignores, and that keeps exp() from overflowing without a max pass.
            rest = log_rows - _row_max(log_rows)[:, None]
            table[:wk] = rest
            for c in range(k):
                np.add(rest[:, c], log_prior[c], out=table[wk:, c], casting="same_kind")
            blocks.run(n_blocks, e_block)
            blocks.run(n_pieces, m_piece)
            layout.combine(segments, counts, cell_sums)
            by_class = _column_sums(counts)
            mass = total_mass(by_class)
            previous_prior, previous_conf = prior, by_answer_conf
            prior = class_prior(mass)
            # Entropy of the posteriors, non-gold tasks: sum of log Z - E[logit], and E[logit]
            # is linear in the soft counts, so it costs O(W K^2) instead of a pass over tasks.
            expected_logit = (
                float(np.sum(counts * rest)) + float(mass @ log_prior) - block_gold_logit.sum()
            )
            entropy = block_log_total.sum() - expected_logit
            by_answer_conf, log_rows = _ds_tables(
                counts, n_workers, k, one_coin, answers, community
            )
            if community is not None:
                moved = bayes.largest_change(by_answer_conf, previous_conf, prior, previous_prior)
                if moved < tol:
                    converged = True
                    break
                continue
            # crowd-kit's evidence lower bound: E[log p(answers, z)] + H(posterior), per answer.
            log_prior = np.log(np.maximum(prior, EPS))
            new_elbo = (
                float(np.sum(counts * log_rows)) + float(by_class @ log_prior) + entropy
            ) / n_answers
            if new_elbo - elbo < tol:
                converged = True
                break
            elbo = new_elbo
    finally:
        blocks.close()

    posteriors = np.full((data.n_tasks, k), 1.0 / k)
    posteriors[layout.rank_to_task] = posterior_rows
    if gold_tasks.size:
        posteriors[gold_tasks] = 0.0
        posteriors[gold_tasks, gold_labels] = 1.0
    floor = 0.0
    if community is not None:
        soft = np.transpose(counts.reshape(n_workers, k, k), (0, 2, 1))
        floor = bayes.calibrate_to_gold(
            posteriors, data, gold_tasks, gold_labels, soft, community.prior_counts, prior
        )
    mask = data.labeled
    mask[gold_tasks] = True
    labels = np.argmax(posteriors, axis=1).astype(np.int64)
    labels[~mask] = -1
    by_answer = counts.reshape(n_workers, k, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        skill = np.trace(by_answer, axis1=1, axis2=2) / answers
    skill[answers == 0] = np.nan
    return AggregationResult(
        labels=labels,
        posteriors=posteriors,
        worker_skill=skill,
        confusion=_confusion(by_answer_conf),
        iterations=iterations,
        converged=converged,
        method="bayes_ds" if bayesian else "one_coin" if one_coin else "dawid_skene",
        calibration_floor=floor,
    )


class _RowScratch:
    """One thread's buffers for the E-step's per-row work on an ``(m, K)`` block.

    Rows are 4-32 bytes, so NumPy can only walk a column at a time, a strided step per value.
    With an even ``K`` the rows are viewed as ``K / 2`` complex numbers (:func:`pair_view`), which
    halves the steps: a complex add adds two columns at once, and multiplying by ``1 / total + 0j``
    scales two columns at once, exactly as two real products would.
    """

    def __init__(self, m: int, k: int, dtype: np.dtype[np.floating[Any]]) -> None:
        self.paired = k % 2 == 0
        self.totals = np.empty(m, dtype=dtype)
        self.logs = np.empty(m, dtype=dtype)
        pair = pair_view(np.empty((0, 2), dtype=dtype)).dtype
        self.pair_sums = np.empty(m, dtype=pair)
        # The imaginary parts stay 0; only the real parts are ever written.
        self.inverse = np.zeros(m, dtype=pair)

    def row_sums(self, x: npt.NDArray[np.floating]) -> npt.NDArray[np.floating]:
        """``x.sum(axis=1)``, in a buffer that the next call overwrites."""
        m, k = x.shape
        out = self.totals[:m]
        if self.paired:
            pairs = pair_view(x)
            if k == 2:
                np.add(pairs[:, 0].real, pairs[:, 0].imag, out=out)
                return out
            sums = self.pair_sums[:m]
            np.add(pairs[:, 0], pairs[:, 1], out=sums)
            for c in range(2, k // 2):
                np.add(sums, pairs[:, c], out=sums)
            np.add(sums.real, sums.imag, out=out)
        elif k == 1:
            np.copyto(out, x[:, 0])
        else:
            np.add(x[:, 0], x[:, 1], out=out)
            for c in range(2, k):
                np.add(out, x[:, c], out=out)
        return out

    def log(self, total: npt.NDArray[np.floating]) -> npt.NDArray[np.floating]:
        out = self.logs[: total.shape[0]]
        np.log(total, out=out)
        return out

    def divide_rows(self, x: npt.NDArray[np.floating], total: npt.NDArray[np.floating]) -> None:
        """``x /= total[:, None]``, as a multiplication by the reciprocal."""
        m, k = x.shape
        if self.paired:
            inverse = self.inverse[:m]
            np.divide(1.0, total, out=inverse.real)
            pairs = pair_view(x)
            for c in range(k // 2):
                np.multiply(pairs[:, c], inverse, out=pairs[:, c])
        else:
            for c in range(k):
                np.divide(x[:, c], total, out=x[:, c])

    def column_sums(self, x: npt.NDArray[np.floating], out: npt.NDArray[np.float64]) -> None:
        """``out[:] = x.sum(axis=0)``, each column summed in ``x``'s dtype."""
        if self.paired:
            pairs = pair_view(x)
            for c in range(x.shape[1] // 2):
                both = complex(pairs[:, c].sum())
                out[2 * c] = both.real
                out[2 * c + 1] = both.imag
        else:
            for c in range(x.shape[1]):
                out[c] = float(x[:, c].sum())


def _fix_underflow(
    layout: EMLayout,
    x: npt.NDArray[np.floating],
    total: npt.NDArray[np.floating],
    lo: int,
    tiny: float,
    table: npt.NDArray[np.floating],
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
    """Rows whose exponentials all (nearly) underflowed: recompute them in float64 with their
    maximum subtracted; they become normalised (``total`` 1). Returns the rows and their log Z.
    """
    bad = np.flatnonzero(total < tiny)
    logits = layout.logits_for(bad + lo, table)
    top = logits.max(axis=1, keepdims=True)
    shifted = np.exp(logits - top)
    z = shifted.sum(axis=1)
    x[bad] = shifted / z[:, None]
    total[bad] = 1.0
    return bad, np.log(z) + top[:, 0]
