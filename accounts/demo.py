"""Demo wallets: keys derived from public labels, for the seeded demo only.

They hold tokens on a throw-away chain; anyone can derive them, so they are never used outside
``CROWDMINT_DEMO`` mode. The sign-in page uses them to sign SIWE messages server-side for visitors
without a browser wallet.
"""

from __future__ import annotations

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak

DEMO_CONTRIBUTOR_COUNT = 4


def demo_account(index: int) -> LocalAccount:
    if not 0 <= index < DEMO_CONTRIBUTOR_COUNT:
        raise ValueError(f"no demo contributor {index}")
    account: LocalAccount = Account.from_key(keccak(text=f"crowdmint demo contributor {index}"))
    return account


def demo_accounts() -> list[LocalAccount]:
    return [demo_account(i) for i in range(DEMO_CONTRIBUTOR_COUNT)]
