"""Agreement metrics against published worked examples, and the incremental item posterior."""

from __future__ import annotations

import numpy as np
import pytest

from labeling.consensus import aggregate
from labeling.consensus.incremental import item_posterior
from labeling.consensus.metrics import (
    agreement,
    fleiss_kappa,
    krippendorff_alpha,
    percent_agreement,
)

from .conftest import make_crowd

# Fleiss (1971) as worked on Wikipedia: 10 subjects, 14 raters, 5 categories -> kappa 0.210.
FLEISS_TABLE = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]

# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", nominal example with
# missing values (None): alpha = 0.743.
KRIPPENDORFF_DATA = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]


def _from_table(table: list[list[int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tasks, workers, labels = [], [], []
    for task, row in enumerate(table):
        worker = 0
        for label, count in enumerate(row):
            for _ in range(count):
                tasks.append(task)
                workers.append(worker)
                labels.append(label)
                worker += 1
    return np.array(tasks), np.array(workers), np.array(labels)


def _from_observers(data: list[list[int | None]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = [
        (unit, observer, value - 1)
        for observer, values in enumerate(data)
        for unit, value in enumerate(values)
        if value is not None
    ]
    return tuple(np.array(column) for column in zip(*rows, strict=True))  # type: ignore[return-value]


def test_fleiss_kappa_matches_the_worked_example() -> None:
    assert fleiss_kappa(*_from_table(FLEISS_TABLE)) == pytest.approx(0.210, abs=5e-4)


def test_krippendorff_alpha_matches_the_worked_example() -> None:
    assert krippendorff_alpha(*_from_observers(KRIPPENDORFF_DATA)) == pytest.approx(0.743, abs=5e-4)


def test_perfect_agreement_scores_one_and_degenerate_input_is_nan() -> None:
    tasks, workers, labels = [0, 0, 1, 1], [0, 1, 0, 1], [0, 0, 1, 1]
    assert percent_agreement(tasks, workers, labels) == 1.0
    assert fleiss_kappa(tasks, workers, labels) == 1.0
    assert krippendorff_alpha(tasks, workers, labels) == 1.0
    assert np.isnan(fleiss_kappa([0, 0], [0, 1], [1, 1]))
    assert np.isnan(percent_agreement([0, 1], [0, 0], [1, 1]))
    assert np.isnan(krippendorff_alpha([], [], []))


def test_percent_agreement_is_the_mean_pairwise_agreement() -> None:
    # Task 0: answers 0, 0, 1 -> 1 of 3 pairs agree; task 1: 1, 1 -> 1 of 1.
    assert percent_agreement([0, 0, 0, 1, 1], [0, 1, 2, 0, 1], [0, 0, 1, 1, 1]) == pytest.approx(
        (1 / 3 + 1) / 2
    )


def test_agreement_gives_the_three_statistics_from_one_pass() -> None:
    answers = _from_table(FLEISS_TABLE)
    assert agreement(*answers) == pytest.approx(
        {
            "percent_agreement": percent_agreement(*answers),
            "fleiss_kappa": fleiss_kappa(*answers),
            "krippendorff_alpha": krippendorff_alpha(*answers),
        }
    )


def test_item_posterior_matches_the_batch_posterior() -> None:
    crowd = make_crowd(n_tasks=200, seed=21)
    result = aggregate(crowd.tasks, crowd.workers, crowd.labels, method="dawid_skene")
    assert result.confusion is not None
    priors = result.posteriors.mean(axis=0)
    # The batch E-step's priors are the mean posteriors of the previous iteration; at convergence
    # they agree to the tolerance.
    for task in (0, 17, 199):
        mine = crowd.tasks == task
        online = item_posterior(result.confusion, priors, crowd.workers[mine], crowd.labels[mine])
        np.testing.assert_allclose(online, result.posteriors[task], atol=1e-3)


def test_item_posterior_without_answers_is_the_prior() -> None:
    confusions = np.tile(np.eye(2) * 0.8 + 0.1, (3, 1, 1))
    np.testing.assert_allclose(item_posterior(confusions, [3, 1], [], []), [0.75, 0.25])


def test_item_posterior_rejects_bad_shapes_and_codes() -> None:
    confusions = np.tile(np.eye(2) * 0.8 + 0.1, (3, 1, 1))
    with pytest.raises(ValueError, match="shape"):
        item_posterior(np.ones((3, 2, 3)), [0.5, 0.5], [0], [0])
    with pytest.raises(ValueError, match="priors"):
        item_posterior(confusions, [0.5, 0.3, 0.2], [0], [0])
    with pytest.raises(ValueError, match="worker codes"):
        item_posterior(confusions, [0.5, 0.5], [3], [0])
    with pytest.raises(ValueError, match="label codes"):
        item_posterior(confusions, [0.5, 0.5], [0], [2])
    with pytest.raises(ValueError, match="same length"):
        item_posterior(confusions, [0.5, 0.5], [0, 1], [0])
