"""Receipts as Merkle leaves, the way OpenZeppelin's ``MerkleProof`` verifies them on-chain.

Each payout batch commits one Merkle root over the receipts it pays (one leaf per ledger entry).
Anyone holding a receipt can check it against the root the payout contract stored for the batch
(``batchRoots(batchId)``, or ``verifyReceipt(batchId, proof, leaf)`` in one call).

The encoding, for verifiers in any language:

1. ``digest = keccak256(canonical_json(receipt_body))``, where the canonical JSON is UTF-8 with
   keys sorted, no insignificant whitespace (separators ``,`` and ``:``), non-ASCII characters as
   they are, and no NaN or Infinity.
2. ``leaf = keccak256(keccak256(abi.encode(uint256 chainId, address payoutContract,
   bytes32 batchId, uint256 entryId, address wallet, int256 amount, bytes32 digest)))`` —
   hashed twice, as OpenZeppelin recommends, so no inner node can pass for a leaf.
3. Inner nodes hash their two children in ascending byte order
   (``keccak256(min(a, b) ‖ max(a, b))``); leaves are sorted ascending before the tree is built,
   and a level's odd last node moves up unchanged. A proof lists the siblings from the leaf up.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak

LEAF_TYPES = ("uint256", "address", "bytes32", "uint256", "address", "int256", "bytes32")


def canonical_json(body: Mapping[str, Any]) -> bytes:
    """The bytes a receipt's digest is taken of. Raises ValueError for NaN or Infinity."""
    return json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def receipt_digest(body: Mapping[str, Any]) -> bytes:
    return keccak(canonical_json(body))


def receipt_leaf(
    *,
    chain_id: int,
    payout_contract: str,
    batch_id: bytes,
    entry_id: int,
    wallet: str,
    amount: int,
    digest: bytes,
) -> bytes:
    """The leaf of one receipt in its batch's tree (see the module's encoding)."""
    encoded = abi_encode(
        list(LEAF_TYPES),
        [chain_id, payout_contract, batch_id, entry_id, wallet, amount, digest],
    )
    return keccak(keccak(encoded))


def hash_pair(a: bytes, b: bytes) -> bytes:
    """OpenZeppelin's commutative keccak256 of two nodes."""
    return keccak(a + b if a < b else b + a)


def _levels(leaves: Sequence[bytes]) -> list[list[bytes]]:
    if not leaves:
        raise ValueError("a Merkle tree needs at least one leaf")
    level = sorted(bytes(leaf) for leaf in leaves)
    if len(set(level)) != len(level):
        raise ValueError("duplicate leaves")
    levels = [level]
    while len(level) > 1:
        level = [
            hash_pair(level[i], level[i + 1]) if i + 1 < len(level) else level[i]
            for i in range(0, len(level), 2)
        ]
        levels.append(level)
    return levels


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """The root of the tree over ``leaves`` (any order; they are sorted first)."""
    return _levels(leaves)[-1][0]


def merkle_proof(leaves: Sequence[bytes], leaf: bytes) -> list[bytes]:
    """The siblings that lead from ``leaf`` to the root. Raises ValueError if it isn't a leaf."""
    levels = _levels(leaves)
    try:
        index = levels[0].index(bytes(leaf))
    except ValueError:
        raise ValueError("not a leaf of this tree") from None
    proof: list[bytes] = []
    for level in levels[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            proof.append(level[sibling])
        index //= 2
    return proof


def verify_proof(proof: Sequence[bytes], root: bytes, leaf: bytes) -> bool:
    """What ``MerkleProof.verify(proof, root, leaf)`` returns on-chain."""
    node = bytes(leaf)
    for sibling in proof:
        node = hash_pair(node, bytes(sibling))
    return node == bytes(root)


def leaf_of_receipt(document: Mapping[str, Any]) -> bytes:
    """Recompute a receipt's leaf from the receipt alone (``GET /api/v1/me/receipts/{id}``):
    its ``body`` and its ``batch`` (``chain_id``, ``contract``, ``batch_id``).

    Raises KeyError/ValueError for a document that isn't a batched receipt.
    """
    body = document["body"]
    batch = document["batch"]
    return receipt_leaf(
        chain_id=int(batch["chain_id"]),
        payout_contract=str(batch["contract"]),
        batch_id=bytes.fromhex(str(batch["batch_id"])[2:]),
        entry_id=int(body["receipt"]),
        wallet=str(body["wallet"]),
        amount=int(body["amount"]),
        digest=receipt_digest(body),
    )
