"""The process's chain client, built from settings.

``CHAIN_RPC_URL`` set: any JSON-RPC node, signing locally with ``CHAIN_PRIVATE_KEY`` and paying
with the token at ``CHAIN_TOKEN_ADDRESS`` (``PAYOUT_ASSET=mint``; deploy one with
``manage.py deploy_token``) or the distributor at ``CHAIN_DISTRIBUTOR_ADDRESS``
(``PAYOUT_ASSET=erc20``; ``manage.py deploy_distributor``).
Unset: an in-process EVM with freshly deployed contracts (for erc20, a test stablecoin whose
treasury is the signer). It lives and dies with this process, so only code running in this
process sees it (the demo does all its chain work in its server).
"""

from __future__ import annotations

import threading

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from rewards.chain import ChainClient, embedded_client, rpc_client

_lock = threading.Lock()
_client: ChainClient | None = None
_request_client: ChainClient | None = None


def chain_client() -> ChainClient:
    global _client
    with _lock:
        if _client is None:
            _client = _build()
        return _client


def chain_client_for_requests() -> ChainClient:
    """The client for reads made while a web request waits (a purchase's verification): each
    call waits at most ``CHAIN_REQUEST_TIMEOUT_SECONDS`` and is not retried, so a hanging node
    costs a request seconds, not minutes, and can't tie up every thread of the web server. The
    embedded chain's client is the process's one."""
    global _request_client
    if chain_is_embedded():
        return chain_client()
    with _lock:
        if _request_client is None:
            _request_client = rpc_client(
                settings.CHAIN_RPC_URL,
                settings.CHAIN_PRIVATE_KEY,
                settings.CHAIN_TOKEN_ADDRESS or None,
                distributor_address=settings.CHAIN_DISTRIBUTOR_ADDRESS or None,
                timeout=settings.CHAIN_REQUEST_TIMEOUT_SECONDS,
                retries=False,
            )
        return _request_client


def chain_client_reset() -> None:
    """Forget the cached clients (tests; after settings change). An embedded chain is lost."""
    global _client, _request_client
    with _lock:
        _client = None
        _request_client = None


def chain_is_embedded() -> bool:
    return not settings.CHAIN_RPC_URL


#: Why a management command refuses to start a new embedded EVM (``embedded_chain_elsewhere``).
EMBEDDED_ELSEWHERE = (
    "no chain to use: CHAIN_RPC_URL is not set, and the embedded EVM lives in the process that "
    "made it (the demo's server); here this command would pay or read a new, empty chain that "
    "vanishes when it exits (the database would record payouts nobody received). Set "
    "CHAIN_RPC_URL and CHAIN_PRIVATE_KEY to use a node, or let the demo's server do it (its "
    "settlement runs on its own schedule)"
)


def embedded_chain_elsewhere() -> bool:
    """Whether the chain is embedded and this process has not made it yet: a management command
    run beside the demo would get a fresh EVM of its own, with the demo's chain id and contract
    addresses but none of its state."""
    with _lock:
        return chain_is_embedded() and _client is None


#: The embedded ERC-20 treasury's balance and allowance: plenty for any demo or test.
EMBEDDED_TREASURY_UNITS = 10**15


def _build() -> ChainClient:
    if chain_is_embedded():
        client = embedded_client()
        if settings.PAYOUT_ASSET == "erc20":
            asset = client.deploy_mock_stablecoin()
            client.mint_mock_stablecoin(asset, client.address, EMBEDDED_TREASURY_UNITS)
            distributor = client.deploy_distributor(asset, client.address)
            client.approve(asset, distributor, EMBEDDED_TREASURY_UNITS)
        else:
            client.deploy_token()
        return client
    if settings.PAYOUT_ASSET == "erc20":
        return rpc_client(
            settings.CHAIN_RPC_URL,
            settings.CHAIN_PRIVATE_KEY,
            None,
            distributor_address=settings.CHAIN_DISTRIBUTOR_ADDRESS or None,
        )
    token = settings.CHAIN_TOKEN_ADDRESS or None
    return rpc_client(settings.CHAIN_RPC_URL, settings.CHAIN_PRIVATE_KEY, token)


def chain_client_with_token() -> ChainClient:
    """The client, refusing to go on without a payout contract to pay with."""
    client = chain_client()
    if not client.payout_address:
        if settings.PAYOUT_ASSET == "erc20":
            raise ImproperlyConfigured(
                "CHAIN_DISTRIBUTOR_ADDRESS is not set: deploy the distributor with "
                "`manage.py deploy_distributor` and set it"
            )
        raise ImproperlyConfigured(
            "CHAIN_TOKEN_ADDRESS is not set: deploy the token with `manage.py deploy_token` and set it"
        )
    return client
