"""``GET /api/v1/me/rewards/``: a constant number of queries whatever the history's length."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from rewards.models import LedgerEntry, PayoutAllocation, PayoutBatch, PayoutTransfer
from tests.conftest import Contributor

pytestmark = pytest.mark.django_db


def give_paid_credits(contributor: Contributor, count: int) -> None:
    """``count`` credits, each paid by its own confirmed batch."""
    for n in range(count):
        entry = LedgerEntry.objects.create(
            user=contributor.user,
            amount=10**18,
            reason=LedgerEntry.Reason.LABEL,
            source=f"annotation:{contributor.user.pk}-{n}",
        )
        batch = PayoutBatch.objects.create(
            batch_id=f"0x{contributor.user.pk:032x}{n:032x}",
            status=PayoutBatch.Status.CONFIRMED,
            chain_id=31337,
            token_address="0x" + "00" * 20,
            recipient_count=1,
            total=10**18,
            tx_hash=f"0x{n:064x}",
        )
        PayoutTransfer.objects.create(
            batch=batch, wallet_address=contributor.address, amount=10**18
        )
        PayoutAllocation.objects.create(entry=entry, batch=batch)


def test_my_rewards_reads_a_long_history_in_the_same_queries_as_a_short_one(
    make_contributor: Callable[[], Contributor], django_assert_max_num_queries: Callable
) -> None:
    short, long = make_contributor(), make_contributor()
    give_paid_credits(short, 2)
    give_paid_credits(long, 30)
    with django_assert_max_num_queries(6) as few:
        body = short.api.get("/api/v1/me/rewards/").json()
    assert body["paid"] == str(2 * 10**18) and len(body["payouts"]) == 2
    with django_assert_max_num_queries(len(few.captured_queries)):
        body = long.api.get("/api/v1/me/rewards/").json()
    assert body["paid"] == str(30 * 10**18) and body["pending"] == "0"
    assert len(body["entries"]) == 30 and all(e["paid"] for e in body["entries"])
    assert len(body["payouts"]) == 30
