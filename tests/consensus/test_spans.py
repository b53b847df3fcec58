"""Text-span consensus by token-level voting."""

from __future__ import annotations

import numpy as np
import pytest

from labeling.consensus.spans import aggregate_spans

PER, ORG = 0, 1


def _spans(n_tokens: list[int], rows: list[tuple[int, int, int, int, int]], **kwargs: object):  # type: ignore[no-untyped-def]
    tasks, workers, starts, ends, labels = (
        (list(c) for c in zip(*rows, strict=True)) if rows else ([], [], [], [], [])
    )
    return aggregate_spans(n_tokens, tasks, workers, starts, ends, labels, **kwargs)  # type: ignore[arg-type]


def test_two_of_three_annotators_agreeing_make_the_span() -> None:
    # "Barack Obama visited Paris": tokens 0-1 PER; annotator 2 marks only token 1.
    result = _spans([4], [(0, 0, 0, 2, PER), (0, 1, 0, 2, PER), (0, 2, 1, 2, PER)])
    assert list(zip(result.starts, result.ends, result.labels, strict=True)) == [(0, 2, PER)]
    assert result.agreement[0] == pytest.approx((2 / 3 + 1) / 2)
    assert result.exact_agreement[0] == pytest.approx(2 / 3)
    assert result.token_labels.tolist() == [PER, PER, -1, -1]


def test_o_wins_only_as_a_strict_majority() -> None:
    # One of three marks token 3: two O votes out of three, so O.
    assert len(_spans([4], [(0, 0, 3, 4, ORG)], n_annotators=[3])) == 0
    # One of two marks it: O is not a strict majority, so the label stands.
    assert len(_spans([4], [(0, 0, 3, 4, ORG)], n_annotators=[2])) == 1


def test_class_disagreement_goes_to_the_plurality_then_the_lowest_code() -> None:
    rows = [(0, 0, 0, 1, ORG), (0, 1, 0, 1, ORG), (0, 2, 0, 1, PER)]
    assert _spans([1], rows).labels.tolist() == [ORG]
    tie = _spans([1], [(0, 0, 0, 1, ORG), (0, 1, 0, 1, PER)])
    assert tie.labels.tolist() == [PER]
    assert tie.agreement[0] == pytest.approx(0.5)


def test_abutting_tokens_of_one_class_merge_and_tasks_stay_apart() -> None:
    rows = [(0, 0, 0, 1, PER), (0, 0, 1, 2, PER), (1, 0, 0, 1, PER)]
    result = _spans([2, 1], rows)
    assert result.tasks.tolist() == [0, 1]
    assert list(zip(result.starts, result.ends, strict=True)) == [(0, 2), (0, 1)]
    assert result.token_offsets.tolist() == [0, 2, 3]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([(0, 0, 2, 5, PER)], "out of range"),
        ([(0, 0, 2, 2, PER)], "out of range"),
        ([(0, 0, -1, 1, PER)], "out of range"),
        ([(1, 0, 0, 1, PER)], "no n_tokens"),
        ([(0, 0, 0, 2, PER), (0, 0, 1, 3, ORG)], "overlap"),
        ([(0, 0, 0, 1, -1)], "non-negative"),
    ],
)
def test_it_rejects_bad_spans(rows: list[tuple[int, int, int, int, int]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _spans([4], rows)


def test_no_spans_gives_all_o() -> None:
    result = _spans([3], [])
    assert len(result) == 0
    np.testing.assert_array_equal(result.token_labels, [-1, -1, -1])
