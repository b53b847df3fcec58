"""RewardToken on the embedded EVM, driven through ChainClient: the contract is the real one."""

from __future__ import annotations

import pytest
from eth_abi.abi import encode
from eth_utils.crypto import keccak

from rewards.chain import (
    MAX_BATCH_SIZE,
    ChainClient,
    ContractCallReverted,
    batch_id_from_key,
)
from tests.chain.support import ONE_TOKEN, ROOT, mint, wallets

BATCH = batch_id_from_key("payout-batch-1")
ZERO_ADDRESS = "0x" + "00" * 20


def test_deploy_makes_a_crowdmint_token_with_the_signer_as_minter(client: ChainClient) -> None:
    info = client.token_info()

    assert client.token_address == info.address
    assert (info.name, info.symbol, info.decimals, info.total_supply) == ("Crowdmint", "CMT", 18, 0)
    assert client.is_minter()


def test_batch_mint_pays_every_recipient_and_marks_the_batch(client: ChainClient) -> None:
    alice, bob, carol = wallets(3)
    amounts = [1 * ONE_TOKEN, 2 * ONE_TOKEN, 3 * ONE_TOKEN]

    receipt = mint(client, BATCH, [alice, bob, carol], amounts)

    assert receipt.status
    assert [client.balance_of(w) for w in (alice, bob, carol)] == amounts
    assert client.is_batch_processed(BATCH)
    assert client.token_info().total_supply == 6 * ONE_TOKEN


def test_batch_mint_emits_one_transfer_per_recipient_and_one_batch_minted(
    client: ChainClient,
) -> None:
    recipients = wallets(3)
    amounts = [5, 6, 7]

    receipt = mint(client, BATCH, recipients, amounts)

    transfers = client.transfers_in(receipt.tx_hash)
    assert [(t.from_address, t.to_address, t.value) for t in transfers] == [
        (ZERO_ADDRESS, r, a) for r, a in zip(recipients, amounts, strict=True)
    ]
    [event] = client.batch_events()
    assert (event.batch_id, event.count, event.total) == (BATCH, 3, 18)
    assert (event.tx_hash, event.block_number) == (receipt.tx_hash, receipt.block_number)


def test_a_batch_is_not_processed_before_it_is_minted(client: ChainClient) -> None:
    assert not client.is_batch_processed(BATCH)


def test_replaying_a_batch_id_reverts_on_chain_and_pays_nothing(client: ChainClient) -> None:
    alice, bob = wallets(2)
    mint(client, BATCH, [alice, bob], [ONE_TOKEN, ONE_TOKEN])

    # A retry after a lost response signs the same batch again: the contract must refuse it.
    replay = mint(client, BATCH, [alice, bob], [7 * ONE_TOKEN, 7 * ONE_TOKEN])

    assert not replay.status
    assert client.is_batch_processed(BATCH)
    assert [client.balance_of(alice), client.balance_of(bob)] == [ONE_TOKEN, ONE_TOKEN]
    assert client.transfers_in(replay.tx_hash) == []
    assert len(client.batch_events()) == 1


def test_the_contract_names_a_replayed_batch_in_its_revert(client: ChainClient) -> None:
    (alice,) = wallets(1)
    mint(client, BATCH, [alice], [ONE_TOKEN])

    with pytest.raises(ContractCallReverted) as excinfo:
        client.check_payout_batch(BATCH, ROOT, [alice], [ONE_TOKEN])

    assert excinfo.value.error_name == "BatchAlreadyProcessed"
    assert excinfo.value.error_args == (BATCH,)


def test_a_different_batch_id_pays_the_same_wallets_again(client: ChainClient) -> None:
    (alice,) = wallets(1)
    mint(client, BATCH, [alice], [ONE_TOKEN])

    receipt = mint(client, batch_id_from_key("payout-batch-2"), [alice], [ONE_TOKEN])

    assert receipt.status
    assert client.balance_of(alice) == 2 * ONE_TOKEN


@pytest.mark.parametrize(
    ("recipients", "amounts", "error_name"),
    [
        pytest.param(wallets(2), [1], "BatchLengthMismatch", id="length-mismatch"),
        pytest.param([], [], "EmptyBatch", id="empty"),
        pytest.param(
            wallets(MAX_BATCH_SIZE + 1),
            [1] * (MAX_BATCH_SIZE + 1),
            "BatchTooLarge",
            id="over-500",
        ),
        pytest.param(
            [*wallets(1), ZERO_ADDRESS], [1, 1], "ERC20InvalidReceiver", id="zero-address"
        ),
    ],
)
def test_the_contract_rejects_a_malformed_batch(
    client: ChainClient, recipients: list[str], amounts: list[int], error_name: str
) -> None:
    with pytest.raises(ContractCallReverted) as excinfo:
        client.check_payout_batch(BATCH, ROOT, recipients, amounts)

    assert excinfo.value.error_name == error_name
    assert not client.is_batch_processed(BATCH)


@pytest.mark.parametrize(
    ("recipients", "amounts"),
    [
        pytest.param(wallets(2), [1], id="length-mismatch"),
        pytest.param([], [], id="empty"),
        pytest.param(wallets(MAX_BATCH_SIZE + 1), [1] * (MAX_BATCH_SIZE + 1), id="over-500"),
        pytest.param([ZERO_ADDRESS], [1], id="zero-address"),
        pytest.param(["0x1234"], [1], id="not-an-address"),
        pytest.param(wallets(1), [-1], id="negative-amount"),
        pytest.param(wallets(1), [2**256], id="amount-over-uint256"),
    ],
)
def test_the_client_refuses_to_sign_a_batch_the_contract_would_reject(
    client: ChainClient, recipients: list[str], amounts: list[int]
) -> None:
    nonce_before = client.next_nonce()

    with pytest.raises(ValueError):
        client.sign_payout_batch(BATCH, ROOT, recipients, amounts)

    assert client.next_nonce() == nonce_before


def test_a_non_minter_cannot_mint(client: ChainClient, stranger: ChainClient) -> None:
    (alice,) = wallets(1)

    with pytest.raises(ContractCallReverted) as excinfo:
        stranger.check_payout_batch(BATCH, ROOT, [alice], [ONE_TOKEN])
    receipt = mint(stranger, BATCH, [alice], [ONE_TOKEN])

    assert excinfo.value.error_name == "AccessControlUnauthorizedAccount"
    assert not stranger.is_minter()
    assert not receipt.status
    assert client.balance_of(alice) == 0
    assert not client.is_batch_processed(BATCH)


def test_a_valid_batch_passes_the_simulation(client: ChainClient) -> None:
    assert client.check_payout_batch(BATCH, ROOT, wallets(2), [1, 2]) is None
    assert not client.is_batch_processed(BATCH)


def test_is_batch_processed_needs_a_32_byte_id(client: ChainClient) -> None:
    with pytest.raises(ValueError):
        client.is_batch_processed(b"short")


def test_batch_ids_are_stable_and_distinct_per_key() -> None:
    assert batch_id_from_key("a") == batch_id_from_key("a")
    assert batch_id_from_key("a") != batch_id_from_key("b")
    assert len(batch_id_from_key("a")) == 32


def _raw_batch_mint_call(client: ChainClient, recipient_word: int) -> bytes:
    """Calls batchMint with calldata built by hand, so a recipient word can carry bits that
    no address has (web3 would refuse to encode them)."""
    selector = keccak(text="batchMint(bytes32,bytes32,address[],uint256[])")[:4]
    data = selector + encode(
        ["bytes32", "bytes32", "uint256[]", "uint256[]"],
        [BATCH, ROOT, [recipient_word], [ONE_TOKEN]],
    )
    w3 = client._w3
    return bytes(w3.eth.call({"from": client.address, "to": client.token_address, "data": data}))


def test_a_recipient_word_with_bits_above_an_address_reverts_as_abi_decoding_would(
    client: ChainClient,
) -> None:
    (alice,) = wallets(1)
    clean = int(alice, 16)

    assert _raw_batch_mint_call(client, clean) == b""
    with pytest.raises(Exception) as excinfo:
        _raw_batch_mint_call(client, clean | (1 << 200))

    selector = keccak(text="InvalidRecipientWord(uint256)")[:4]
    # The revert data: the error's selector and index 0 (eth-tester shows it as bytes).
    assert repr(selector + bytes(32)) in str(excinfo.value)
    assert not client.is_batch_processed(BATCH)
