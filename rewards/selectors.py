"""Reads of rewards: a user's balance split into pending and paid, and their payouts."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db.models import Q, QuerySet, Sum

from accounts.models import User
from rewards.models import LedgerEntry, PayoutBatch, PayoutTransfer

_PAID = Q(allocation__batch__status=PayoutBatch.Status.CONFIRMED)


@dataclass(frozen=True)
class RewardSummary:
    pending: Decimal
    paid: Decimal
    entries: list[LedgerEntry]
    payouts: list[PayoutTransfer]


def ledger_entries_for_user(*, user: User) -> QuerySet[LedgerEntry]:
    return (
        LedgerEntry.objects.filter(user=user)
        .select_related("project", "allocation__batch")
        .order_by("-id")
    )


def reward_summary_for_user(*, user: User, limit: int = 50) -> RewardSummary:
    totals = LedgerEntry.objects.filter(user=user).aggregate(
        paid=Sum("amount", filter=_PAID), total=Sum("amount")
    )
    paid = totals["paid"] or Decimal(0)
    total = totals["total"] or Decimal(0)
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


def explorer_tx_url(tx_hash: str) -> str | None:
    template = settings.CHAIN_EXPLORER_TX_URL
    return template.format(tx_hash=tx_hash) if template and tx_hash else None
