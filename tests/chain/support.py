"""Helpers shared by the chain tests (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

from collections.abc import Sequence

from eth_utils import keccak, to_checksum_address

from rewards.chain import ChainClient, Receipt

ONE_TOKEN = 10**18
#: A receipts root for batches whose receipts the test doesn't look at.
ROOT = keccak(text="receipts of a test batch")


def wallets(count: int, *, seed: str = "contributor") -> list[str]:
    """Deterministic fresh contributor addresses that have never held tokens."""
    return [to_checksum_address(keccak(text=f"{seed}-{i}")[12:]) for i in range(count)]


def mint(
    client: ChainClient,
    batch_id: bytes,
    recipients: Sequence[str],
    amounts: Sequence[int],
    *,
    root: bytes = ROOT,
) -> Receipt:
    """Sign, broadcast and wait for one batch payment (batchMint or batchTransfer, by the
    client's mode); return its receipt (reverted or not)."""
    signed = client.sign_payout_batch(batch_id, root, list(recipients), list(amounts))
    client.send_raw(signed.raw)
    receipt = client.wait_for_receipt(signed.tx_hash, timeout=30)
    assert receipt is not None
    return receipt
