"""Named crash points in settlement, for the chaos test (``tests/integration/test_chaos.py``).

Exactly-once payment has to survive the payout process dying anywhere. The chaos test runs the
real settlement in a separate process with ``CROWDMINT_FAILPOINTS`` naming one point and what to
do there, then recovers and checks the invariants (``rewards.reconcile``):

- ``<point>=kill[@n]``: SIGKILL this process the n-th time (default first) the point is reached;
- ``<point>=raise[@n]``: raise ``ChainUnavailable`` there (an RPC that fails after the fact);
- ``<point>=wait[@n]``: create ``<CROWDMINT_FAILPOINT_DIR>/<point>.reached`` and wait until
  ``<point>.continue`` exists (the test cuts the node off meanwhile).

Inert unless the variable is set, and always in production.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

from django.conf import settings

from rewards.chain import ChainUnavailable

#: Every point settlement passes, in order for one batch.
POINTS = (
    "after_prepare",  # the batch and its allocations are committed
    "after_sign",  # the transaction is signed, its hash not yet recorded
    "after_persist",  # hash and raw bytes recorded, not yet broadcast
    "after_broadcast",  # sent to the node, its receipt not yet asked for
    "before_receipt",  # about to ask the node for the receipt
    "after_receipt",  # the receipt (or processedBatches) arrived, the batch not yet confirmed
    "after_confirm",  # the batch is marked confirmed
)
_hits: Counter[str] = Counter()


def _plan() -> dict[str, tuple[str, int]]:
    spec = os.environ.get("CROWDMINT_FAILPOINTS", "")
    plan: dict[str, tuple[str, int]] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        point, _, action = part.partition("=")
        action, _, nth = action.partition("@")
        plan[point] = (action, int(nth or "1"))
    return plan


def failpoint(point: str) -> None:
    """Do what ``CROWDMINT_FAILPOINTS`` says at ``point``; nothing when it is unset."""
    if settings.PRODUCTION or "CROWDMINT_FAILPOINTS" not in os.environ:
        return
    planned = _plan().get(point)
    if planned is None:
        return
    _hits[point] += 1
    action, nth = planned
    if _hits[point] != nth:
        return
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "raise":
        raise ChainUnavailable(f"failpoint {point}: the node did not answer")
    elif action == "wait":
        folder = Path(os.environ.get("CROWDMINT_FAILPOINT_DIR", "."))
        (folder / f"{point}.reached").touch()
        deadline = time.monotonic() + 120
        while not (folder / f"{point}.continue").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
