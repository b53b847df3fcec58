"""Reads of rewards: a user's balance split into pending and paid, and their payouts."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db.models import QuerySet
from django.http import Http404

from accounts.models import User
from labeling.models import Item
from rewards.models import LedgerEntry, PayoutBatch, PayoutTransfer


@dataclass(frozen=True)
class RewardSummary:
    pending: int
    paid: int
    entries: list[LedgerEntry]
    payouts: list[PayoutTransfer]


def ledger_entries_for_user(*, user: User) -> QuerySet[LedgerEntry]:
    return (
        LedgerEntry.objects.filter(user=user)
        .select_related("project", "allocation__batch")
        .order_by("-id")
    )


def reward_summary_for_user(*, user: User, limit: int = 50) -> RewardSummary:
    # Summed in Python: exact for any size (see rewards.fields).
    paid = total = 0
    rows = LedgerEntry.objects.filter(user=user).values_list("amount", "allocation__batch__status")
    for amount, batch_status in rows:
        total += amount
        paid += amount if batch_status == PayoutBatch.Status.CONFIRMED else 0
    payouts: list[PayoutTransfer] = []
    if user.wallet_address:
        payouts = list(
            PayoutTransfer.objects.filter(wallet_address=user.wallet_address)
            .exclude(batch__status=PayoutBatch.Status.FAILED)
            .select_related("batch")
            .order_by("-batch_id")[:limit]
        )
    return RewardSummary(
        pending=total - paid,
        paid=paid,
        entries=list(ledger_entries_for_user(user=user)[:limit]),
        payouts=payouts,
    )


def item_credits_unpaid(*, item: Item) -> bool:
    """Whether none of the item's credits has been put into a payout batch yet."""
    return not LedgerEntry.objects.filter(item=item, allocation__isnull=False).exists()


def explorer_tx_url(tx_hash: str) -> str | None:
    template = settings.CHAIN_EXPLORER_TX_URL
    return template.format(tx_hash=tx_hash) if template and tx_hash else None


def ledger_entry_get_for_user(*, entry_id: int, user: User) -> LedgerEntry:
    """One of ``user``'s own ledger entries (a receipt); anyone else's is a 404."""
    entry = (
        LedgerEntry.objects.select_related("user", "project", "item")
        .filter(pk=entry_id, user=user)
        .first()
    )
    if entry is None:
        raise Http404("No receipt of yours with this id.")
    return entry
