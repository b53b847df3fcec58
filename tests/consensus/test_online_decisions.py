"""What online decisions keep from a fit: confusions and priors shrunk in proportion to their
evidence, bounded priors, and the vote margin that decides an item whatever the fit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labeling.consensus import (
    bounded_priors,
    capped_confusion,
    class_priors,
    decisive_margin,
    item_posterior,
    labeler_confusions,
    one_coin,
)


def test_a_labelers_rows_are_their_evidence_plus_a_weak_one_coin_prior() -> None:
    # Worker 0 answered 6 tasks believed positive (class 0), always 0; never a negative one.
    posteriors = np.tile([1.0, 0.0], (6, 1))
    rows = labeler_confusions(
        np.arange(6), np.zeros(6, int), np.zeros(6, int), posteriors, 1, 0.8, strength=2.0
    )[0]
    np.testing.assert_allclose(rows[0], [(6 + 2 * 0.8) / 8, 2 * 0.2 / 8])
    # No evidence about negatives: the one-coin row, so a "negative" answer is evidence.
    np.testing.assert_allclose(rows[1], [0.2, 0.8])


def test_soft_counts_split_an_answer_between_the_classes_a_task_may_be() -> None:
    rows = labeler_confusions([0], [0], [1], [[0.5, 0.5]], 1, 0.75, strength=1.0)[0]
    # Truth 0: one-coin row [0.75, 0.25] plus half an answer "1"; truth 1: [0.25, 0.75] plus half.
    np.testing.assert_allclose(rows, [[0.5, 0.5], [0.25 / 1.5, 1.25 / 1.5]])


def test_labeler_confusions_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="out of range"):
        labeler_confusions([0], [1], [0], [[1.0, 0.0]], 1, 0.8, 1.0)
    with pytest.raises(ValueError, match="strength"):
        labeler_confusions([0], [0], [0], [[1.0, 0.0]], 1, 0.8, 0.0)
    with pytest.raises(ValueError, match="accuracy"):
        one_coin(1.0, 2)


@settings(max_examples=200, deadline=None)
@given(
    k=st.integers(2, 9),
    accuracy=st.sampled_from([0.3, 0.6, 0.75, 0.9]),
    data=st.data(),
)
def test_capped_rows_let_no_answer_weigh_more_than_a_one_coin_labelers(
    k: int, accuracy: float, data: st.DataObject
) -> None:
    rows = (
        np.array(
            [data.draw(st.lists(st.floats(0.0, 1.0), min_size=k, max_size=k)) for _ in range(k)]
        )
        + np.eye(k) * 1e-12
    )
    capped = capped_confusion(rows, accuracy)
    np.testing.assert_allclose(capped.sum(axis=1), 1.0)
    ratio = max(1.0, accuracy * (k - 1) / (1.0 - accuracy))
    # Every answer favours a class over another by at most the one-coin labeler's ratio...
    assert (capped.max(axis=0) <= ratio * capped.min(axis=0) * (1 + 1e-9) + 1e-300).all()
    # ...and the same classes as before.
    normal = rows / rows.sum(axis=1, keepdims=True)
    for answer in range(k):
        order = np.argsort(normal[:, answer], kind="stable")
        assert (np.diff(capped[order, answer]) >= -1e-12).all()


def test_capped_rows_within_the_ratio_are_kept_and_one_coin_rows_cap_to_one_coin() -> None:
    mild = np.array([[0.7, 0.3], [0.3, 0.7]])
    np.testing.assert_allclose(capped_confusion(mild, 0.75), mild)
    np.testing.assert_allclose(capped_confusion(one_coin(0.9, 4), 0.75), one_coin(0.75, 4))
    # A 0.7-accurate labeler whose "1" is near final weighs as a 0.75 one at most.
    shaped = capped_confusion([[0.99, 0.01], [0.6, 0.4]], 0.75)
    assert shaped[1, 1] / shaped[0, 1] == pytest.approx(3.0)
    with pytest.raises(ValueError, match="accuracy"):
        capped_confusion(mild, 1.0)
    with pytest.raises(ValueError, match="finite"):
        capped_confusion([[np.nan, 1.0], [0.0, 1.0]], 0.75)


def test_class_priors_shrink_a_small_skewed_fit_toward_uniform() -> None:
    few = class_priors(np.tile([1.0, 0.0], (8, 1)))
    np.testing.assert_allclose(few, [0.9, 0.1])
    many = class_priors(np.tile([1.0, 0.0], (998, 1)))
    np.testing.assert_allclose(many, [0.999, 0.001])
    # Online, no class falls under a tenth of its uniform share.
    np.testing.assert_allclose(bounded_priors(many), np.array([0.999, 0.05]) / 1.049)
    np.testing.assert_allclose(bounded_priors([3.0, 1.0]), [0.75, 0.25])


def test_the_decisive_margin_is_tight() -> None:
    k, threshold, accuracy = 2, 0.95, 0.8
    margin = decisive_margin(k, threshold, accuracy)
    assert margin == 5
    worst = bounded_priors([1.0, 0.0])  # every prior against the vote
    labelers = np.tile(one_coin(accuracy, k), (margin + 1, 1, 1))
    for d, expect in [(margin, True), (margin - 1, False)]:
        votes = np.ones(d, dtype=np.int64)
        post = item_posterior(labelers, worst, np.arange(d), votes)
        assert bool(post[1] >= threshold) == expect


def test_the_calibration_floor_caps_an_item_posterior() -> None:
    labelers = np.tile(one_coin(0.9, 2), (10, 1, 1))
    post = item_posterior(labelers, [0.5, 0.5], np.arange(10), np.zeros(10, int), floor=0.2)
    assert post[0] == pytest.approx(0.8 * 1.0 + 0.1, abs=1e-6)
    with pytest.raises(ValueError, match="floor"):
        item_posterior(labelers, [0.5, 0.5], [0], [0], floor=1.5)


@st.composite
def any_fit(draw: st.DrawFn) -> tuple[int, np.ndarray, np.ndarray]:
    """Any number of classes, any class priors (however skewed, even zero) and any confusion
    matrices for the labelers the fit has seen."""
    k = draw(st.integers(2, 9))
    weights = draw(st.lists(st.floats(0.0, 1.0), min_size=k, max_size=k))
    priors = np.array(weights) + np.eye(k)[draw(st.integers(0, k - 1))] * 1e-9
    n_seen = draw(st.integers(0, 4))
    seen = np.array(
        [
            [draw(st.lists(st.floats(1e-6, 1.0), min_size=k, max_size=k)) for _ in range(k)]
            for _ in range(n_seen)
        ]
    ).reshape(n_seen, k, k)
    seen = seen / seen.sum(axis=2, keepdims=True) if n_seen else seen
    return k, priors, seen


@settings(max_examples=200, deadline=None)
@given(
    fit=any_fit(),
    threshold=st.sampled_from([0.8, 0.9, 0.95, 0.99]),
    accuracy=st.sampled_from([0.6, 0.7, 0.8, 0.9]),
    extra=st.integers(0, 3),
    others=st.integers(0, 3),
    data=st.data(),
)
def test_for_any_fit_a_vote_of_unseen_labelers_with_the_margin_decides(
    fit: tuple[int, np.ndarray, np.ndarray],
    threshold: float,
    accuracy: float,
    extra: int,
    others: int,
    data: st.DataObject,
) -> None:
    k, priors, seen = fit
    if accuracy <= 1.0 / k:
        return
    margin = decisive_margin(k, threshold, accuracy)
    winner = data.draw(st.integers(0, k - 1))
    # `others` answers spread over the other classes (a k-to-1 vote when others == 1), and the
    # winner `margin + extra` answers ahead of every one of them.
    losers = [c for c in range(k) if c != winner]
    minority = [losers[i % len(losers)] for i in range(others)]
    top_other = max((minority.count(c) for c in losers), default=0)
    votes = [winner] * (top_other + margin + extra) + minority
    unseen = one_coin(accuracy, k)
    labelers = np.concatenate([seen, np.tile(unseen, (len(votes), 1, 1))])
    workers = np.arange(len(seen), len(seen) + len(votes))
    posterior = item_posterior(labelers, bounded_priors(priors), workers, np.array(votes))
    assert int(np.argmax(posterior)) == winner
    assert posterior[winner] >= threshold
