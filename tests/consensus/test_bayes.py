"""Bayesian Dawid-Skene (the default method), its calibration on gold tasks, and the measures the
calibration benchmark reports."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.consensus.synthetic import crowd as synthetic_crowd
from labeling.consensus import (
    aggregate,
    confident_accuracy,
    expected_calibration_error,
    gold_floor,
)
from labeling.consensus._common import log_gamma
from labeling.consensus.bayes import held_out_gold_posteriors

from .conftest import make_crowd


def test_log_gamma_matches_the_standard_library() -> None:
    xs = np.array([1e-8, 0.003, 0.1, 0.5, 1.0, 1.5, 2.0, 3.0, 7.99, 8.0, 10.0, 33.3, 1e3, 1e7])
    expected = np.array([math.lgamma(x) for x in xs])
    np.testing.assert_allclose(log_gamma(xs), expected, rtol=1e-12, atol=1e-12)


def test_the_default_method_is_bayes_ds_and_recovers_a_plain_crowd() -> None:
    crowd = make_crowd(n_tasks=400, n_classes=3, seed=5)
    result = aggregate(crowd.tasks, crowd.workers, crowd.labels)
    assert result.method == "bayes_ds" and result.converged
    assert np.mean(result.labels == crowd.truth) > 0.9
    assert result.calibration_floor == 0.0  # no gold, no floor


def test_no_confusion_row_is_ever_zero_or_blind_even_with_one_answer() -> None:
    # Worker 3 answers once; nobody answers class 2 on a task believed to be class 2.
    tasks = [0, 0, 0, 1, 1, 1, 2, 2, 2, 3]
    workers = [0, 1, 2, 0, 1, 2, 0, 1, 2, 3]
    labels = [0, 0, 0, 1, 1, 1, 0, 0, 1, 1]
    result = aggregate(tasks, workers, labels, n_classes=3)
    assert result.confusion is not None
    assert (result.confusion > 0).all()
    np.testing.assert_allclose(result.confusion.sum(axis=2), 1.0)
    # Every row still favours its own class: an answer of class 2 is evidence for class 2.
    diagonal = np.diagonal(result.confusion, axis1=1, axis2=2)
    assert (diagonal > result.confusion.max(axis=1) - 1e-12).all()
    assert result.labels[3] == 1


def test_a_class_no_task_is_believed_to_have_keeps_informative_rows() -> None:
    result = aggregate([0, 0, 1], [0, 1, 0], [0, 0, 2], n_classes=5)
    assert result.labels.tolist() == [0, 2]


@pytest.mark.parametrize("seed", [0, 1])
def test_it_beats_dawid_skene_where_most_workers_are_sparse(seed: int) -> None:
    # 770 workers for 10,000 tasks of 3 answers: most workers give a few dozen answers, so
    # Dawid-Skene's maximum-likelihood rows overfit them.
    tasks, workers, labels, truth, _ = synthetic_crowd(
        30_000, k=4, overlap=3, n_workers=770, seed=seed
    )
    bayes = aggregate(tasks, workers, labels, n_classes=4, method="bayes_ds")
    plain = aggregate(tasks, workers, labels, n_classes=4, method="dawid_skene")
    assert np.mean(bayes.labels == truth) > np.mean(plain.labels == truth) + 0.005
    # And its posteriors mean more: half the calibration error or less.
    assert expected_calibration_error(bayes.posteriors, truth) < 0.5 * expected_calibration_error(
        plain.posteriors, truth
    )


def _deceived_crowd(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Binary crowd of 10 good workers; on 15% of the tasks every one of them sees the wrong
    class (correlated errors no model of independent workers can see)."""
    rng = np.random.default_rng(seed)
    n_tasks, n_workers = 600, 10
    truth = rng.integers(0, 2, n_tasks)
    looks = np.where(rng.random(n_tasks) < 0.15, 1 - truth, truth)
    tasks = np.repeat(np.arange(n_tasks), 5)
    workers = np.concatenate([rng.choice(n_workers, 5, replace=False) for _ in range(n_tasks)])
    labels = np.where(rng.random(tasks.size) < 0.9, looks[tasks], 1 - looks[tasks])
    return tasks, workers, labels, truth


def test_gold_tasks_calibrate_a_crowd_that_is_wrong_together() -> None:
    tasks, workers, labels, truth = _deceived_crowd(seed=4)
    gold = {task: int(truth[task]) for task in range(0, 600, 10)}  # one task in ten
    others = np.array([task not in gold for task in range(600)])
    blind = aggregate(tasks, workers, labels)
    calibrated = aggregate(tasks, workers, labels, gold=gold)
    # Without gold the model is sure of nearly every task, and 15% of those are wrong.
    right, n = confident_accuracy(blind.posteriors[others], truth[others])
    assert n > 400 and right < 0.9
    # With gold it learns that about 15% of the crowd's verdicts carry no information.
    assert 0.15 < calibrated.calibration_floor < 0.5
    assert calibrated.posteriors[others].max() < 0.95
    assert expected_calibration_error(
        calibrated.posteriors[others], truth[others]
    ) < expected_calibration_error(blind.posteriors[others], truth[others])
    # Gold rows stay clamped, and labels are the model's.
    assert calibrated.posteriors[0].tolist() == np.eye(2)[truth[0]].tolist()
    np.testing.assert_array_equal(
        calibrated.labels[others], np.argmax(calibrated.posteriors[others], axis=1)
    )


def test_gold_on_an_honest_crowd_leaves_its_posteriors_nearly_alone() -> None:
    crowd = make_crowd(n_tasks=1000, n_classes=2, n_spammers=2, good_accuracy=0.9, seed=8)
    gold = {task: int(crowd.truth[task]) for task in range(0, 1000, 10)}
    result = aggregate(crowd.tasks, crowd.workers, crowd.labels, gold=gold)
    assert result.calibration_floor < 0.05


def test_the_floor_is_cautious_with_few_gold_tasks_and_sure_with_many() -> None:
    for n, most in [(5, 0.4), (20, 0.15), (200, 0.02)]:
        certain_and_right = np.tile([0.0, 1.0], (n, 1))
        floor = gold_floor(certain_and_right, np.ones(n, dtype=np.int64))
        assert 0 < floor < most
    half_wrong = np.tile([0.0, 1.0], (200, 1))
    assert gold_floor(half_wrong, np.repeat([0, 1], 100)) > 0.9
    assert gold_floor(np.zeros((0, 2)), np.zeros(0, dtype=np.int64)) == 0.0


def test_a_gold_tasks_held_out_posterior_ignores_its_own_answers_evidence() -> None:
    # Worker 1 answers only task 0 (gold, class 1): once its own count is taken out, worker 1's
    # rows are its prior alone and its answer is the only evidence; a worker answering class 1
    # everywhere it was right would otherwise look perfect.
    counts = np.zeros((2, 2, 2))
    counts[1, 1, 1] = 1.0  # worker 1's single answer, on the gold task clamped to class 1
    prior = np.tile(np.full((2, 2), 2.5), (2, 1, 1))
    held_out = held_out_gold_posteriors(
        np.array([0]),
        np.array([1]),
        np.array([1]),
        np.array([0]),
        np.array([1]),
        counts,
        prior,
        np.array([0.5, 0.5]),
    )
    np.testing.assert_allclose(held_out, [[0.5, 0.5]])


def test_ece_and_the_confident_share_follow_their_definitions() -> None:
    posteriors = np.array([[0.97, 0.03], [0.96, 0.04], [0.6, 0.4], [0.55, 0.45], [0.5, 0.5]])
    truth = np.array([0, 1, 0, 1, -1])
    # Bin 9: mean confidence 0.965, 1 of 2 right; bin 6: 0.6, right; bin 5: 0.55, wrong. The
    # task without a truth is left out.
    expected = (2 * abs(0.5 - 0.965) + abs(1 - 0.6) + abs(0 - 0.55)) / 4
    assert expected_calibration_error(posteriors, truth) == pytest.approx(expected)
    assert confident_accuracy(posteriors, truth, 0.95) == (0.5, 2)
    share, n = confident_accuracy(posteriors, truth, 0.99)
    assert n == 0 and math.isnan(share)


def test_the_community_step_gives_the_same_prior_block_by_block(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from labeling.consensus import bayes

    counts = np.random.default_rng(1).gamma(1.0, 3.0, size=(37, 3, 3))
    counts[::4, :, 1] = 0.0  # answers some workers never gave: cells the sparse sum skips
    whole = bayes.CommunityPrior(37, 3).update(counts)
    monkeypatch.setattr(bayes, "_BLOCK_CELLS", 45)  # 5 rows of (3 communities x 3 classes)
    blocks = bayes.CommunityPrior(37, 3).update(counts)
    np.testing.assert_allclose(blocks, whole, rtol=1e-12)


def test_the_community_step_equals_the_dense_dirichlet_multinomial_likelihood() -> None:
    """The step sums only the (worker, answer) cells a worker gave; the dense formula over
    every cell gives the same responsibilities."""
    from labeling.consensus import bayes
    from labeling.consensus._common import log_gamma

    rng = np.random.default_rng(2)
    counts = rng.gamma(1.0, 3.0, size=(25, 4, 4))
    counts[rng.random((25, 4)) < 0.5] = 0.0  # drop whole (worker, true) rows too
    counts[:, :, 2][rng.random(25) < 0.6] = 0.0
    community = bayes.CommunityPrior(25, 4)
    pseudo = bayes.STRENGTH * community.rows
    dense = (
        log_gamma(pseudo.sum(axis=2)).sum(axis=1)[None]
        - log_gamma(pseudo.sum(axis=2)[None] + counts.sum(axis=2)[:, None]).sum(axis=2)
        + log_gamma(pseudo[None] + counts[:, None]).sum(axis=(2, 3))
        - log_gamma(pseudo).sum(axis=(1, 2))[None]
    ) + np.log(community.weights)[None]
    expected = np.exp(dense - dense.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    community.update(counts)
    np.testing.assert_allclose(community.responsibility, expected, rtol=1e-10)
