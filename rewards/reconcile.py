"""Reconciliation: the payout invariants, checked against the chain.

Settlement is built so money moves exactly once whatever crashes (``rewards.services``). This
module checks that it did, from the database and the chain alone:

1. ``credits``: every credit is unpaid or in exactly one batch, none sits in a failed batch, and
   each batch pays each wallet exactly the sum of its allocated credits;
2. ``batch_ids``: at most one payment event per batch id; ``processedBatches(batchId)`` is true
   exactly for the confirmed batches; each event's receipts root, total and count are the
   batch's;
3. ``transfers``: each confirmed batch's transaction moved exactly its transfers, to the base
   unit (and, when minting, the token's total supply is the sum of the confirmed batches);
4. ``balances`` (on request: only where nobody else moves the asset, as in the chaos test): each
   wallet's on-chain balance is what the ledger says it was paid;
5. ``no_unknown_state``: no batch is left submitted (or approved and unsent) for longer than
   ``stale_after``.

Celery beat runs it periodically (``RECONCILE_INTERVAL_SECONDS``) and records a
``ReconciliationRun``; a failing run shows in admin. ``manage.py reconcile_payouts`` prints it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from rewards.approval import batch_needs_approval
from rewards.chain import MINT, BatchPaidEvent, ChainClient
from rewards.models import PayoutAllocation, PayoutBatch, PayoutTransfer, ReconciliationRun

MAX_REPORTED = 20  # violations listed per invariant; the count is always exact


@dataclass
class Invariant:
    name: str
    description: str
    checked: int = 0
    violations: list[str] = field(default_factory=list)
    total_violations: int = 0

    @property
    def ok(self) -> bool:
        return self.total_violations == 0

    def fail(self, message: str) -> None:
        self.total_violations += 1
        if len(self.violations) < MAX_REPORTED:
            self.violations.append(message)

    def line(self) -> str:
        verdict = "ok  " if self.ok else "FAIL"
        text = f"{verdict} {self.name}: {self.description} ({self.checked} checked"
        text += ")" if self.ok else f", {self.total_violations} violated)"
        return text

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "ok": self.ok,
            "description": self.description,
            "checked": self.checked,
            "violations": self.violations,
            "total_violations": self.total_violations,
        }


@dataclass(frozen=True)
class ReconciliationReport:
    invariants: list[Invariant]
    batches: int

    @property
    def ok(self) -> bool:
        return all(i.ok for i in self.invariants)

    def lines(self) -> list[str]:
        lines = [i.line() for i in self.invariants]
        for invariant in self.invariants:
            lines += [f"     {invariant.name}: {v}" for v in invariant.violations]
        return lines


def _batch_id_bytes(batch: PayoutBatch) -> bytes:
    return bytes.fromhex(batch.batch_id[2:])


def _check_credits(batches: list[PayoutBatch]) -> Invariant:
    invariant = Invariant(
        "credits",
        "each credit unpaid or in one batch, never a failed one; batches pay their credits",
    )
    in_failed = PayoutAllocation.objects.filter(batch__status=PayoutBatch.Status.FAILED)
    for entry_id, batch_id in in_failed.values_list("entry_id", "batch__batch_id"):
        invariant.fail(f"credit {entry_id} is still allocated to failed batch {batch_id}")
    ids = [b.pk for b in batches if b.status != PayoutBatch.Status.FAILED]
    owed: dict[tuple[int, str], int] = defaultdict(int)
    for batch_pk, wallet, amount in PayoutAllocation.objects.filter(batch_id__in=ids).values_list(
        "batch_id", "entry__user__wallet_address", "entry__amount"
    ):
        owed[(batch_pk, wallet or "")] += int(amount)
        invariant.checked += 1
    paid: dict[tuple[int, str], int] = {
        (batch_pk, wallet): int(amount)
        for batch_pk, wallet, amount in PayoutTransfer.objects.filter(batch_id__in=ids).values_list(
            "batch_id", "wallet_address", "amount"
        )
    }
    names = {b.pk: b.batch_id for b in batches}
    for key in sorted(set(owed) | set(paid)):
        if owed.get(key, 0) != paid.get(key, 0):
            invariant.fail(
                f"batch {names[key[0]]} pays {key[1]} {paid.get(key, 0)} for credits of "
                f"{owed.get(key, 0)}"
            )
    return invariant


def _check_batch_ids(
    batches: list[PayoutBatch], events: list[BatchPaidEvent], client: ChainClient
) -> Invariant:
    invariant = Invariant(
        "batch_ids",
        "one payment per batch id; processedBatches true exactly for confirmed batches",
    )
    counts = Counter(e.batch_id for e in events)
    for batch_id, count in counts.items():
        if count > 1:
            invariant.fail(f"batch id 0x{batch_id.hex()} was paid {count} times")
    by_id = {_batch_id_bytes(b): b for b in PayoutBatch.objects.all()}
    for event in events:
        batch = by_id.get(event.batch_id)
        if batch is None:
            invariant.fail(f"0x{event.batch_id.hex()} paid on-chain is no batch of ours")
        elif (
            batch.status == PayoutBatch.Status.FAILED or batch.status == PayoutBatch.Status.PREPARED
        ):
            invariant.fail(f"batch {batch.batch_id} is {batch.status} but was paid on-chain")
        elif batch.status == PayoutBatch.Status.CONFIRMED and (
            "0x" + event.receipts_root.hex() != batch.receipts_root
            or event.total != batch.total
            or event.count != batch.recipient_count
        ):
            invariant.fail(f"batch {batch.batch_id}: the chain's root, total or count differ")
    for batch in batches:
        invariant.checked += 1
        processed = client.is_batch_processed(_batch_id_bytes(batch))
        if batch.status == PayoutBatch.Status.CONFIRMED and not processed:
            invariant.fail(f"batch {batch.batch_id} is confirmed but not processed on-chain")
        if batch.status in (PayoutBatch.Status.FAILED, PayoutBatch.Status.PREPARED) and processed:
            invariant.fail(f"batch {batch.batch_id} is {batch.status} but processed on-chain")
        if batch.status == PayoutBatch.Status.CONFIRMED and not counts.get(_batch_id_bytes(batch)):
            invariant.fail(f"batch {batch.batch_id} is confirmed but has no payment event")
    return invariant


def _check_transfers(
    batches: list[PayoutBatch], events: list[BatchPaidEvent], client: ChainClient
) -> Invariant:
    invariant = Invariant(
        "transfers", "each confirmed batch's transaction moved exactly its transfers"
    )
    paying_tx = {e.batch_id: e.tx_hash for e in events}
    for batch in batches:
        if batch.status != PayoutBatch.Status.CONFIRMED:
            continue
        tx_hash = paying_tx.get(_batch_id_bytes(batch), batch.tx_hash)
        invariant.checked += 1
        receipt = client.get_receipt(tx_hash) if tx_hash else None
        if receipt is None or not receipt.status:
            invariant.fail(f"batch {batch.batch_id}: its transaction {tx_hash or '-'} paid nothing")
            continue
        moved = Counter((t.to_address, t.value) for t in client.transfers_in(tx_hash))
        owed = Counter(
            (wallet, int(amount))
            for wallet, amount in batch.transfers.values_list("wallet_address", "amount")
        )
        if moved != owed:
            invariant.fail(f"batch {batch.batch_id}: tx {tx_hash} moved {dict(moved)}")
    if client.mode == MINT:
        confirmed = PayoutBatch.objects.filter(status=PayoutBatch.Status.CONFIRMED)
        expected = sum(int(total) for total in confirmed.values_list("total", flat=True))
        supply = client.token_info().total_supply
        invariant.checked += 1
        if supply != expected:
            invariant.fail(f"total supply {supply} != {expected}, the confirmed batches' total")
    return invariant


def _check_balances(client: ChainClient, batches: list[PayoutBatch]) -> Invariant:
    invariant = Invariant("balances", "each wallet's balance equals what the ledger paid it")
    wallets = set(
        PayoutTransfer.objects.filter(batch__in=batches).values_list("wallet_address", flat=True)
    )
    paid: dict[str, int] = defaultdict(int)
    for wallet, amount in PayoutTransfer.objects.filter(
        batch__status=PayoutBatch.Status.CONFIRMED, wallet_address__in=wallets
    ).values_list("wallet_address", "amount"):
        paid[wallet] += int(amount)
    for wallet in sorted(wallets):
        amount = paid.get(wallet, 0)
        invariant.checked += 1
        balance = client.balance_of(wallet)
        if balance != amount:
            invariant.fail(f"{wallet} holds {balance}, the ledger paid it {amount}")
    return invariant


def _check_unknown_state(stale_after: timedelta) -> Invariant:
    invariant = Invariant("no_unknown_state", f"no batch left in flight over {stale_after}")
    cutoff = timezone.now() - stale_after
    live = PayoutBatch.objects.filter(
        status__in=[PayoutBatch.Status.SUBMITTED, PayoutBatch.Status.PREPARED]
    )
    for batch in live:
        invariant.checked += 1
        # A batch a moderator must still approve, or has put on hold, is waiting on purpose.
        waiting_approval = batch.status == PayoutBatch.Status.PREPARED and (
            batch.held_at is not None or (batch.approved_at is None and batch_needs_approval(batch))
        )
        since = batch.submitted_at or batch.approved_at or batch.created_at
        if not waiting_approval and since <= cutoff:
            invariant.fail(f"batch {batch.batch_id} is {batch.status} since {since:%Y-%m-%d %H:%M}")
    return invariant


def payouts_reconcile(
    *,
    client: ChainClient,
    check_balances: bool = False,
    stale_after: timedelta | None = None,
    since: datetime | None = None,
) -> ReconciliationReport:
    """Check every invariant (batches created since ``since``, all by default).

    Raises ChainUnavailable/ChainError when the node can't be read: a reconciliation that
    couldn't look is not a passing one.
    """
    if stale_after is None:
        stale_after = timedelta(seconds=3 * settings.PAYOUT_RECEIPT_TIMEOUT_SECONDS)
    batches = PayoutBatch.objects.order_by("id")
    if since is not None:
        batches = batches.filter(Q(created_at__gte=since) | ~Q(status=PayoutBatch.Status.CONFIRMED))
    batch_list = list(batches)
    events = client.batch_events(from_block=settings.CHAIN_START_BLOCK)
    invariants = [
        _check_credits(batch_list),
        _check_batch_ids(batch_list, events, client),
        _check_transfers(batch_list, events, client),
    ]
    if check_balances:
        invariants.append(_check_balances(client, batch_list))
    invariants.append(_check_unknown_state(stale_after))
    return ReconciliationReport(invariants=invariants, batches=len(batch_list))


def reconciliation_record(
    *, client: ChainClient, since: datetime | None = None
) -> ReconciliationRun:
    """Run the checks and keep the result (the periodic job); a chain error is a failing run."""
    try:
        report = payouts_reconcile(client=client, since=since)
    except Exception as exc:  # the node or database couldn't be read: that is an alert too
        return ReconciliationRun.objects.create(
            ok=False, checked_batches=0, results=[], error=f"{type(exc).__name__}: {exc}"
        )
    return ReconciliationRun.objects.create(
        ok=report.ok,
        checked_batches=report.batches,
        results=[i.as_json() for i in report.invariants],
    )
