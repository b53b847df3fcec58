"""Bounding-box consensus: match the boxes annotators drew on the same item, fuse each match.

Per task, boxes are grouped by complete-linkage clustering on IoU: two boxes may share a cluster
only if they come from different annotators, and every two boxes in a cluster overlap with
``IoU >= iou_threshold``. Clusters are merged greedily, the most-overlapping pair first, so the
result does not depend on the order of the input rows except to break exact ties (lowest index
first). Each cluster is fused coordinate-wise (median or mean, optionally weighted by each
annotator's skill) and kept if enough annotators drew it.

Coordinates are ``(x1, y1, x2, y2)`` with ``x2 > x1`` and ``y2 > y1``, in any consistent unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class BoxResult:
    """The fused boxes of every task, ordered by task and then by their first input row.

    Attributes:
        tasks: ``(M,)`` int64; the task code of each fused box.
        boxes: ``(M, 4)`` float64; the fused ``(x1, y1, x2, y2)``.
        labels: ``(M,)`` int64; the majority class among the cluster's boxes (weighted by worker
            weight when given; ties to the lowest code); ``-1`` when no labels were passed.
        votes: ``(M,)`` int64; how many annotators drew a box in the cluster (one box each).
        agreement: ``(M,)`` float64; ``votes`` over the task's number of annotators.
        mean_iou: ``(M,)`` float64; mean IoU between the cluster's boxes and the fused box.
        label_share: ``(M,)`` float64; the (weighted) share of the cluster's boxes carrying
            ``labels``; NaN when no labels were passed.
        assignment: ``(N,)`` int64; for each input box, the row of the fused box it joined, or
            ``-1`` when its cluster had fewer than ``min_votes`` votes and was dropped.
    """

    tasks: IntArray
    boxes: FloatArray
    labels: IntArray
    votes: IntArray
    agreement: FloatArray
    mean_iou: FloatArray
    label_share: FloatArray
    assignment: IntArray

    def __len__(self) -> int:
        return int(self.tasks.shape[0])


def iou_matrix(a: Any, b: Any) -> FloatArray:
    """Pairwise IoU ``(len(a), len(b))`` of two sets of ``(x1, y1, x2, y2)`` boxes.

    Raises:
        ValueError: an input is not of shape ``(n, 4)``.
    """
    first = np.asarray(a, dtype=np.float64)
    second = np.asarray(b, dtype=np.float64)
    for name, arr in (("a", first), ("b", second)):
        if arr.ndim != 2 or arr.shape[1] != 4:
            raise ValueError(f"{name} must have shape (n, 4), got {arr.shape}")
    width = np.minimum(first[:, None, 2], second[None, :, 2]) - np.maximum(
        first[:, None, 0], second[None, :, 0]
    )
    height = np.minimum(first[:, None, 3], second[None, :, 3]) - np.maximum(
        first[:, None, 1], second[None, :, 1]
    )
    inter = np.clip(width, 0.0, None) * np.clip(height, 0.0, None)
    area_a = (first[:, 2] - first[:, 0]) * (first[:, 3] - first[:, 1])
    area_b = (second[:, 2] - second[:, 0]) * (second[:, 3] - second[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    result: FloatArray = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return result


def _codes(values: Any, name: str, n: int) -> IntArray:
    array = np.asarray(values)
    if array.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {array.shape}")
    if n and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must hold integer codes, got dtype {array.dtype}")
    if n and int(array.min()) < 0:
        raise ValueError(f"{name} must be non-negative codes; found {int(array.min())}")
    return array.astype(np.int64, copy=False)


def _cluster(iou: FloatArray, workers: IntArray, threshold: float) -> IntArray:
    """Complete-linkage clusters of one task's boxes; returns each box's cluster root index."""
    n = iou.shape[0]
    link = iou.copy()
    # Boxes of one annotator never share a cluster: with complete linkage a -1 between any two
    # members keeps the clusters apart forever.
    link[workers[:, None] == workers[None, :]] = -1.0
    root = np.arange(n)
    active = np.ones(n, dtype=bool)
    upper = np.triu(np.ones((n, n), dtype=bool), k=1)
    while True:
        candidates = np.where(upper & active[:, None] & active[None, :], link, -1.0)
        best = int(np.argmax(candidates))
        i, j = divmod(best, n)
        if candidates[i, j] < threshold:
            break
        merged = np.minimum(link[i], link[j])
        link[i], link[:, i] = merged, merged
        link[i, i] = -1.0
        active[j] = False
        root[root == j] = i
    return root


def _weighted_median(values: FloatArray, weights: FloatArray) -> float:
    """The weighted median; with an exact half split, the mean of the two middle values."""
    order = np.argsort(values, kind="stable")
    v, w = values[order], weights[order]
    cumulative = np.cumsum(w)
    half = cumulative[-1] / 2.0
    i = int(np.searchsorted(cumulative, half - 1e-12 * cumulative[-1]))
    if i + 1 < v.size and abs(cumulative[i] - half) <= 1e-12 * cumulative[-1]:
        return float((v[i] + v[i + 1]) / 2.0)
    return float(v[i])


def aggregate_boxes(
    tasks: Any,
    workers: Any,
    boxes: Any,
    labels: Any = None,
    iou_threshold: float = 0.5,
    min_votes: int | None = None,
    *,
    fuse: Literal["median", "mean"] = "median",
    worker_weights: Any = None,
    n_annotators: Any = None,
) -> BoxResult:
    """Fuse the boxes several annotators drew on the same tasks.

    Args:
        tasks, workers: ``(N,)`` non-negative integer codes; box ``i`` was drawn by annotator
            ``workers[i]`` on task ``tasks[i]``. An annotator may draw several boxes per task.
        boxes: ``(N, 4)`` finite ``(x1, y1, x2, y2)`` with ``x2 > x1`` and ``y2 > y1``.
        labels: optional ``(N,)`` non-negative class codes of the boxes.
        iou_threshold: in ``(0, 1]``; two boxes match when ``IoU >= iou_threshold`` (inclusive).
        min_votes: keep a fused box only if at least this many annotators drew it; ``None`` keeps
            the boxes drawn by a strict majority of the task's annotators.
        fuse: ``"median"`` (robust to one sloppy box) or ``"mean"``, coordinate-wise.
        worker_weights: optional ``(W,)`` positive finite weights indexed by worker code (e.g.
            :attr:`AggregationResult.worker_skill`); they weight the fusion and the class vote.
        n_annotators: optional ``(T,)`` integers indexed by task code: how many annotators looked
            at each task, counting those who drew nothing (they lower ``agreement`` and the
            majority). Default: the annotators with at least one box on the task.

    Returns:
        A :class:`BoxResult`; tasks without boxes contribute no rows.

    Raises:
        ValueError: mismatched shapes, non-integer or negative codes, non-finite or degenerate
            boxes (``x2 <= x1`` or ``y2 <= y1``), ``iou_threshold`` outside ``(0, 1]``,
            ``min_votes < 1``, an unknown ``fuse``, non-positive or too few worker weights, or an
            ``n_annotators`` entry smaller than the annotators who drew boxes on that task.
    """
    coords = np.asarray(boxes, dtype=np.float64)
    if coords.ndim != 2 or coords.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4), got {coords.shape}")
    n = coords.shape[0]
    task = _codes(tasks, "tasks", n)
    worker = _codes(workers, "workers", n)
    label = None if labels is None else _codes(labels, "labels", n)
    if not np.isfinite(coords).all():
        raise ValueError("boxes must be finite")
    bad = np.nonzero((coords[:, 2] <= coords[:, 0]) | (coords[:, 3] <= coords[:, 1]))[0]
    if bad.size:
        raise ValueError(
            f"degenerate box at row {int(bad[0])}: {coords[bad[0]].tolist()} "
            "(need x2 > x1 and y2 > y1)"
        )
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold!r}")
    if min_votes is not None and (isinstance(min_votes, bool) or min_votes < 1):
        raise ValueError(f"min_votes must be a positive int or None, got {min_votes!r}")
    if fuse not in ("median", "mean"):
        raise ValueError(f"fuse must be 'median' or 'mean', got {fuse!r}")
    weight = np.ones(n)
    if worker_weights is not None:
        table = np.asarray(worker_weights, dtype=np.float64)
        if table.ndim != 1 or (n and table.shape[0] <= int(worker.max())):
            raise ValueError("worker_weights must be 1-D with an entry for every worker code")
        weight = table[worker]
        if not (np.isfinite(weight) & (weight > 0)).all():
            raise ValueError("worker_weights of the annotators must be positive and finite")

    n_tasks = int(task.max()) + 1 if n else 0
    drew = np.zeros(n_tasks, dtype=np.int64)
    if n:
        pairs = np.unique(task * (int(worker.max()) + 1) + worker)
        drew = np.bincount(pairs // (int(worker.max()) + 1), minlength=n_tasks)
    looked = drew.astype(np.float64)
    if n_annotators is not None:
        given = np.asarray(n_annotators)
        if given.ndim != 1 or given.shape[0] < n_tasks:
            raise ValueError(f"n_annotators must be 1-D with at least {n_tasks} entries")
        if not np.issubdtype(given.dtype, np.integer):
            raise ValueError("n_annotators must hold integers")
        if (given[:n_tasks] < drew).any():
            first = int(np.nonzero(given[:n_tasks] < drew)[0][0])
            raise ValueError(
                f"n_annotators[{first}] = {int(given[first])} but {int(drew[first])} "
                "annotators drew boxes on that task"
            )
        looked = given[:n_tasks].astype(np.float64)

    out_task: list[int] = []
    out_box: list[FloatArray] = []
    out_label: list[int] = []
    out_votes: list[int] = []
    out_iou: list[float] = []
    out_share: list[float] = []
    assignment = np.full(n, -1, dtype=np.int64)
    order = np.argsort(task, kind="stable")
    # The tasks with boxes only (a Python loop over every code up to the largest was 36 s for
    # a code of 10**8), each with its rows in input order.
    present, firsts = np.unique(task[order], return_index=True)
    lasts = np.append(firsts[1:], n)[: present.size]
    for t, first, last in zip(present.tolist(), firsts.tolist(), lasts.tolist(), strict=True):
        rows = order[first:last]
        root = _cluster(iou_matrix(coords[rows], coords[rows]), worker[rows], iou_threshold)
        needed = min_votes if min_votes is not None else int(looked[t] // 2) + 1
        for cluster in np.unique(root):  # roots ascend, so clusters follow their first row
            members = rows[root == cluster]
            if members.size < needed:
                continue
            w = weight[members]
            if fuse == "mean":
                fused = (coords[members] * w[:, None]).sum(axis=0) / w.sum()
            else:
                fused = np.array([_weighted_median(coords[members, c], w) for c in range(4)])
            assignment[members] = len(out_task)
            out_task.append(t)
            out_box.append(fused)
            out_votes.append(int(members.size))
            out_iou.append(float(iou_matrix(coords[members], fused[None, :]).mean()))
            if label is None:
                out_label.append(-1)
                out_share.append(float("nan"))
            else:
                tally = np.bincount(label[members], weights=w)
                winner = int(np.argmax(tally))
                out_label.append(winner)
                out_share.append(float(tally[winner] / w.sum()))
    votes = np.asarray(out_votes, dtype=np.int64)
    tasks_out = np.asarray(out_task, dtype=np.int64)
    return BoxResult(
        tasks=tasks_out,
        boxes=np.asarray(out_box, dtype=np.float64).reshape(-1, 4),
        labels=np.asarray(out_label, dtype=np.int64),
        votes=votes,
        agreement=votes / looked[tasks_out] if votes.size else np.zeros(0),
        mean_iou=np.asarray(out_iou, dtype=np.float64),
        label_share=np.asarray(out_share, dtype=np.float64),
        assignment=assignment,
    )
