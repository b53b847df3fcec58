"""The one entry point of truth inference: :func:`aggregate`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

from . import _torch_backend, dawid_skene, glad, mace, voting
from ._data import Repeats, prepare, prepare_gold
from .errors import DeviceUnavailableError
from .result import AggregationResult

Method = Literal[
    "majority_vote", "wawa", "zbs", "dawid_skene", "one_coin", "glad", "mace", "bayes_ds"
]

METHODS: tuple[str, ...] = (
    "bayes_ds",
    "majority_vote",
    "wawa",
    "zbs",
    "dawid_skene",
    "one_coin",
    "glad",
    "mace",
)
TORCH_METHODS: frozenset[str] = frozenset({"bayes_ds", "dawid_skene", "one_coin"})


def _resolve_device(device: str, method: str) -> str:
    """Return ``"cpu"`` or a torch device name; raise if the request cannot be met."""
    if device == "cpu":
        return "cpu"
    if device == "auto":
        if method in TORCH_METHODS and _torch_backend.cuda_available():
            return "cuda"
        return "cpu"
    if device not in ("cuda", "torch-cpu") and not device.startswith("cuda:"):
        raise ValueError(
            f"unknown device {device!r}; use 'cpu', 'auto', 'cuda', 'cuda:N' or 'torch-cpu'"
        )
    if method not in TORCH_METHODS:
        raise DeviceUnavailableError(
            f"method {method!r} has no torch backend; the torch devices run "
            f"{sorted(TORCH_METHODS)}. Use device='cpu' or 'auto'."
        )
    _torch_backend.require(device)
    return device


def _empty_result(
    n_tasks: int, n_workers: int, n_classes: int, method: str, gold: Mapping[int, int] | None
) -> AggregationResult:
    posteriors = np.full((n_tasks, n_classes), 1.0 / n_classes)
    labels = np.full(n_tasks, -1, dtype=np.int64)
    for task, label in (gold or {}).items():
        posteriors[task] = 0.0
        posteriors[task, label] = 1.0
        labels[task] = label
    return AggregationResult(
        labels=labels,
        posteriors=posteriors,
        worker_skill=np.full(n_workers, np.nan),
        confusion=None,
        iterations=0,
        converged=True,
        method=method,
    )


def aggregate(
    tasks: Any,
    workers: Any,
    labels: Any,
    n_classes: int | None = None,
    method: Method | str = "bayes_ds",
    device: str = "cpu",
    max_iter: int = 100,
    tol: float = 1e-5,
    gold: Mapping[int, int] | None = None,
    seed: int = 0,
    *,
    n_tasks: int | None = None,
    n_workers: int | None = None,
    precision: Literal["float32", "float64"] = "float64",
    n_threads: int | None = None,
    repeats: Repeats | str = "all",
) -> AggregationResult:
    """Infer each task's true class from a crowd's answers.

    Args:
        tasks, workers, labels: equal-length 1-D integer arrays of 0-based codes; answer ``i`` is
            worker ``workers[i]`` saying ``labels[i]`` about task ``tasks[i]``. A (task, worker)
            pair may appear more than once: see ``repeats``.
        n_classes: the number of classes; default ``max(labels) + 1``.
        method: ``"bayes_ds"`` (Bayesian Dawid-Skene, the default; see :mod:`.bayes`),
            ``"majority_vote"``, ``"wawa"``, ``"zbs"`` (zero-based skill), ``"dawid_skene"``,
            ``"one_coin"`` (one-coin Dawid-Skene), ``"glad"`` or ``"mace"``.
        device: ``"cpu"`` (NumPy); ``"cuda"``/``"cuda:N"`` (torch on a GPU) or ``"torch-cpu"``
            (torch on the CPU) for ``bayes_ds``, ``dawid_skene`` and ``one_coin``; ``"auto"`` picks ``"cuda"``
            when torch sees a GPU and the method has a torch backend, else ``"cpu"``.
        max_iter: the iteration cap of the iterative methods.
        tol: the convergence threshold (see each method; ``-inf`` forces ``max_iter`` iterations).
        gold: known classes ``{task: label}``; those tasks' posteriors are clamped to one-hot at
            every step, which anchors the worker parameters. ``bayes_ds`` also calibrates its
            other posteriors on them (``calibration_floor``).
        seed: seeds the random restarts of ``mace``; every method is deterministic for the same
            input and seed.
        n_tasks, n_workers: the number of task / worker rows in the result (default: max code + 1),
            so trailing tasks or workers without answers still get a row.
        precision: ``"float32"`` runs Dawid-Skene's per-answer arithmetic in float32 (about 2x
            faster on large inputs); everything else is float64.
        n_threads: threads for Dawid-Skene's CPU passes (default: the CPUs available, capped; one
            for small inputs). The result does not depend on it.
        repeats: what a (task, worker) pair answered more than once counts as: ``"all"`` (the
            default) counts every answer, each one more draw from the worker (as crowd-kit does);
            ``"last"`` keeps only the last (highest index), for answers that correct earlier ones.

    Returns:
        An :class:`AggregationResult`. Ties between classes go to the lowest class code; a task
        without answers (and not in ``gold``) gets label ``-1`` and a uniform posterior row.

    Raises:
        ValueError: mismatched lengths, non-integer or negative codes, a label ``>= n_classes``, a
            gold entry out of range, an unknown method or device, ``max_iter < 0``, NaN ``tol``,
            an unknown ``repeats``.
        DeviceUnavailableError: a torch device was requested but torch is not installed, CUDA is
            not available, or the method has no torch backend.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int | np.integer) or max_iter < 0:
        raise ValueError(f"max_iter must be a non-negative int, got {max_iter!r}")
    max_iter = int(max_iter)
    if isinstance(tol, bool) or not isinstance(tol, int | float | np.floating | np.integer):
        raise ValueError(f"tol must be a number, got {tol!r}")
    if math.isnan(tol):
        raise ValueError("tol must not be NaN")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise ValueError(f"seed must be an int, got {seed!r}")
    seed = int(seed)
    if not isinstance(device, str):
        raise ValueError(f"device must be a string such as 'cpu', got {device!r}")
    if precision not in ("float32", "float64"):
        raise ValueError(f"precision must be 'float32' or 'float64', got {precision!r}")
    resolved = _resolve_device(device, method)
    data = prepare(tasks, workers, labels, n_classes, n_tasks, n_workers, repeats=repeats)
    gold_tasks, gold_labels = prepare_gold(gold, data)
    if data.n == 0:
        return _empty_result(data.n_tasks, data.n_workers, data.n_classes, method, gold)

    if resolved != "cpu" and method == "bayes_ds":
        return _torch_backend.bayes_ds(
            data, gold_tasks, gold_labels, max_iter=max_iter, tol=tol, device=resolved
        )
    if resolved != "cpu":
        return _torch_backend.dawid_skene(
            data,
            gold_tasks,
            gold_labels,
            max_iter=max_iter,
            tol=tol,
            one_coin=method == "one_coin",
            device=resolved,
        )
    if method == "majority_vote":
        return voting.majority_vote(data, gold_tasks, gold_labels)
    if method == "wawa":
        return voting.wawa(data, gold_tasks, gold_labels)
    if method == "zbs":
        return voting.zero_based_skill(data, gold_tasks, gold_labels, max_iter, tol)
    if method in ("dawid_skene", "one_coin", "bayes_ds"):
        return dawid_skene.dawid_skene(
            data,
            gold_tasks,
            gold_labels,
            max_iter,
            tol,
            one_coin=method == "one_coin",
            precision=precision,
            n_threads=n_threads,
            bayesian=method == "bayes_ds",
        )
    if method == "glad":
        return glad.glad(data, gold_tasks, gold_labels, max_iter, tol)
    return mace.mace(data, gold_tasks, gold_labels, max_iter, tol, seed=seed)
