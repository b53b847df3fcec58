"""The torch backend agrees with the NumPy one (``dawid_skene``, ``one_coin`` and ``bayes_ds``).

torch is an optional extra: without it these tests skip, except under CI=true, where .ci/run
installs the CPU build and a missing torch fails. The CUDA comparison is marked ``gpu`` and runs
with ``make test-gpu`` on a machine with a GPU.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from labeling.consensus import AggregationResult, DeviceUnavailableError, aggregate

from .conftest import make_crowd

if os.environ.get("CI") == "true":
    import torch
else:
    torch = pytest.importorskip("torch")


@pytest.mark.parametrize("method", ["dawid_skene", "one_coin"])
def test_torch_cpu_matches_numpy(method: str) -> None:
    crowd = make_crowd(n_tasks=400, n_classes=4, seed=7)
    gold = {0: int(crowd.truth[0]), 3: int(crowd.truth[3])}
    kwargs = {"method": method, "gold": gold, "n_tasks": 405}
    cpu = aggregate(crowd.tasks, crowd.workers, crowd.labels, **kwargs)
    tch = aggregate(crowd.tasks, crowd.workers, crowd.labels, device="torch-cpu", **kwargs)
    np.testing.assert_allclose(tch.posteriors, cpu.posteriors, atol=1e-9)
    np.testing.assert_allclose(tch.confusion, cpu.confusion, atol=1e-9)
    np.testing.assert_allclose(tch.worker_skill, cpu.worker_skill, atol=1e-9)
    assert np.array_equal(tch.labels, cpu.labels)
    assert tch.iterations == cpu.iterations


@pytest.mark.parametrize("method", ["dawid_skene", "one_coin"])
def test_a_gold_task_nobody_answered_keeps_its_gold_label_on_torch(method: str) -> None:
    kwargs = {"method": method, "gold": {2: 1}, "n_tasks": 3}
    cpu = aggregate([0, 0, 1, 1], [0, 1, 0, 1], [0, 1, 1, 1], **kwargs)
    tch = aggregate([0, 0, 1, 1], [0, 1, 0, 1], [0, 1, 1, 1], device="torch-cpu", **kwargs)
    assert tch.labels[2] == cpu.labels[2] == 1
    np.testing.assert_allclose(tch.posteriors, cpu.posteriors, atol=1e-9)


def _assert_same_fit(tch: AggregationResult, cpu: AggregationResult, atol: float = 1e-8) -> None:
    np.testing.assert_allclose(tch.posteriors, cpu.posteriors, rtol=0, atol=atol)
    np.testing.assert_allclose(tch.confusion, cpu.confusion, rtol=0, atol=atol)
    np.testing.assert_allclose(tch.worker_skill, cpu.worker_skill, rtol=0, atol=atol)
    assert tch.calibration_floor == pytest.approx(cpu.calibration_floor, abs=atol)
    assert np.array_equal(tch.labels, cpu.labels)
    assert (tch.iterations, tch.converged, tch.method) == (
        cpu.iterations,
        cpu.converged,
        "bayes_ds",
    )


def _sparse_crowd_with_repeats(k: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A few prolific workers, many who answer once or twice, and some (task, worker) pairs that
    answer again (sometimes differently)."""
    crowd = make_crowd(n_tasks=300, n_classes=k, n_good=4, n_spammers=2, seed=seed)
    rng = np.random.default_rng(seed)
    # Half the answers move to one of 400 occasional workers (ids after the regulars).
    moved = rng.random(crowd.tasks.size) < 0.5
    workers = np.where(moved, 6 + rng.integers(0, 400, crowd.tasks.size), crowd.workers)
    again = rng.choice(crowd.tasks.size, size=60, replace=False)
    relabel = np.where(rng.random(60) < 0.5, crowd.labels[again], rng.integers(0, k, 60))
    return (
        np.concatenate([crowd.tasks, crowd.tasks[again]]),
        np.concatenate([workers, workers[again]]),
        np.concatenate([crowd.labels, relabel]),
    )


@pytest.mark.parametrize("k", [2, 3, 4, 5, 6])
def test_bayes_ds_on_torch_matches_numpy_with_gold(k: int) -> None:
    crowd = make_crowd(n_tasks=400, n_classes=k, seed=10 + k)
    # Two answered gold tasks (one of them wrong by the crowd's vote, so the floor is not 0) and
    # one nobody answered; tasks 400-402 have no answers at all.
    gold = {0: int(crowd.truth[0]), 7: (int(crowd.truth[7]) + 1) % k, 401: k - 1}
    kwargs = {"gold": gold, "n_tasks": 403, "n_workers": 14}
    cpu = aggregate(crowd.tasks, crowd.workers, crowd.labels, **kwargs)
    tch = aggregate(crowd.tasks, crowd.workers, crowd.labels, device="torch-cpu", **kwargs)
    _assert_same_fit(tch, cpu)
    assert cpu.calibration_floor > 0
    assert tch.labels[7] == gold[7] and tch.labels[401] == k - 1 and tch.labels[400] == -1
    np.testing.assert_allclose(tch.posteriors[400], 1.0 / k)
    assert np.isnan(tch.worker_skill[12:]).all()


@pytest.mark.parametrize("k", [2, 3, 4, 5, 6])
@pytest.mark.parametrize("repeats", ["all", "last"])
def test_bayes_ds_on_torch_matches_numpy_with_sparse_workers_and_repeated_answers(
    k: int, repeats: str
) -> None:
    tasks, workers, labels = _sparse_crowd_with_repeats(k, seed=k)
    gold = {3: int(labels[tasks == 3][0]), 11: int(labels[tasks == 11][0])}
    kwargs = {"gold": gold, "n_classes": k, "repeats": repeats}
    cpu = aggregate(tasks, workers, labels, **kwargs)
    tch = aggregate(tasks, workers, labels, device="torch-cpu", **kwargs)
    _assert_same_fit(tch, cpu)


@pytest.mark.parametrize("max_iter", [0, 1, 7])
def test_bayes_ds_on_torch_stops_where_numpy_stops(max_iter: int) -> None:
    crowd = make_crowd(n_tasks=200, n_classes=3, seed=3)
    kwargs = {"gold": {1: int(crowd.truth[1])}, "max_iter": max_iter, "tol": float("-inf")}
    cpu = aggregate(crowd.tasks, crowd.workers, crowd.labels, **kwargs)
    tch = aggregate(crowd.tasks, crowd.workers, crowd.labels, device="torch-cpu", **kwargs)
    _assert_same_fit(tch, cpu)
    assert tch.iterations == max_iter and not tch.converged


def test_bayes_ds_on_torch_without_gold_has_no_floor() -> None:
    crowd = make_crowd(n_tasks=200, n_classes=4, seed=4)
    cpu = aggregate(crowd.tasks, crowd.workers, crowd.labels)
    tch = aggregate(crowd.tasks, crowd.workers, crowd.labels, device="torch-cpu")
    _assert_same_fit(tch, cpu)
    assert tch.calibration_floor == 0.0 and tch.converged


@pytest.mark.gpu
def test_cuda_matches_numpy() -> None:
    crowd = make_crowd(n_tasks=2000, n_classes=4, seed=8)
    cpu = aggregate(crowd.tasks, crowd.workers, crowd.labels, method="dawid_skene")
    gpu = aggregate(crowd.tasks, crowd.workers, crowd.labels, method="dawid_skene", device="cuda")
    np.testing.assert_allclose(gpu.posteriors, cpu.posteriors, atol=1e-5)
    gold = {0: int(crowd.truth[0]), 5: int(crowd.truth[5])}
    cpu = aggregate(crowd.tasks, crowd.workers, crowd.labels, method="bayes_ds", gold=gold)
    gpu = aggregate(crowd.tasks, crowd.workers, crowd.labels, device="cuda", gold=gold)
    np.testing.assert_allclose(gpu.posteriors, cpu.posteriors, atol=1e-5)
    assert gpu.calibration_floor == pytest.approx(cpu.calibration_floor, abs=1e-5)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_a_clear_error() -> None:
    with pytest.raises(DeviceUnavailableError, match="CUDA"):
        aggregate([0, 0], [0, 1], [1, 1], method="dawid_skene", device="cuda")


def test_auto_runs_on_whatever_is_there() -> None:
    result = aggregate([0, 0, 1], [0, 1, 0], [1, 1, 0], method="dawid_skene", device="auto")
    assert result.labels.tolist() == [1, 0]
    # bayes_ds (the default) too: on CUDA where torch sees a GPU, else with NumPy.
    assert aggregate([0, 0, 1], [0, 1, 0], [1, 1, 0], device="auto").labels.tolist() == [1, 0]
