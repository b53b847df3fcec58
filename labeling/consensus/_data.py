"""Input validation and the canonical form of a crowd's answers (sorted; repeats kept or not)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]

Repeats = Literal["all", "last"]
REPEATS: tuple[str, ...] = ("all", "last")


@dataclass(frozen=True, eq=False)
class CrowdData:
    """A crowd's answers sorted by task then worker (a stable sort: a pair's repeated answers stay
    in input order); with ``repeats="last"`` only the last answer of each pair is kept.

    ``tasks``, ``workers`` and ``labels`` are int64 arrays of equal length ``n``. ``task_start`` has
    ``n_tasks + 1`` entries: the answers of task ``t`` are ``start[t]:start[t + 1]``.
    """

    tasks: IntArray
    workers: IntArray
    labels: IntArray
    n_tasks: int
    n_workers: int
    n_classes: int
    task_start: IntArray

    @property
    def n(self) -> int:
        return int(self.tasks.shape[0])

    @property
    def task_counts(self) -> IntArray:
        return np.diff(self.task_start)

    @property
    def labeled(self) -> npt.NDArray[np.bool_]:
        """A mask of the tasks that received at least one answer."""
        return self.task_counts > 0


_INT64_MAX = int(np.iinfo(np.int64).max)


def _as_codes(values: Any, name: str) -> IntArray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of integer codes, got shape {array.shape}")
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must hold integer codes, got dtype {array.dtype}")
    if np.issubdtype(array.dtype, np.signedinteger) and int(array.min()) < 0:
        raise ValueError(f"{name} must be non-negative codes; found {int(array.min())}")
    if np.issubdtype(array.dtype, np.unsignedinteger) and int(array.max()) > _INT64_MAX:
        # astype(int64) would wrap it to a negative code, silently another task or worker
        raise ValueError(f"{name} must be codes below 2**63; found {int(array.max())}")
    return array.astype(np.int64, copy=False)


def _check_count(value: int | None, name: str, minimum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def prepare(
    tasks: Any,
    workers: Any,
    labels: Any,
    n_classes: int | None = None,
    n_tasks: int | None = None,
    n_workers: int | None = None,
    repeats: Repeats | str = "all",
) -> CrowdData:
    """Validate the three code arrays and sort them by (task, worker).

    ``repeats``: what a (task, worker) pair answered more than once counts as. ``"all"`` keeps
    every answer (each is one more draw from the worker, as crowd-kit counts them); ``"last"``
    keeps the last one (a later answer corrects an earlier one).

    Raises:
        ValueError: the arrays are not 1-D integer arrays of equal length; a code is negative; a
            label is ``>= n_classes``; a task or worker code is ``>= n_tasks`` / ``>= n_workers``;
            ``repeats`` is neither ``"all"`` nor ``"last"``.
    """
    if repeats not in REPEATS:
        raise ValueError(f"repeats must be 'all' or 'last', got {repeats!r}")
    task_codes = _as_codes(tasks, "tasks")
    worker_codes = _as_codes(workers, "workers")
    label_codes = _as_codes(labels, "labels")
    if not task_codes.shape[0] == worker_codes.shape[0] == label_codes.shape[0]:
        raise ValueError(
            "tasks, workers and labels must have the same length; got "
            f"{task_codes.shape[0]}, {worker_codes.shape[0]} and {label_codes.shape[0]}"
        )
    n_classes = _check_count(n_classes, "n_classes", 1)
    n_tasks = _check_count(n_tasks, "n_tasks", 0)
    n_workers = _check_count(n_workers, "n_workers", 0)
    n = task_codes.shape[0]

    def _bound(codes: IntArray, given: int | None, name: str, what: str) -> int:
        top = int(codes.max()) + 1 if n else 0
        if given is None:
            return top
        if top > given:
            raise ValueError(f"{what} code {top - 1} is out of range for {name}={given}")
        return given

    k = _bound(label_codes, n_classes, "n_classes", "label")
    if n_classes is None and n == 0:
        k = 1
    t = _bound(task_codes, n_tasks, "n_tasks", "task")
    w = _bound(worker_codes, n_workers, "n_workers", "worker")

    if n:
        # Sort by (task, worker); a stable sort keeps repeats in input order, so the last answer
        # of a pair is the last of its run. Input that is already in that order (what a
        # `ORDER BY task, worker` query gives) skips the sort.
        key = task_codes * max(w, 1) + worker_codes
        if bool(np.all(key[1:] >= key[:-1])):
            order = None
        else:
            order = np.argsort(key, kind="stable")
            key = key[order]
        if repeats == "last":
            keep = np.empty(n, dtype=bool)
            keep[-1] = True
            np.not_equal(key[1:], key[:-1], out=keep[:-1])
        else:
            keep = np.ones(n, dtype=bool)
        if order is None:
            if not keep.all():
                task_codes, worker_codes, label_codes = (
                    task_codes[keep],
                    worker_codes[keep],
                    label_codes[keep],
                )
        else:
            order = order[keep] if not keep.all() else order
            task_codes, worker_codes, label_codes = (
                task_codes[order],
                worker_codes[order],
                label_codes[order],
            )
    start = np.zeros(t + 1, dtype=np.int64)
    np.cumsum(np.bincount(task_codes, minlength=t), out=start[1:])
    return CrowdData(
        tasks=np.ascontiguousarray(task_codes),
        workers=np.ascontiguousarray(worker_codes),
        labels=np.ascontiguousarray(label_codes),
        n_tasks=t,
        n_workers=w,
        n_classes=k,
        task_start=start,
    )


def prepare_gold(gold: Mapping[int, int] | None, data: CrowdData) -> tuple[IntArray, IntArray]:
    """Turn a ``{task: label}`` mapping into two code arrays.

    Raises:
        ValueError: a task code is outside ``[0, n_tasks)`` or a label outside ``[0, n_classes)``.
    """
    if not gold:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    for task, label in gold.items():
        for value in (task, label):
            # int() would read 0.9 as 0 and "1" as 1: another task or class than meant.
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise ValueError(
                    f"gold maps task codes to class codes (ints); got {task!r}: {label!r}"
                )
    gold_tasks = np.fromiter((int(task) for task in gold), dtype=np.int64, count=len(gold))
    gold_labels = np.fromiter((int(gold[task]) for task in gold), dtype=np.int64, count=len(gold))
    if gold_tasks.min() < 0 or gold_tasks.max() >= data.n_tasks:
        raise ValueError(f"gold task codes must be in [0, {data.n_tasks}); got {gold_tasks.max()}")
    if gold_labels.min() < 0 or gold_labels.max() >= data.n_classes:
        raise ValueError(
            f"gold labels must be in [0, {data.n_classes}); got "
            f"{gold_labels.min() if gold_labels.min() < 0 else gold_labels.max()}"
        )
    return gold_tasks, gold_labels
