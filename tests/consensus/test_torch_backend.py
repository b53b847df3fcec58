"""The torch backend agrees with the NumPy one.

torch is an optional extra: without it these tests skip, except under CI=true, where .ci/run
installs the CPU build and a missing torch fails. The CUDA comparison is marked ``gpu`` and runs
with ``make test-gpu`` on a machine with a GPU.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from labeling.consensus import DeviceUnavailableError, aggregate

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


@pytest.mark.gpu
def test_cuda_matches_numpy() -> None:
    crowd = make_crowd(n_tasks=2000, n_classes=4, seed=8)
    cpu = aggregate(crowd.tasks, crowd.workers, crowd.labels, method="dawid_skene")
    gpu = aggregate(crowd.tasks, crowd.workers, crowd.labels, method="dawid_skene", device="cuda")
    np.testing.assert_allclose(gpu.posteriors, cpu.posteriors, atol=1e-5)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_a_clear_error() -> None:
    with pytest.raises(DeviceUnavailableError, match="CUDA"):
        aggregate([0, 0], [0, 1], [1, 1], method="dawid_skene", device="cuda")


def test_auto_runs_on_whatever_is_there() -> None:
    result = aggregate([0, 0, 1], [0, 1, 0], [1, 1, 0], method="dawid_skene", device="auto")
    assert result.labels.tolist() == [1, 0]
    # bayes_ds has no torch backend: "auto" runs it on the CPU.
    assert aggregate([0, 0, 1], [0, 1, 0], [1, 1, 0], device="auto").labels.tolist() == [1, 0]
