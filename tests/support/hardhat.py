"""A Hardhat JSON-RPC node (npm ``hardhat@2.29.1``) for the tests that need a real node.

Without Node or the npm modules a test using it skips, except under CI=true where it fails: CI
installs them.
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

from rewards.chain.artifact import CONTRACTS_DIR

# Hardhat's well-known account #0: a public test key that every Hardhat node prefunds.
HARDHAT_KEY_0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
HARDHAT_CHAIN_ID = 31337
STARTUP_TIMEOUT_S = 90


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def npx_or_skip() -> str:
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
        self.port = free_port()
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
    """A fresh Hardhat node for one test (its state is lost when it stops)."""
    node = HardhatNode(npx_or_skip(), tmp_path / "hardhat.log")
    try:
        node.wait_ready()
        yield node
    finally:
        node.stop()
