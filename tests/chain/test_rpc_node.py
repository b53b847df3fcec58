"""The RewardToken and ChainClient against a real JSON-RPC node (Hardhat, from npm).

Starts ``npx hardhat node`` from rewards/contracts on a free loopback port. Without Node or
the npm modules the tests skip, except under CI=true where they fail: CI installs them.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from rewards.chain import (
    MAX_BATCH_SIZE,
    NODE_TX_GAS_CAP,
    ChainClient,
    ChainUnavailable,
    batch_id_from_key,
    batch_mint_gas_limit,
    rpc_client,
)
from rewards.chain.artifact import SOURCE_PATH
from tests.chain.support import ONE_TOKEN, mint, wallets

pytestmark = pytest.mark.integration

CONTRACTS_DIR = SOURCE_PATH.parent
# Hardhat's well-known account #0: a public test key that every Hardhat node prefunds.
HARDHAT_KEY_0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
HARDHAT_CHAIN_ID = 31337
STARTUP_TIMEOUT_S = 90


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _npx_or_skip() -> str:
    npx = shutil.which("npx")
    if npx and (CONTRACTS_DIR / "node_modules" / "hardhat").is_dir():
        return npx
    reason = "npx and rewards/contracts/node_modules are needed (run `make contracts`)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


class HardhatNode:
    """One `npx hardhat node` process in its own process group (npx forks node)."""

    def __init__(self, npx: str, log_path: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log_path.open("wb")
        self._proc = subprocess.Popen(
            [npx, "--no-install", "hardhat", "node", "--hostname", "127.0.0.1"]
            + ["--port", str(self.port)],
            cwd=CONTRACTS_DIR,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "HARDHAT_DISABLE_TELEMETRY_PROMPT": "true"},
            start_new_session=True,
        )
        self._log_path = log_path

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                pytest.fail(f"hardhat node exited early:\n{self._log_path.read_text()[-2000:]}")
            try:
                reply = requests.post(
                    self.url,
                    json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
                    timeout=2,
                )
                if reply.ok:
                    return
            except requests.exceptions.ConnectionError:
                pass
            time.sleep(0.25)
        self.stop()
        pytest.fail(f"hardhat node not ready in {STARTUP_TIMEOUT_S}s")

    def stop(self) -> None:
        if self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait(timeout=10)
        self._log.close()


@pytest.fixture
def hardhat(tmp_path: Path) -> Iterator[HardhatNode]:
    node = HardhatNode(_npx_or_skip(), tmp_path / "hardhat.log")
    try:
        node.wait_ready()
        yield node
    finally:
        node.stop()


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
    [event] = client.batch_minted_events()
    assert (event.batch_id, event.count, event.total) == (batch, 3, 6 * ONE_TOKEN)


def test_a_replayed_batch_pays_nothing_on_a_real_node(client: ChainClient) -> None:
    (alice,) = wallets(1)
    batch = batch_id_from_key("rpc-batch-1")
    mint(client, batch, [alice], [ONE_TOKEN])

    # Hardhat answers a reverting tx with an RPC error although it mined it; send_raw
    # returns the hash either way and the state says what happened.
    signed = client.sign_batch_mint(batch, [alice], [5 * ONE_TOKEN])
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
    signed = client.sign_batch_mint(batch_id_from_key("never-sent"), wallets(1), [1])

    hardhat.stop()

    with pytest.raises(ChainUnavailable):
        client.send_raw(signed.raw)
    with pytest.raises(ChainUnavailable):
        client.is_batch_processed(batch_id_from_key("never-sent"))
    with pytest.raises(ChainUnavailable):
        client.has_transaction(signed.tx_hash)
