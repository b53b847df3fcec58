"""The RewardToken and ChainClient against a real JSON-RPC node (Hardhat, from npm).

Starts ``npx hardhat node`` from rewards/contracts on a free loopback port. Without Node or
the npm modules the tests skip, except under CI=true where they fail: CI installs them.
"""

from __future__ import annotations

import pytest

from rewards.chain import (
    MAX_BATCH_SIZE,
    NODE_TX_GAS_CAP,
    ChainClient,
    ChainUnavailable,
    batch_id_from_key,
    batch_mint_gas_limit,
    rpc_client,
)
from tests.chain.support import ONE_TOKEN, ROOT, mint, wallets
from tests.support.hardhat import HARDHAT_CHAIN_ID, HARDHAT_KEY_0, HardhatNode

pytestmark = pytest.mark.integration


@pytest.fixture
def client(hardhat: HardhatNode) -> ChainClient:
    chain = rpc_client(hardhat.url, HARDHAT_KEY_0, None)
    chain.deploy_token()
    return chain


def test_it_deploys_and_mints_a_batch_on_a_real_node(client: ChainClient) -> None:
    recipients = wallets(3)
    amounts = [ONE_TOKEN, 2 * ONE_TOKEN, 3 * ONE_TOKEN]
    batch = batch_id_from_key("rpc-batch-1")

    receipt = mint(client, batch, recipients, amounts)

    assert client.chain_id == HARDHAT_CHAIN_ID
    assert receipt.status
    assert [client.balance_of(r) for r in recipients] == amounts
    assert client.is_batch_processed(batch)
    [event] = client.batch_events()
    assert (event.batch_id, event.count, event.total) == (batch, 3, 6 * ONE_TOKEN)


def test_a_replayed_batch_pays_nothing_on_a_real_node(client: ChainClient) -> None:
    (alice,) = wallets(1)
    batch = batch_id_from_key("rpc-batch-1")
    mint(client, batch, [alice], [ONE_TOKEN])

    # Hardhat answers a reverting tx with an RPC error although it mined it; send_raw
    # returns the hash either way and the state says what happened.
    signed = client.sign_payout_batch(batch, ROOT, [alice], [5 * ONE_TOKEN])
    assert client.send_raw(signed.raw) == signed.tx_hash
    replay = client.wait_for_receipt(signed.tx_hash, timeout=30)

    assert replay is not None and not replay.status
    assert client.balance_of(alice) == ONE_TOKEN
    assert client.is_batch_processed(batch)


def test_a_full_batch_stays_under_the_node_gas_cap(client: ChainClient) -> None:
    recipients = wallets(MAX_BATCH_SIZE, seed="rpc-full")
    batch = batch_id_from_key("rpc-full-batch")

    receipt = mint(client, batch, recipients, [ONE_TOKEN] * MAX_BATCH_SIZE)

    assert batch_mint_gas_limit(MAX_BATCH_SIZE) < NODE_TX_GAS_CAP
    assert receipt.status
    assert client.balance_of(recipients[-1]) == ONE_TOKEN


def test_a_killed_node_surfaces_as_chain_unavailable(
    hardhat: HardhatNode, client: ChainClient
) -> None:
    signed = client.sign_payout_batch(batch_id_from_key("never-sent"), ROOT, wallets(1), [1])

    hardhat.stop()

    with pytest.raises(ChainUnavailable):
        client.send_raw(signed.raw)
    with pytest.raises(ChainUnavailable):
        client.is_batch_processed(batch_id_from_key("never-sent"))
    with pytest.raises(ChainUnavailable):
        client.has_transaction(signed.tx_hash)
