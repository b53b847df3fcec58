"""Receipts: why each ledger entry was paid, in a form anyone can check against the chain.

A receipt's ``body`` says what was paid and why: the wallet, the amount and asset, the item's
content hash, its labels and the decision with its posterior, the label that earned a label
credit, and the reward policy's inputs. When a batch is made, each allocated entry's body is
frozen (``PayoutAllocation.receipt``) and becomes a leaf of the batch's Merkle tree, whose root
the payout contract stores with the batch id (``rewards.chain.merkle`` documents the encoding).
A receipt of a confirmed batch carries ``leaf``, ``proof`` and ``root``; ``manage.py
verify_receipt`` checks them against the root read from the chain.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import Count

from labeling.models import Annotation
from rewards.asset import PayoutAsset
from rewards.chain.merkle import merkle_proof, merkle_root, receipt_digest, receipt_leaf
from rewards.models import LedgerEntry, PayoutAllocation, PayoutBatch

_ANNOTATION_SOURCE = re.compile(r"^annotation:(\d+)(?:@(\d+))?$")


def _annotation_source(source: str) -> tuple[int, int] | None:
    """``annotation:<id>[@<decision version>]`` -> (id, version)."""
    match = _ANNOTATION_SOURCE.match(source)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2) or 1)


def receipt_bodies(
    entries: Iterable[LedgerEntry], *, wallets: dict[int, str], asset: PayoutAsset
) -> dict[int, dict[str, Any]]:
    """The receipt body of each entry, by entry id, in a constant number of queries.

    ``entries`` must have ``project`` and ``item`` selected; ``wallets`` maps user ids to the
    wallet each entry pays.
    """
    entries = list(entries)
    item_ids = {e.item_id for e in entries if e.item_id is not None}
    labels: dict[int, dict[str, int]] = defaultdict(dict)
    for item_id, label, count in (
        Annotation.objects.filter(item_id__in=item_ids)
        .values_list("item_id", "label")
        .annotate(n=Count("id"))
        .order_by("item_id", "label")
    ):
        labels[item_id][label] = count
    sources = {e.pk: _annotation_source(e.source) for e in entries}
    annotation_labels = dict(
        Annotation.objects.filter(
            pk__in=[found[0] for found in sources.values() if found is not None]
        ).values_list("pk", "label")
    )
    bodies: dict[int, dict[str, Any]] = {}
    for entry in entries:
        item = entry.item
        project = entry.project
        body: dict[str, Any] = {
            "receipt": entry.pk,
            "wallet": wallets.get(entry.user_id),
            "reason": entry.reason,
            "source": entry.source,
            "amount": str(entry.amount),
            "asset": asset.as_json(),
            "credited_at": entry.created_at.isoformat().replace("+00:00", "Z"),
            "memo": entry.memo,
            "project": None if project is None else {"id": project.pk, "name": project.name},
            "item": None,
            "decision": None,
            "labels": {},
            "annotation": None,
            "policy": {"version": entry.policy_version, "inputs": entry.policy_inputs},
        }
        if item is not None:
            body["item"] = {"id": item.pk, "content_sha256": item.content_sha256}
            body["decision"] = {
                "label": item.decided_label or None,
                "posterior": item.confidence,
                "agreement": item.agreement,
                "method": project.consensus_method if project is not None else None,
                "version": item.decision_version,
                "decided_at": (
                    item.decided_at.isoformat().replace("+00:00", "Z") if item.decided_at else None
                ),
            }
            body["labels"] = labels.get(item.pk, {})
        found = sources[entry.pk]
        if found is not None:
            annotation_id, version = found
            body["annotation"] = {
                "id": annotation_id,
                "label": annotation_labels.get(annotation_id),
                "decision_version": version,
            }
        bodies[entry.pk] = body
    return bodies


@dataclass(frozen=True)
class ReceiptLeaf:
    entry_id: int
    body: dict[str, Any]
    leaf: bytes


def batch_receipts(
    *,
    batch: PayoutBatch,
    entries: list[LedgerEntry],
    wallets: dict[int, str],
    asset: PayoutAsset,
) -> tuple[list[ReceiptLeaf], bytes]:
    """Each entry's frozen receipt and leaf in ``batch``, and the batch's receipts root."""
    bodies = receipt_bodies(entries, wallets=wallets, asset=asset)
    batch_id = bytes.fromhex(batch.batch_id[2:])
    leaves = [
        ReceiptLeaf(
            entry_id=entry.pk,
            body=bodies[entry.pk],
            leaf=receipt_leaf(
                chain_id=batch.chain_id,
                payout_contract=batch.token_address,
                batch_id=batch_id,
                entry_id=entry.pk,
                wallet=wallets[entry.user_id],
                amount=int(entry.amount),
                digest=receipt_digest(bodies[entry.pk]),
            ),
        )
        for entry in entries
    ]
    return leaves, merkle_root([r.leaf for r in leaves])


@dataclass(frozen=True)
class Receipt:
    """A ledger entry's receipt as a contributor (or anyone they show it to) reads it."""

    entry: LedgerEntry
    body: dict[str, Any]
    batch: PayoutBatch | None
    leaf: str | None
    proof: list[str]
    root: str | None

    @property
    def paid(self) -> bool:
        return self.batch is not None and self.batch.status == PayoutBatch.Status.CONFIRMED


def receipt_for_entry(*, entry: LedgerEntry, asset: PayoutAsset) -> Receipt:
    """The receipt of one entry: frozen with its proof once in a batch, live before."""
    allocation = PayoutAllocation.objects.select_related("batch").filter(entry=entry).first()
    if allocation is None or not allocation.leaf:
        wallet = entry.user.wallet_address or ""
        body = receipt_bodies([entry], wallets={entry.user_id: wallet}, asset=asset)[entry.pk]
        return Receipt(entry=entry, body=body, batch=None, leaf=None, proof=[], root=None)
    batch = allocation.batch
    leaves = [
        bytes.fromhex(leaf[2:])
        for leaf in PayoutAllocation.objects.filter(batch=batch).values_list("leaf", flat=True)
    ]
    proof = merkle_proof(leaves, bytes.fromhex(allocation.leaf[2:]))
    return Receipt(
        entry=entry,
        body=allocation.receipt,
        batch=batch,
        leaf=allocation.leaf,
        proof=["0x" + p.hex() for p in proof],
        root=batch.receipts_root or None,
    )
