"""Money movements: credits into the ledger, and settlement of credits on-chain.

Exactly-once rests on three facts, not on exception handling:
1. a credit is unique per ``(reason, source)`` (a database constraint);
2. a credit sits in at most one live batch (a one-to-one allocation);
3. the token contract refuses a ``batchId`` it has already processed.
So settlement can crash anywhere, and be re-run any number of times, concurrently too: it re-reads
the chain (``processedBatches``) to learn what happened, and never pays a batch twice.
"""

from __future__ import annotations

import logging
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import User
from labeling.models import Item
from rewards.approval import batch_may_be_sent
from rewards.asset import payout_asset
from rewards.chain import MINT, ChainClient, ChainError, Receipt, SignedTransaction, max_batch_size
from rewards.failpoints import failpoint
from rewards.models import (
    LedgerEntry,
    PayoutAllocation,
    PayoutBatch,
    PayoutSettings,
    PayoutTransfer,
)
from rewards.receipts import batch_receipts

logger = logging.getLogger(__name__)


def label_credit_source(annotation_id: int, decision_version: int) -> str:
    """The ledger source of a label credit under an item's n-th decision (``annotation:<id>``
    for the first, ``annotation:<id>@<n>`` after a re-decision)."""
    if decision_version <= 1:
        return f"annotation:{annotation_id}"
    return f"annotation:{annotation_id}@{decision_version}"


def ledger_credit_decision(*, item: Item) -> None:
    """Credit an accepted item's contributor and the labelers who agreed with the decision.

    Call inside the transaction that accepts the item. Crediting the same decision again adds
    nothing: the ledger's ``(reason, source)`` constraint drops the repeats.
    """
    project = item.project
    entries: list[LedgerEntry] = []
    if item.contributor_id is not None and project.reward_per_item > 0:
        entries.append(
            LedgerEntry(
                user_id=item.contributor_id,
                amount=project.reward_per_item,
                reason=LedgerEntry.Reason.CONTRIBUTION,
                source=f"item:{item.pk}",
                project=project,
                item=item,
            )
        )
    if project.reward_per_label > 0:
        agreeing = item.annotations.filter(label=item.decided_label).values_list(
            "pk", "annotator_id"
        )
        entries.extend(
            LedgerEntry(
                user_id=annotator_id,
                amount=project.reward_per_label,
                reason=LedgerEntry.Reason.LABEL,
                source=label_credit_source(annotation_id, item.decision_version),
                project=project,
                item=item,
            )
            for annotation_id, annotator_id in agreeing
        )
    LedgerEntry.objects.bulk_create(entries, ignore_conflicts=True)


def item_credits_unpaid(*, item: Item) -> bool:
    """Whether none of the item's credits has been put into a payout batch yet."""
    return not LedgerEntry.objects.filter(item=item, allocation__isnull=False).exists()


def ledger_reverse_label_credits(*, item: Item) -> int:
    """Cancel the label credits of an item's current decision with reversal entries.

    Call inside the transaction that re-decides the item, after checking with
    ``item_credits_unpaid``; the credits are locked so a settlement can't allocate them meanwhile.
    Returns how many credits were reversed.
    """
    annotation_ids = list(item.annotations.values_list("pk", flat=True))
    sources = [label_credit_source(pk, item.decision_version) for pk in annotation_ids]
    credits = list(
        LedgerEntry.objects.select_for_update()
        .filter(reason=LedgerEntry.Reason.LABEL, source__in=sources)
        .order_by("id")
    )
    LedgerEntry.objects.bulk_create(
        [
            LedgerEntry(
                user_id=credit.user_id,
                amount=-credit.amount,
                reason=LedgerEntry.Reason.REVERSAL,
                source=f"reversal:{credit.pk}",
                project_id=credit.project_id,
                item_id=credit.item_id,
                memo=f"item {item.pk} re-decided",
            )
            for credit in credits
        ],
        ignore_conflicts=True,
    )
    return len(credits)


# --- Settlement -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SettlementReport:
    confirmed: list[str]
    pending: list[str]
    failed: list[str]
    awaiting_approval: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        text = (
            f"{len(self.confirmed)} batch(es) confirmed, {len(self.pending)} pending, "
            f"{len(self.failed)} failed"
        )
        if self.awaiting_approval:
            text += f", {len(self.awaiting_approval)} awaiting a moderator's approval"
        return text


def payout_batch_prepare(*, client: ChainClient) -> PayoutBatch | None:
    """Group unpaid credits per wallet into a new batch (at most 500 recipients when minting,
    400 for an ERC-20), with a receipt per credit and the receipts' Merkle root.

    Credits of users without a wallet or who are banned wait, as do wallets whose unpaid net is
    below ``PAYOUT_MINIMUM``. Returns ``None`` when nothing is due. Two concurrent calls can't
    allocate one credit twice: the allocation is one-to-one, and the loser's transaction rolls
    back.
    """
    mode = client.mode or MINT
    max_recipients = min(settings.PAYOUT_BATCH_MAX_RECIPIENTS, max_batch_size(mode))
    minimum = max(1, settings.PAYOUT_MINIMUM)
    due = (
        LedgerEntry.objects.filter(
            allocation__isnull=True,
            user__wallet_address__isnull=False,
            user__banned_at__isnull=True,
        )
        .order_by("id")
        .values_list("id", "user_id", "user__wallet_address", "amount")
    )
    # Net per wallet (reversals are negative); a wallet owed less than the minimum net waits for
    # more credits.
    per_wallet: OrderedDict[str, tuple[int, list[int]]] = OrderedDict()
    wallets: dict[int, str] = {}
    for entry_id, user_id, wallet, amount in due.iterator(chunk_size=2000):
        if wallet is None:  # excluded by the filter; the column itself is nullable
            continue
        wallets[user_id] = wallet
        net, ids = per_wallet.get(wallet, (0, []))
        ids.append(entry_id)
        per_wallet[wallet] = (net + amount, ids)
    payable = [(wallet, net, ids) for wallet, (net, ids) in per_wallet.items() if net >= minimum]
    payable = payable[:max_recipients]
    totals: OrderedDict[str, int] = OrderedDict((wallet, net) for wallet, net, _ in payable)
    entry_ids = [entry_id for _, _, ids in payable for entry_id in ids]
    if not totals:
        return None
    try:
        with transaction.atomic():
            batch = PayoutBatch.objects.create(
                batch_id="0x" + secrets.token_hex(32),
                chain_id=client.chain_id,
                mode=mode,
                token_address=client.payout_address or "",
                recipient_count=len(totals),
                total=sum(totals.values()),
            )
            entries = list(
                LedgerEntry.objects.filter(pk__in=entry_ids)
                .select_related("project", "item")
                .order_by("id")
            )
            receipts, root = batch_receipts(
                batch=batch, entries=entries, wallets=wallets, asset=payout_asset()
            )
            batch.receipts_root = "0x" + root.hex()
            batch.save(update_fields=["receipts_root"])
            PayoutTransfer.objects.bulk_create(
                PayoutTransfer(batch=batch, wallet_address=wallet, amount=amount)
                for wallet, amount in totals.items()
            )
            PayoutAllocation.objects.bulk_create(
                PayoutAllocation(
                    batch=batch,
                    entry_id=receipt.entry_id,
                    receipt=receipt.body,
                    leaf="0x" + receipt.leaf.hex(),
                )
                for receipt in receipts
            )
    except IntegrityError:
        logger.info("another settlement allocated these credits first")
        return None
    failpoint("after_prepare")
    return batch


def _batch_id_bytes(batch: PayoutBatch) -> bytes:
    return bytes.fromhex(batch.batch_id[2:])


def _sign(batch: PayoutBatch, client: ChainClient) -> SignedTransaction:
    """Sign the batch's payment with the signer's next nonce (nothing is sent)."""
    transfers = list(batch.transfers.order_by("id").values_list("wallet_address", "amount"))
    return client.sign_payout_batch(
        _batch_id_bytes(batch),
        bytes.fromhex(batch.receipts_root[2:]),
        [wallet for wallet, _ in transfers],
        [int(a) for _, a in transfers],
    )


def payout_batch_submit(*, batch: PayoutBatch, client: ChainClient) -> PayoutBatch:
    """Sign the batch's transaction, record its hash, then broadcast it (after the commit)."""
    signed = _sign(batch, client)
    failpoint("after_sign")
    claimed = PayoutBatch.objects.filter(pk=batch.pk, status=PayoutBatch.Status.PREPARED).update(
        status=PayoutBatch.Status.SUBMITTED,
        tx_hash=signed.tx_hash,
        tx_nonce=signed.nonce,
        raw_tx=signed.raw.hex(),
        submitted_at=timezone.now(),
    )
    batch.refresh_from_db()
    if claimed != 1:
        return batch  # another settlement run submitted it
    failpoint("after_persist")
    _broadcast(batch, signed.raw, client)
    failpoint("after_broadcast")
    return batch


def _broadcast(batch: PayoutBatch, raw: bytes, client: ChainClient) -> None:
    try:
        client.send_raw(raw)
    except ChainError as exc:
        # The node may have taken it anyway (a killed node still mines): the next reconcile reads
        # processedBatches to find out.
        logger.warning("broadcast of batch %s failed: %s", batch.batch_id, exc)


def payout_batch_reconcile(
    *, batch: PayoutBatch, client: ChainClient, wait: bool = True
) -> PayoutBatch:
    """Learn a submitted batch's fate from the chain and record it.

    Processed on-chain: confirmed, and its credits count as paid. Mined but reverted and not
    processed: failed, and its credits are released for the next batch. Not mined: re-broadcast
    the same signed transaction, or, if its nonce was consumed by another transaction, sign again
    with a new nonce (the batch id keeps that safe). With ``wait``, it waits for the outcome of
    what it re-sent; otherwise the batch stays submitted for the next run.
    """
    for _ in range(3):
        batch.refresh_from_db()
        if batch.status != PayoutBatch.Status.SUBMITTED:
            return batch
        failpoint("before_receipt")
        receipt = client.get_receipt(batch.tx_hash)
        if receipt is None and wait and client.has_transaction(batch.tx_hash):
            receipt = client.wait_for_receipt(
                batch.tx_hash, timeout=settings.PAYOUT_RECEIPT_TIMEOUT_SECONDS
            )
        processed = client.is_batch_processed(_batch_id_bytes(batch))
        failpoint("after_receipt")
        if processed:
            _mark_confirmed(batch, receipt if receipt is not None and receipt.status else None)
            failpoint("after_confirm")
        elif receipt is not None:
            _mark_failed(
                batch, f"transaction {batch.tx_hash} reverted in block {receipt.block_number}"
            )
        elif client.confirmed_nonce() > (batch.tx_nonce or 0):
            _resign(batch, client)
        else:
            _broadcast(batch, bytes.fromhex(batch.raw_tx), client)
        if not wait:
            break
    batch.refresh_from_db()
    return batch


def _mark_confirmed(batch: PayoutBatch, receipt: Receipt | None) -> None:
    fields: dict[str, object] = {
        "status": PayoutBatch.Status.CONFIRMED,
        "confirmed_at": timezone.now(),
    }
    if receipt is not None:
        fields["block_number"] = receipt.block_number
        fields["gas_used"] = receipt.gas_used
    PayoutBatch.objects.filter(pk=batch.pk, status=PayoutBatch.Status.SUBMITTED).update(**fields)


def _mark_failed(batch: PayoutBatch, error: str) -> None:
    with transaction.atomic():
        updated = PayoutBatch.objects.filter(
            pk=batch.pk, status=PayoutBatch.Status.SUBMITTED
        ).update(status=PayoutBatch.Status.FAILED, error=error)
        if updated:
            PayoutAllocation.objects.filter(batch=batch).delete()
    logger.error("payout batch %s failed: %s", batch.batch_id, error)


def _resign(batch: PayoutBatch, client: ChainClient) -> None:
    signed = _sign(batch, client)
    replaced = PayoutBatch.objects.filter(
        pk=batch.pk, status=PayoutBatch.Status.SUBMITTED, tx_hash=batch.tx_hash
    ).update(
        tx_hash=signed.tx_hash,
        tx_nonce=signed.nonce,
        raw_tx=signed.raw.hex(),
        attempts=[*batch.attempts, batch.tx_hash],
        submitted_at=timezone.now(),
    )
    if replaced:
        _broadcast(batch, signed.raw, client)


def payout_batch_approve(*, batch: PayoutBatch, moderator: User, reason: str = "") -> bool:
    """A moderator approves a prepared batch for broadcast (and lifts a hold), with a reason.

    Returns whether this call approved it (``False``: already approved and not held, or no
    longer prepared).
    """
    with transaction.atomic():
        approved = (
            PayoutBatch.objects.filter(pk=batch.pk, status=PayoutBatch.Status.PREPARED)
            .filter(Q(approved_at__isnull=True) | Q(held_at__isnull=False))
            .update(
                approved_by=moderator,
                approved_at=timezone.now(),
                held_by=None,
                held_at=None,
                hold_reason="",
            )
        )
        if approved:
            audit_record(
                actor=moderator,
                action="payout.approve",
                target=batch,
                details={"total": str(batch.total), "reason": reason},
            )
    return bool(approved)


def payout_batch_hold(*, batch: PayoutBatch, moderator: User, reason: str) -> bool:
    """A moderator holds a prepared batch: it is not sent until approved. Returns whether this
    call put it on hold (``False``: it was already sent, or already held)."""
    with transaction.atomic():
        held = PayoutBatch.objects.filter(
            pk=batch.pk, status=PayoutBatch.Status.PREPARED, held_at__isnull=True
        ).update(
            held_by=moderator,
            held_at=timezone.now(),
            hold_reason=reason[:500],
            approved_by=None,
            approved_at=None,
        )
        if held:
            audit_record(
                actor=moderator,
                action="payout.hold",
                target=batch,
                details={"total": str(batch.total), "reason": reason},
            )
    return bool(held)


def payout_settings_update(
    *, approval_threshold: int | None, moderator: User, reason: str
) -> PayoutSettings:
    """Set the total above which batches wait for approval (None: no threshold), audited."""
    with transaction.atomic():
        row = PayoutSettings.objects.select_for_update().get_or_create(pk=1)[0]
        previous = row.approval_threshold
        row.approval_threshold = approval_threshold  # type: ignore[assignment]
        row.updated_by = moderator
        row.updated_at = timezone.now()
        row.save(update_fields=["approval_threshold", "updated_by", "updated_at"])
        audit_record(
            actor=moderator,
            action="payout.settings",
            target=row,
            details={
                "approval_threshold": {
                    "from": None if previous is None else str(previous),
                    "to": None if approval_threshold is None else str(approval_threshold),
                },
                "reason": reason,
            },
        )
    return row


def _may_submit(batch: PayoutBatch) -> bool:
    return batch_may_be_sent(batch)


def payouts_settle(*, client: ChainClient) -> SettlementReport:
    """Pay every due credit: finish interrupted batches first, then make new ones until none is due.

    With ``PAYOUT_REQUIRE_APPROVAL``, new batches wait, prepared, until a moderator approves them.
    Safe to run twice, concurrently, or after a crash at any point.
    """
    touched: list[PayoutBatch] = []
    waiting: list[PayoutBatch] = []
    for batch in PayoutBatch.objects.filter(status=PayoutBatch.Status.PREPARED).order_by("id"):
        if _may_submit(batch):
            touched.append(payout_batch_submit(batch=batch, client=client))
        else:
            waiting.append(batch)
    for batch in PayoutBatch.objects.filter(status=PayoutBatch.Status.SUBMITTED).order_by("id"):
        touched.append(payout_batch_reconcile(batch=batch, client=client))
    if all(b.status != PayoutBatch.Status.SUBMITTED for b in touched):
        while (prepared := payout_batch_prepare(client=client)) is not None:
            if not _may_submit(prepared):
                waiting.append(prepared)
                continue
            submitted = payout_batch_submit(batch=prepared, client=client)
            reconciled = payout_batch_reconcile(batch=submitted, client=client)
            touched.append(reconciled)
            if reconciled.status != PayoutBatch.Status.CONFIRMED:
                break  # the chain isn't keeping up: leave the rest for the next run
    statuses = {b.batch_id: b.status for b in touched}
    return SettlementReport(
        confirmed=[k for k, v in statuses.items() if v == PayoutBatch.Status.CONFIRMED],
        pending=[k for k, v in statuses.items() if v == PayoutBatch.Status.SUBMITTED],
        failed=[k for k, v in statuses.items() if v == PayoutBatch.Status.FAILED],
        awaiting_approval=[b.batch_id for b in waiting],
    )
