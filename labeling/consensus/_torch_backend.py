"""Dawid-Skene, one-coin and Bayesian Dawid-Skene EM on torch (a GPU, or torch's CPU build), in
float64.

torch is an optional dependency (the ``gpu`` extra): it is imported inside functions only, so
importing :mod:`labeling.consensus` never needs it. The algorithm, start point, clipping and
stopping rule are those of :mod:`labeling.consensus.dawid_skene` (and :mod:`.bayes`), so results
agree with ``device="cpu"`` to ~1e-9 (summation order differs; scatter-adds on a GPU are not
ordered).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import bayes
from ._common import EPS, FloatArray, IntArray, normalize_rows, vote_scores
from ._data import CrowdData
from .errors import DeviceUnavailableError
from .result import AggregationResult


def _import_torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise DeviceUnavailableError(
            "torch is not installed; install the 'gpu' extra (torch) or use device='cpu'"
        ) from exc
    return torch


def cuda_available() -> bool:
    """Whether torch is importable and sees a CUDA device (False, never raises, without torch)."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def require(device: str) -> None:
    """Raise :class:`DeviceUnavailableError` unless ``device`` can run torch code here."""
    torch = _import_torch()
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceUnavailableError(
            f"device={device!r} needs a CUDA GPU, but torch sees none; use 'cpu' or 'auto'"
        )


@dataclass(frozen=True)
class _OnDevice:
    """A crowd's answers on the torch device, as both EM loops read them."""

    torch: Any
    dev: Any
    tasks: Any  # (N,) the task of each answer
    wl: Any  # (N,) worker * K + answer: the E-step table's row of each answer
    labeled: Any  # (T,) whether the task has an answer
    n_labeled: int
    eye: Any  # (K, K) float64 identity: one-hot rows
    gold_tasks: Any
    gold_labels: Any

    @classmethod
    def of(
        cls, data: CrowdData, gold_tasks: IntArray, gold_labels: IntArray, device: str
    ) -> _OnDevice:
        torch = _import_torch()
        dev = torch.device("cpu" if device == "torch-cpu" else device)
        return cls(
            torch=torch,
            dev=dev,
            tasks=torch.as_tensor(data.tasks, device=dev),
            wl=torch.as_tensor(data.workers * data.n_classes + data.labels, device=dev),
            labeled=torch.as_tensor(data.labeled, device=dev),
            n_labeled=int(data.labeled.sum()),
            eye=torch.eye(data.n_classes, dtype=torch.float64, device=dev),
            gold_tasks=torch.as_tensor(gold_tasks, device=dev),
            gold_labels=torch.as_tensor(gold_labels, device=dev),
        )

    def clamp(self, post: Any) -> None:
        """Put the gold tasks' posteriors at their gold labels, in place."""
        if self.gold_tasks.numel():
            post[self.gold_tasks] = self.eye[self.gold_labels]


def dawid_skene(
    data: CrowdData,
    gold_tasks: IntArray,
    gold_labels: IntArray,
    max_iter: int,
    tol: float,
    one_coin: bool,
    device: str,
) -> AggregationResult:
    """The torch twin of :func:`labeling.consensus.dawid_skene.dawid_skene` (float64)."""
    on = _OnDevice.of(data, gold_tasks, gold_labels, device)
    torch, dev, f64, eye, clamp = on.torch, on.dev, on.torch.float64, on.eye, on.clamp
    k, n_workers, n_tasks = data.n_classes, data.n_workers, data.n_tasks
    tasks, wl, labeled, n_labeled = on.tasks, on.wl, on.labeled, on.n_labeled
    labeled_np = data.labeled
    answers = torch.as_tensor(
        np.bincount(data.workers, minlength=n_workers).astype(np.float64), device=dev
    )

    def m_step(post: Any) -> tuple[Any, Any, Any, Any]:
        counts = torch.zeros((n_workers * k, k), dtype=f64, device=dev)
        counts.index_add_(0, wl, post[tasks])
        prior = post[labeled].sum(0) / n_labeled
        by_answer = counts.reshape(n_workers, k, k)  # [w, answer, true]
        if one_coin:
            skill = torch.diagonal(by_answer, dim1=1, dim2=2).sum(1)
            skill = torch.where(answers > 0, skill / answers.clamp(min=1.0), 1.0 / k)
            if k == 1:
                confusion = torch.ones((n_workers, 1, 1), dtype=f64, device=dev)
            else:
                off = ((1.0 - skill) / (k - 1))[:, None, None].expand(n_workers, k, k)
                confusion = torch.where(eye.bool(), skill[:, None, None], off)
                confusion = confusion.clamp(EPS, 1.0 - EPS)
        else:
            clipped = by_answer.clamp(min=EPS)
            confusion = (clipped / clipped.sum(1, keepdim=True)).transpose(1, 2)
        # rows w*K+l, columns k: log P(answer l | truth k) for worker w.
        log_rows = torch.log(confusion.transpose(1, 2).reshape(n_workers * k, k))
        return counts, prior, confusion.contiguous(), log_rows

    post = torch.as_tensor(normalize_rows(vote_scores(data), labeled_np), device=dev)
    clamp(post)
    counts, prior, confusion, log_rows = m_step(post)
    elbo = -float("inf")
    converged = False
    iterations = 0
    for _ in range(max_iter):
        iterations += 1
        log_prior = torch.log(prior.clamp(min=EPS))
        logits = torch.zeros((n_tasks, k), dtype=f64, device=dev)
        logits.index_add_(0, tasks, log_rows[wl])
        logits += log_prior
        log_post = torch.log_softmax(logits, dim=1)
        post = torch.exp(log_post)
        entropy = -(post * log_post).sum(1)
        if gold_tasks.size:
            entropy[on.gold_tasks] = 0.0
        post[~labeled] = 1.0 / k
        clamp(post)  # after: a gold task nobody answered keeps its gold label
        counts, prior, confusion, log_rows = m_step(post)
        log_prior = torch.log(prior.clamp(min=EPS))
        new_elbo = (
            float((counts * log_rows).sum())
            + float(counts.sum(0) @ log_prior)
            + float(entropy[labeled].sum())
        ) / max(data.n, 1)
        if new_elbo - elbo < tol:
            converged = True
            break
        elbo = new_elbo

    posteriors = post.cpu().numpy().astype(np.float64)
    mask = labeled_np.copy()
    mask[gold_tasks] = True
    labels = np.argmax(posteriors, axis=1).astype(np.int64)
    labels[~mask] = -1
    answers_np = answers.cpu().numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        skill = (
            torch.diagonal(counts.reshape(n_workers, k, k), dim1=1, dim2=2).sum(1).cpu().numpy()
            / answers_np
        )
    skill[answers_np == 0] = np.nan
    return AggregationResult(
        labels=labels,
        posteriors=posteriors,
        worker_skill=skill,
        confusion=confusion.cpu().numpy(),
        iterations=iterations,
        converged=converged,
        method="one_coin" if one_coin else "dawid_skene",
    )


def bayes_ds(
    data: CrowdData,
    gold_tasks: IntArray,
    gold_labels: IntArray,
    max_iter: int,
    tol: float,
    device: str,
) -> AggregationResult:
    """The torch twin of ``dawid_skene(..., bayesian=True)`` (Bayesian Dawid-Skene, float64).

    The per-answer work (each E-step's gathers and softmax, each M-step's scatter-add into the
    soft counts: O(answers x K)) runs on torch. The parameters are computed from the ``(W, K, K)``
    soft counts and ``K`` class masses, copied to the host each iteration, by the very code of the
    NumPy backend: :class:`.bayes.CommunityPrior` (the community prior, O(W K^2) per iteration),
    :func:`.bayes.posterior_rows`, :func:`.bayes.class_prior`, the stopping rule
    (:func:`.bayes.largest_change`) and the gold calibration (:func:`.bayes.calibrate_to_gold`),
    so the two backends cannot drift apart.
    """
    on = _OnDevice.of(data, gold_tasks, gold_labels, device)
    torch, dev, f64, clamp = on.torch, on.dev, on.torch.float64, on.clamp
    k, n_workers, n_tasks = data.n_classes, data.n_workers, data.n_tasks
    tasks, wl, labeled, n_labeled = on.tasks, on.wl, on.labeled, on.n_labeled
    labeled_np = data.labeled
    answers = np.bincount(data.workers, minlength=n_workers).astype(np.float64)
    community = bayes.CommunityPrior(n_workers, k)

    def m_step(post: Any) -> tuple[FloatArray, FloatArray]:
        """The soft counts ``(W, true, answer)`` and the class masses, on the host."""
        counts = torch.zeros((n_workers * k, k), dtype=f64, device=dev)
        counts.index_add_(0, wl, post[tasks])  # row w*K + answer, column true
        by_answer = counts.reshape(n_workers, k, k).cpu().numpy()
        soft = np.ascontiguousarray(np.transpose(by_answer, (0, 2, 1)))
        return soft, post[labeled].sum(0).cpu().numpy()

    def parameters(soft: FloatArray, mass: FloatArray) -> tuple[FloatArray, FloatArray, Any]:
        """Confusion rows ``(W, true, answer)``, class prior, and the E-step's table on the device:
        row ``w * K + l``, column ``k`` = log P(answer l | truth k) for worker ``w``."""
        rows = bayes.posterior_rows(soft, community.update(soft))
        classes = bayes.class_prior(mass, n_labeled)
        log_rows = np.log(np.transpose(rows, (0, 2, 1))).reshape(n_workers * k, k)
        return rows, classes, torch.as_tensor(np.ascontiguousarray(log_rows), device=dev)

    # Start from the majority-vote shares, as the NumPy backend does.
    post = torch.as_tensor(normalize_rows(vote_scores(data), labeled_np), device=dev)
    clamp(post)
    soft, mass = m_step(post)
    rows, classes, log_rows = parameters(soft, mass)
    converged = False
    iterations = 0
    for _ in range(max_iter):
        iterations += 1
        logits = torch.zeros((n_tasks, k), dtype=f64, device=dev)
        logits.index_add_(0, tasks, log_rows[wl])
        logits += torch.as_tensor(np.log(np.maximum(classes, EPS)), device=dev)
        post = torch.softmax(logits, dim=1)
        post[~labeled] = 1.0 / k
        clamp(post)  # after: a gold task nobody answered keeps its gold label
        soft, mass = m_step(post)
        previous_rows, previous_classes = rows, classes
        rows, classes, log_rows = parameters(soft, mass)
        if bayes.largest_change(rows, previous_rows, classes, previous_classes) < tol:
            converged = True
            break

    posteriors: FloatArray = post.cpu().numpy().astype(np.float64)
    floor = bayes.calibrate_to_gold(
        posteriors, data, gold_tasks, gold_labels, soft, community.prior_counts, classes
    )
    mask = labeled_np.copy()
    mask[gold_tasks] = True
    labels = np.argmax(posteriors, axis=1).astype(np.int64)
    labels[~mask] = -1
    with np.errstate(invalid="ignore", divide="ignore"):
        skill = np.trace(soft, axis1=1, axis2=2) / answers
    skill[answers == 0] = np.nan
    return AggregationResult(
        labels=labels,
        posteriors=posteriors,
        worker_skill=skill,
        confusion=rows,
        iterations=iterations,
        converged=converged,
        method="bayes_ds",
        calibration_floor=floor,
    )
