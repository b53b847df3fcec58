"""Reads of rewards: a user's balance split into pending and paid, and their payouts."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db.models import QuerySet
from django.http import Http404

from accounts.models import User
from labeling.models import Annotation, Item, Project
from rewards.models import LedgerEntry, PayoutBatch, PayoutTransfer, RewardPolicy


@dataclass(frozen=True)
class RewardSummary:
    pending: int
    paid: int
    entries: list[LedgerEntry]
    payouts: list[PayoutTransfer]
    labels_waiting: int = 0  # my labels on items the crowd hasn't decided yet


def entry_description(entry: LedgerEntry) -> str:
    """What a ledger entry was for, in words: "Label on item 12 (Product review sentiment)"."""
    where = f" ({entry.project.name})" if entry.project is not None else ""
    item = f" on item {entry.item_id}" if entry.item_id is not None else ""
    what = {
        LedgerEntry.Reason.LABEL: "Label",
        LedgerEntry.Reason.CONTRIBUTION: "Accepted upload",
        LedgerEntry.Reason.GOLD: "Right gold answer",
        LedgerEntry.Reason.REVERSAL: "Reversal (the item was re-decided)",
        LedgerEntry.Reason.BUDGET: "Scaled to the project's budget",
        LedgerEntry.Reason.ADJUSTMENT: "Adjustment",
    }.get(LedgerEntry.Reason(entry.reason), entry.reason)
    return f"{what}{item}{where}"


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
    waiting = Annotation.objects.filter(
        annotator=user, item__status__in=[Item.Status.OPEN, Item.Status.REVIEW], item__gold_label=""
    ).count()
    return RewardSummary(
        pending=total - paid,
        paid=paid,
        entries=list(ledger_entries_for_user(user=user)[:limit]),
        payouts=payouts,
        labels_waiting=waiting,
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


def reward_policy_in_force(*, project: Project) -> RewardPolicy:
    """The project's latest reward policy, read only: a project never credited yet has none, and
    gets an unsaved one with what ``rewards.services.reward_policy_current`` would make version 1
    of (the project's rates, the model's defaults). For pages that show it (a GET must not write
    version 1); crediting uses ``reward_policy_current``."""
    policy = RewardPolicy.objects.filter(project=project).order_by("-version").first()
    if policy is not None:
        return policy
    return RewardPolicy(
        project=project,
        version=1,
        per_label=project.reward_per_label,
        per_item=project.reward_per_item,
    )
