"""Receipt trees: proofs built in Python verify on-chain with OpenZeppelin's MerkleProof, and the
payout contract stores each batch's root for anyone to check a receipt against."""

from __future__ import annotations

import pytest
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from rewards.chain import ChainClient, ContractCallReverted, batch_id_from_key
from rewards.chain.merkle import (
    canonical_json,
    hash_pair,
    merkle_proof,
    merkle_root,
    receipt_digest,
    receipt_leaf,
    verify_proof,
)
from tests.chain.support import ONE_TOKEN, mint, wallets

BATCH = batch_id_from_key("receipts-batch")


def leaves(n: int, seed: str = "leaf") -> list[bytes]:
    return [keccak(text=f"{seed}-{i}") for i in range(n)]


def test_a_two_leaf_tree_hashes_the_sorted_pair() -> None:
    a, b = leaves(2)
    assert merkle_root([a, b]) == merkle_root([b, a]) == keccak(min(a, b) + max(a, b))
    assert hash_pair(a, b) == hash_pair(b, a)
    assert merkle_proof([a, b], a) == [b]


def test_a_single_leaf_is_its_own_root_with_an_empty_proof() -> None:
    [a] = leaves(1)
    assert merkle_root([a]) == a and merkle_proof([a], a) == []
    assert verify_proof([], a, a)


@given(st.integers(1, 300), st.data())
def test_every_leaf_of_any_tree_has_a_proof_that_verifies(n: int, data: st.DataObject) -> None:
    tree = leaves(n, seed=f"t{n}")
    root = merkle_root(tree)
    leaf = data.draw(st.sampled_from(tree))
    proof = merkle_proof(tree, leaf)
    assert verify_proof(proof, root, leaf)
    assert len(proof) <= max(1, n - 1).bit_length()
    assert not verify_proof(proof, root, keccak(text="not in the tree"))


def test_proofs_verify_on_chain_with_openzeppelin(client: ChainClient) -> None:
    tree = leaves(37)
    root = merkle_root(tree)
    mint(client, BATCH, wallets(1), [ONE_TOKEN], root=root)
    assert client.batch_root(BATCH) == root
    for leaf in tree:
        assert client.verify_receipt(BATCH, merkle_proof(tree, leaf), leaf)
    forged = keccak(text="a receipt that was never paid")
    assert not client.verify_receipt(BATCH, merkle_proof(tree, tree[0]), forged)
    other = batch_id_from_key("an unpaid batch")
    assert client.batch_root(other) is None
    assert not client.verify_receipt(other, merkle_proof(tree, tree[0]), tree[0])


def test_a_batch_without_a_receipts_root_is_refused(client: ChainClient) -> None:
    with pytest.raises(ValueError, match="receipts_root"):
        client.sign_payout_batch(BATCH, b"\x00" * 32, wallets(1), [1])
    with pytest.raises(ContractCallReverted) as excinfo:
        client.check_payout_batch(BATCH, b"\x00" * 32, wallets(1), [1])
    assert excinfo.value.error_name == "EmptyReceiptsRoot"


def test_the_leaf_binds_chain_contract_batch_entry_wallet_amount_and_body() -> None:
    body = {"entry": 7, "amount": "10", "label": "café", "labels": {"b": 1, "a": 2}}
    assert (
        canonical_json(body)
        == '{"amount":"10","entry":7,"label":"café","labels":{"a":2,"b":1}}'.encode()
    )
    base = {
        "chain_id": 1,
        "payout_contract": "0x" + "11" * 20,
        "batch_id": BATCH,
        "entry_id": 7,
        "wallet": "0x" + "22" * 20,
        "amount": 10,
        "digest": receipt_digest(body),
    }
    leaf = receipt_leaf(**base)  # type: ignore[arg-type]
    for key, other in [
        ("chain_id", 31337),
        ("payout_contract", "0x" + "33" * 20),
        ("batch_id", batch_id_from_key("other")),
        ("entry_id", 8),
        ("wallet", "0x" + "44" * 20),
        ("amount", -10),
        ("digest", receipt_digest({**body, "amount": "11"})),
    ]:
        assert receipt_leaf(**{**base, key: other}) != leaf, key  # type: ignore[arg-type]


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 64))
def test_trees_of_any_size_verify_on_chain(n: int) -> None:
    from rewards.chain import embedded_client

    chain = embedded_client()
    chain.deploy_token()
    tree = leaves(n, seed=f"chain{n}")
    mint(chain, BATCH, wallets(1), [1], root=merkle_root(tree))
    for leaf in tree[:: max(1, n // 5)]:
        assert chain.verify_receipt(BATCH, merkle_proof(tree, leaf), leaf)
