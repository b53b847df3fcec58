"""Precomputed index arrays that make the Dawid-Skene family's EM steps loop-free and fast.

Both EM steps are a gather followed by a segmented sum. The layouts below put every segment in
contiguous memory, are built once per :func:`aggregate` call, and cut the work into pieces that
fit in a core's cache, so an iteration allocates nothing big (a fresh page costs more than the
arithmetic on it), stays out of main memory at tens of millions of answers, and can spread over
threads: NumPy releases the GIL inside ``take``, ``reduceat`` and the ufuncs.

E-step, ``logit[r, k] = log prior[k] + sum_i logconf[w_i, k, l_i]`` for the task of rank ``r``:
tasks are ranked by answer count (most first), and answer ``j`` of every task goes in *slot* ``j``.
The tasks with more than ``j`` answers are then a prefix of the ranking, so slot ``j`` of a block
of ranks is one ``np.take`` of 16-byte rows from the tiny ``(W * K, K)`` log-confusion table and
one contiguous add. Rows are in rank order, ``(n_labeled, K)``, the layout the M-step gathers
from. Short trailing slots (a few tasks with very many answers) go through one ``np.bincount``
instead, to bound the Python-level loop; those tasks all sit in the first block.

M-step, ``counts[w * K + l, k] = sum of posterior[r_i, k] over answers i by worker w with label l``:
answers are grouped by rank range (a group's posterior rows fit in the last-level cache), then
sorted by ``w * K + l`` inside the group, so each cell of a group is one contiguous
``np.add.reduceat`` segment of gathered posterior rows. A group's segments are cut into pieces of
about ``_M_PIECE`` answers, never splitting a segment; the groups' sums are added in a fixed order,
so the result does not depend on the number of threads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ._data import CrowdData

IntArray = npt.NDArray[np.integer]
FloatArray = npt.NDArray[np.floating]

# Slots shorter than this go through the bincount tail (a Python iteration costs ~1-2 us).
_MIN_SLOT = 512
# Answers per E-step block and per M-step piece: their (answers, K) buffers stay in L2.
_E_BLOCK = 1 << 16
_M_PIECE = 1 << 16
# Posterior bytes per M-step group: the rows it gathers from stay in the last-level cache.
_M_GROUP_BYTES = 8 << 20
# Up to this many answers the index arrays are intp (np.take uses them as they are); above it they
# are int32, which halves their memory for a ~25% slower gather (take converts each block).
_INTP_LIMIT = 1 << 23


def _radix_argsort(keys: IntArray, top: int) -> npt.NDArray[np.intp]:
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
    rank_to_task: npt.NDArray[np.intp]  # (n_labeled,) original task code of each rank
    task_rank: npt.NDArray[np.intp]  # (n_tasks,) rank of each task, -1 when it has no answer
    slot_lengths: list[int]
    slots: list[IntArray]  # slot j: w*K+l of answer j of the first slot_lengths[j] ranks
    tail_rank: IntArray  # answers beyond the slots: their rank (all < blocks[0][1]) and w*K+l
    tail_wl: IntArray
    blocks: list[tuple[int, int]]  # E-step rank ranges
    m_rank: IntArray  # (n,) rank of each answer, in (group, w*K+l) order
    pieces: list[tuple[int, int, npt.NDArray[np.intp], int]]  # (lo, hi, local starts, seg offset)
    groups: list[tuple[int, int, npt.NDArray[np.intp]]]  # (seg lo, seg hi, w*K+l of each segment)
    n_segments: int
    answers_per_worker: npt.NDArray[np.float64]

    @classmethod
    def build(cls, data: CrowdData, itemsize: int = 8) -> EMLayout:
        """``itemsize``: bytes per posterior entry in the EM loop (sizes the M-step groups)."""
        k = data.n_classes
        n = data.n
        wk = data.n_workers * k
        index: np.dtype[np.signedinteger[Any]] = np.dtype(np.intp if n <= _INTP_LIMIT else np.int32)
        counts = data.task_counts
        order = np.argsort(-counts, kind="stable")
        n_labeled = int(np.count_nonzero(counts))
        rank_to_task = order[:n_labeled].astype(np.intp)
        del order
        task_rank = np.full(data.n_tasks, -1, dtype=np.intp)
        task_rank[rank_to_task] = np.arange(n_labeled, dtype=np.intp)

        max_count = int(counts.max()) if n else 0
        # slot_len[j] = number of tasks with more than j answers.
        hist = np.bincount(counts, minlength=max_count + 1)
        slot_len = (data.n_tasks - np.cumsum(hist)[:-1]).astype(np.int64) if n else hist[:0]
        n_slots = int(np.count_nonzero(slot_len >= min(_MIN_SLOT, n_labeled)))
        offsets = np.zeros(n_slots + 1, dtype=np.int64)
        np.cumsum(slot_len[:n_slots], out=offsets[1:])
        # Answers are sorted by task, so answer j of the task of rank r is start_by_rank[r] + j:
        # each slot is one gather (nearly sequential when ranks follow task order).
        wl_all = data.workers * k
        wl_all += data.labels
        start_by_rank = data.task_start[rank_to_task]
        flat = np.empty(int(offsets[n_slots]), dtype=index)
        for j in range(n_slots):
            position = start_by_rank[: slot_len[j]] + j
            np.take(wl_all, position, out=flat[offsets[j] : offsets[j + 1]])
        slots = [flat[offsets[j] : offsets[j + 1]] for j in range(n_slots)]
        n_tail_ranks = int(slot_len[n_slots]) if n_slots < slot_len.size else 0
        if n_tail_ranks:
            extra = counts[rank_to_task[:n_tail_ranks]] - n_slots
            tail_rank = np.repeat(np.arange(n_tail_ranks, dtype=index), extra)
            first = np.repeat(
                start_by_rank[:n_tail_ranks] + n_slots - np.cumsum(extra) + extra, extra
            )
            tail_wl = wl_all[first + np.arange(first.size)].astype(index)
        else:
            tail_rank = np.zeros(0, dtype=index)
            tail_wl = np.zeros(0, dtype=index)
        del wl_all, start_by_rank

        # E-step blocks: about _E_BLOCK answers each; the first covers every task with a tail.
        by_rank = counts[rank_to_task]
        cumulative = np.cumsum(by_rank)
        cuts = np.searchsorted(cumulative, np.arange(_E_BLOCK, n, _E_BLOCK), side="left") + 1
        cuts = np.unique(np.concatenate(([0], cuts[cuts > n_tail_ranks], [n_labeled])))
        if n_labeled and cuts.size == 1:
            cuts = np.array([0, n_labeled])
        blocks = [(int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:], strict=True) if b > a]
        del by_rank, cumulative

        # M-step: sort answers by (rank group, w*K+l), stably. Keys are built in slot order (slot
        # j, then rank), the tail last; answer i of that order has rank answer_rank[i].
        group_ranks = max(1, _M_GROUP_BYTES // max(1, k * itemsize))
        n_groups = max(1, -(-n_labeled // group_ranks))
        top = n_groups * wk
        key_type: np.dtype[np.signedinteger[Any]] = np.dtype(
            np.int64 if top >= 1 << 31 else np.int32
        )
        keys = np.empty(n, dtype=key_type)
        answer_rank = np.empty(n, dtype=index)
        for j in range(n_slots):
            lo, hi = int(offsets[j]), int(offsets[j + 1])
            ranks = np.arange(hi - lo, dtype=index)
            answer_rank[lo:hi] = ranks
            keys[lo:hi] = flat[lo:hi]
            if n_groups > 1:
                keys[lo:hi] += (ranks // group_ranks) * wk
        tail_lo = int(offsets[n_slots])
        answer_rank[tail_lo:] = tail_rank
        keys[tail_lo:] = tail_wl
        if n_groups > 1:
            keys[tail_lo:] += (tail_rank // group_ranks) * wk
        m_order = _radix_argsort(keys, top)
        m_rank = answer_rank[m_order]
        del answer_rank
        if top <= 2 * n + (1 << 16):
            # The sorted keys are a counting sort's: the segments come from the histogram.
            del m_order
            key_count = np.bincount(keys, minlength=top)
            seg_key = np.flatnonzero(key_count)
            seg_start = np.zeros(seg_key.size, dtype=np.intp)
            np.cumsum(key_count[seg_key[:-1]], out=seg_start[1:])
            per_worker = key_count.reshape(n_groups, data.n_workers, k).sum(axis=(0, 2))
            del key_count
        else:
            keys = keys[m_order]
            del m_order
            seg_start = np.flatnonzero(keys[1:] != keys[:-1]) + 1
            seg_start = np.concatenate(([0], seg_start)).astype(np.intp)
            seg_key = keys[seg_start].astype(np.int64)
            per_worker = np.bincount(data.workers, minlength=data.n_workers)
        del keys
        pieces: list[tuple[int, int, npt.NDArray[np.intp], int]] = []
        groups: list[tuple[int, int, npt.NDArray[np.intp]]] = []
        n_segments = int(seg_start.size) if n else 0
        if n:
            seg_group = seg_key // wk
            group_cut = np.flatnonzero(np.diff(seg_group)) + 1
            group_bounds = np.concatenate(([0], group_cut, [n_segments]))
            for g0, g1 in zip(group_bounds[:-1], group_bounds[1:], strict=True):
                groups.append((int(g0), int(g1), (seg_key[g0:g1] % wk).astype(np.intp)))
            # Pieces: about _M_PIECE answers, cut at segment starts, never across a group.
            seg_end = np.append(seg_start[1:], n)
            for g0, g1 in zip(group_bounds[:-1], group_bounds[1:], strict=True):
                lo_answer = int(seg_start[g0])
                targets = np.arange(lo_answer + _M_PIECE, int(seg_end[g1 - 1]), _M_PIECE)
                cut = np.searchsorted(seg_start[g0:g1], targets, side="right") - 1 + g0
                cut = np.unique(np.concatenate(([g0], cut, [g1])))
                for a, b in zip(cut[:-1], cut[1:], strict=True):
                    if b <= a:
                        continue
                    lo = int(seg_start[a])
                    hi = int(seg_end[b - 1])
                    pieces.append((lo, hi, seg_start[a:b] - lo, int(a)))
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
            blocks=blocks,
            m_rank=m_rank,
            pieces=pieces,
            groups=groups,
            n_segments=n_segments,
            answers_per_worker=per_worker.astype(np.float64),
        )

    @property
    def max_block(self) -> int:
        return max((b - a for a, b in self.blocks), default=0)

    @property
    def max_piece(self) -> int:
        return max((hi - lo for lo, hi, _, _ in self.pieces), default=0)

    def gather_logits(
        self,
        first: FloatArray,
        rest: FloatArray,
        lo: int,
        hi: int,
        out: FloatArray,
        buf: FloatArray,
    ) -> None:
        """``out[r - lo] = first[wl of answer 0 of r] + sum over r's other answers of rest[wl]``.

        ``first`` and ``rest`` are ``(W * K, K)`` tables; ``out`` is ``(hi - lo, K)``; ``buf`` is
        scratch of at least as many rows.
        """
        if not self.slots:
            out.fill(0.0)
        else:
            np.take(first, self.slots[0][lo:hi], axis=0, out=out, mode="clip")
        for length, slot in zip(self.slot_lengths[1:], self.slots[1:], strict=True):
            if length <= lo:
                break
            m = min(hi, length) - lo
            view = buf[:m]
            np.take(rest, slot[lo : lo + m], axis=0, out=view, mode="clip")
            out[:m] += view
        if lo == 0 and self.tail_rank.size:
            # Only the first block holds tasks with a tail (see build).
            # Slot 0 always exists (every ranked task has an answer), so the tail takes ``rest``.
            gathered = rest[self.tail_wl]
            for c in range(self.n_classes):
                out[:, c] += np.bincount(self.tail_rank, weights=gathered[:, c], minlength=hi - lo)[
                    : hi - lo
                ].astype(out.dtype, copy=False)

    def logits_for(
        self, ranks: npt.NDArray[np.intp], first: FloatArray, rest: FloatArray
    ) -> npt.NDArray[np.float64]:
        """Float64 logits ``(len(ranks), K)`` of a few ranks, recomputed one answer at a time."""
        out = np.zeros((ranks.size, self.n_classes))
        for j, (length, slot) in enumerate(zip(self.slot_lengths, self.slots, strict=True)):
            inside = ranks < length
            table = first if j == 0 else rest
            out[inside] += table[slot[ranks[inside]]]
        if self.tail_rank.size:
            position = np.full(self.n_labeled, -1, dtype=np.intp)
            position[ranks] = np.arange(ranks.size)
            where = position[self.tail_rank]
            hit = where >= 0
            np.add.at(out, where[hit], rest[self.tail_wl[hit]].astype(np.float64))
        return out

    def segment_sums(
        self, posterior_rows: FloatArray, piece: int, buf: FloatArray, out: FloatArray
    ) -> None:
        """Write the segment sums of one M-step piece into ``out`` (``(n_segments, K)``)."""
        lo, hi, starts, seg0 = self.pieces[piece]
        rows = buf[: hi - lo]
        np.take(posterior_rows, self.m_rank[lo:hi], axis=0, out=rows, mode="clip")
        np.add.reduceat(rows, starts, axis=0, out=out[seg0 : seg0 + starts.size])

    def combine(self, segments: FloatArray, counts: npt.NDArray[np.float64]) -> None:
        """``counts`` ``(W * K, K)`` float64 = the groups' segment sums, added in group order."""
        counts.fill(0.0)
        for g0, g1, keys in self.groups:
            counts[keys] += segments[g0:g1]
