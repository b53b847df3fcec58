"""The fast Dawid-Skene paths (blocks, pieces, groups, threads, int32 indices, underflow rescue)
give the plain algorithm's answer."""

from __future__ import annotations

import numpy as np
import pytest

from labeling.consensus import _layout, aggregate
from labeling.consensus._data import prepare
from labeling.consensus.dawid_skene import dawid_skene

from .conftest import make_crowd
from .test_methods import _reference_dawid_skene

NO_GOLD = np.zeros(0, dtype=np.int64)


def _uneven_crowd(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """1-6 answers per task, one task with 700 answers (a bincount tail), shuffled input."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 7, 3000)
    tasks = np.concatenate([np.zeros(700, int), np.repeat(np.arange(1, 3001), counts)])
    workers = np.concatenate([rng.permutation(900)[:700], rng.integers(0, 900, counts.sum())])
    truth = rng.integers(0, 3, 3001)
    labels = np.where(rng.random(tasks.size) < 0.75, truth[tasks], rng.integers(0, 3, tasks.size))
    pairs = np.unique(tasks * 900 + workers, return_index=True)[1]
    order = rng.permutation(pairs)
    return tasks[order], workers[order], labels[order]


@pytest.fixture
def tiny_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many E-step blocks, M-step pieces and rank groups on a small crowd."""
    monkeypatch.setattr(_layout, "_E_BLOCK", 512)
    monkeypatch.setattr(_layout, "_M_PIECE", 256)
    monkeypatch.setattr(_layout, "_M_GROUP_BYTES", 24 * 500)


def test_many_blocks_pieces_and_groups_match_the_plain_implementation(tiny_pieces: None) -> None:
    tasks, workers, labels = _uneven_crowd()
    data = prepare(tasks, workers, labels, n_classes=3)
    layout = _layout.EMLayout.build(data)
    assert layout.e_index.dtype == np.uint16
    assert len(layout.blocks) > 10 and len(layout.pieces) > 10 and len(layout.groups) > 3
    assert layout.m_rank.dtype == np.int32 and layout.tail_rank.size > 0
    result = dawid_skene(data, NO_GOLD, NO_GOLD, 6, float("-inf"), n_threads=3)
    expected = _reference_dawid_skene(data.tasks, data.workers, data.labels, 3, 6)
    np.testing.assert_allclose(result.posteriors, expected, atol=1e-9)


@pytest.mark.parametrize("n_classes", [2, 4, 6])
def test_even_class_counts_take_the_paired_path_and_match_the_plain_implementation(
    tiny_pieces: None, n_classes: int
) -> None:
    # Rows of an even width are summed and scaled as complex pairs; ragged tasks give blocks whose
    # later slots are shorter than the first, and task 0 a bincount tail.
    tasks, workers, labels = _uneven_crowd(seed=n_classes)
    labels = labels % n_classes
    labels[:n_classes] = np.arange(n_classes)
    data = prepare(tasks, workers, labels, n_classes=n_classes)
    layout = _layout.EMLayout.build(data)
    assert any(len(set(slots)) > 1 for slots in layout.block_slots)
    result = dawid_skene(data, NO_GOLD, NO_GOLD, 6, float("-inf"), n_threads=2)
    expected = _reference_dawid_skene(data.tasks, data.workers, data.labels, n_classes, 6)
    np.testing.assert_allclose(result.posteriors, expected, atol=1e-9)


def test_table_rows_past_uint16_are_stored_as_int32(tiny_pieces: None) -> None:
    tasks, workers, labels = _uneven_crowd(seed=5)
    workers = workers * 13  # 2 * W * K > 65,536 table rows
    data = prepare(tasks, workers, labels, n_classes=3)
    layout = _layout.EMLayout.build(data)
    assert layout.e_index.dtype == np.int32
    result = dawid_skene(data, NO_GOLD, NO_GOLD, 6, float("-inf"), n_threads=2)
    expected = _reference_dawid_skene(data.tasks, data.workers, data.labels, 3, 6)
    np.testing.assert_allclose(result.posteriors, expected, atol=1e-9)


def test_a_fixed_overlap_crowd_has_full_slots_in_every_block(tiny_pieces: None) -> None:
    crowd = make_crowd(n_tasks=3000, n_classes=4, overlap=5, seed=4)
    data = prepare(crowd.tasks, crowd.workers, crowd.labels)
    layout = _layout.EMLayout.build(data)
    assert len(layout.blocks) > 10
    for (lo, hi), slots in zip(layout.blocks, layout.block_slots, strict=True):
        assert slots == [hi - lo] * 5
    result = dawid_skene(data, NO_GOLD, NO_GOLD, 8, float("-inf"), n_threads=2)
    alone = dawid_skene(data, NO_GOLD, NO_GOLD, 8, float("-inf"), n_threads=1)
    assert np.array_equal(result.posteriors, alone.posteriors)
    expected = _reference_dawid_skene(data.tasks, data.workers, data.labels, 4, 8)
    np.testing.assert_allclose(result.posteriors, expected, atol=1e-9)


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_the_thread_count_does_not_change_a_bit(tiny_pieces: None, precision: str) -> None:
    tasks, workers, labels = _uneven_crowd(seed=1)
    data = prepare(tasks, workers, labels, n_classes=3)
    gold_tasks, gold_labels = np.array([0, 5, 17]), np.array([1, 0, 2])
    runs = [
        dawid_skene(data, gold_tasks, gold_labels, 20, 1e-7, precision=precision, n_threads=t)
        for t in (1, 2, 4)
    ]
    for other in runs[1:]:
        assert np.array_equal(other.posteriors, runs[0].posteriors)
        assert np.array_equal(other.confusion, runs[0].confusion)
        assert other.iterations == runs[0].iterations


def test_float32_stays_within_1e_5_of_float64() -> None:
    crowd = make_crowd(n_tasks=2000, n_classes=4, seed=21)
    kwargs = {
        "method": "dawid_skene",
        "max_iter": 40,
        "tol": float("-inf"),
        "gold": {0: int(crowd.truth[0])},
    }
    wide = aggregate(crowd.tasks, crowd.workers, crowd.labels, **kwargs)
    narrow = aggregate(crowd.tasks, crowd.workers, crowd.labels, precision="float32", **kwargs)
    np.testing.assert_allclose(narrow.posteriors, wide.posteriors, atol=1e-5)
    assert np.array_equal(narrow.labels, wide.labels)


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_a_task_whose_every_class_underflows_is_rescued(precision: str) -> None:
    # 300 confident workers: 150 say 0 and 150 say 1 on task 0, so every class's likelihood is
    # below the float range; their other tasks make them near-perfect.
    n_workers = 300
    tasks = [np.zeros(n_workers, int)]
    workers = [np.arange(n_workers)]
    labels = [np.arange(n_workers) % 2]
    rng = np.random.default_rng(3)
    for t in range(1, 401):
        chosen = rng.choice(n_workers, 6, replace=False)
        tasks.append(np.full(6, t))
        workers.append(chosen)
        labels.append(np.full(6, t % 2))
    t_, w_, l_ = (np.concatenate(part) for part in (tasks, workers, labels))
    result = aggregate(
        t_, w_, l_, method="dawid_skene", max_iter=10, tol=float("-inf"), precision=precision
    )
    assert np.isfinite(result.posteriors).all()
    np.testing.assert_allclose(result.posteriors.sum(axis=1), 1.0, atol=1e-6)
    expected = _reference_dawid_skene(t_, w_, l_, 2, 10)
    np.testing.assert_allclose(result.posteriors, expected, atol=1e-5)


def test_it_rejects_a_bad_thread_count() -> None:
    data = prepare([0, 0], [0, 1], [1, 1])
    with pytest.raises(ValueError, match="n_threads"):
        dawid_skene(data, NO_GOLD, NO_GOLD, 5, 1e-5, n_threads=0)


def test_aggregate_passes_the_thread_count_through_without_changing_the_result() -> None:
    rng = np.random.default_rng(3)
    tasks = np.repeat(np.arange(40_000), 4)
    workers = rng.integers(0, 300, tasks.size)
    labels = rng.integers(0, 3, tasks.size)
    one = aggregate(tasks, workers, labels, n_threads=1)
    two = aggregate(tasks, workers, labels, n_threads=2)
    assert np.array_equal(one.posteriors, two.posteriors)
    with pytest.raises(ValueError, match="n_threads"):
        aggregate(tasks, workers, labels, n_threads=0)
