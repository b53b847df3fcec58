"""Bounding-box consensus: matching across annotators, fusion, votes and validation."""

from __future__ import annotations

import numpy as np
import pytest

from labeling.consensus.boxes import aggregate_boxes, iou_matrix

# Task 0: three annotators draw the same dog; annotator 2 also draws a cat nobody else sees.
DOG = [[10, 10, 50, 50], [12, 10, 52, 50], [10, 12, 50, 54]]
CAT = [[100, 100, 140, 130]]


def test_iou_matrix_of_hand_computed_boxes() -> None:
    iou = iou_matrix([[0, 0, 2, 1]], [[0, 0, 1, 1], [1, 0, 3, 1], [5, 5, 6, 6]])
    np.testing.assert_allclose(iou, [[0.5, 1 / 3, 0.0]])


def test_three_annotators_who_agree_give_one_median_box() -> None:
    result = aggregate_boxes([0, 0, 0], [0, 1, 2], DOG, labels=[1, 1, 0])
    assert len(result) == 1
    np.testing.assert_allclose(result.boxes[0], [10, 10, 50, 50])
    assert result.votes[0] == 3 and result.agreement[0] == 1.0
    assert result.labels[0] == 1 and result.label_share[0] == pytest.approx(2 / 3)
    assert 0.9 < result.mean_iou[0] <= 1.0
    assert result.assignment.tolist() == [0, 0, 0]


def test_mean_fusion_weighted_by_worker_skill() -> None:
    result = aggregate_boxes(
        [0, 0], [0, 1], [[0, 0, 10, 10], [2, 0, 12, 10]], fuse="mean", worker_weights=[3.0, 1.0]
    )
    np.testing.assert_allclose(result.boxes[0], [0.5, 0, 10.5, 10])


def test_an_outlier_box_by_one_of_three_annotators_is_dropped_by_the_majority_rule() -> None:
    result = aggregate_boxes([0] * 4, [0, 1, 2, 2], DOG + CAT)
    assert len(result) == 1
    assert result.assignment.tolist() == [0, 0, 0, -1]
    kept_all = aggregate_boxes([0] * 4, [0, 1, 2, 2], DOG + CAT, min_votes=1)
    assert kept_all.votes.tolist() == [3, 1]
    assert kept_all.agreement[1] == pytest.approx(1 / 3)


def test_a_box_one_annotator_missed_keeps_two_of_three_votes() -> None:
    result = aggregate_boxes([0, 0], [0, 1], DOG[:2], n_annotators=[3])
    assert result.votes.tolist() == [2]
    assert result.agreement[0] == pytest.approx(2 / 3)
    # With four annotators two votes are not a strict majority.
    assert len(aggregate_boxes([0, 0], [0, 1], DOG[:2], n_annotators=[4])) == 0


def test_one_annotator_never_contributes_two_boxes_to_a_cluster() -> None:
    result = aggregate_boxes([0, 0, 0], [0, 0, 1], [DOG[0], DOG[1], DOG[2]], min_votes=1)
    assert result.votes.tolist() == [2, 1]


def test_the_iou_threshold_is_inclusive() -> None:
    boxes = [[0, 0, 2, 1], [0, 0, 1, 1]]  # IoU exactly 0.5
    assert aggregate_boxes([0, 0], [0, 1], boxes, iou_threshold=0.5).votes.tolist() == [2]
    split = aggregate_boxes([0, 0], [0, 1], boxes, iou_threshold=0.51, min_votes=1)
    assert split.votes.tolist() == [1, 1]


def test_complete_linkage_does_not_chain_boxes_that_do_not_overlap() -> None:
    # a~b and b~c overlap enough, a and c do not: no cluster holds both a and c.
    boxes = [[0, 0, 10, 10], [3, 0, 13, 10], [6, 0, 16, 10]]
    result = aggregate_boxes([0, 0, 0], [0, 1, 2], boxes, iou_threshold=0.4, min_votes=1)
    assert sorted(result.votes.tolist()) == [1, 2]


def test_tasks_are_independent_and_ordered() -> None:
    result = aggregate_boxes([1, 0, 1, 0], [0, 0, 1, 1], [DOG[0], CAT[0], DOG[1], CAT[0]])
    assert result.tasks.tolist() == [0, 1]
    np.testing.assert_allclose(result.boxes[0], CAT[0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"boxes": [[0, 0, 1]]}, "shape"),
        ({"boxes": [[5, 0, 5, 1]]}, "degenerate"),
        ({"boxes": [[0, 0, 1, np.nan]]}, "finite"),
        ({"tasks": [-1]}, "non-negative"),
        ({"iou_threshold": 0.0}, "iou_threshold"),
        ({"min_votes": 0}, "min_votes"),
        ({"worker_weights": [0.0]}, "worker_weights"),
        ({"n_annotators": [0]}, "n_annotators"),
    ],
)
def test_it_rejects_bad_input(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"tasks": [0], "workers": [0], "boxes": [[0, 0, 1, 1]]}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        aggregate_boxes(**args)  # type: ignore[arg-type]


def test_no_boxes_gives_an_empty_result() -> None:
    result = aggregate_boxes([], [], np.zeros((0, 4)))
    assert len(result) == 0 and result.boxes.shape == (0, 4)
