"""Synthetic crowds with known truth, shared by the consensus tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest


@dataclass(frozen=True)
class Crowd:
    tasks: np.ndarray
    workers: np.ndarray
    labels: np.ndarray
    truth: np.ndarray
    n_classes: int


def make_crowd(
    n_tasks: int = 300,
    n_classes: int = 3,
    overlap: int = 5,
    n_good: int = 6,
    n_spammers: int = 6,
    good_accuracy: float = 0.85,
    seed: int = 0,
) -> Crowd:
    """Good workers answer right with ``good_accuracy``; spammers answer uniformly at random.

    Every task gets ``overlap`` answers from distinct workers drawn from the whole pool.
    """
    rng = np.random.default_rng(seed)
    n_workers = n_good + n_spammers
    truth = rng.integers(0, n_classes, n_tasks)
    tasks = np.repeat(np.arange(n_tasks), overlap)
    workers = np.concatenate(
        [rng.choice(n_workers, size=overlap, replace=False) for _ in range(n_tasks)]
    )
    accuracy = np.where(np.arange(n_workers) < n_good, good_accuracy, 1.0 / n_classes)
    right = rng.random(tasks.size) < accuracy[workers]
    wrong = (truth[tasks] + rng.integers(1, n_classes, tasks.size)) % n_classes
    labels = np.where(right, truth[tasks], wrong)
    spam = workers >= n_good
    labels[spam] = rng.integers(0, n_classes, int(spam.sum()))
    return Crowd(tasks, workers, labels, truth, n_classes)


@pytest.fixture
def crowd_factory() -> Callable[..., Crowd]:
    return make_crowd
