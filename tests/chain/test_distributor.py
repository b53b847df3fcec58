"""RewardDistributor on the embedded EVM: payouts in an existing ERC-20 (a 6-decimal test
stablecoin), pulled from a treasury by allowance, with the same batch ids and receipts roots."""

from __future__ import annotations

import pytest

from rewards.chain import (
    ERC20,
    MAX_TRANSFER_BATCH_SIZE,
    ChainClient,
    ContractCallReverted,
    batch_id_from_key,
    embedded_account_keys,
    embedded_client,
)
from tests.chain.support import ROOT, mint, wallets

BATCH = batch_id_from_key("stablecoin-batch")
DOLLAR = 10**6


@pytest.fixture
def payer() -> ChainClient:
    """The payout signer with a distributor paying tUSD from a funded treasury (account #1)."""
    chain = embedded_client()
    treasury = chain.with_signer(embedded_account_keys()[1])
    asset = chain.deploy_mock_stablecoin()
    chain.mint_mock_stablecoin(asset, treasury.address, 1_000_000 * DOLLAR)
    distributor = chain.deploy_distributor(asset, treasury.address)
    treasury.approve(asset, distributor, 500_000 * DOLLAR)
    return chain


def test_a_batch_transfers_the_stablecoin_from_the_treasury(payer: ChainClient) -> None:
    alice, bob = wallets(2, seed="usd")
    treasury = payer.treasury()
    assert treasury is not None
    before = payer.balance_of(treasury)

    receipt = mint(payer, BATCH, [alice, bob], [12 * DOLLAR, 3 * DOLLAR + 1])

    assert receipt.status and payer.mode == ERC20
    assert payer.balance_of(alice) == 12 * DOLLAR and payer.balance_of(bob) == 3 * DOLLAR + 1
    assert payer.balance_of(treasury) == before - 15 * DOLLAR - 1
    assert payer.is_batch_processed(BATCH) and payer.batch_root(BATCH) == ROOT
    info = payer.token_info()
    assert (info.symbol, info.decimals) == ("tUSD", 6)
    transfers = payer.transfers_in(receipt.tx_hash)
    assert [(t.from_address, t.value) for t in transfers] == [
        (treasury, 12 * DOLLAR),
        (treasury, 3 * DOLLAR + 1),
    ]
    [event] = payer.batch_events()
    assert (event.batch_id, event.receipts_root, event.count, event.total) == (
        BATCH,
        ROOT,
        2,
        15 * DOLLAR + 1,
    )


def test_a_replayed_batch_id_pays_nothing(payer: ChainClient) -> None:
    (alice,) = wallets(1, seed="usd")
    mint(payer, BATCH, [alice], [DOLLAR])
    replay = mint(payer, BATCH, [alice], [50 * DOLLAR])
    assert not replay.status
    assert payer.balance_of(alice) == DOLLAR
    with pytest.raises(ContractCallReverted) as excinfo:
        payer.check_payout_batch(BATCH, ROOT, [alice], [DOLLAR])
    assert excinfo.value.error_name == "BatchAlreadyProcessed"


def test_the_allowance_caps_what_the_payout_key_can_move(payer: ChainClient) -> None:
    (alice,) = wallets(1, seed="usd")
    with pytest.raises(ContractCallReverted) as excinfo:
        payer.check_payout_batch(BATCH, ROOT, [alice], [500_001 * DOLLAR])
    assert excinfo.value.error_name == "ERC20InsufficientAllowance"
    failed = mint(payer, BATCH, [alice], [500_001 * DOLLAR])
    assert not failed.status
    assert not payer.is_batch_processed(BATCH)  # a reverted batch can be paid later


def test_only_the_distributor_role_pays(payer: ChainClient) -> None:
    stranger = payer.with_signer(embedded_account_keys()[2])
    assert payer.is_minter() and not stranger.is_minter()
    with pytest.raises(ContractCallReverted) as excinfo:
        stranger.check_payout_batch(BATCH, ROOT, wallets(1), [1])
    assert excinfo.value.error_name == "AccessControlUnauthorizedAccount"


def test_erc20_batches_are_capped_below_the_node_gas_cap(payer: ChainClient) -> None:
    too_many = wallets(MAX_TRANSFER_BATCH_SIZE + 1, seed="many")
    with pytest.raises(ValueError, match=f"1..{MAX_TRANSFER_BATCH_SIZE}"):
        payer.sign_payout_batch(BATCH, ROOT, too_many, [1] * len(too_many))
