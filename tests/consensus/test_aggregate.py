"""The contract of aggregate(): inputs, outputs, edge cases and errors, for every method."""

from __future__ import annotations

import numpy as np
import pytest

from labeling.consensus import METHODS, AggregationResult, DeviceUnavailableError, aggregate

from .conftest import make_crowd


@pytest.mark.parametrize("method", METHODS)
def test_it_returns_a_frozen_result_with_consistent_shapes(method: str) -> None:
    crowd = make_crowd(n_tasks=60, seed=1)
    result = aggregate(crowd.tasks, crowd.workers, crowd.labels, method=method)
    assert isinstance(result, AggregationResult)
    assert result.method == method
    assert result.labels.shape == (60,)
    assert result.posteriors.shape == (60, 3)
    assert result.worker_skill.shape == (12,)
    np.testing.assert_allclose(result.posteriors.sum(axis=1), 1.0, atol=1e-9)
    assert np.array_equal(result.labels, np.argmax(result.posteriors, axis=1))
    with pytest.raises(AttributeError):
        result.method = "other"  # type: ignore[misc]


@pytest.mark.parametrize("method", METHODS)
def test_it_is_deterministic(method: str) -> None:
    crowd = make_crowd(n_tasks=80, seed=2)
    first = aggregate(crowd.tasks, crowd.workers, crowd.labels, method=method, seed=3)
    second = aggregate(crowd.tasks, crowd.workers, crowd.labels, method=method, seed=3)
    assert np.array_equal(first.posteriors, second.posteriors)
    assert np.array_equal(first.worker_skill, second.worker_skill, equal_nan=True)


@pytest.mark.parametrize("method", METHODS)
def test_a_task_without_answers_gets_minus_one_and_a_uniform_row(method: str) -> None:
    result = aggregate([0, 0, 2, 2], [0, 1, 0, 1], [1, 1, 0, 0], n_classes=2, method=method)
    assert result.labels.tolist() == [1, -1, 0]
    assert result.posteriors[1].tolist() == [0.5, 0.5]


@pytest.mark.parametrize("method", METHODS)
def test_trailing_tasks_and_workers_get_rows_when_counts_are_given(method: str) -> None:
    result = aggregate([0, 0], [0, 1], [1, 1], method=method, n_tasks=3, n_workers=4)
    assert result.labels.tolist() == [1, -1, -1]
    assert result.posteriors.shape == (3, 2)
    assert np.isnan(result.worker_skill[2:]).all()


@pytest.mark.parametrize("method", METHODS)
def test_with_repeats_last_only_the_last_answer_of_a_pair_counts(method: str) -> None:
    # Worker 0 first says 0 then corrects to 1: with repeats="last" the first answer is gone.
    result = aggregate([0, 0, 0, 0], [0, 1, 2, 0], [0, 0, 1, 1], method=method, repeats="last")
    once = aggregate([0, 0, 0], [1, 2, 0], [0, 1, 1], method=method)
    np.testing.assert_allclose(result.posteriors, once.posteriors, atol=1e-12)


@pytest.mark.parametrize("method", ["majority_vote", "wawa", "dawid_skene", "bayes_ds"])
def test_by_default_every_answer_of_a_repeated_pair_counts(method: str) -> None:
    # Worker 0 says 1 twice, workers 1 and 2 say 0 once each: twice is not once.
    tasks, workers, labels = [0, 0, 0, 0, 1, 1], [0, 1, 2, 0, 0, 1], [1, 0, 0, 1, 0, 0]
    every = aggregate(tasks, workers, labels, method=method)
    last = aggregate(tasks, workers, labels, method=method, repeats="last")
    assert every.posteriors[0, 1] > last.posteriors[0, 1]
    in_order = aggregate([0, 0, 0, 0, 1, 1], [0, 0, 1, 2, 0, 1], [1, 1, 0, 0, 0, 0], method=method)
    np.testing.assert_allclose(every.posteriors, in_order.posteriors, atol=1e-9)


def test_repeats_must_be_all_or_last() -> None:
    with pytest.raises(ValueError, match="repeats"):
        aggregate([0], [0], [0], repeats="first")


@pytest.mark.parametrize("method", METHODS)
def test_a_single_worker_is_believed(method: str) -> None:
    result = aggregate([0, 1, 2], [0, 0, 0], [2, 0, 1], n_classes=3, method=method)
    assert result.labels.tolist() == [2, 0, 1]


@pytest.mark.parametrize("method", METHODS)
def test_a_single_class_present_wins_everywhere(method: str) -> None:
    result = aggregate([0, 0, 1, 1], [0, 1, 0, 1], [0, 0, 0, 0], method=method)
    assert result.labels.tolist() == [0, 0]
    assert result.posteriors.shape == (2, 1)
    np.testing.assert_allclose(result.posteriors, 1.0)


@pytest.mark.parametrize("method", METHODS)
def test_an_unseen_class_code_keeps_its_column(method: str) -> None:
    result = aggregate([0, 0, 1], [0, 1, 0], [0, 0, 2], n_classes=5, method=method)
    assert result.posteriors.shape == (2, 5)
    assert result.labels.tolist() == [0, 2]


@pytest.mark.parametrize("method", METHODS)
def test_empty_input_gives_an_empty_result(method: str) -> None:
    result = aggregate([], [], [], method=method)
    assert result.labels.shape == (0,)
    assert result.posteriors.shape == (0, 1)
    assert result.converged
    sized = aggregate([], [], [], n_classes=3, n_tasks=2, method=method)
    assert sized.labels.tolist() == [-1, -1]
    np.testing.assert_allclose(sized.posteriors, 1 / 3)


@pytest.mark.parametrize("method", ["majority_vote", "wawa", "zbs", "dawid_skene"])
def test_ties_go_to_the_lowest_class_code(method: str) -> None:
    result = aggregate([0, 0, 1, 1], [0, 1, 0, 1], [2, 1, 1, 2], method=method)
    assert result.labels.tolist() == [1, 1]


@pytest.mark.parametrize("method", METHODS)
def test_gold_clamps_the_known_tasks(method: str) -> None:
    crowd = make_crowd(n_tasks=60, seed=4)
    gold = {0: int((crowd.truth[0] + 1) % 3), 5: int(crowd.truth[5])}
    result = aggregate(crowd.tasks, crowd.workers, crowd.labels, method=method, gold=gold)
    for task, label in gold.items():
        assert result.labels[task] == label
        assert result.posteriors[task, label] == 1.0


def test_gold_anchors_an_adversarial_crowd() -> None:
    # Two workers always answer the opposite of the truth; gold on half the tasks lets
    # Dawid-Skene learn to invert them on the other half.
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, 40)
    tasks = np.repeat(np.arange(40), 2)
    workers = np.tile([0, 1], 40)
    labels = 1 - truth[tasks]
    gold = {int(t): int(truth[t]) for t in range(20)}
    result = aggregate(tasks, workers, labels, method="dawid_skene", gold=gold)
    assert np.array_equal(result.labels[20:], truth[20:])
    assert result.worker_skill.max() < 0.5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tasks": [0, 1], "workers": [0], "labels": [0, 1]}, "same length"),
        ({"tasks": [0, -1], "workers": [0, 0], "labels": [0, 1]}, "non-negative"),
        ({"tasks": [0, 1], "workers": [0, -3], "labels": [0, 1]}, "non-negative"),
        ({"tasks": [0, 1], "workers": [0, 0], "labels": [0, 2], "n_classes": 2}, "n_classes=2"),
        ({"tasks": [0.5, 1], "workers": [0, 0], "labels": [0, 1]}, "integer"),
        ({"tasks": [[0]], "workers": [[0]], "labels": [[0]]}, "1-D"),
        ({"tasks": [0], "workers": [0], "labels": [0], "method": "nope"}, "unknown method"),
        ({"tasks": [0], "workers": [0], "labels": [0], "device": "tpu"}, "unknown device"),
        ({"tasks": [0], "workers": [0], "labels": [0], "max_iter": -1}, "max_iter"),
        ({"tasks": [0], "workers": [0], "labels": [0], "tol": float("nan")}, "tol"),
        ({"tasks": [0], "workers": [0], "labels": [0], "gold": {3: 0}}, "gold task"),
        ({"tasks": [0], "workers": [0], "labels": [0], "gold": {0: 7}}, "gold labels"),
        ({"tasks": [0], "workers": [0], "labels": [0], "n_classes": 0}, "n_classes"),
        ({"tasks": [4], "workers": [0], "labels": [0], "n_tasks": 2}, "n_tasks=2"),
    ],
)
def test_it_rejects_bad_input_with_a_clear_message(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        aggregate(**kwargs)


def test_a_method_without_a_torch_backend_refuses_a_torch_device() -> None:
    with pytest.raises(DeviceUnavailableError, match="no torch backend"):
        aggregate([0], [0], [0], method="glad", device="torch-cpu")


def test_auto_device_falls_back_to_the_cpu_for_cpu_only_methods() -> None:
    result = aggregate([0, 0], [0, 1], [1, 1], method="mace", device="auto")
    assert result.labels.tolist() == [1]
