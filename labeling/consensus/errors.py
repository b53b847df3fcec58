"""Exceptions raised by the consensus engine.

Bad input (mismatched lengths, negative codes, out-of-range labels, unknown methods) raises the
built-in ``ValueError``; only conditions specific to this package have their own classes.
"""

from __future__ import annotations


class ConsensusError(Exception):
    """Base class of the errors specific to :mod:`labeling.consensus`."""


class DeviceUnavailableError(ConsensusError, RuntimeError):
    """The requested compute device cannot be used.

    Raised when ``device`` asks for torch (``"cuda"``, ``"torch-cpu"``) but torch is not installed,
    or asks for ``"cuda"`` on a machine without a usable GPU, or the method has no torch backend.
    """
