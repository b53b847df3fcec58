"""The value returned by :func:`labeling.consensus.aggregate`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class AggregationResult:
    """The inferred truth of every task and the estimated quality of every worker.

    Attributes:
        labels: ``(n_tasks,)`` int64; the most probable class of each task. Ties go to the lowest
            class code. ``-1`` for a task code below ``n_tasks`` that received no label.
        posteriors: ``(n_tasks, n_classes)`` float64; each row sums to 1. The row of a task with no
            label is uniform (``1 / n_classes``), never NaN.
        worker_skill: ``(n_workers,)`` float64; the estimated accuracy of each worker in ``[0, 1]``
            (see each method's docstring for the exact estimator). NaN for a worker code below
            ``n_workers`` that gave no label.
        confusion: ``(n_workers, n_classes, n_classes)`` float64 where ``confusion[w, k, l]`` is the
            probability that worker ``w`` answers ``l`` when the truth is ``k`` (rows sum to 1), for
            the methods that model one (``dawid_skene``, ``one_coin``, ``mace``); else ``None``.
        iterations: the number of iterations the method ran (0 for one-pass methods).
        converged: whether the stopping criterion was met before ``max_iter`` (always ``True`` for
            one-pass methods).
        method: the method's name, as passed to :func:`aggregate`.
        calibration_floor: for ``bayes_ds`` with gold tasks, the share ``e`` of tasks on which,
            judging by the gold tasks, the crowd's answers carry no information (correlated
            errors); every non-gold posterior row is ``(1 - e) * model + e / K``. 0 otherwise.
    """

    labels: IntArray
    posteriors: FloatArray
    worker_skill: FloatArray
    confusion: FloatArray | None
    iterations: int
    converged: bool
    method: str
    calibration_floor: float = 0.0

    @property
    def n_tasks(self) -> int:
        """The number of task rows (``max task code + 1`` unless ``n_tasks`` was passed)."""
        return int(self.labels.shape[0])

    @property
    def n_classes(self) -> int:
        """The number of classes (the width of :attr:`posteriors`)."""
        return int(self.posteriors.shape[1])
