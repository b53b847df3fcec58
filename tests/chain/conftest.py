"""Fixtures for the chain tests: the real RewardToken on a fresh in-process EVM per test.

These tests need neither Django nor a database; they run with ``pytest -p no:django``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# pytest-django puts the repository root on sys.path (it finds manage.py); under
# `-p no:django` nothing does, so do it here for `import rewards`.
REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from rewards.chain import (  # noqa: E402
    ChainClient,
    embedded_account_keys,
    embedded_client,
)


@pytest.fixture
def client() -> ChainClient:
    """The payout signer (admin + minter) with a freshly deployed token."""
    chain = embedded_client()
    chain.deploy_token()
    return chain


@pytest.fixture
def stranger(client: ChainClient) -> ChainClient:
    """A funded account on the same chain and token, without MINTER_ROLE."""
    return client.with_signer(embedded_account_keys()[1])
