"""Multi-label consensus: each class is an independent yes/no question, aggregated on its own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .aggregate import aggregate


@dataclass(frozen=True, eq=False)
class MultiLabelResult:
    """``labels[t, c]``: class ``c`` applies to task ``t``; ``probabilities[t, c]``: its
    posterior probability (0.5 for a task without answers); ``worker_skill[w, c]``: the
    worker's estimated accuracy on class ``c``'s yes/no question."""

    labels: npt.NDArray[np.bool_]
    probabilities: npt.NDArray[np.float64]
    worker_skill: npt.NDArray[np.float64]
    method: str


def aggregate_multilabel(
    tasks: Any,
    workers: Any,
    selections: Any,
    method: str = "dawid_skene",
    threshold: float = 0.5,
    **options: Any,
) -> MultiLabelResult:
    """Aggregate answers where each answer is a set of classes.

    Args:
        tasks, workers: integer codes, one per answer (the last answer of a repeated pair counts,
            unless ``repeats="all"`` is passed).
        selections: ``(n_answers, n_classes)`` 0/1 matrix; row ``i`` marks the classes answer ``i``
            selected (an unselected class is a "no", not a missing answer).
        method, options: passed to :func:`aggregate` for every class's binary problem.
        threshold: a class applies when its posterior probability is ``>= threshold``.

    Raises:
        ValueError: ``selections`` is not 2-D with one row per answer, or holds values other than
            0/1; and whatever :func:`aggregate` raises.
    """
    marks = np.asarray(selections)
    task_codes = np.asarray(tasks)
    if marks.ndim != 2 or marks.shape[0] != task_codes.shape[0]:
        raise ValueError("selections must be a (n_answers, n_classes) matrix, one row per answer")
    if marks.size and not np.isin(marks, (0, 1)).all():
        raise ValueError("selections must hold only 0 and 1")
    if "n_classes" in options:
        raise ValueError("n_classes is the number of columns of selections; don't pass it")
    # One set of classes per labeler and task: the last answer of a repeated pair counts, as
    # documented (aggregate's default counts every answer).
    options.setdefault("repeats", "last")
    columns = [
        aggregate(tasks, workers, marks[:, c].astype(np.int64), 2, method, **options)
        for c in range(marks.shape[1])
    ]
    if not columns:
        n_tasks = int(task_codes.max()) + 1 if task_codes.size else 0
        empty = np.zeros((n_tasks, 0))
        return MultiLabelResult(empty.astype(bool), empty, np.zeros((0, 0)), method)
    probabilities = np.stack([result.posteriors[:, 1] for result in columns], axis=1)
    return MultiLabelResult(
        labels=probabilities >= threshold,
        probabilities=probabilities,
        worker_skill=np.stack([result.worker_skill for result in columns], axis=1),
        method=method,
    )
