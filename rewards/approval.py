"""Which payout batches wait for a moderator before they are sent.

Every batch does when ``PAYOUT_REQUIRE_APPROVAL`` is on; otherwise those whose total is above the
moderator-set ``PayoutSettings.approval_threshold``. A batch a moderator put on hold waits until
it is approved.
"""

from __future__ import annotations

from django.conf import settings

from rewards.models import PayoutBatch, PayoutSettings


def payout_settings() -> PayoutSettings:
    """The one settings row (created empty on first use)."""
    row, _ = PayoutSettings.objects.get_or_create(pk=1)
    return row


def batch_needs_approval(batch: PayoutBatch, row: PayoutSettings | None = None) -> bool:
    """Whether ``batch`` waits for a moderator's approval. ``row``: the payout settings already
    read (a list of batches reads them once, not once per batch); read here if not given."""
    if settings.PAYOUT_REQUIRE_APPROVAL:
        return True
    threshold = (row or payout_settings()).approval_threshold
    return threshold is not None and int(batch.total) > int(threshold)


def batch_may_be_sent(batch: PayoutBatch) -> bool:
    if batch.held_at is not None:
        return False
    return batch.approved_at is not None or not batch_needs_approval(batch)
