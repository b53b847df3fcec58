"""Precomputed index arrays that make the Dawid-Skene family's EM steps loop-free and fast.

Both EM steps are a gather followed by a segmented sum; the layouts below put every segment in
contiguous memory, built once per :func:`aggregate` call, so each iteration allocates nothing big
and never calls ``np.add.at``.

E-step, ``logpost[k, t] = log prior[k] + sum_i logconf[w_i, k, l_i]``: tasks are ranked by answer
count (most first), and answer ``j`` of every task goes in *slot* ``j``. The tasks with more than
``j`` answers are then a prefix of the ranking, so slot ``j`` is one ``np.take`` from the
``(K, W * K)`` log-confusion table into a contiguous buffer and one add into a prefix of the
``(K, T)`` accumulator. Short trailing slots (a few tasks with very many answers) go through one
``np.bincount`` instead, to bound the Python-level loop.

M-step, ``counts[w * K + l, k] = sum of posterior[t_i, k] over answers i by worker w with label l``:
answers are sorted by ``w * K + l`` (a radix argsort on 16-bit keys), so each cell is one
contiguous ``np.add.reduceat`` segment of the gathered posterior rows. The gather goes through a
fixed-size buffer, chunk by chunk, to bound memory at tens of millions of answers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ._data import CrowdData

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.floating]

# Slots shorter than this go through the bincount tail (a Python iteration costs ~1-2 us).
_MIN_SLOT = 512
# Answers per M-step chunk: a (chunk, K) buffer that stays cache-friendly.
_CHUNK = 1 << 18


def _radix_argsort(keys: IntArray, top: int) -> IntArray:
    """Stable argsort of non-negative ``keys < top``, via NumPy's radix sort on 16-bit digits."""
    if top <= 1 << 16:
        return np.argsort(keys.astype(np.uint16), kind="stable")
    order = np.argsort((keys & 0xFFFF).astype(np.uint16), kind="stable")
    high = keys[order] >> 16
    if top <= 1 << 32:
        return order[np.argsort(high.astype(np.uint16), kind="stable")]
    return order[np.argsort(high, kind="stable")]


@dataclass(eq=False)
class EMLayout:
    """Index arrays for one :class:`CrowdData`; see the module docstring."""

    n_tasks: int
    n_workers: int
    n_classes: int
    n_labeled: int
    rank_to_task: IntArray  # (n_labeled,) original task code of each rank
    task_rank: IntArray  # (n_tasks,) rank of each task, -1 when it has no answer
    slot_lengths: list[int]
    slots: list[IntArray]  # slot j: w*K+l of answer j of the first slot_lengths[j] ranks
    tail_rank: IntArray
    tail_wl: IntArray
    wl_rank: IntArray  # (n,) task rank of each answer, answers in w*K+l order
    chunks: list[tuple[int, int, IntArray, IntArray]]  # (start, stop, local starts, w*K+l keys)
    answers_per_worker: npt.NDArray[np.float64]

    @classmethod
    def build(cls, data: CrowdData) -> EMLayout:
        k = data.n_classes
        counts = data.task_counts
        order = np.argsort(-counts, kind="stable")
        n_labeled = int(np.count_nonzero(counts))
        rank_to_task = order[:n_labeled].astype(np.int64)
        task_rank = np.full(data.n_tasks, -1, dtype=np.int64)
        task_rank[rank_to_task] = np.arange(n_labeled, dtype=np.int64)

        wl = data.workers * k + data.labels
        n = data.n
        max_count = int(counts.max()) if n else 0
        # slot_len[j] = number of tasks with more than j answers.
        hist = np.bincount(counts, minlength=max_count + 1)
        slot_len = (n_labeled - np.cumsum(hist)[:-1]).astype(np.int64) if n else hist[:0]
        n_slots = int(np.count_nonzero(slot_len >= min(_MIN_SLOT, n_labeled)))
        offsets = np.zeros(max_count + 1, dtype=np.int64)
        np.cumsum(slot_len, out=offsets[1:])

        answer_rank = task_rank[data.tasks]
        within = np.arange(n, dtype=np.int64)
        within -= data.task_start[data.tasks]  # j: index of the answer within its task
        in_slots = within < n_slots
        position = offsets[within[in_slots]] + answer_rank[in_slots]
        del within
        flat = np.empty(int(offsets[n_slots]), dtype=np.int64)
        flat[position] = wl[in_slots]
        slots = [flat[offsets[j] : offsets[j + 1]] for j in range(n_slots)]
        tail = ~in_slots
        tail_rank = answer_rank[tail]
        tail_wl = wl[tail]
        del position, in_slots, tail, flat

        order_wl = _radix_argsort(wl, data.n_workers * k)
        wl_sorted = wl[order_wl]
        wl_rank = answer_rank[order_wl]
        del order_wl, answer_rank
        chunks: list[tuple[int, int, IntArray, IntArray]] = []
        if n:
            boundary = np.flatnonzero(wl_sorted[1:] != wl_sorted[:-1]) + 1
            group_start = np.concatenate(([0], boundary)).astype(np.int64)
            group_key = wl_sorted[group_start]
            # Cut the groups into chunks of about _CHUNK answers, never splitting a group.
            cut = np.searchsorted(group_start, np.arange(0, n, _CHUNK), side="right") - 1
            cut = np.unique(np.append(cut, group_start.size))
            for a, b in zip(cut[:-1], cut[1:], strict=True):
                lo = int(group_start[a])
                hi = int(group_start[b]) if b < group_start.size else n
                chunks.append((lo, hi, group_start[a:b] - lo, group_key[a:b]))
        return cls(
            n_tasks=data.n_tasks,
            n_workers=data.n_workers,
            n_classes=k,
            n_labeled=n_labeled,
            rank_to_task=rank_to_task,
            task_rank=task_rank,
            slot_lengths=[int(x) for x in slot_len[:n_slots]],
            slots=slots,
            tail_rank=tail_rank,
            tail_wl=tail_wl,
            wl_rank=wl_rank,
            chunks=chunks,
            answers_per_worker=np.bincount(data.workers, minlength=data.n_workers).astype(
                np.float64
            ),
        )

    def e_step(self, log_table: FloatArray, log_prior: FloatArray, out: FloatArray) -> None:
        """``out[k, r] = log_prior[k] + sum over answers i of rank r of log_table[k, wl_i]``.

        ``log_table`` is ``(K, W * K)``; ``out`` is ``(K, n_labeled)`` of the same dtype.
        """
        k = self.n_classes
        if self.slots:
            np.take(log_table, self.slots[0], axis=1, out=out, mode="clip")
            buffer = np.empty(k * self.slot_lengths[0], dtype=out.dtype)
            for length, slot in zip(self.slot_lengths[1:], self.slots[1:], strict=True):
                view = buffer[: k * length].reshape(k, length)
                np.take(log_table, slot, axis=1, out=view, mode="clip")
                out[:, :length] += view
        else:
            out.fill(0.0)
        if self.tail_rank.size:
            gathered = log_table[:, self.tail_wl]
            for c in range(k):
                out[c] += np.bincount(
                    self.tail_rank, weights=gathered[c], minlength=self.n_labeled
                ).astype(out.dtype, copy=False)
        out += log_prior[:, None]

    def m_counts(self, posterior_rows: FloatArray) -> npt.NDArray[np.float64]:
        """Soft counts ``(W * K, K)``: row ``w * K + l``, column ``k`` sums ``posterior[t_i, k]``
        over the answers ``l`` of worker ``w``. ``posterior_rows`` is ``(n_labeled, K)`` by rank.
        """
        k = self.n_classes
        counts = np.zeros((self.n_workers * k, k), dtype=np.float64)
        if not self.chunks:
            return counts
        buffer = np.empty((min(_CHUNK, self.wl_rank.size) * 2, k), dtype=posterior_rows.dtype)
        for lo, hi, starts, keys in self.chunks:
            if hi - lo > buffer.shape[0]:
                buffer = np.empty((hi - lo, k), dtype=posterior_rows.dtype)
            rows = buffer[: hi - lo]
            np.take(posterior_rows, self.wl_rank[lo:hi], axis=0, out=rows, mode="clip")
            # Summed in the posterior's dtype: float32 segments of a few thousand terms lose ~1e-6
            # relative, far below the counts' statistical noise, at half the memory traffic.
            counts[keys] = np.add.reduceat(rows, starts, axis=0)
        return counts
