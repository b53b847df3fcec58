"""Each method recovers known truth on synthetic crowds, and results follow code permutations."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labeling.consensus import METHODS, aggregate

from .conftest import make_crowd

MODEL_METHODS = ["wawa", "zbs", "dawid_skene", "one_coin", "glad", "mace"]


def _accuracy(method: str, **crowd_kwargs: object) -> tuple[float, float]:
    crowd = make_crowd(**crowd_kwargs)  # type: ignore[arg-type]
    result = aggregate(crowd.tasks, crowd.workers, crowd.labels, method=method)
    mv = aggregate(crowd.tasks, crowd.workers, crowd.labels, method="majority_vote")
    return float(np.mean(result.labels == crowd.truth)), float(np.mean(mv.labels == crowd.truth))


@pytest.mark.parametrize("method", METHODS)
def test_it_recovers_the_truth_from_a_good_crowd(method: str) -> None:
    accuracy, _ = _accuracy(method, n_good=10, n_spammers=0, good_accuracy=0.9, seed=11)
    assert accuracy >= 0.97


@pytest.mark.parametrize("method", MODEL_METHODS)
def test_it_beats_majority_vote_when_spammers_are_present(method: str) -> None:
    accuracy, majority = _accuracy(method, n_tasks=400, n_good=4, n_spammers=8, seed=12)
    assert accuracy > majority + 0.02


@pytest.mark.parametrize("method", ["dawid_skene", "one_coin", "glad", "mace"])
def test_it_ranks_good_workers_above_spammers(method: str) -> None:
    crowd = make_crowd(n_tasks=400, n_good=4, n_spammers=8, seed=13)
    result = aggregate(crowd.tasks, crowd.workers, crowd.labels, method=method)
    assert result.worker_skill[:4].min() > result.worker_skill[4:].max()


@pytest.mark.parametrize("method", METHODS)
def test_an_all_spammer_crowd_still_gives_valid_output(method: str) -> None:
    crowd = make_crowd(n_tasks=100, n_good=0, n_spammers=8, seed=14)
    result = aggregate(crowd.tasks, crowd.workers, crowd.labels, method=method)
    assert np.isfinite(result.posteriors).all()
    assert set(result.labels.tolist()) <= {0, 1, 2}
    assert 0.15 < np.mean(result.labels == crowd.truth) < 0.55


def test_dawid_skene_learns_a_confusion_matrix() -> None:
    # Worker 0 always swaps classes 0 and 1; DS should learn that and still decode correctly.
    crowd = make_crowd(n_tasks=500, n_good=6, n_spammers=0, good_accuracy=0.9, seed=15)
    labels = crowd.labels.copy()
    swapped = crowd.workers == 0
    truth = crowd.truth[crowd.tasks]
    labels[swapped] = np.where(truth[swapped] == 2, 2, 1 - np.minimum(truth[swapped], 1))
    result = aggregate(crowd.tasks, crowd.workers, labels, method="dawid_skene")
    assert result.confusion is not None
    assert result.confusion[0, 0, 1] > 0.8 and result.confusion[0, 1, 0] > 0.8
    np.testing.assert_allclose(result.confusion.sum(axis=2), 1.0, atol=1e-9)
    assert np.mean(result.labels == crowd.truth) > 0.97


def test_float32_precision_agrees_with_float64() -> None:
    crowd = make_crowd(n_tasks=500, n_classes=4, seed=16)
    kwargs = {"method": "dawid_skene", "max_iter": 30}
    wide = aggregate(crowd.tasks, crowd.workers, crowd.labels, tol=float("-inf"), **kwargs)
    narrow = aggregate(
        crowd.tasks,
        crowd.workers,
        crowd.labels,
        **kwargs,
        tol=float("-inf"),
        precision="float32",
    )
    np.testing.assert_allclose(narrow.posteriors, wide.posteriors, atol=1e-4)
    assert narrow.posteriors.dtype == np.float64


def test_max_iter_and_tol_control_the_iterations() -> None:
    crowd = make_crowd(n_tasks=200, seed=17)
    capped = aggregate(crowd.tasks, crowd.workers, crowd.labels, max_iter=3, tol=float("-inf"))
    assert capped.iterations == 3 and not capped.converged
    free = aggregate(crowd.tasks, crowd.workers, crowd.labels)
    assert free.converged and free.iterations < 100


def _reference_dawid_skene(
    tasks: np.ndarray, workers: np.ndarray, labels: np.ndarray, k: int, iterations: int
) -> np.ndarray:
    """A deliberately plain Dawid-Skene (np.add.at, no layouts) to check the fast one against."""
    n_tasks, n_workers = tasks.max() + 1, workers.max() + 1
    post = np.zeros((n_tasks, k))
    np.add.at(post, (tasks, labels), 1.0)
    post /= post.sum(axis=1, keepdims=True)
    for _ in range(iterations + 1):
        prior = post.mean(axis=0)
        counts = np.zeros((n_workers, k, k))  # [w, true, answer]
        for c in range(k):
            np.add.at(counts, (workers, c, labels), post[tasks, c])
        counts = np.maximum(counts, 1e-10)
        confusion = counts / counts.sum(axis=2, keepdims=True)
        if _ == iterations:
            break
        logits = np.tile(np.log(np.maximum(prior, 1e-10)), (n_tasks, 1))
        np.add.at(logits, tasks, np.log(confusion[workers, :, labels]))
        post = np.exp(logits - logits.max(axis=1, keepdims=True))
        post /= post.sum(axis=1, keepdims=True)
    return post


@pytest.mark.parametrize("answers_on_task_zero", [3, 40, 3000])
def test_the_fast_layout_matches_a_plain_implementation(answers_on_task_zero: int) -> None:
    # One task with many answers beside 1,000 tasks with 1-4 answers: exercises the slots,
    # the bincount tail and unsorted input.
    rng = np.random.default_rng(answers_on_task_zero)
    counts = rng.integers(1, 5, 1000)
    tasks = np.concatenate(
        [np.zeros(answers_on_task_zero, int), np.repeat(np.arange(1, 1001), counts)]
    )
    workers = np.concatenate(
        [rng.permutation(3000)[:answers_on_task_zero], rng.integers(0, 3000, counts.sum())]
    )
    truth = rng.integers(0, 3, 1001)
    labels = np.where(rng.random(tasks.size) < 0.8, truth[tasks], rng.integers(0, 3, tasks.size))
    pairs = np.unique(tasks * 3000 + workers, return_index=True)[1]
    tasks, workers, labels = tasks[pairs], workers[pairs], labels[pairs]
    order = rng.permutation(tasks.size)
    result = aggregate(
        tasks[order],
        workers[order],
        labels[order],
        n_classes=3,
        method="dawid_skene",
        max_iter=5,
        tol=float("-inf"),
    )
    expected = _reference_dawid_skene(tasks, workers, labels, 3, 5)
    np.testing.assert_allclose(result.posteriors, expected, atol=1e-9)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    method=st.sampled_from(METHODS),
)
def test_permuting_task_and_worker_codes_permutes_the_results(seed: int, method: str) -> None:
    crowd = make_crowd(n_tasks=30, n_classes=3, overlap=3, n_good=3, n_spammers=2, seed=seed)
    rng = np.random.default_rng(seed)
    task_perm = rng.permutation(30)  # old code -> new code
    worker_perm = rng.permutation(5)
    order = rng.permutation(crowd.tasks.size)  # the answers' order must not matter either
    base = aggregate(crowd.tasks, crowd.workers, crowd.labels, method=method, seed=1)
    moved = aggregate(
        task_perm[crowd.tasks][order],
        worker_perm[crowd.workers][order],
        crowd.labels[order],
        method=method,
        seed=1,
    )
    # Every method is equivariant: MACE's random restarts are keyed on each worker's answers, not
    # on its code.
    tol = 1e-6
    np.testing.assert_allclose(moved.posteriors[task_perm], base.posteriors, atol=tol)
    np.testing.assert_allclose(
        moved.worker_skill[worker_perm], base.worker_skill, atol=tol, equal_nan=True
    )
    assert np.array_equal(moved.labels[task_perm], base.labels)
