"""Text-span consensus by token-level voting.

Each task is a text of ``n_tokens[task]`` tokens; each annotator marks flat (non-overlapping)
spans ``[start, end)`` of tokens with a class code. Every token is voted on by every annotator of
the task: a token inside one of the annotator's spans votes for that span's class, any other token
votes "outside" (``O``, no label). A token takes the class with the most votes unless ``O`` is the
strict majority of the task's annotators (ties between classes go to the lowest code). Runs of
consecutive tokens with the same class become the fused spans, so two abutting spans of the same
class are reported as one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class SpanResult:
    """The fused spans of every task, ordered by task and start token.

    Attributes:
        tasks: ``(M,)`` int64; the task code of each fused span.
        starts, ends: ``(M,)`` int64; the span is tokens ``[start, end)``.
        labels: ``(M,)`` int64; the span's class code.
        agreement: ``(M,)`` float64; over the span's tokens, the mean share of the task's
            annotators who gave the token this class.
        exact_agreement: ``(M,)`` float64; the share of the task's annotators who marked exactly
            this span (same boundaries and class).
        token_labels: ``(sum(n_tokens),)`` int64; the fused class of every token, tasks
            concatenated in code order (``token_offsets[t]:token_offsets[t + 1]`` is task ``t``);
            ``-1`` for ``O``.
        token_offsets: ``(T + 1,)`` int64; where each task's tokens start in ``token_labels``.
    """

    tasks: IntArray
    starts: IntArray
    ends: IntArray
    labels: IntArray
    agreement: FloatArray
    exact_agreement: FloatArray
    token_labels: IntArray
    token_offsets: IntArray

    def __len__(self) -> int:
        return int(self.tasks.shape[0])


def _ints(values: Any, name: str, n: int | None = None) -> IntArray:
    array = np.asarray(values)
    if array.ndim != 1 or (n is not None and array.shape[0] != n):
        want = f"({n},)" if n is not None else "1-D"
        raise ValueError(f"{name} must have shape {want}, got {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must hold integers, got dtype {array.dtype}")
    return array.astype(np.int64, copy=False)


def aggregate_spans(
    n_tokens: Any,
    tasks: Any,
    workers: Any,
    starts: Any,
    ends: Any,
    labels: Any,
    *,
    n_annotators: Any = None,
) -> SpanResult:
    """Fuse the spans several annotators marked on the same texts.

    Args:
        n_tokens: ``(T,)`` non-negative token counts, indexed by task code.
        tasks, workers, starts, ends, labels: ``(N,)`` integers; annotator ``workers[i]`` marked
            tokens ``[starts[i], ends[i])`` of task ``tasks[i]`` as class ``labels[i]`` (codes
            ``>= 0``; ``O`` is the absence of a span). One annotator's spans on a task must not
            overlap.
        n_annotators: optional ``(T,)`` integers: how many annotators read each task, counting
            those who marked nothing (their ``O`` votes count). Default: the annotators with at
            least one span on the task.

    Returns:
        A :class:`SpanResult`.

    Raises:
        ValueError: mismatched shapes, non-integer or negative codes, a task code without an
            ``n_tokens`` entry, a span out of range (``start < 0``, ``end > n_tokens[task]`` or
            ``end <= start``), overlapping spans of one annotator on one task, or an
            ``n_annotators`` entry smaller than the annotators who marked that task.
    """
    size = _ints(n_tokens, "n_tokens")
    if size.size and size.min() < 0:
        raise ValueError("n_tokens must be non-negative")
    task = _ints(tasks, "tasks")
    n = task.shape[0]
    worker = _ints(workers, "workers", n)
    start = _ints(starts, "starts", n)
    end = _ints(ends, "ends", n)
    label = _ints(labels, "labels", n)
    for name, codes in (("tasks", task), ("workers", worker), ("labels", label)):
        if codes.size and codes.min() < 0:
            raise ValueError(f"{name} must be non-negative codes; found {int(codes.min())}")
    n_tasks = size.shape[0]
    if task.size and task.max() >= n_tasks:
        raise ValueError(f"task code {int(task.max())} has no n_tokens entry (T = {n_tasks})")
    bad = np.nonzero((start < 0) | (end <= start) | (end > size[task]))[0]
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"span {i} [{int(start[i])}, {int(end[i])}) is out of range for task {int(task[i])} "
            f"with {int(size[task[i]])} tokens (need 0 <= start < end <= n_tokens)"
        )
    # One vote per annotator per token: reject overlapping spans of one annotator on one task.
    order = np.lexsort((start, worker, task))
    same = (task[order][1:] == task[order][:-1]) & (worker[order][1:] == worker[order][:-1])
    clash = np.nonzero(same & (start[order][1:] < end[order][:-1]))[0]
    if clash.size:
        a, b = int(order[clash[0]]), int(order[clash[0] + 1])
        raise ValueError(
            f"spans {a} and {b} of worker {int(worker[a])} on task {int(task[a])} overlap"
        )

    drew = np.zeros(n_tasks, dtype=np.int64)
    if task.size:
        pairs = np.unique(task * (int(worker.max()) + 1) + worker)
        drew = np.bincount(pairs // (int(worker.max()) + 1), minlength=n_tasks)
    looked = drew
    if n_annotators is not None:
        looked = _ints(n_annotators, "n_annotators", n_tasks)
        if (looked < drew).any():
            t = int(np.nonzero(looked < drew)[0][0])
            raise ValueError(
                f"n_annotators[{t}] = {int(looked[t])} but {int(drew[t])} annotators marked task {t}"
            )

    offsets = np.concatenate([[0], np.cumsum(size)]).astype(np.int64)
    total = int(offsets[-1])
    k = int(label.max()) + 1 if label.size else 0
    # Votes per (token, class) from a difference array: +1 at each span's start, -1 at its end.
    diff = np.zeros((total + 1) * k, dtype=np.int64)
    np.add.at(diff, (offsets[task] + start) * k + label, 1)
    np.add.at(diff, (offsets[task] + end) * k + label, -1)
    votes = np.cumsum(diff.reshape(total + 1, k), axis=0)[:total]
    token_task = np.repeat(np.arange(n_tasks), size)
    readers = looked[token_task]
    outside = readers - votes.sum(axis=1)
    best = np.argmax(votes, axis=1) if k else np.zeros(total, dtype=np.int64)
    best_votes = votes[np.arange(total), best] if k else np.zeros(total, dtype=np.int64)
    labelled = (best_votes > 0) & (2 * outside <= readers)
    token_labels = np.where(labelled, best, -1).astype(np.int64)

    # Runs of one class within one task.
    boundary = np.ones(total, dtype=bool)
    if total:
        boundary[1:] = (token_labels[1:] != token_labels[:-1]) | (token_task[1:] != token_task[:-1])
    run_start = np.nonzero(boundary)[0]
    run_end = np.append(run_start[1:], total)
    keep = token_labels[run_start] >= 0
    run_start, run_end = run_start[keep], run_end[keep]
    span_task = token_task[run_start]
    span_label = token_labels[run_start]
    share = best_votes / np.maximum(readers, 1)
    cumulative = np.concatenate([[0.0], np.cumsum(share)])
    agreement = (cumulative[run_end] - cumulative[run_start]) / (run_end - run_start)
    local_start = run_start - offsets[span_task]
    local_end = run_end - offsets[span_task]

    # Exact matches: count the input spans with the same (task, start, end, label).
    exact = np.zeros(run_start.size)
    if run_start.size and task.size:
        given: dict[tuple[int, int, int, int], int] = {}
        for key in zip(task.tolist(), start.tolist(), end.tolist(), label.tolist(), strict=True):
            given[key] = given.get(key, 0) + 1
        fused_keys = zip(
            span_task.tolist(),
            local_start.tolist(),
            local_end.tolist(),
            span_label.tolist(),
            strict=True,
        )
        exact = np.array([given.get(key, 0) for key in fused_keys], dtype=np.float64)
        exact /= looked[span_task]
    return SpanResult(
        tasks=span_task.astype(np.int64),
        starts=local_start.astype(np.int64),
        ends=local_end.astype(np.int64),
        labels=span_label.astype(np.int64),
        agreement=agreement.astype(np.float64),
        exact_agreement=exact,
        token_labels=token_labels,
        token_offsets=offsets,
    )
