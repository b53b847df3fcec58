"""Inputs another caller of the engine may pass (other crowds, other code): refused with a
ValueError naming what is wrong, never read as something else."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from labeling.consensus import aggregate
from labeling.consensus.incremental import (
    bounded_priors,
    decisive_margin,
    item_posterior,
    labeler_confusions,
)
from labeling.consensus.multilabel import aggregate_multilabel


def test_unsigned_codes_above_int64_are_refused_not_wrapped() -> None:
    labels = np.array([1, 2**64 - 1], dtype=np.uint64)
    with pytest.raises(ValueError, match="labels must be codes below 2\\*\\*63"):
        aggregate([0, 1], [0, 0], labels, method="majority_vote")
    tasks = np.array([0, 2**63], dtype=np.uint64)
    with pytest.raises(ValueError, match="tasks must be codes below 2\\*\\*63"):
        aggregate(tasks, [0, 0], [0, 1], method="majority_vote")


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("device", None, "device must be a string"),
        ("tol", "a", "tol must be a number"),
        ("seed", 1.5, "seed must be an int"),
        ("seed", True, "seed must be an int"),
        ("max_iter", 2.0, "max_iter must be a non-negative int"),
    ],
)
def test_options_of_the_wrong_type_are_a_value_error(option: str, value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        aggregate([0, 1], [0, 1], [0, 1], method="mace", **{option: value})


def test_numpy_scalars_are_fine_as_options() -> None:
    result = aggregate(
        [0, 1], [0, 1], [0, 1], method="mace", max_iter=np.int64(5), seed=np.int64(-1)
    )
    assert result.labels.tolist() == [0, 1]


@pytest.mark.parametrize("gold", [{0.9: 1}, {0: 1.7}, {"0": "1"}, {0: None}, {True: 1}])
def test_gold_must_map_ints_to_ints(gold: dict[Any, Any]) -> None:
    with pytest.raises(ValueError, match="gold maps task codes to class codes"):
        aggregate([0, 1], [0, 1], [0, 1], gold=gold)


def test_zbs_skills_are_shares() -> None:
    result = aggregate([0, 1], [0, 1], [0, 0], method="zbs", max_iter=0)
    assert np.nanmax(result.worker_skill) <= 1.0


def test_multilabel_counts_the_last_answer_of_a_repeated_pair() -> None:
    # Labeler 0 chose the class, then changed their mind; labeler 1 never chose it.
    result = aggregate_multilabel([0, 0, 0], [0, 0, 1], [[1], [0], [0]], method="majority_vote")
    assert result.probabilities.tolist() == [[0.0]]
    every = aggregate_multilabel(
        [0, 0, 0], [0, 0, 1], [[1], [0], [0]], method="majority_vote", repeats="all"
    )
    assert every.probabilities[0, 0] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="n_classes is the number of columns"):
        aggregate_multilabel([0], [0], [[1]], n_classes=2)


@pytest.mark.parametrize("priors", [[np.nan, 1.0], [np.inf, 1.0], [[0.5, 0.5]], []])
def test_online_helpers_refuse_priors_that_are_not_probabilities(priors: Any) -> None:
    with pytest.raises(ValueError, match="priors must be"):
        bounded_priors(priors)
    confusion = np.full((1, 2, 2), 0.5)
    with pytest.raises(ValueError, match="priors must"):
        item_posterior(confusion, priors, [0], [1])


def test_online_helpers_refuse_confusions_that_are_not_probabilities() -> None:
    confusion = np.full((2, 2, 2), 0.5)
    confusion[1, 0, 1] = np.nan
    assert item_posterior(confusion, [0.5, 0.5], [0], [1]).sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="confusions must be finite"):
        item_posterior(confusion, [0.5, 0.5], [1], [1])
    with pytest.raises(ValueError, match="strength must be positive and finite"):
        labeler_confusions([0], [0], [0], [[0.5, 0.5]], 1, 0.8, np.inf)
    with pytest.raises(ValueError, match="posteriors must be finite"):
        labeler_confusions([0], [0], [0], [[np.nan, 0.5]], 1, 0.8, 2.0)
    with pytest.raises(ValueError, match="integer codes"):
        labeler_confusions(np.array([True]), [0], [0], [[0.5, 0.5]], 1, 0.8, 2.0)


@pytest.mark.parametrize(
    ("n_classes", "floor_share"), [(0, 0.5), (1, 0.5), (2, 0.0), (2, -1.0), (2, 1.5)]
)
def test_decisive_margin_refuses_what_it_cannot_answer(n_classes: int, floor_share: float) -> None:
    with pytest.raises(ValueError):
        decisive_margin(n_classes, 0.95, 0.8, floor_share=floor_share)
    assert decisive_margin(2, 0.95, 0.8) == 5
