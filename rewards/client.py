"""The process's chain client, built from settings.

``CHAIN_RPC_URL`` set: any JSON-RPC node, signing locally with ``CHAIN_PRIVATE_KEY`` and paying
with the token at ``CHAIN_TOKEN_ADDRESS`` (deploy one with ``manage.py deploy_token``).
Unset: an in-process EVM with a freshly deployed token. It lives and dies with this process, so
only code running in this process sees it (the demo does all its chain work in its server).
"""

from __future__ import annotations

import threading

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from rewards.chain import ChainClient, embedded_client, rpc_client

_lock = threading.Lock()
_client: ChainClient | None = None


def chain_client() -> ChainClient:
    global _client
    with _lock:
        if _client is None:
            _client = _build()
        return _client


def chain_client_reset() -> None:
    """Forget the cached client (tests; after settings change). An embedded chain is lost."""
    global _client
    with _lock:
        _client = None


def chain_is_embedded() -> bool:
    return not settings.CHAIN_RPC_URL


def _build() -> ChainClient:
    if chain_is_embedded():
        client = embedded_client()
        client.deploy_token()
        return client
    token = settings.CHAIN_TOKEN_ADDRESS or None
    client = rpc_client(settings.CHAIN_RPC_URL, settings.CHAIN_PRIVATE_KEY, token)
    return client


def chain_client_with_token() -> ChainClient:
    """The client, refusing to go on without a token contract to pay with."""
    client = chain_client()
    if not client.token_address:
        raise ImproperlyConfigured(
            "CHAIN_TOKEN_ADDRESS is not set: deploy the token with `manage.py deploy_token` and set it"
        )
    return client
