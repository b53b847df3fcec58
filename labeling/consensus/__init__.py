"""Crowdmint's consensus engine: truth inference over crowd labels, NumPy only (torch optional).

Framework-free by design (no Django, DRF, Celery or web3; ``tests/consensus/test_purity.py``
enforces it): integer code arrays in, frozen dataclasses out. A service turns rows into codes and
persists the result.

Public API:

* :func:`aggregate` -> :class:`AggregationResult` (``bayes_ds``, the default, ``majority_vote``,
  ``wawa``, ``zbs``, ``dawid_skene``, ``one_coin``, ``glad``, ``mace``; CPU, or torch on
  ``cuda``/``torch-cpu`` for ``bayes_ds``, ``dawid_skene`` and ``one_coin``).
* :func:`item_posterior`: one item's posterior from fitted confusion matrices, O(its answers);
  :func:`labeler_confusions`, :func:`class_priors`, :func:`bounded_priors`, :func:`one_coin`,
  :func:`capped_confusion` and :func:`decisive_margin` (:mod:`.incremental`) are what the online
  decisions keep from a fit.
* :mod:`.calibration`: :func:`expected_calibration_error` and :func:`confident_accuracy`;
  :func:`gold_floor` (:mod:`.bayes`) calibrates posteriors on gold tasks.
* :mod:`.metrics`: :func:`percent_agreement`, :func:`fleiss_kappa`, :func:`krippendorff_alpha`,
  or all three from one pass with :func:`agreement`.
* :mod:`.multilabel`: multi-label consensus.
* :func:`aggregate_boxes` -> :class:`BoxResult` (:mod:`.boxes`): bounding-box consensus; boxes
  matched across annotators by IoU (complete linkage, one box per annotator per match), fused by
  coordinate-wise median or mean, with per-box votes, agreement, mean IoU and majority class.
* :func:`aggregate_spans` -> :class:`SpanResult` (:mod:`.spans`): text-span consensus by
  token-level voting, with per-span agreement.
"""

from .aggregate import METHODS, TORCH_METHODS, aggregate
from .bayes import apply_floor, gold_floor
from .boxes import BoxResult, aggregate_boxes, iou_matrix
from .calibration import confident_accuracy, expected_calibration_error
from .errors import ConsensusError, DeviceUnavailableError
from .incremental import (
    PRIOR_FLOOR_SHARE,
    bounded_priors,
    capped_confusion,
    class_priors,
    decisive_margin,
    item_posterior,
    labeler_confusions,
    one_coin,
)
from .metrics import agreement, fleiss_kappa, krippendorff_alpha, percent_agreement
from .result import AggregationResult
from .spans import SpanResult, aggregate_spans

__all__ = [
    "METHODS",
    "PRIOR_FLOOR_SHARE",
    "TORCH_METHODS",
    "AggregationResult",
    "BoxResult",
    "ConsensusError",
    "DeviceUnavailableError",
    "SpanResult",
    "aggregate",
    "agreement",
    "aggregate_boxes",
    "aggregate_spans",
    "apply_floor",
    "bounded_priors",
    "capped_confusion",
    "class_priors",
    "confident_accuracy",
    "decisive_margin",
    "expected_calibration_error",
    "fleiss_kappa",
    "gold_floor",
    "iou_matrix",
    "item_posterior",
    "krippendorff_alpha",
    "labeler_confusions",
    "one_coin",
    "percent_agreement",
]
