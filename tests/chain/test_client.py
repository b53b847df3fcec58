"""ChainClient transaction handling: hashes, nonces, gas limits, errors, factories."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from rewards.chain import (
    MAX_BATCH_SIZE,
    NODE_TX_GAS_CAP,
    ChainClient,
    ChainConfigError,
    ChainError,
    ChainUnavailable,
    batch_id_from_key,
    batch_mint_gas_limit,
    client_from_settings,
    embedded_account_keys,
    embedded_client,
    rpc_client,
)
from tests.chain.support import ONE_TOKEN, ROOT, wallets

BATCH = batch_id_from_key("payout-batch-1")
# eth-tester's second prefunded key: public test data, not a secret.
TEST_KEY = embedded_account_keys()[1]


def test_the_signed_hash_is_the_hash_of_the_mined_transaction(client: ChainClient) -> None:
    signed = client.sign_payout_batch(BATCH, ROOT, wallets(2), [1, 2])

    sent_hash = client.send_raw(signed.raw)
    receipt = client.wait_for_receipt(signed.tx_hash)

    assert signed.tx_hash.startswith("0x") and len(signed.tx_hash) == 66
    assert sent_hash == signed.tx_hash
    assert receipt is not None and receipt.tx_hash == signed.tx_hash and receipt.status


def test_the_node_knows_a_sent_transaction_and_not_an_unsent_one(client: ChainClient) -> None:
    sent = client.sign_payout_batch(BATCH, ROOT, wallets(1), [1])
    client.send_raw(sent.raw)
    unsent = client.sign_payout_batch(batch_id_from_key("unsent"), ROOT, wallets(1), [1])

    assert client.has_transaction(sent.tx_hash)
    assert not client.has_transaction(unsent.tx_hash)


def test_the_confirmed_nonce_counts_mined_transactions(client: ChainClient) -> None:
    before = client.confirmed_nonce()
    signed = client.sign_payout_batch(BATCH, ROOT, wallets(1), [1])
    client.send_raw(signed.raw)

    assert client.confirmed_nonce() == before + 1 == signed.nonce + 1 == client.next_nonce()


def test_signing_does_not_broadcast(client: ChainClient) -> None:
    signed = client.sign_payout_batch(BATCH, ROOT, wallets(1), [1])

    assert client.get_receipt(signed.tx_hash) is None
    assert client.next_nonce() == signed.nonce
    assert not client.is_batch_processed(BATCH)


def test_broadcasting_the_same_bytes_twice_is_not_fatal(client: ChainClient) -> None:
    (alice,) = wallets(1)
    signed = client.sign_payout_batch(BATCH, ROOT, [alice], [ONE_TOKEN])

    assert client.send_raw(signed.raw) == signed.tx_hash
    assert client.send_raw(signed.raw) == signed.tx_hash
    assert client.balance_of(alice) == ONE_TOKEN


def test_a_consumed_nonce_is_not_fatal_and_leaves_the_tx_unmined(client: ChainClient) -> None:
    used_nonce = client.next_nonce() - 1  # the deployment's
    signed = client.sign_payout_batch(BATCH, ROOT, wallets(1), [1], nonce=used_nonce)

    assert client.send_raw(signed.raw) == signed.tx_hash
    assert client.get_receipt(signed.tx_hash) is None
    assert not client.is_batch_processed(BATCH)


def test_a_nonce_gap_is_rejected(client: ChainClient) -> None:
    signed = client.sign_payout_batch(BATCH, ROOT, wallets(1), [1], nonce=client.next_nonce() + 5)

    with pytest.raises(ChainError):
        client.send_raw(signed.raw)


def test_garbage_bytes_are_rejected(client: ChainClient) -> None:
    with pytest.raises(ChainError):
        client.send_raw(b"\x01\x02\x03")


def test_the_largest_batch_gas_limit_stays_under_the_node_cap() -> None:
    assert batch_mint_gas_limit(MAX_BATCH_SIZE) < NODE_TX_GAS_CAP
    with pytest.raises(ValueError):
        batch_mint_gas_limit(MAX_BATCH_SIZE + 1)


def test_a_full_batch_of_new_wallets_fits_its_gas_limit(client: ChainClient) -> None:
    recipients = wallets(MAX_BATCH_SIZE)
    signed = client.sign_payout_batch(BATCH, ROOT, recipients, [ONE_TOKEN] * MAX_BATCH_SIZE)

    client.send_raw(signed.raw)
    receipt = client.wait_for_receipt(signed.tx_hash)

    assert receipt is not None and receipt.status
    assert receipt.gas_used < batch_mint_gas_limit(MAX_BATCH_SIZE)
    assert client.balance_of(recipients[-1]) == ONE_TOKEN


def test_wait_for_receipt_gives_up_with_none(client: ChainClient) -> None:
    assert client.wait_for_receipt("0x" + "ab" * 32, timeout=0.05) is None


def test_methods_that_need_the_token_refuse_without_one() -> None:
    chain = embedded_client()

    with pytest.raises(ChainConfigError):
        chain.is_batch_processed(BATCH)


def test_embedded_clients_are_separate_chains() -> None:
    first, second = embedded_client(), embedded_client()
    first.deploy_token()

    assert second.next_nonce() == 0
    assert first.next_nonce() == 1


def test_concurrent_readers_and_a_writer_share_the_embedded_chain(client: ChainClient) -> None:
    recipients = wallets(4)
    errors: list[BaseException] = []

    def read() -> None:
        try:
            for _ in range(20):
                client.balance_of(recipients[0])
                client.is_batch_processed(BATCH)
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(4)]
    for reader in readers:
        reader.start()
    for i, recipient in enumerate(recipients):
        signed = client.sign_payout_batch(
            batch_id_from_key(f"b{i}"), ROOT, [recipient], [ONE_TOKEN]
        )
        client.send_raw(signed.raw)
    for reader in readers:
        reader.join()

    assert errors == []
    assert [client.balance_of(r) for r in recipients] == [ONE_TOKEN] * 4


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_node_raises_chain_unavailable() -> None:
    chain = rpc_client(f"http://127.0.0.1:{_closed_port()}", TEST_KEY, None)

    with pytest.raises(ChainUnavailable):
        chain.send_raw(b"\x01")
    with pytest.raises(ChainUnavailable):
        chain.next_nonce()
    with pytest.raises(ChainUnavailable):
        chain.has_transaction("0x" + "ab" * 32)


def test_rpc_client_rejects_bad_configuration_without_echoing_the_key() -> None:
    with pytest.raises(ChainConfigError) as excinfo:
        rpc_client("http://127.0.0.1:8545", "0xnot-a-key-deadbeef", None)
    assert "deadbeef" not in str(excinfo.value)

    with pytest.raises(ChainConfigError):
        rpc_client("127.0.0.1:8545", TEST_KEY, None)
    with pytest.raises(ChainConfigError):
        rpc_client("http://127.0.0.1:8545", TEST_KEY, "0x1234")


def test_settings_without_an_rpc_url_give_an_embedded_chain_with_a_token() -> None:
    chain = client_from_settings(rpc_url=None)

    assert chain.token_address is not None
    assert chain.is_minter()


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param({"rpc_url": None, "private_key": TEST_KEY}, id="key-without-url"),
        pytest.param({"rpc_url": "http://127.0.0.1:8545"}, id="url-without-key"),
        pytest.param(
            {"rpc_url": "http://127.0.0.1:8545", "private_key": TEST_KEY, "private_key_file": "k"},
            id="two-keys",
        ),
        pytest.param(
            {"rpc_url": "http://127.0.0.1:8545", "private_key_file": "/nonexistent/key"},
            id="missing-key-file",
        ),
    ],
)
def test_contradictory_settings_are_refused(settings: dict[str, str | None]) -> None:
    with pytest.raises(ChainConfigError):
        client_from_settings(**settings)  # type: ignore[arg-type]


def test_the_key_can_come_from_a_file(tmp_path: Path) -> None:
    key_file = tmp_path / "chain.key"
    key_file.write_text(TEST_KEY + "\n")

    chain = client_from_settings(
        rpc_url="http://127.0.0.1:8545", private_key_file=str(key_file), token_address=None
    )

    assert (
        chain.address
        == client_from_settings(rpc_url="http://127.0.0.1:8545", private_key=TEST_KEY).address
    )
