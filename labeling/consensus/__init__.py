"""Crowdmint's consensus engine: truth inference over crowd labels, NumPy only (torch optional).

Framework-free by design (no Django, DRF, Celery or web3; ``tests/consensus/test_purity.py``
enforces it): integer code arrays in, frozen dataclasses out. A service turns rows into codes and
persists the result.

Public API:

* :func:`aggregate` -> :class:`AggregationResult` (``majority_vote``, ``wawa``, ``zbs``,
  ``dawid_skene``, ``one_coin``, ``glad``, ``mace``; CPU, or torch on ``cuda``/``torch-cpu``).
* :func:`item_posterior`: one item's posterior from fitted confusion matrices, O(its answers).
* :mod:`.metrics`: :func:`percent_agreement`, :func:`fleiss_kappa`, :func:`krippendorff_alpha`.
* :mod:`.multilabel`, :mod:`.boxes`, :mod:`.spans`: multi-label, bounding-box and text-span
  consensus.
"""

from .aggregate import METHODS, TORCH_METHODS, aggregate
from .errors import ConsensusError, DeviceUnavailableError
from .incremental import item_posterior
from .metrics import fleiss_kappa, krippendorff_alpha, percent_agreement
from .result import AggregationResult

__all__ = [
    "METHODS",
    "TORCH_METHODS",
    "AggregationResult",
    "ConsensusError",
    "DeviceUnavailableError",
    "aggregate",
    "fleiss_kappa",
    "item_posterior",
    "krippendorff_alpha",
    "percent_agreement",
]
