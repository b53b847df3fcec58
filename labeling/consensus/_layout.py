"""Precomputed index arrays that make the Dawid-Skene family's EM steps loop-free and fast.

Both EM steps are a gather followed by a segmented sum. The layouts below put every segment in
contiguous memory, are built once per :func:`aggregate` call, and cut the work into pieces that
fit in a core's cache, so an iteration allocates nothing big (a fresh page costs more than the
arithmetic on it), stays out of main memory at tens of millions of answers, and can spread over
threads: NumPy releases the GIL inside ``take``, ``reduceat`` and the ufuncs.

E-step, ``logit[r, k] = log prior[k] + sum_i logconf[w_i, k, l_i]`` for the task of rank ``r``:
tasks are ranked by answer count (most first), and answer ``j`` of every task goes in *slot* ``j``.
The tasks with more than ``j`` answers are then a prefix of the ranking, so within a block of ranks
slot ``j`` is a prefix of the block. A block's slots are stored one after the other (narrow
indices, widened for ``np.take`` in one copy per block); each slot is one ``np.take`` of K-value
rows from a small ``(2 * W * K, K)`` table (its second half carries the log prior and serves
slot 0), slot 0 straight into the output, the others into a block-sized buffer that stays in the
core's cache until it is added. With a fixed number of answers per task (the common case) every
slot spans the block. Rows are in rank order, ``(n_labeled, K)``, the layout the M-step gathers
from. Short trailing slots (a few tasks with very many answers) go through one ``np.bincount``
instead, to bound the Python-level loop; those tasks all sit in the first block.

M-step, ``counts[w * K + l, k] = sum of posterior[r_i, k] over answers i by worker w with label l``:
answers are grouped by rank range (a group's posterior rows fit in the last-level cache), then
sorted by ``w * K + l`` inside the group, so each cell of a group is one contiguous
``np.add.reduceat`` segment of gathered posterior rows. With an even ``K`` the rows are summed as
``K / 2`` complex numbers: componentwise additions, half the strided steps (NumPy's pairwise
summation groups them a little differently, a last-bit difference). A group's segments are cut into
pieces of about ``_M_PIECE`` answers, never splitting a segment; the groups' sums are added in a
fixed order, so the result does not depend on the number of threads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ._data import CrowdData

IntArray = npt.NDArray[np.integer]
IntpArray = npt.NDArray[np.intp]
FloatArray = npt.NDArray[np.floating]

# Slots shorter than this go through the bincount tail (a Python iteration costs ~1-2 us).
_MIN_SLOT = 512
# Answers per E-step block and per M-step piece. A block's per-slot buffer stays in L2; smaller
# blocks cost more in NumPy calls and, with threads, GIL hand-offs (1M answers, 2 cores: 2^15 was
# ~20% slower on two threads, 2^17 no faster).
_E_BLOCK = 1 << 16
_M_PIECE = 1 << 16
# Posterior bytes per M-step group: the rows it gathers from stay in the last-level cache.
_M_GROUP_BYTES = 8 << 20
# The per-answer index arrays are stored narrow (uint16 table rows when they fit, int32 ranks):
# every iteration streams them, and copying a block of them into a reused intp buffer for np.take
# costs less than reading 8-byte indices (np.take converting them itself allocates per call).


def _unique(values: npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
    """``np.unique`` of an int array. The first ``np.unique`` call in a process imports
    ``numpy.ma`` (~10 ms, a third of a 1M-answer layout build)."""
    ordered = np.sort(values)
    keep = np.ones(ordered.size, dtype=bool)
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    distinct: npt.NDArray[np.intp] = ordered[keep]
    return distinct


def _radix_argsort(keys: IntArray, top: int) -> npt.NDArray[np.intp]:
    """Stable argsort of non-negative ``keys < top``, via NumPy's radix sort on 16-bit digits."""
    if top <= 1 << 16:
        return np.argsort(keys.astype(np.uint16), kind="stable")
    order = np.argsort((keys & 0xFFFF).astype(np.uint16), kind="stable")
    high = keys[order] >> 16
    if top <= 1 << 32:
        return order[np.argsort(high.astype(np.uint16), kind="stable")]
    return order[np.argsort(high, kind="stable")]


def pair_view(x: FloatArray) -> FloatArray:
    """``x`` ``(n, K)`` with even ``K``, viewed as ``(n, K / 2)`` complex numbers: a complex add or
    multiply by a real-valued complex works on both halves at once, so a row takes half the
    strided steps (and ``reduceat`` runs twice as fast)."""
    return x.view(np.complex128 if x.dtype.itemsize == 8 else np.complex64)


@dataclass(eq=False)
class EMLayout:
    """Index arrays for one :class:`CrowdData`; see the module docstring."""

    n_tasks: int
    n_workers: int
    n_classes: int
    n_labeled: int
    rank_to_task: npt.NDArray[np.intp]  # (n_labeled,) original task code of each rank
    task_rank: npt.NDArray[np.intp]  # (n_tasks,) rank of each task, -1 when it has no answer
    blocks: list[tuple[int, int]]  # E-step rank ranges
    # Table rows gathered by the E-step, block by block and slot by slot: block b is
    # e_index[block_offset[b]:block_offset[b + 1]], its slot j the next block_slots[b][j] entries
    # (for ranks lo .. lo + block_slots[b][j]). Slot 0 rows are offset by W * K: they index the
    # table's second half, the one that includes the log prior.
    e_index: IntArray
    block_offset: list[int]
    block_slots: list[list[int]]
    tail_rank: IntArray  # answers beyond the slots: their rank (all < blocks[0][1]) and w*K+l
    tail_wl: IntArray
    m_rank: IntArray  # (n,) rank of each answer, in (group, w*K+l) order
    pieces: list[tuple[int, int, npt.NDArray[np.intp], int]]  # (lo, hi, local starts, seg offset)
    groups: list[tuple[int, int, npt.NDArray[np.intp]]]  # (seg lo, seg hi, w*K+l of each segment)
    group_cells: list[IntpArray]  # per group, (W*K,): the segment of each cell, n_segments if none
    n_segments: int
    answers_per_worker: npt.NDArray[np.float64]

    @classmethod
    def build(cls, data: CrowdData, itemsize: int = 8) -> EMLayout:
        """``itemsize``: bytes per posterior entry in the EM loop (sizes the M-step groups)."""
        k = data.n_classes
        n = data.n
        wk = data.n_workers * k
        row_type: np.dtype[np.integer[Any]] = np.dtype(np.uint16 if 2 * wk <= 1 << 16 else np.int32)
        index: np.dtype[np.integer[Any]] = np.dtype(np.int32 if n < 1 << 31 else np.int64)
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
        n_tail_ranks = int(slot_len[n_slots]) if n_slots < slot_len.size else 0
        # Answers are sorted by task, so answer j of the task of rank r is start_by_rank[r] + j.
        wl_all = data.workers * k
        wl_all += data.labels
        start_by_rank = data.task_start[rank_to_task]

        # E-step blocks: about _E_BLOCK answers each; the first covers every task with a tail.
        by_rank = counts[rank_to_task]
        cumulative = np.cumsum(by_rank)
        cuts = np.searchsorted(cumulative, np.arange(_E_BLOCK, n, _E_BLOCK), side="left") + 1
        cuts = _unique(np.concatenate(([0], cuts[cuts > n_tail_ranks], [n_labeled])))
        if n_labeled and cuts.size == 1:
            cuts = np.array([0, n_labeled])
        blocks = [(int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:], strict=True) if b > a]
        del by_rank, cumulative

        # The slots' answers, block by block. keys[i] is w*K+l of answer i of that order (the
        # tail last) and answer_rank[i] its rank; the M-step sorts them.
        lengths = [int(x) for x in slot_len[:n_slots]]
        n_main = sum(lengths)
        group_ranks = max(1, _M_GROUP_BYTES // max(1, k * itemsize))
        n_groups = max(1, -(-n_labeled // group_ranks))
        top = n_groups * wk
        key_type: np.dtype[np.signedinteger[Any]] = np.dtype(
            np.int64 if top >= 1 << 31 else np.int32
        )
        keys = np.empty(n, dtype=key_type)
        answer_rank = np.empty(n, dtype=index)
        e_index = np.empty(n_main, dtype=row_type)
        block_offset: list[int] = []
        block_slots: list[list[int]] = []
        at = 0
        for lo, hi in blocks:
            block_offset.append(at)
            mine: list[int] = []
            for j, length in enumerate(lengths):
                m = min(hi, length) - lo
                if m <= 0:
                    break
                part = slice(at, at + m)
                np.take(wl_all, start_by_rank[lo : lo + m] + j, out=keys[part])
                np.add(keys[part], wk if j == 0 else 0, out=e_index[part], casting="unsafe")
                answer_rank[part] = np.arange(lo, lo + m, dtype=index)
                mine.append(m)
                at += m
            block_slots.append(mine)
        block_offset.append(at)
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
        answer_rank[n_main:] = tail_rank
        keys[n_main:] = tail_wl

        # M-step: sort answers by (rank group, w*K+l), stably.
        if n_groups > 1:
            keys += (answer_rank // group_ranks).astype(key_type) * wk
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
        group_cells: list[IntpArray] = []
        n_segments = int(seg_start.size) if n else 0
        if n:
            seg_group = seg_key // wk
            group_cut = np.flatnonzero(np.diff(seg_group)) + 1
            group_bounds = np.concatenate(([0], group_cut, [n_segments]))
            for g0, g1 in zip(group_bounds[:-1], group_bounds[1:], strict=True):
                groups.append((int(g0), int(g1), (seg_key[g0:g1] % wk).astype(np.intp)))
                cells = np.full(wk, n_segments, dtype=np.intp)
                cells[groups[-1][2]] = np.arange(g0, g1, dtype=np.intp)
                group_cells.append(cells)
            # Pieces: about _M_PIECE answers, cut at segment starts, never across a group.
            seg_end = np.append(seg_start[1:], n)
            for g0, g1 in zip(group_bounds[:-1], group_bounds[1:], strict=True):
                lo_answer = int(seg_start[g0])
                targets = np.arange(lo_answer + _M_PIECE, int(seg_end[g1 - 1]), _M_PIECE)
                cut = np.searchsorted(seg_start[g0:g1], targets, side="right") - 1 + g0
                cut = _unique(np.concatenate(([g0], cut, [g1])))
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
            blocks=blocks,
            e_index=e_index,
            block_offset=block_offset,
            block_slots=block_slots,
            tail_rank=tail_rank,
            tail_wl=tail_wl,
            m_rank=m_rank,
            pieces=pieces,
            groups=groups,
            group_cells=group_cells,
            n_segments=n_segments,
            answers_per_worker=per_worker.astype(np.float64),
        )

    @property
    def max_block(self) -> int:
        return max((b - a for a, b in self.blocks), default=0)

    @property
    def max_block_answers(self) -> int:
        return max(
            (b - a for a, b in zip(self.block_offset[:-1], self.block_offset[1:], strict=True)),
            default=0,
        )

    @property
    def answers_per_task(self) -> int:
        """The number of answers of every answered task when it is the same for all, else 0."""
        if self.tail_rank.size or not self.blocks:
            return 0
        width = len(self.block_slots[0])
        for (lo, hi), slots in zip(self.blocks, self.block_slots, strict=True):
            if len(slots) != width or slots[-1] != hi - lo:
                return 0
        return width

    @property
    def max_piece(self) -> int:
        return max((hi - lo for lo, hi, _, _ in self.pieces), default=0)

    def gather_logits(
        self, table: FloatArray, b: int, out: FloatArray, buf: FloatArray, where: IntpArray
    ) -> None:
        """``out[r - lo]`` = the sum of ``table`` rows over the answers of rank ``r`` of block
        ``b``: the second half's row for its first answer, the first half's for the others.

        ``table`` is ``(2 * W * K, K)``; ``out`` is ``(hi - lo, K)``; ``buf`` is scratch of at
        least ``max_block`` rows, ``where`` of at least ``max_block_answers``.
        """
        lo, hi = self.blocks[b]
        at = self.block_offset[b]
        slots = self.block_slots[b]
        size = self.block_offset[b + 1] - at
        where = where[:size]
        np.copyto(where, self.e_index[at : at + size])
        m = slots[0]
        # Slot by slot, so the gathered rows stay in the core's cache until they are added.
        table.take(where[:m], axis=0, out=out, mode="clip")
        at = m
        for length in slots[1:]:
            rows = buf[:length]
            table.take(where[at : at + length], axis=0, out=rows, mode="clip")
            out[:length] += rows
            at += length
        if b == 0 and self.tail_rank.size:
            # Only the first block holds tasks with a tail (see build); they take the first half.
            gathered = table[self.tail_wl]
            for c in range(self.n_classes):
                out[:, c] += np.bincount(self.tail_rank, weights=gathered[:, c], minlength=hi - lo)[
                    : hi - lo
                ].astype(out.dtype, copy=False)

    def logits_for(self, ranks: npt.NDArray[np.intp], table: FloatArray) -> npt.NDArray[np.float64]:
        """Float64 logits ``(len(ranks), K)`` of a few ranks, recomputed one answer at a time."""
        out = np.zeros((ranks.size, self.n_classes))
        block_lo = np.array([lo for lo, _ in self.blocks], dtype=np.intp)
        block_of = np.searchsorted(block_lo, ranks, side="right") - 1
        for b in _unique(block_of):
            mine = np.flatnonzero(block_of == b)
            local = ranks[mine] - block_lo[b]
            at = self.block_offset[b]
            for length in self.block_slots[b]:
                inside = local < length
                out[mine[inside]] += table[self.e_index[at + local[inside]]]
                at += length
        if self.tail_rank.size:
            position = np.full(self.n_labeled, -1, dtype=np.intp)
            position[ranks] = np.arange(ranks.size)
            where = position[self.tail_rank]
            hit = where >= 0
            np.add.at(out, where[hit], table[self.tail_wl[hit]].astype(np.float64))
        return out

    def segment_sums(
        self,
        posterior_rows: FloatArray,
        piece: int,
        buf: FloatArray,
        where: IntpArray,
        out: FloatArray,
    ) -> None:
        """Write the segment sums of one M-step piece into ``out`` (``(n_segments, K)``);
        ``buf`` and ``where`` are scratch of at least ``max_piece`` rows."""
        lo, hi, starts, seg0 = self.pieces[piece]
        rows = buf[: hi - lo]
        where = where[: hi - lo]
        np.copyto(where, self.m_rank[lo:hi])
        posterior_rows.take(where, axis=0, out=rows, mode="clip")
        target = out[seg0 : seg0 + starts.size]
        if self.n_classes % 2 == 0:
            np.add.reduceat(pair_view(rows), starts, axis=0, out=pair_view(target))
        else:
            np.add.reduceat(rows, starts, axis=0, out=target)

    def combine(
        self, segments: FloatArray, counts: npt.NDArray[np.float64], scratch: FloatArray
    ) -> None:
        """``counts`` ``(W * K, K)`` float64 = the groups' segment sums, added in group order.

        ``segments`` has one more row than there are segments, kept at zero: a group's cells
        without a segment gather it. ``scratch`` is ``(W * K, K)`` in ``segments``' dtype.
        """
        if not self.group_cells:
            counts.fill(0.0)
        for g, cells in enumerate(self.group_cells):
            if g == 0 and segments.dtype == counts.dtype:
                segments.take(cells, axis=0, out=counts, mode="clip")
                continue
            segments.take(cells, axis=0, out=scratch, mode="clip")
            if g == 0:
                np.copyto(counts, scratch)
            else:
                counts += scratch
