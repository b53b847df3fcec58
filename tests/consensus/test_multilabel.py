"""Multi-label consensus: one binary aggregation per class."""

from __future__ import annotations

import numpy as np
import pytest

from labeling.consensus.multilabel import aggregate_multilabel


def test_each_class_is_decided_on_its_own() -> None:
    tasks = [0, 0, 0, 1, 1, 1]
    workers = [0, 1, 2, 0, 1, 2]
    selections = [[1, 0, 1], [1, 0, 0], [1, 1, 1], [0, 1, 0], [0, 1, 0], [1, 1, 0]]
    result = aggregate_multilabel(tasks, workers, selections, method="majority_vote")
    assert result.labels.tolist() == [[True, False, True], [False, True, False]]
    np.testing.assert_allclose(result.probabilities[0], [1.0, 1 / 3, 2 / 3])
    assert result.worker_skill.shape == (3, 3)


def test_it_rejects_a_malformed_selection_matrix() -> None:
    with pytest.raises(ValueError, match="one row per answer"):
        aggregate_multilabel([0, 0], [0, 1], [[1, 0]])
    with pytest.raises(ValueError, match="only 0 and 1"):
        aggregate_multilabel([0], [0], [[2, 0]])
