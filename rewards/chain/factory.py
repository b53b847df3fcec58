"""Constructors for ChainClient: the in-process test chain, a JSON-RPC node, and settings.

No Django here: the Django side reads its settings (CHAIN_RPC_URL, CHAIN_PRIVATE_KEY or
CHAIN_PRIVATE_KEY_FILE, CHAIN_TOKEN_ADDRESS) and passes them to ``client_from_settings``.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_tester import EthereumTester, PyEVMBackend  # type: ignore[import-untyped]
from web3 import HTTPProvider, Web3
from web3.providers.eth_tester import EthereumTesterProvider
from web3.types import RPCEndpoint, RPCResponse

from rewards.chain.client import ChainClient
from rewards.chain.errors import ChainConfigError

#: Seconds before an HTTP JSON-RPC request counts as ChainUnavailable.
RPC_TIMEOUT_S = 30


class _LockedEthereumTesterProvider(EthereumTesterProvider):
    """eth-tester's chain is plain in-process state with no locking of its own; the demo
    server is threaded, so every request goes through one lock (mining included)."""

    def __init__(self, tester: EthereumTester) -> None:
        super().__init__(tester)
        self._lock = threading.RLock()

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        with self._lock:
            return super().make_request(method, params)


def _py_evm_backend() -> Any:
    """A fresh py-evm chain, leaving the process's recursion limit as it was.

    py-evm raises the limit to 12,288 when first imported; C code that recurses (the JSON parser)
    would then overflow the thread's stack instead of raising ``RecursionError``.
    """
    limit = sys.getrecursionlimit()
    try:
        return PyEVMBackend()
    finally:
        sys.setrecursionlimit(limit)


def embedded_client() -> ChainClient:
    """A ChainClient on a brand-new in-process eth-tester (py-evm) chain; no token deployed.

    Every call creates a separate chain (state lives only in this Python process; cache the
    client). The signer is eth-tester's first prefunded account, a public test key. Each
    transaction is mined immediately. Thread-safe.
    """
    backend = _py_evm_backend()
    tester = EthereumTester(backend)
    web3 = Web3(_LockedEthereumTesterProvider(tester))
    account: LocalAccount = Account.from_key(backend.account_keys[0])
    return ChainClient(web3, account, poll_interval=0.01)


def embedded_account_keys() -> list[str]:
    """The public, prefunded eth-tester keys (0x hex): for tests that need a second signer."""
    return [str(key) for key in _py_evm_backend().account_keys]


def rpc_client(
    url: str,
    private_key: str,
    token_address: str | None,
    *,
    distributor_address: str | None = None,
    timeout: float = RPC_TIMEOUT_S,
    retries: bool = True,
) -> ChainClient:
    """A ChainClient on the JSON-RPC node at ``url`` (http/https), signing with ``private_key``,
    paying with the RewardToken at ``token_address`` or the RewardDistributor at
    ``distributor_address``.

    ``timeout``: seconds per call; ``retries``: web3's retries of a call that failed to connect
    or timed out. Does no I/O: an unreachable node surfaces as ChainUnavailable on first use. Raises
    ChainConfigError for a malformed url, key or address (the key is never echoed).
    """
    if not url.startswith(("http://", "https://")):
        raise ChainConfigError(f"CHAIN_RPC_URL must be an http(s) URL, got {url!r}")
    account = _account_from_key(private_key)
    # Without ``retries`` a failed call fails at once (web3 retries a connection error or a
    # timeout five times by default: minutes on a hanging node, for a request waiting on it).
    no_retries: dict[str, Any] = {} if retries else {"exception_retry_configuration": None}
    web3 = Web3(HTTPProvider(url, request_kwargs={"timeout": timeout}, **no_retries))
    return ChainClient(web3, account, token_address, distributor_address=distributor_address)


def client_from_settings(
    *,
    rpc_url: str | None,
    private_key: str | None = None,
    private_key_file: str | None = None,
    token_address: str | None = None,
) -> ChainClient:
    """Build the client the application uses, from plain setting values.

    - No ``rpc_url``: an embedded chain with a freshly deployed token (development, demo,
      tests). Any key or token setting is then a mistake and raises ChainConfigError.
    - ``rpc_url``: exactly one of ``private_key`` / ``private_key_file`` (a file holding the
      0x key; surrounding whitespace ignored) is required, and ``token_address`` is the
      deployed RewardToken (None only for a deploy script that calls ``deploy_token``).

    Raises ChainConfigError for missing/contradictory settings or an unreadable key file;
    ChainUnavailable/ChainError only in the embedded case (it deploys).
    """
    if not rpc_url:
        if private_key or private_key_file or token_address:
            raise ChainConfigError(
                "the embedded chain uses its own key and token: set CHAIN_RPC_URL or "
                "unset CHAIN_PRIVATE_KEY, CHAIN_PRIVATE_KEY_FILE and CHAIN_TOKEN_ADDRESS"
            )
        client = embedded_client()
        client.deploy_token()
        return client
    if bool(private_key) == bool(private_key_file):
        raise ChainConfigError("set exactly one of CHAIN_PRIVATE_KEY and CHAIN_PRIVATE_KEY_FILE")
    if private_key_file:
        try:
            private_key = Path(private_key_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ChainConfigError(f"cannot read CHAIN_PRIVATE_KEY_FILE: {exc.strerror}") from None
    assert private_key is not None
    return rpc_client(rpc_url, private_key, token_address or None)


def _account_from_key(private_key: str) -> LocalAccount:
    try:
        account: LocalAccount = Account.from_key(private_key)
    except Exception:
        # Deliberately no detail and no chaining: the message must never contain the key.
        raise ChainConfigError("CHAIN_PRIVATE_KEY is not a valid secp256k1 private key") from None
    return account
